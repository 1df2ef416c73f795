//! The client side of the negotiation: offers, answers, and agreement with every server.

use super::*;

#[test]
fn client_offer_for_each_config() {
    let cases = [
        (
            DeflateConfig::default(),
            "permessage-deflate; client_max_window_bits",
        ),
        (
            cfg(false, false, 15, 10),
            "permessage-deflate; client_max_window_bits=10",
        ),
        (
            cfg(false, false, 15, 8),
            "permessage-deflate; client_max_window_bits=8",
        ),
        (
            cfg(false, false, 9, 15),
            "permessage-deflate; client_max_window_bits; server_max_window_bits=9",
        ),
        (
            cfg(false, true, 15, 15),
            "permessage-deflate; client_max_window_bits; client_no_context_takeover",
        ),
        (
            cfg(true, false, 15, 15),
            "permessage-deflate; client_max_window_bits; server_no_context_takeover",
        ),
        (
            cfg(true, true, 12, 8),
            "permessage-deflate; client_max_window_bits=8; server_max_window_bits=12; \
             client_no_context_takeover; server_no_context_takeover",
        ),
        (
            DeflateConfig::default().level(1).threshold(0),
            "permessage-deflate; client_max_window_bits",
        ),
    ];
    for (config, offer) in cases {
        assert_eq!(client_offer(&config), offer, "{config:?}");
        // The request carries exactly that offer.
        assert_eq!(request_extensions(Some(config)), vec![offer.to_owned()]);
    }
    assert_eq!(request_extensions(None), Vec::<String>::new());
}

fn client_request(deflate: Option<DeflateConfig>) -> ClientRequest {
    ClientRequest::default()
        .host("example.com".into())
        .path("/".into())
        .deflate(deflate)
}

/// The `Sec-WebSocket-Extensions` values of the request a client writes.
fn request_extensions(deflate: Option<DeflateConfig>) -> Vec<String> {
    let mut out = BytesMut::new();
    ClientHandshake::start(&client_request(deflate), &mut out).unwrap();
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut request = httparse::Request::new(&mut headers);
    assert_eq!(
        request.parse(&out).unwrap(),
        httparse::Status::Complete(out.len())
    );
    request
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("sec-websocket-extensions"))
        .map(|h| String::from_utf8(h.value.to_vec()).unwrap())
        .collect()
}

/// Runs a client handshake offering `deflate` against a 101 response carrying the given
/// raw `Sec-WebSocket-Extensions` header values.
fn client_handshake_raw(
    deflate: Option<DeflateConfig>,
    extension_lines: &[&[u8]],
) -> Result<Option<DeflateParams>, HandshakeFailure> {
    let mut out = BytesMut::new();
    let handshake = ClientHandshake::start(&client_request(deflate), &mut out).unwrap();
    let mut response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n",
        accept_key(handshake.key().as_bytes())
    )
    .into_bytes();
    for line in extension_lines {
        response.extend_from_slice(b"Sec-WebSocket-Extensions: ");
        response.extend_from_slice(line);
        response.extend_from_slice(b"\r\n");
    }
    response.extend_from_slice(b"\r\n");
    let mut input = BytesMut::from(&response[..]);
    let answer = handshake.receive(&mut input, &Limits::default())?;
    assert!(input.is_empty());
    Ok(answer.expect("the response is complete").deflate)
}

fn client_handshake(
    deflate: Option<DeflateConfig>,
    extension_lines: &[&str],
) -> Result<Option<DeflateParams>, HandshakeFailure> {
    let raw: Vec<&[u8]> = extension_lines.iter().map(|l| l.as_bytes()).collect();
    client_handshake_raw(deflate, &raw)
}

#[test]
fn client_accepts_valid_answers_with_the_resulting_params() {
    let d = DeflateConfig::default();
    let mut cases: Vec<(DeflateConfig, Vec<String>, Option<DeflateParams>)> = vec![
        (d.clone(), vec![], None),
        (d.clone(), vec!["".into()], None),
        (d.clone(), vec![PMD.into()], Some(DeflateParams::default())),
        (
            d.clone(),
            vec!["PerMessage-Deflate".into()],
            Some(DeflateParams::default()),
        ),
        (
            d.clone(),
            vec!["permessage-deflate; server_no_context_takeover".into()],
            Some(p(true, false, 15, 15)),
        ),
        (
            d.clone(),
            vec!["permessage-deflate; client_no_context_takeover".into()],
            Some(p(false, true, 15, 15)),
        ),
        (
            d.clone(),
            vec!["permessage-deflate; server_max_window_bits=\"10\"".into()],
            Some(p(false, false, 10, 15)),
        ),
        (
            cfg(false, false, 15, 10),
            vec![PMD.into()],
            Some(p(false, false, 15, 10)),
        ),
        (
            cfg(false, false, 15, 10),
            vec!["permessage-deflate; client_max_window_bits=10".into()],
            Some(p(false, false, 15, 10)),
        ),
        (
            cfg(false, false, 15, 10),
            vec!["permessage-deflate; client_max_window_bits=8".into()],
            Some(p(false, false, 15, 8)),
        ),
        (
            cfg(false, false, 10, 15),
            vec!["permessage-deflate; server_max_window_bits=10".into()],
            Some(p(false, false, 10, 15)),
        ),
        (
            cfg(false, false, 10, 15),
            vec!["permessage-deflate; server_max_window_bits=9".into()],
            Some(p(false, false, 9, 15)),
        ),
        // The client's own promise binds it even if the answer does not repeat it.
        (
            cfg(false, true, 15, 15),
            vec![PMD.into()],
            Some(p(false, true, 15, 15)),
        ),
        (
            cfg(true, false, 15, 15),
            vec!["permessage-deflate; server_no_context_takeover".into()],
            Some(p(true, false, 15, 15)),
        ),
        (
            d.clone(),
            vec![
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
                 server_max_window_bits=9; client_max_window_bits=12"
                    .into(),
            ],
            Some(p(true, true, 9, 12)),
        ),
    ];
    for bits in 8..=15 {
        cases.push((
            d.clone(),
            vec![format!("permessage-deflate; server_max_window_bits={bits}")],
            Some(p(false, false, bits, 15)),
        ));
        cases.push((
            d.clone(),
            vec![format!("permessage-deflate; client_max_window_bits={bits}")],
            Some(p(false, false, 15, bits)),
        ));
    }
    for (config, lines, expected) in cases {
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        assert_eq!(
            client_accept(&config, lines.iter().copied()),
            Ok(expected),
            "{lines:?}"
        );
        assert_eq!(
            client_handshake(Some(config), &lines),
            Ok(expected),
            "{lines:?}"
        );
    }
}

#[test]
fn client_rejects_invalid_answers_as_invalid_extension() {
    let d = DeflateConfig::default();
    let invalid = |v: &str, key: &str| format!("invalid value Some({v:?}) for {key}");
    let mut cases: Vec<(DeflateConfig, Vec<&str>, String)> = vec![
        (
            d.clone(),
            vec!["x-foo"],
            "extension \"x-foo\" was not offered".into(),
        ),
        (
            d.clone(),
            vec!["permessage-deflate, permessage-deflate"],
            "more than one extension in the answer; one was offered".into(),
        ),
        (
            d.clone(),
            vec!["permessage-deflate, x-foo"],
            "more than one extension in the answer; one was offered".into(),
        ),
        (
            d.clone(),
            vec![PMD, PMD],
            "more than one extension in the answer; one was offered".into(),
        ),
        (
            d.clone(),
            vec!["permessage-deflate; server_no_context_takeover; server_no_context_takeover"],
            "duplicate parameter server_no_context_takeover".into(),
        ),
        (
            d.clone(),
            vec!["permessage-deflate; client_no_context_takeover; Client_No_Context_Takeover"],
            "duplicate parameter client_no_context_takeover".into(),
        ),
        (
            d.clone(),
            vec!["permessage-deflate; server_max_window_bits=10; server_max_window_bits=10"],
            "duplicate parameter server_max_window_bits".into(),
        ),
        (
            d.clone(),
            vec!["permessage-deflate; client_max_window_bits=10; client_max_window_bits=11"],
            "duplicate parameter client_max_window_bits".into(),
        ),
        (
            d.clone(),
            vec!["permessage-deflate; foo"],
            "unknown parameter foo".into(),
        ),
        (
            d.clone(),
            vec!["permessage-deflate; max_window_bits=10"],
            "unknown parameter max_window_bits".into(),
        ),
        (
            d.clone(),
            vec!["permessage-deflate; server_no_context_takeover=1"],
            invalid("1", "server_no_context_takeover"),
        ),
        (
            d.clone(),
            vec!["permessage-deflate; client_no_context_takeover=yes"],
            invalid("yes", "client_no_context_takeover"),
        ),
        (
            d.clone(),
            vec!["permessage-deflate; server_max_window_bits"],
            "invalid value None for server_max_window_bits".into(),
        ),
        (
            d.clone(),
            vec!["permessage-deflate; client_max_window_bits"],
            "client_max_window_bits needs a value in a response".into(),
        ),
        (
            cfg(false, false, 10, 15),
            vec!["permessage-deflate; server_max_window_bits=11"],
            "server_max_window_bits=11 exceeds the 10 offered".into(),
        ),
        (
            cfg(false, false, 10, 15),
            vec![PMD],
            "server_max_window_bits=15 exceeds the 10 offered".into(),
        ),
        (
            cfg(false, false, 15, 9),
            vec!["permessage-deflate; client_max_window_bits=10"],
            "client_max_window_bits=10 exceeds the 9 offered".into(),
        ),
        (
            cfg(true, false, 15, 15),
            vec![PMD],
            "server_no_context_takeover was requested but not confirmed".into(),
        ),
        (
            cfg(true, false, 15, 15),
            vec!["permessage-deflate; client_no_context_takeover"],
            "server_no_context_takeover was requested but not confirmed".into(),
        ),
    ];
    for bad in MALFORMED {
        cases.push((
            d.clone(),
            vec![bad],
            "malformed Sec-WebSocket-Extensions header".into(),
        ));
    }
    let check = |config: &DeflateConfig, lines: &[&str], message: String| {
        assert_eq!(
            client_accept(config, lines.iter().copied()),
            Err(message.clone()),
            "{lines:?}"
        );
        assert_eq!(
            client_handshake(Some(config.clone()), lines),
            Err(HandshakeFailure::InvalidExtension(message)),
            "{lines:?}"
        );
    };
    for (config, lines, message) in cases {
        check(&config, &lines, message);
    }
    for v in BAD_BITS {
        // The error names the value after unquoting.
        let unquoted = v.trim_matches('"');
        for key in ["server_max_window_bits", "client_max_window_bits"] {
            let line = format!("permessage-deflate; {key}={v}");
            check(&d, &[&line], invalid(unquoted, key));
        }
    }
}

#[test]
fn client_rejects_an_extension_header_that_is_not_utf8() {
    assert_eq!(
        client_handshake_raw(
            Some(DeflateConfig::default()),
            &[b"permessage-deflate; x=\xe9"]
        ),
        Err(HandshakeFailure::InvalidExtension(
            "malformed Sec-WebSocket-Extensions header".into()
        ))
    );
}

#[test]
fn client_that_offered_nothing_rejects_any_extension_as_unoffered() {
    for (lines, reported) in [
        (vec![PMD], PMD),
        (
            vec!["permessage-deflate; server_max_window_bits=10"],
            "permessage-deflate; server_max_window_bits=10",
        ),
        (vec!["x-foo, permessage-deflate"], "x-foo"),
        (vec!["", "permessage-deflate"], PMD),
    ] {
        assert_eq!(
            client_handshake(None, &lines),
            Err(HandshakeFailure::UnofferedExtension(reported.into())),
            "{lines:?}"
        );
    }
    assert_eq!(client_handshake(None, &[]), Ok(None));
    assert_eq!(client_handshake(None, &[""]), Ok(None));
}

#[test]
fn every_client_offer_is_accepted_by_every_server_config_and_both_ends_agree() {
    let mut configs = Vec::new();
    for snct in [false, true] {
        for cnct in [false, true] {
            for server_bits in [8, 10, 15] {
                for client_bits in [8, 12, 15] {
                    configs.push(cfg(snct, cnct, server_bits, client_bits));
                }
            }
        }
    }
    for c in &configs {
        for s in &configs {
            // The model: every request and every volunteered reset is granted, and each
            // window is the smaller wish. Both ends agree on every parameter.
            let server_side = DeflateParams {
                server_no_context_takeover: c.server_no_context_takeover
                    || s.server_no_context_takeover,
                client_no_context_takeover: c.client_no_context_takeover
                    || s.client_no_context_takeover,
                server_max_window_bits: c.server_max_window_bits.min(s.server_max_window_bits),
                client_max_window_bits: c.client_max_window_bits.min(s.client_max_window_bits),
            };
            let client_side = server_side;

            let (params, response) = server_accept(s, [client_offer(c).as_str()])
                .unwrap_or_else(|| panic!("{c:?} declined by {s:?}"));
            assert_eq!(params, server_side, "{c:?} / {s:?}");
            assert_eq!(client_accept(c, [response.as_str()]), Ok(Some(client_side)));

            // The same through the handshake types, over the bytes they write.
            let mut wire = BytesMut::new();
            let handshake =
                ClientHandshake::start(&client_request(Some(c.clone())), &mut wire).unwrap();
            let request = UpgradeRequest::parse(&mut wire, &Limits::default())
                .unwrap()
                .unwrap();
            assert!(wire.is_empty());
            let agreed = request.accept_with_deflate(None, Some(s), &HeaderMap::new(), &mut wire);
            assert_eq!(agreed, Some(server_side));
            let answer = handshake
                .receive(&mut wire, &Limits::default())
                .unwrap()
                .unwrap();
            assert_eq!(answer.deflate, Some(client_side), "{c:?} / {s:?}");
        }
    }
}

#[test]
fn the_response_opens_a_connection_that_compresses_only_when_agreed() {
    let response = |extensions: Option<DeflateParams>| ServerResponse {
        status: http::StatusCode::SWITCHING_PROTOCOLS,
        headers: HeaderMap::new(),
        protocol: None,
        deflate: extensions,
    };
    let config = DeflateConfig::default();
    let agreed = response(Some(DeflateParams::default()));
    let c = agreed.connection(Limits::default(), Some(&config));
    assert_eq!(c.role(), Role::Client);
    assert!(c.is_compressing());
    // Agreed, but this end has no deflate config: nothing to compress with.
    assert!(!agreed.connection(Limits::default(), None).is_compressing());
    // Not agreed.
    let declined = response(None);
    assert!(!declined
        .connection(Limits::default(), Some(&config))
        .is_compressing());
    // The limits given are the connection's.
    let limits = Limits::default().max_message_size(1000);
    assert_eq!(agreed.connection(limits.clone(), None).limits(), &limits);
    // The server side ends the same way.
    let s = Connection::after_handshake(
        Role::Server,
        Limits::default(),
        Some(DeflateParams::default()),
        Some(&config),
    );
    assert!(s.is_compressing() && s.role() == Role::Server);
}
