//! The server side of the negotiation, directly and through `UpgradeRequest`.

use super::*;

fn server(config: &DeflateConfig, offers: &[&str]) -> Option<(DeflateParams, String)> {
    server_accept(config, offers.iter().copied())
}

fn accepted(params: DeflateParams, response: &str) -> Option<(DeflateParams, String)> {
    Some((params, response.to_owned()))
}

#[test]
fn server_accepts_a_plain_offer_with_the_defaults() {
    let d = DeflateConfig::default();
    for offer in [
        "permessage-deflate",
        "permessage-deflate; client_max_window_bits",
        "Permessage-Deflate",
        " permessage-deflate ",
        "permessage-deflate;client_max_window_bits",
        "permessage-deflate ;\tClient_Max_Window_Bits ",
    ] {
        assert_eq!(
            server(&d, &[offer]),
            accepted(DeflateParams::default(), PMD),
            "{offer}"
        );
    }
}

#[test]
fn server_confirms_server_no_context_takeover() {
    let d = DeflateConfig::default();
    for offer in [
        "permessage-deflate; server_no_context_takeover",
        "permessage-deflate; client_max_window_bits; SERVER_NO_CONTEXT_TAKEOVER",
    ] {
        assert_eq!(
            server(&d, &[offer]),
            accepted(
                p(true, false, 15, 15),
                "permessage-deflate; server_no_context_takeover"
            ),
            "{offer}"
        );
    }
}

#[test]
fn client_no_context_takeover_volunteered_in_an_offer_is_confirmed() {
    for config in [DeflateConfig::default(), cfg(false, true, 15, 15)] {
        assert_eq!(
            server(&config, &["permessage-deflate; client_no_context_takeover"]),
            accepted(
                p(false, true, 15, 15),
                "permessage-deflate; client_no_context_takeover"
            )
        );
    }
}

#[test]
fn server_confirms_every_requested_server_max_window_bits() {
    let d = DeflateConfig::default();
    for bits in 8..=15 {
        assert_eq!(
            server(
                &d,
                &[&format!(
                    "permessage-deflate; server_max_window_bits={bits}"
                )]
            ),
            accepted(
                p(false, false, bits, 15),
                &format!("permessage-deflate; server_max_window_bits={bits}")
            ),
            "{bits}"
        );
    }
}

#[test]
fn server_max_window_bits_is_the_smaller_of_request_and_config() {
    for ours in 8..=15 {
        for theirs in 8..=15 {
            let expected = ours.min(theirs);
            assert_eq!(
                server(
                    &cfg(false, false, ours, 15),
                    &[&format!(
                        "permessage-deflate; server_max_window_bits={theirs}"
                    )]
                ),
                accepted(
                    p(false, false, expected, 15),
                    &format!("permessage-deflate; server_max_window_bits={expected}")
                ),
                "ours {ours}, theirs {theirs}"
            );
        }
    }
}

#[test]
fn server_announces_its_smaller_window_when_none_was_requested() {
    for ours in 8..=15 {
        let response = if ours < 15 {
            format!("permessage-deflate; server_max_window_bits={ours}")
        } else {
            PMD.to_owned()
        };
        assert_eq!(
            server(&cfg(false, false, ours, 15), &[PMD]),
            accepted(p(false, false, ours, 15), &response),
            "{ours}"
        );
    }
}

#[test]
fn client_max_window_bits_is_the_smaller_of_offer_and_config() {
    for ours in 8..=15u8 {
        for offered in [None, Some(8u8), Some(9), Some(11), Some(14), Some(15)] {
            let offer = match offered {
                None => "permessage-deflate; client_max_window_bits".to_owned(),
                Some(v) => format!("permessage-deflate; client_max_window_bits={v}"),
            };
            let bits = offered.unwrap_or(15).min(ours);
            let response = if bits < 15 {
                format!("permessage-deflate; client_max_window_bits={bits}")
            } else {
                PMD.to_owned()
            };
            assert_eq!(
                server(&cfg(false, false, 15, ours), &[&offer]),
                accepted(p(false, false, 15, bits), &response),
                "ours {ours}, offer {offer}"
            );
        }
    }
}

#[test]
fn an_offer_without_client_max_window_bits_is_declined_when_the_server_needs_a_smaller_window() {
    for ours in 8..=14 {
        let config = cfg(false, false, 15, ours);
        let response = format!("permessage-deflate; client_max_window_bits={ours}");
        assert_eq!(server(&config, &[PMD]), None, "{ours}");
        assert_eq!(
            server(&config, &["permessage-deflate; server_max_window_bits=12"]),
            None
        );
        // A later offer that lets the client limit its window is taken.
        let expected = accepted(p(false, false, 15, ours), &response);
        assert_eq!(
            server(
                &config,
                &["permessage-deflate, permessage-deflate; client_max_window_bits"]
            ),
            expected
        );
        assert_eq!(
            server(
                &config,
                &[PMD, "permessage-deflate; client_max_window_bits=15"]
            ),
            expected
        );
    }
    assert_eq!(
        server(&cfg(false, false, 15, 15), &[PMD]),
        accepted(DeflateParams::default(), PMD)
    );
}

#[test]
fn server_config_requirements_appear_in_the_response() {
    let offer = "permessage-deflate; client_max_window_bits";
    let cases = [
        (
            cfg(true, false, 15, 15),
            offer,
            p(true, false, 15, 15),
            "permessage-deflate; server_no_context_takeover",
        ),
        (
            cfg(false, true, 15, 15),
            offer,
            p(false, true, 15, 15),
            "permessage-deflate; client_no_context_takeover",
        ),
        (
            cfg(true, true, 15, 15),
            offer,
            p(true, true, 15, 15),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
        ),
        (
            cfg(true, false, 15, 15),
            "permessage-deflate; server_no_context_takeover",
            p(true, false, 15, 15),
            "permessage-deflate; server_no_context_takeover",
        ),
        (
            cfg(false, true, 15, 15),
            "permessage-deflate; client_no_context_takeover",
            p(false, true, 15, 15),
            "permessage-deflate; client_no_context_takeover",
        ),
        (
            cfg(true, true, 10, 9),
            offer,
            p(true, true, 10, 9),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=10; client_max_window_bits=9",
        ),
        (
            DeflateConfig::default(),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=12; client_max_window_bits=11",
            p(true, true, 12, 11),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=12; client_max_window_bits=11",
        ),
        (
            DeflateConfig::default().level(1).threshold(0),
            offer,
            DeflateParams::default(),
            PMD,
        ),
    ];
    for (config, offer, params, response) in cases {
        assert_eq!(
            server(&config, &[offer]),
            accepted(params, response),
            "{config:?} / {offer}"
        );
    }
}

/// Offers that parse but that the server must decline: unknown or duplicate parameters
/// and invalid values.
const BAD_OFFERS: &[&str] = &[
    // unknown parameters
    "permessage-deflate; foo",
    "permessage-deflate; foo=1",
    "permessage-deflate; max_window_bits=10",
    "permessage-deflate; client_max_window_bit=10",
    "permessage-deflate; server_no_context_takeover; x",
    // duplicates
    "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
    "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
    "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10",
    "permessage-deflate; server_max_window_bits=10; server_max_window_bits=11",
    "permessage-deflate; client_max_window_bits; client_max_window_bits",
    "permessage-deflate; client_max_window_bits=10; client_max_window_bits",
    "permessage-deflate; client_max_window_bits=10; CLIENT_MAX_WINDOW_BITS=10",
    // a value on a flag
    "permessage-deflate; server_no_context_takeover=1",
    "permessage-deflate; server_no_context_takeover=true",
    "permessage-deflate; client_no_context_takeover=\"x\"",
    // a flag where a value is required
    "permessage-deflate; server_max_window_bits",
];

fn bad_offers() -> Vec<String> {
    let mut all: Vec<String> = BAD_OFFERS.iter().map(|s| s.to_string()).collect();
    for v in BAD_BITS {
        all.push(format!("permessage-deflate; server_max_window_bits={v}"));
        all.push(format!("permessage-deflate; client_max_window_bits={v}"));
    }
    all
}

#[test]
fn server_declines_offers_with_bad_parameters_and_tries_the_next() {
    let d = DeflateConfig::default();
    let good = "permessage-deflate; server_max_window_bits=9";
    let good_answer = accepted(
        p(false, false, 9, 15),
        "permessage-deflate; server_max_window_bits=9",
    );
    for bad in bad_offers() {
        assert_eq!(server(&d, &[&bad]), None, "{bad}");
        assert_eq!(
            server(&d, &[&format!("{bad}, {good}")]),
            good_answer,
            "{bad}"
        );
        assert_eq!(server(&d, &[&bad, good]), good_answer, "{bad}");
        assert_eq!(server(&d, &[good, &bad]), good_answer, "{bad}");
        // The same offer is declined under any config.
        assert_eq!(server(&cfg(true, true, 8, 8), &[&bad]), None, "{bad}");
    }
}

#[test]
fn server_declines_everything_when_the_header_syntax_is_broken() {
    let d = DeflateConfig::default();
    for bad in MALFORMED {
        assert_eq!(server(&d, &[bad]), None, "{bad}");
        assert_eq!(server(&d, &[&format!("{PMD}, {bad}")]), None, "{bad}");
        assert_eq!(server(&d, &[&format!("{bad}, {PMD}")]), None, "{bad}");
        assert_eq!(server(&d, &[PMD, bad]), None, "{bad}");
        assert_eq!(server(&d, &[bad, PMD]), None, "{bad}");
    }
}

#[test]
fn server_accepts_quoted_values_that_are_tokens() {
    let d = DeflateConfig::default();
    for (offer, params, response) in [
        (
            "permessage-deflate; server_max_window_bits=\"10\"",
            p(false, false, 10, 15),
            "permessage-deflate; server_max_window_bits=10",
        ),
        (
            "permessage-deflate; client_max_window_bits=\"9\"",
            p(false, false, 15, 9),
            "permessage-deflate; client_max_window_bits=9",
        ),
        (
            "permessage-deflate; server_max_window_bits=\"1\\0\"",
            p(false, false, 10, 15),
            "permessage-deflate; server_max_window_bits=10",
        ),
        (
            "permessage-deflate; server_max_window_bits = \"12\" ; client_max_window_bits",
            p(false, false, 12, 15),
            "permessage-deflate; server_max_window_bits=12",
        ),
    ] {
        assert_eq!(server(&d, &[offer]), accepted(params, response), "{offer}");
    }
}

#[test]
fn server_takes_the_first_acceptable_offer_across_items_and_header_lines() {
    let d = DeflateConfig::default();
    let bits = |b: u8| {
        accepted(
            p(false, false, b, 15),
            &format!("permessage-deflate; server_max_window_bits={b}"),
        )
    };
    assert_eq!(
        server(
            &d,
            &["permessage-deflate; server_max_window_bits=10, permessage-deflate; server_max_window_bits=12"]
        ),
        bits(10)
    );
    assert_eq!(
        server(
            &d,
            &["permessage-deflate; server_max_window_bits=7, permessage-deflate; server_max_window_bits=12, permessage-deflate"]
        ),
        bits(12)
    );
    assert_eq!(
        server(
            &d,
            &[
                "permessage-deflate; server_max_window_bits=11",
                "permessage-deflate; server_max_window_bits=12"
            ]
        ),
        bits(11)
    );
    assert_eq!(
        server(
            &d,
            &[
                "permessage-deflate; foo",
                "permessage-deflate; server_no_context_takeover"
            ]
        ),
        accepted(
            p(true, false, 15, 15),
            "permessage-deflate; server_no_context_takeover"
        )
    );
    assert_eq!(
        server(
            &d,
            &[
                "x-foo",
                "permessage-deflate; server_max_window_bits=16, permessage-deflate; client_max_window_bits=8"
            ]
        ),
        accepted(
            p(false, false, 15, 8),
            "permessage-deflate; client_max_window_bits=8"
        )
    );
    assert_eq!(
        server(&d, &["permessage-deflate; foo, , permessage-deflate"]),
        accepted(DeflateParams::default(), PMD)
    );
    assert_eq!(
        server(
            &d,
            &[
                "permessage-deflate; foo",
                "permessage-deflate; server_max_window_bits=16"
            ]
        ),
        None
    );
}

#[test]
fn server_ignores_other_extensions() {
    let d = DeflateConfig::default();
    for offers in [
        &[][..],
        &[""][..],
        &["x-webkit-deflate-frame"][..],
        &["foo; bar=1, baz"][..],
        &["permessage-deflate-x"][..],
        &["deflate-frame; max_window_bits=10", "x-foo"][..],
    ] {
        assert_eq!(server(&d, offers), None, "{offers:?}");
    }
    assert_eq!(
        server(
            &d,
            &["x-webkit-deflate-frame; max_window_bits=10, permessage-deflate; client_no_context_takeover"]
        ),
        accepted(
            p(false, true, 15, 15),
            "permessage-deflate; client_no_context_takeover"
        )
    );
    assert_eq!(
        server(
            &d,
            &[
                "deflate-frame",
                "permessage-deflate; server_max_window_bits=11"
            ]
        ),
        accepted(
            p(false, false, 11, 15),
            "permessage-deflate; server_max_window_bits=11"
        )
    );
    // Parameters another extension would find invalid are its business.
    assert_eq!(
        server(
            &d,
            &["foo; server_max_window_bits=99; foo; foo, permessage-deflate"]
        ),
        accepted(DeflateParams::default(), PMD)
    );
}

// ---------------------------------------------------------------- through UpgradeRequest

fn upgrade_request(extension_lines: &[&str]) -> UpgradeRequest {
    let mut text = format!(
        "GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: {RFC_KEY}\r\nSec-WebSocket-Version: 13\r\n"
    );
    for line in extension_lines {
        text += &format!("Sec-WebSocket-Extensions: {line}\r\n");
    }
    text += "\r\n";
    let mut input = BytesMut::from(text.as_bytes());
    let request = UpgradeRequest::parse(&mut input, &Limits::default())
        .unwrap()
        .unwrap();
    assert!(input.is_empty());
    request
}

/// The `Sec-WebSocket-Extensions` values of a 101 response, checked to be complete.
fn response_extensions(out: &[u8]) -> Vec<String> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(out).unwrap() {
        httparse::Status::Complete(len) => len,
        httparse::Status::Partial => panic!("incomplete response"),
    };
    assert_eq!(len, out.len());
    assert_eq!(response.code, Some(101));
    let accept = response
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("sec-websocket-accept"))
        .unwrap();
    assert_eq!(accept.value, accept_key(RFC_KEY.as_bytes()).as_bytes());
    response
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("sec-websocket-extensions"))
        .map(|h| String::from_utf8(h.value.to_vec()).unwrap())
        .collect()
}

#[test]
fn upgrade_request_negotiates_and_writes_the_extension_header() {
    /// (server config, offer header lines, agreed parameters and response header)
    type Case<'a> = (
        DeflateConfig,
        Vec<&'a str>,
        Option<(DeflateParams, &'a str)>,
    );
    let cases: Vec<Case> = vec![
        (
            DeflateConfig::default(),
            vec!["permessage-deflate; client_max_window_bits"],
            Some((DeflateParams::default(), PMD)),
        ),
        (
            DeflateConfig::default(),
            vec!["permessage-deflate; server_max_window_bits=10; client_max_window_bits"],
            Some((
                p(false, false, 10, 15),
                "permessage-deflate; server_max_window_bits=10",
            )),
        ),
        (
            cfg(true, true, 12, 11),
            vec!["permessage-deflate; client_max_window_bits"],
            Some((
                p(true, true, 12, 11),
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
                 server_max_window_bits=12; client_max_window_bits=11",
            )),
        ),
        (
            DeflateConfig::default(),
            vec![
                "permessage-deflate; foo",
                "x-foo, permessage-deflate; server_no_context_takeover",
            ],
            Some((
                p(true, false, 15, 15),
                "permessage-deflate; server_no_context_takeover",
            )),
        ),
        (cfg(false, false, 15, 10), vec![PMD], None),
        (
            DeflateConfig::default(),
            vec!["x-webkit-deflate-frame"],
            None,
        ),
        (DeflateConfig::default(), vec![], None),
        (
            DeflateConfig::default(),
            vec!["permessage-deflate; server_max_window_bits=\"10"],
            None,
        ),
        (
            DeflateConfig::default(),
            vec!["permessage-deflate; server_max_window_bits=16"],
            None,
        ),
    ];
    for (config, lines, expected) in cases {
        let request = upgrade_request(&lines);
        let expected = expected.map(|(params, response)| (params, response.to_owned()));
        assert_eq!(request.negotiate_deflate(&config), expected, "{lines:?}");

        let mut out = BytesMut::new();
        let agreed = request.accept_with_deflate(None, Some(&config), &HeaderMap::new(), &mut out);
        assert_eq!(agreed, expected.as_ref().map(|(p, _)| *p), "{lines:?}");
        let header: Vec<String> = expected.iter().map(|(_, r)| r.clone()).collect();
        assert_eq!(response_extensions(&out), header, "{lines:?}");

        // Without a config, or through plain accept, the offer is declined.
        let mut out = BytesMut::new();
        assert_eq!(
            request.accept_with_deflate(None, None, &HeaderMap::new(), &mut out),
            None
        );
        assert_eq!(response_extensions(&out), Vec::<String>::new());
        let mut out = BytesMut::new();
        request.accept(None, &HeaderMap::new(), &mut out);
        assert_eq!(response_extensions(&out), Vec::<String>::new());
    }
}
