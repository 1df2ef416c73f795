//! The server: parsing the request, its rejections and its 101 answer.

use super::*;

// ================================================================ server: parsing

fn parse(input: &mut BytesMut) -> Result<Option<UpgradeRequest>, HandshakeFailure> {
    UpgradeRequest::parse(input, &Limits::default())
}

/// Asserts the failure and its status, and that `reject` answers with that status.
fn assert_fails(mut input: BytesMut, failure: HandshakeFailure, status: u16) {
    let err = parse(&mut input).unwrap_err();
    assert_eq!(err, failure);
    assert_eq!(err.status().as_u16(), status);
    let mut out = BytesMut::new();
    reject(&err, &mut out);
    let resp = ParsedResponse::parse(&out);
    assert_eq!(resp.code, status);
    assert_eq!(
        resp.reason,
        StatusCode::from_u16(status)
            .unwrap()
            .canonical_reason()
            .unwrap()
    );
    assert_eq!(resp.one("Connection"), "close");
    assert_eq!(resp.one("Content-Length"), resp.body.len().to_string());
    assert_eq!(String::from_utf8(resp.body).unwrap(), format!("{err}\n"));
}

#[test]
fn server_parses_a_valid_request() {
    let text = request_text(&[
        "GET /chat/room?id=7&x=y HTTP/1.1",
        "Host: server.example.com",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Origin: http://example.com",
        "Sec-WebSocket-Protocol: chat, superchat",
        "Sec-WebSocket-Protocol: v3",
        "Sec-WebSocket-Version: 13",
        "Cookie: a=b",
    ]);
    let mut input = BytesMut::from(text.as_bytes());
    // A frame the client sent right behind the request stays in the input.
    let early = frame(true, true, 0, OP_TEXT, b"early");
    input.extend_from_slice(&early);
    let req = parse(&mut input).unwrap().unwrap();
    assert_eq!(&input[..], &early[..]);
    assert_eq!(req.method(), http::Method::GET);
    assert_eq!(req.target(), "/chat/room?id=7&x=y");
    assert_eq!(req.path(), "/chat/room");
    assert_eq!(req.query(), Some("id=7&x=y"));
    assert_eq!(req.origin(), Some("http://example.com"));
    assert_eq!(
        req.protocols().collect::<Vec<_>>(),
        vec!["chat", "superchat", "v3"]
    );
    assert_eq!(req.key(), RFC_KEY);
    assert_eq!(req.headers().get("cookie").unwrap(), "a=b");

    let mut server = Connection::new(Role::Server, Limits::default());
    let mut out = BytesMut::new();
    assert_eq!(
        server.receive(&mut input, &mut out),
        Ok(Some(Message::text("early")))
    );
}

#[test]
fn server_request_without_query_origin_or_protocols() {
    let req = parse(&mut with_line(0, Some("GET / HTTP/1.1")))
        .unwrap()
        .unwrap();
    assert_eq!(req.path(), "/");
    assert_eq!(req.query(), None);
    assert_eq!(req.origin(), None);
    assert_eq!(req.protocols().count(), 0);
}

#[test]
fn server_matches_tokens_and_header_names_case_insensitively() {
    let text = request_text(&[
        "GET / HTTP/1.1",
        "host: a",
        "UPGRADE: WebSocket",
        "connection: keep-alive, UPGRADE",
        "sec-websocket-key:    dGhlIHNhbXBsZSBub25jZQ==   ",
        "SEC-WEBSOCKET-VERSION: 13",
    ]);
    let req = parse(&mut BytesMut::from(text.as_bytes()))
        .unwrap()
        .unwrap();
    assert_eq!(req.key(), RFC_KEY);

    // Tokens spread over repeated headers.
    let text = request_text(&[
        "GET / HTTP/1.1",
        "Host: a",
        "Upgrade: h2c",
        "Upgrade: websocket",
        "Connection: keep-alive",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
    ]);
    assert!(parse(&mut BytesMut::from(text.as_bytes()))
        .unwrap()
        .is_some());
}

#[test]
fn server_request_split_at_every_position_waits_until_complete() {
    let all = request_text(&GOOD).into_bytes();
    for split in 0..all.len() {
        let mut input = BytesMut::from(&all[..split]);
        assert!(parse(&mut input).unwrap().is_none(), "split at {split}");
        assert_eq!(input.len(), split);
        input.extend_from_slice(&all[split..]);
        assert_eq!(parse(&mut input).unwrap().unwrap().key(), RFC_KEY);
        assert!(input.is_empty());
    }
}

#[test]
fn server_rejects_a_method_other_than_get_with_405() {
    for method in ["POST", "PUT", "HEAD", "OPTIONS", "get"] {
        let line = format!("{method} /chat HTTP/1.1");
        assert_fails(
            with_line(0, Some(&line)),
            HandshakeFailure::MethodNotGet(method.into()),
            405,
        );
    }
}

#[test]
fn server_rejects_http_1_0_with_400() {
    assert_fails(
        with_line(0, Some("GET /chat HTTP/1.0")),
        HandshakeFailure::HttpVersion,
        400,
    );
}

#[test]
fn server_rejects_a_missing_host_with_400() {
    assert_fails(
        with_line(1, None),
        HandshakeFailure::MissingHeader("Host"),
        400,
    );
}

#[test]
fn server_rejects_a_repeated_single_valued_header_with_400() {
    // RFC 6455 section 11.3: the key and the version must not appear more than once;
    // RFC 9112 section 3.2: a request with two Hosts gets 400. Equal or different
    // values, adjacent or apart, in any case: never pick one silently.
    let cases = [
        ("Host", "Host: other.example.com"),
        ("Host", "host: server.example.com"),
        (
            "Sec-WebSocket-Key",
            "Sec-WebSocket-Key: AQIDBAUGBwgJCgsMDQ4PEA==",
        ),
        (
            "Sec-WebSocket-Key",
            "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==",
        ),
        ("Sec-WebSocket-Version", "Sec-WebSocket-Version: 13"),
        ("Sec-WebSocket-Version", "SEC-WEBSOCKET-VERSION: 8"),
    ];
    for (name, extra) in cases {
        for at in [1, GOOD.len()] {
            let mut lines = GOOD.to_vec();
            lines.insert(at, extra);
            assert_fails(
                BytesMut::from(request_text(&lines).as_bytes()),
                HandshakeFailure::DuplicateHeader(name),
                400,
            );
        }
    }
    // Headers that may repeat still do.
    let mut lines = GOOD.to_vec();
    lines.extend(["Sec-WebSocket-Protocol: a", "Sec-WebSocket-Protocol: b"]);
    lines.extend(["Connection: keep-alive", "Upgrade: h2c"]);
    let req = parse(&mut BytesMut::from(request_text(&lines).as_bytes()))
        .unwrap()
        .unwrap();
    assert_eq!(req.protocols().collect::<Vec<_>>(), ["a", "b"]);
    // The same rule holds for a head parsed elsewhere (hyper, axum).
    let mut request = http::Request::get("/")
        .header("host", "a")
        .header("upgrade", "websocket")
        .header("connection", "upgrade")
        .header("sec-websocket-key", RFC_KEY)
        .header("sec-websocket-version", "13")
        .body(())
        .unwrap();
    request
        .headers_mut()
        .append("sec-websocket-key", RFC_KEY.parse().unwrap());
    assert_eq!(
        UpgradeRequest::from_request(&request).unwrap_err(),
        HandshakeFailure::DuplicateHeader("Sec-WebSocket-Key")
    );
}

#[test]
fn incoming_plain_request_with_two_hosts_gets_400() {
    let err = incoming("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n").unwrap_err();
    assert_eq!(err, HandshakeFailure::DuplicateHeader("Host"));
    assert_eq!(err.status(), 400);
}

#[test]
fn server_rejects_a_missing_or_invalid_upgrade_with_400() {
    assert_fails(
        with_line(2, None),
        HandshakeFailure::MissingHeader("Upgrade: websocket"),
        400,
    );
    for value in ["h2c", "websockets", "", "web socket"] {
        let line = format!("Upgrade: {value}");
        assert_fails(
            with_line(2, Some(&line)),
            HandshakeFailure::MissingHeader("Upgrade: websocket"),
            400,
        );
    }
}

#[test]
fn server_rejects_a_connection_header_without_upgrade_with_400() {
    assert_fails(
        with_line(3, None),
        HandshakeFailure::MissingHeader("Connection: upgrade"),
        400,
    );
    for value in ["keep-alive", "close", "upgraded", ""] {
        let line = format!("Connection: {value}");
        assert_fails(
            with_line(3, Some(&line)),
            HandshakeFailure::MissingHeader("Connection: upgrade"),
            400,
        );
    }
}

#[test]
fn server_rejects_a_version_other_than_13_with_426_naming_version_13() {
    for line in [
        Some("Sec-WebSocket-Version: 8"),
        Some("Sec-WebSocket-Version: 12"),
        Some("Sec-WebSocket-Version: 14"),
        Some("Sec-WebSocket-Version: 13, 8"),
        Some("Sec-WebSocket-Version: "),
        None,
    ] {
        let input = with_line(5, line);
        assert_fails(input.clone(), HandshakeFailure::UnsupportedVersion, 426);
        let mut out = BytesMut::new();
        reject(&HandshakeFailure::UnsupportedVersion, &mut out);
        let resp = ParsedResponse::parse(&out);
        assert_eq!(resp.code, 426);
        assert_eq!(resp.one("Sec-WebSocket-Version"), "13");
    }
    // Only the version failure names the supported version.
    let mut out = BytesMut::new();
    reject(&HandshakeFailure::MissingHeader("Host"), &mut out);
    assert!(ParsedResponse::parse(&out)
        .all("Sec-WebSocket-Version")
        .is_empty());
}

#[test]
fn server_rejects_a_key_that_is_not_16_bytes_of_base64_with_400() {
    let fifteen = STANDARD.encode([7u8; 15]);
    let seventeen = STANDARD.encode([7u8; 17]);
    let thirty_two = STANDARD.encode([7u8; 32]);
    for key in [
        "",
        "c2hvcnQ=", // "short"
        "not base64 at all!!",
        "dGhlIHNhbXBsZSBub25jZQ",   // missing padding
        "dGhlIHNhbXBsZSBub25jZQ=!", // bad character
        &fifteen,
        &seventeen,
        &thirty_two,
    ] {
        let line = format!("Sec-WebSocket-Key: {key}");
        assert_fails(
            with_line(4, Some(&line)),
            HandshakeFailure::InvalidHeader("Sec-WebSocket-Key"),
            400,
        );
    }
    assert_fails(
        with_line(4, None),
        HandshakeFailure::MissingHeader("Sec-WebSocket-Key"),
        400,
    );
    // Any 16 bytes are fine.
    let line = format!("Sec-WebSocket-Key: {}", STANDARD.encode([0xFFu8; 16]));
    assert!(parse(&mut with_line(4, Some(&line))).unwrap().is_some());
}

#[test]
fn server_rejects_a_header_block_over_the_limit_with_431() {
    let limits = Limits::default().max_header_bytes(256);
    let padding = format!("X-Padding: {}", "p".repeat(256));
    let mut lines = GOOD.to_vec();
    lines.insert(1, &padding);
    let all = request_text(&lines).into_bytes();

    let check = |input: &mut BytesMut| {
        let err = UpgradeRequest::parse(input, &limits).unwrap_err();
        assert_eq!(err, HandshakeFailure::HeadersTooLarge(256));
        assert_eq!(err.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
        let mut out = BytesMut::new();
        reject(&err, &mut out);
        assert_eq!(ParsedResponse::parse(&out).code, 431);
    };
    // Complete.
    check(&mut BytesMut::from(&all[..]));
    // Incomplete and already over the limit: no need to wait for the rest.
    check(&mut BytesMut::from(&all[..257]));
    check(&mut BytesMut::from(&vec![b'a'; 10_000][..]));
    // Incomplete and within the limit: wait.
    assert!(
        UpgradeRequest::parse(&mut BytesMut::from(&all[..256]), &limits)
            .unwrap()
            .is_none()
    );
    // The default limit is 8 KiB.
    let big = format!("X-Padding: {}", "p".repeat(9000));
    let mut lines = GOOD.to_vec();
    lines.insert(1, &big);
    assert_fails(
        BytesMut::from(request_text(&lines).as_bytes()),
        HandshakeFailure::HeadersTooLarge(8 << 10),
        431,
    );
}

#[test]
fn server_rejects_too_many_headers_with_431() {
    let limits = Limits::default().max_headers(6);
    // Exactly six: fine.
    let mut lines = GOOD.to_vec();
    lines.push("X-Six: 6");
    let mut input = BytesMut::from(request_text(&lines).as_bytes());
    assert!(UpgradeRequest::parse(&mut input, &limits)
        .unwrap()
        .is_some());
    // Seven.
    lines.push("X-Seven: 7");
    let mut input = BytesMut::from(request_text(&lines).as_bytes());
    let err = UpgradeRequest::parse(&mut input, &limits).unwrap_err();
    assert_eq!(err, HandshakeFailure::TooManyHeaders(6));
    assert_eq!(err.status().as_u16(), 431);
    // With the default limit of 64.
    let extra: Vec<String> = (0..60).map(|i| format!("X-H{i}: {i}")).collect();
    let mut lines = GOOD.to_vec();
    lines.extend(extra.iter().map(String::as_str));
    assert_fails(
        BytesMut::from(request_text(&lines).as_bytes()),
        HandshakeFailure::TooManyHeaders(64),
        431,
    );
}

#[test]
fn server_rejects_malformed_http_with_400() {
    for bad in [
        &b"GET\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nNo colon here\r\n\r\n",
        b"\x00\x01\x02\r\n\r\n",
    ] {
        let err = parse(&mut BytesMut::from(bad)).unwrap_err();
        assert!(matches!(err, HandshakeFailure::MalformedHttp(_)), "{err:?}");
        assert_eq!(err.status().as_u16(), 400);
    }
}

// ================================================================ server: the answer

#[test]
fn accept_answers_101_with_the_rfc_accept_value() {
    let req = parse(&mut with_line(0, Some("GET /chat HTTP/1.1")))
        .unwrap()
        .unwrap();
    let mut out = BytesMut::new();
    req.accept(None, &HeaderMap::new(), &mut out);
    assert!(out.starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
    assert!(out.ends_with(b"\r\n\r\n"));
    let resp = ParsedResponse::parse(&out);
    assert_eq!(resp.code, 101);
    assert_eq!(resp.one("Sec-WebSocket-Accept"), RFC_ACCEPT);
    assert!(resp.one("Upgrade").eq_ignore_ascii_case("websocket"));
    assert!(resp.one("Connection").eq_ignore_ascii_case("upgrade"));
    assert!(resp.all("Sec-WebSocket-Protocol").is_empty());
    assert!(resp.all("Sec-WebSocket-Extensions").is_empty());
    assert!(resp.all("Content-Length").is_empty(), "no body on a 101");
    assert!(resp.body.is_empty());
    assert_eq!(accept_key(RFC_KEY.as_bytes()), RFC_ACCEPT);
}

#[test]
fn accept_sends_only_a_subprotocol_the_client_offered() {
    let mut lines = GOOD.to_vec();
    lines.push("Sec-WebSocket-Protocol: chat, superchat");
    let req = parse(&mut BytesMut::from(request_text(&lines).as_bytes()))
        .unwrap()
        .unwrap();

    let mut out = BytesMut::new();
    req.accept(Some("superchat"), &HeaderMap::new(), &mut out);
    assert_eq!(
        ParsedResponse::parse(&out).one("Sec-WebSocket-Protocol"),
        "superchat"
    );

    for not_offered in ["other", "Chat", "chat, superchat", ""] {
        let mut out = BytesMut::new();
        req.accept(Some(not_offered), &HeaderMap::new(), &mut out);
        assert!(
            ParsedResponse::parse(&out)
                .all("Sec-WebSocket-Protocol")
                .is_empty(),
            "{not_offered:?} was not offered"
        );
    }

    // A request that offered nothing never gets a protocol.
    let req = parse(&mut BytesMut::from(request_text(&GOOD).as_bytes()))
        .unwrap()
        .unwrap();
    let mut out = BytesMut::new();
    req.accept(Some("chat"), &HeaderMap::new(), &mut out);
    assert!(ParsedResponse::parse(&out)
        .all("Sec-WebSocket-Protocol")
        .is_empty());
}

#[test]
fn accept_adds_the_extra_headers() {
    let req = parse(&mut BytesMut::from(request_text(&GOOD).as_bytes()))
        .unwrap()
        .unwrap();
    let mut extra = HeaderMap::new();
    extra.insert("set-cookie", HeaderValue::from_static("session=1"));
    extra.append("x-server", HeaderValue::from_static("duplex"));
    let mut out = BytesMut::new();
    req.accept(None, &extra, &mut out);
    let resp = ParsedResponse::parse(&out);
    assert_eq!(resp.one("Set-Cookie"), "session=1");
    assert_eq!(resp.one("X-Server"), "duplex");
    assert_eq!(resp.one("Sec-WebSocket-Accept"), RFC_ACCEPT);
}

#[test]
fn write_response_adds_length_and_close_to_non_101_answers() {
    let mut out = BytesMut::new();
    write_response(
        StatusCode::FORBIDDEN,
        &HeaderMap::new(),
        b"go away",
        &mut out,
    );
    let resp = ParsedResponse::parse(&out);
    assert_eq!((resp.code, resp.reason.as_str()), (403, "Forbidden"));
    assert_eq!(resp.one("Content-Length"), "7");
    assert_eq!(resp.one("Connection"), "close");
    assert_eq!(resp.one("Content-Type"), "text/plain; charset=utf-8");
    assert_eq!(resp.body, b"go away");
}
