//! Both ends together, and requests parsed elsewhere (`http::Request`, plain HTTP).

use super::*;

// ================================================================ both ends together

#[test]
fn full_handshake_then_messages_both_ways() {
    let mut to_server = BytesMut::new();
    let hs = ClientHandshake::start(&full_request(), &mut to_server).unwrap();
    let req = UpgradeRequest::parse(&mut to_server, &Limits::default())
        .unwrap()
        .unwrap();
    let chosen = req.protocols().find(|p| *p == "chat").map(str::to_owned);
    let mut to_client = BytesMut::new();
    req.accept(chosen.as_deref(), &HeaderMap::new(), &mut to_client);

    let mut server = Connection::new(Role::Server, Limits::default());
    server
        .send(&Message::text("welcome"), &mut to_client)
        .unwrap();

    let resp = hs
        .receive(&mut to_client, &Limits::default())
        .unwrap()
        .unwrap();
    assert_eq!(resp.protocol.as_deref(), Some("chat"));
    let mut client = Connection::new(Role::Client, Limits::default());
    assert_eq!(
        client.receive(&mut to_client, &mut to_server),
        Ok(Some(Message::text("welcome")))
    );
    client
        .send(&Message::text("thanks"), &mut to_server)
        .unwrap();
    assert_eq!(
        server.receive(&mut to_server, &mut to_client),
        Ok(Some(Message::text("thanks")))
    );
}

#[test]
fn absolute_form_target_yields_its_path_and_query() {
    for (target, path, query) in [
        ("http://example.com/chat?room=1", "/chat", Some("room=1")),
        ("HTTPS://example.com:8443/a/b", "/a/b", None),
        ("http://example.com", "/", None),
        ("http://example.com?x=1", "/", Some("x=1")),
        ("/plain?q", "/plain", Some("q")),
    ] {
        let raw = format!(
            "GET {target} HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\n\r\n"
        );
        let mut input = BytesMut::from(raw.as_bytes());
        let req = UpgradeRequest::parse(&mut input, &Limits::default())
            .unwrap()
            .unwrap();
        assert_eq!(
            (req.path(), req.query(), req.target()),
            (path, query, target)
        );
    }
}

#[test]
fn client_request_fields_cannot_inject_headers() {
    let base = ClientRequest::default()
        .host("example.com".into())
        .path("/".into());
    let cases = [
        (base.clone().host("a\r\nX-Evil: 1".into()), "Host"),
        (base.clone().path("/\r\nX-Evil: 1".into()), "request target"),
        (base.clone().path("/a b".into()), "request target"),
        (base.clone().path("no-slash".into()), "request target"),
        (base.clone().origin(Some("o\nX: y".into())), "Origin"),
    ];
    for (request, field) in cases {
        let mut out = BytesMut::new();
        let err = ClientHandshake::start(&request, &mut out).unwrap_err();
        assert_eq!(err, HandshakeFailure::InvalidHeader(field));
        assert!(out.is_empty(), "nothing is written on failure");
    }
}

/// Found by the handshake_server fuzz target: a subprotocol that is not a token went out
/// as is, so CR/LF injected headers and a comma or a non-ASCII name reached the server
/// as other subprotocols than the client offered.
#[test]
fn client_offers_only_unique_token_subprotocols() {
    let base = ClientRequest::default()
        .host("example.com".into())
        .path("/".into());
    for protocols in [
        vec!["chat\r\nX-Evil: 1"],
        vec!["a,b"],
        vec!["a b"],
        vec![""],
        vec!["chät"],
        vec!["chat", "v2/json"],
        vec!["chat", "chat"],
    ] {
        let request = base
            .clone()
            .protocols(protocols.iter().map(|p| p.to_string()).collect());
        let mut out = BytesMut::new();
        let err = ClientHandshake::start(&request, &mut out).unwrap_err();
        assert_eq!(
            err,
            HandshakeFailure::InvalidHeader("Sec-WebSocket-Protocol"),
            "{protocols:?}"
        );
        assert!(out.is_empty(), "nothing is written on failure");
    }
    let request = base.protocols(vec!["chat".into(), "v2.json".into(), "x-Custom_1~".into()]);
    let mut out = BytesMut::new();
    ClientHandshake::start(&request, &mut out).unwrap();
    let req = UpgradeRequest::parse(&mut out, &Limits::default())
        .unwrap()
        .unwrap();
    assert_eq!(
        req.protocols().collect::<Vec<_>>(),
        ["chat", "v2.json", "x-Custom_1~"]
    );
}

// ================================================ server: requests parsed elsewhere, plain HTTP

/// The GOOD request as an `http::Request`, with `change` applied to its builder.
fn http_request(
    change: impl FnOnce(http::request::Builder) -> http::request::Builder,
) -> http::Request<()> {
    let builder = http::Request::get("/chat?room=1")
        .header("host", "server.example.com")
        .header("upgrade", "websocket")
        .header("connection", "Upgrade")
        .header("sec-websocket-key", RFC_KEY)
        .header("sec-websocket-version", "13");
    change(builder).body(()).unwrap()
}

#[test]
fn incoming_request_separates_plain_http_from_upgrades() {
    // Upgrades parse exactly as UpgradeRequest::parse does, leaving early frames.
    let mut input = BytesMut::from(request_text(&GOOD).as_bytes());
    input.extend_from_slice(b"\x81");
    match IncomingRequest::parse(&mut input, &Limits::default()) {
        Ok(Some(IncomingRequest::Upgrade(req))) => assert_eq!(req.key(), RFC_KEY),
        other => panic!("{other:?}"),
    }
    assert_eq!(&input[..], b"\x81");

    // No upgrade attempt at all: plain HTTP, any method, the body left in the input.
    let mut input =
        BytesMut::from("POST /form?a=1 HTTP/1.0\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi");
    let Ok(Some(IncomingRequest::Http(req))) =
        IncomingRequest::parse(&mut input, &Limits::default())
    else {
        panic!("plain HTTP expected");
    };
    assert_eq!(req.method(), http::Method::POST);
    assert_eq!(req.uri().path(), "/form");
    assert_eq!(req.uri().query(), Some("a=1"));
    assert_eq!(req.version(), http::Version::HTTP_10);
    assert_eq!(req.headers()["content-length"], "2");
    assert_eq!(&input[..], b"hi");
    assert!(matches!(
        incoming("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n"),
        Ok(Some(IncomingRequest::Http(_)))
    ));
    assert!(matches!(
        incoming("GET / HTTP/1.1\r\nHost: x\r\n"),
        Ok(None)
    ));

    // A broken upgrade still fails as before.
    let broken = [
        (
            with_line(3, None),
            HandshakeFailure::MissingHeader("Connection: upgrade"),
        ),
        (
            with_line(2, None),
            HandshakeFailure::MissingHeader("Upgrade: websocket"),
        ),
        (
            with_line(0, Some("POST /chat HTTP/1.1")),
            HandshakeFailure::MethodNotGet("POST".into()),
        ),
        (
            with_line(0, Some("GET /chat HTTP/1.0")),
            HandshakeFailure::HttpVersion,
        ),
        (
            with_line(5, Some("Sec-WebSocket-Version: 8")),
            HandshakeFailure::UnsupportedVersion,
        ),
    ];
    for (mut input, failure) in broken {
        assert_eq!(
            IncomingRequest::parse(&mut input, &Limits::default()).unwrap_err(),
            failure
        );
    }
    // Limits and malformed heads fail before anything else.
    let huge = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(20_000));
    assert_eq!(incoming(&huge).unwrap_err().status(), 431);
    assert!(matches!(
        incoming("GET / HTTP/1.1\r\nNo colon here\r\n\r\n"),
        Err(HandshakeFailure::MalformedHttp(_))
    ));
}

#[test]
fn is_upgrade_attempt_looks_for_any_websocket_header() {
    let headers = |pairs: &[(&'static str, &'static str)]| {
        let mut map = HeaderMap::new();
        for (n, v) in pairs {
            map.append(*n, HeaderValue::from_static(v));
        }
        map
    };
    assert!(!is_upgrade_attempt(&headers(&[("host", "x")])));
    assert!(!is_upgrade_attempt(&headers(&[
        ("upgrade", "h2c"),
        ("connection", "upgrade")
    ])));
    assert!(is_upgrade_attempt(&headers(&[(
        "upgrade",
        "h2c, WebSocket"
    )])));
    assert!(is_upgrade_attempt(&headers(&[("sec-websocket-key", "x")])));
    assert!(is_upgrade_attempt(&headers(&[(
        "sec-websocket-version",
        "13"
    )])));
}

#[test]
fn from_request_applies_the_same_rules_as_parse() {
    let req = UpgradeRequest::from_request(&http_request(|b| {
        b.header("sec-websocket-protocol", "chat, v2")
    }))
    .unwrap();
    assert_eq!(req.path(), "/chat");
    assert_eq!(req.query(), Some("room=1"));
    assert_eq!(req.key(), RFC_KEY);
    assert_eq!(req.protocols().collect::<Vec<_>>(), ["chat", "v2"]);

    let fails = |request: http::Request<()>| UpgradeRequest::from_request(&request).unwrap_err();
    assert_eq!(
        fails(http_request(|b| b.method("POST"))),
        HandshakeFailure::MethodNotGet("POST".into())
    );
    assert_eq!(
        fails(http_request(|b| b.version(http::Version::HTTP_10))),
        HandshakeFailure::HttpVersion
    );
    let mut version_8 = http_request(|b| b);
    version_8
        .headers_mut()
        .insert("sec-websocket-version", HeaderValue::from_static("8"));
    assert_eq!(fails(version_8), HandshakeFailure::UnsupportedVersion);
    assert_eq!(
        fails(
            http::Request::get("/")
                .header("host", "x")
                .body(())
                .unwrap()
        ),
        HandshakeFailure::MissingHeader("Upgrade: websocket")
    );
    let mut no_key = http_request(|b| b);
    no_key.headers_mut().remove("sec-websocket-key");
    assert_eq!(
        fails(no_key),
        HandshakeFailure::MissingHeader("Sec-WebSocket-Key")
    );
}

#[test]
fn accept_headers_match_the_written_101_response() {
    let req = UpgradeRequest::from_request(&http_request(|b| {
        b.header("sec-websocket-protocol", "chat").header(
            "sec-websocket-extensions",
            "permessage-deflate; client_max_window_bits",
        )
    }))
    .unwrap();
    let deflate = duplex_proto::deflate::DeflateConfig::default();
    let mut extra = HeaderMap::new();
    extra.insert("x-server", HeaderValue::from_static("duplex"));
    let (headers, params) = req.accept_headers(Some("chat"), Some(&deflate), &extra);
    let mut out = BytesMut::new();
    let written = req.accept_with_deflate(Some("chat"), Some(&deflate), &extra, &mut out);
    assert_eq!(params, written);
    assert!(params.is_some());
    let resp = ParsedResponse::parse(&out);
    for (name, value) in &headers {
        assert_eq!(resp.one(name.as_str()), value.to_str().unwrap());
    }
    assert_eq!(headers["sec-websocket-accept"], RFC_ACCEPT);
    assert_eq!(headers["sec-websocket-protocol"], "chat");
    assert_eq!(headers["x-server"], "duplex");
    assert!(headers["sec-websocket-extensions"]
        .to_str()
        .unwrap()
        .starts_with("permessage-deflate"));
    let (headers, params) = req.accept_headers(None, None, &HeaderMap::new());
    assert!(params.is_none());
    assert!(!headers.contains_key("sec-websocket-extensions"));
    assert!(!headers.contains_key("sec-websocket-protocol"));
}

#[test]
fn rejection_parts_match_the_written_rejection() {
    for failure in [
        HandshakeFailure::UnsupportedVersion,
        HandshakeFailure::MissingHeader("Upgrade: websocket"),
        HandshakeFailure::MethodNotGet("POST".into()),
    ] {
        let (status, headers, body) = rejection(&failure);
        let mut out = BytesMut::new();
        reject(&failure, &mut out);
        let resp = ParsedResponse::parse(&out);
        assert_eq!(resp.code, status.as_u16());
        assert_eq!(String::from_utf8(resp.body).unwrap(), body);
        assert_eq!(
            headers.contains_key("sec-websocket-version"),
            failure == HandshakeFailure::UnsupportedVersion
        );
    }
}
