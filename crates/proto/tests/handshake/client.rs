//! The client: its request, and its validation of the response.

use super::*;

// ================================================================ client: the request

#[test]
fn client_request_has_every_required_header() {
    let mut out = BytesMut::new();
    let hs = ClientHandshake::start(&full_request(), &mut out).unwrap();
    assert!(out.starts_with(b"GET /chat?room=1 HTTP/1.1\r\n"));
    assert!(out.ends_with(b"\r\n\r\n"));
    let req = ParsedRequest::parse(&out);
    assert_eq!(req.method, "GET");
    assert_eq!(req.path, "/chat?room=1");
    assert_eq!(req.version, 1);
    assert_eq!(req.one("Host"), "example.com:8080");
    assert_eq!(req.one("Upgrade"), "websocket");
    assert_eq!(req.one("Connection"), "Upgrade");
    assert_eq!(req.one("Sec-WebSocket-Version"), "13");
    assert_eq!(req.one("Sec-WebSocket-Key"), hs.key());
    assert_eq!(req.one("Origin"), "https://example.com");
    assert_eq!(req.one("Sec-WebSocket-Protocol"), "chat.v2, chat");
    assert_eq!(req.one("Authorization"), "Bearer token");
    assert_eq!(req.all("X-Custom"), vec!["one", "two"]);
    assert!(
        req.all("Sec-WebSocket-Extensions").is_empty(),
        "no extension offered"
    );
}

#[test]
fn client_key_is_base64_of_16_random_bytes() {
    let mut keys = std::collections::HashSet::new();
    for _ in 0..32 {
        let mut out = BytesMut::new();
        let hs = ClientHandshake::start(&full_request(), &mut out).unwrap();
        let raw = STANDARD.decode(hs.key()).expect("the key is base64");
        assert_eq!(raw.len(), 16);
        assert_eq!(hs.key().len(), 24);
        keys.insert(hs.key().to_owned());
    }
    assert_eq!(keys.len(), 32, "every handshake has a fresh key");
}

#[test]
fn a_given_key_is_sent_as_given() {
    // RFC 6455 section 1.3: the sample nonce and the accept value it leads to.
    let mut out = BytesMut::new();
    let hs =
        ClientHandshake::start_with_key(&full_request(), *b"the sample nonce", &mut out).unwrap();
    assert_eq!(hs.key(), RFC_KEY);
    let req = ParsedRequest::parse(&out);
    assert_eq!(req.all("Sec-WebSocket-Key"), [RFC_KEY]);
    assert_eq!(
        accept_key(RFC_KEY.as_bytes()),
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
}

#[test]
fn client_request_without_origin_or_protocols_omits_those_headers() {
    let mut out = BytesMut::new();
    let request = ClientRequest::default().host("h".into()).path("/".into());
    ClientHandshake::start(&request, &mut out).unwrap();
    let req = ParsedRequest::parse(&out);
    assert!(req.all("Origin").is_empty());
    assert!(req.all("Sec-WebSocket-Protocol").is_empty());
    assert_eq!(req.headers.len(), 5, "{:?}", req.headers);
}

#[test]
fn client_request_is_accepted_by_the_server_parser() {
    let mut out = BytesMut::new();
    let hs = ClientHandshake::start(&full_request(), &mut out).unwrap();
    let req = UpgradeRequest::parse(&mut out, &Limits::default())
        .unwrap()
        .unwrap();
    assert!(out.is_empty());
    assert_eq!(req.key(), hs.key());
    assert_eq!(req.path(), "/chat");
    assert_eq!(req.query(), Some("room=1"));
    assert_eq!(req.origin(), Some("https://example.com"));
    assert_eq!(req.protocols().collect::<Vec<_>>(), vec!["chat.v2", "chat"]);
}

// ================================================================ client: the response

fn offering(protocols: &[&str]) -> (ClientHandshake, String) {
    let mut out = BytesMut::new();
    let request = ClientRequest::default()
        .host("example.com".into())
        .path("/".into())
        .protocols(protocols.iter().map(|p| p.to_string()).collect());
    let hs = ClientHandshake::start(&request, &mut out).unwrap();
    let accept = accept_key(hs.key().as_bytes());
    (hs, accept)
}

/// A 101 response with the given header lines (each without CRLF).
fn response(lines: &[&str]) -> BytesMut {
    let mut s = String::from("HTTP/1.1 101 Switching Protocols\r\n");
    for l in lines {
        s.push_str(l);
        s.push_str("\r\n");
    }
    s.push_str("\r\n");
    BytesMut::from(s.as_bytes())
}

fn good_lines(accept: &str) -> Vec<String> {
    vec![
        "Upgrade: websocket".into(),
        "Connection: Upgrade".into(),
        format!("Sec-WebSocket-Accept: {accept}"),
    ]
}

fn receive_with(
    hs: &ClientHandshake,
    lines: &[String],
) -> Result<Option<duplex_proto::handshake::client::ServerResponse>, HandshakeFailure> {
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    hs.receive(&mut response(&refs), &Limits::default())
}

#[test]
fn client_accepts_a_valid_response() {
    let (hs, accept) = offering(&[]);
    let resp = receive_with(&hs, &good_lines(&accept)).unwrap().unwrap();
    assert_eq!(resp.status, StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(resp.protocol, None);
    assert_eq!(resp.headers.get("upgrade").unwrap(), "websocket");
}

#[test]
fn client_accepts_the_subprotocol_it_offered() {
    let (hs, accept) = offering(&["chat", "superchat"]);
    let mut lines = good_lines(&accept);
    lines.push("Sec-WebSocket-Protocol: superchat".into());
    let resp = receive_with(&hs, &lines).unwrap().unwrap();
    assert_eq!(resp.protocol.as_deref(), Some("superchat"));
}

#[test]
fn client_treats_an_empty_subprotocol_header_as_no_subprotocol() {
    // An empty value names no subprotocol: validation lets it through, so the response
    // must not report a chosen protocol "" that was never offered.
    for offered in [&[][..], &["chat"][..]] {
        let (hs, accept) = offering(offered);
        for value in ["", "   ", " , "] {
            let mut lines = good_lines(&accept);
            lines.push(format!("Sec-WebSocket-Protocol: {value}"));
            let resp = receive_with(&hs, &lines).unwrap().unwrap();
            assert_eq!(resp.protocol, None, "Sec-WebSocket-Protocol: {value:?}");
        }
    }
}

#[test]
fn client_rejects_a_status_other_than_101() {
    let (hs, accept) = offering(&[]);
    for (code, reason) in [
        (200, "OK"),
        (301, "Moved Permanently"),
        (400, "Bad Request"),
        (403, "Forbidden"),
        (426, "Upgrade Required"),
        (500, "Internal Server Error"),
    ] {
        let text = format!(
            "HTTP/1.1 {code} {reason}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {accept}\r\n\r\n"
        );
        let mut input = BytesMut::from(text.as_bytes());
        assert_eq!(
            hs.receive(&mut input, &Limits::default()).unwrap_err(),
            HandshakeFailure::Status(code)
        );
    }
}

#[test]
fn client_rejects_a_missing_upgrade_header() {
    let (hs, accept) = offering(&[]);
    let lines = vec![
        "Connection: Upgrade".to_string(),
        format!("Sec-WebSocket-Accept: {accept}"),
    ];
    assert_eq!(
        receive_with(&hs, &lines).unwrap_err(),
        HandshakeFailure::MissingHeader("Upgrade")
    );
}

#[test]
fn client_rejects_an_upgrade_to_something_else() {
    let (hs, accept) = offering(&[]);
    for value in ["h2c", "websockets", "", "TLS/1.0"] {
        let mut lines = good_lines(&accept);
        lines[0] = format!("Upgrade: {value}");
        assert_eq!(
            receive_with(&hs, &lines).unwrap_err(),
            HandshakeFailure::InvalidHeader("Upgrade"),
            "Upgrade: {value}"
        );
    }
}

#[test]
fn client_accepts_upgrade_and_connection_tokens_in_any_case_and_in_lists() {
    let (hs, accept) = offering(&[]);
    for (upgrade, connection) in [
        ("websocket", "Upgrade"),
        ("WebSocket", "upgrade"),
        ("WEBSOCKET", "UPGRADE"),
        ("websocket", "keep-alive, Upgrade"),
        ("websocket", "Upgrade, keep-alive"),
        ("websocket", "keep-alive,upgrade , close"),
    ] {
        let lines = vec![
            format!("Upgrade: {upgrade}"),
            format!("Connection: {connection}"),
            format!("Sec-WebSocket-Accept: {accept}"),
        ];
        assert!(
            receive_with(&hs, &lines).unwrap().is_some(),
            "Upgrade: {upgrade} / Connection: {connection}"
        );
    }
    // The upgrade token may also come in a second Connection header.
    let lines = vec![
        "Upgrade: websocket".to_string(),
        "Connection: keep-alive".to_string(),
        "Connection: Upgrade".to_string(),
        format!("Sec-WebSocket-Accept: {accept}"),
    ];
    assert!(receive_with(&hs, &lines).unwrap().is_some());
}

#[test]
fn client_rejects_a_connection_header_without_upgrade() {
    let (hs, accept) = offering(&[]);
    for value in ["keep-alive", "close", "upgrades", ""] {
        let mut lines = good_lines(&accept);
        lines[1] = format!("Connection: {value}");
        assert_eq!(
            receive_with(&hs, &lines).unwrap_err(),
            HandshakeFailure::InvalidHeader("Connection"),
            "Connection: {value}"
        );
    }
    let lines = vec![
        "Upgrade: websocket".to_string(),
        format!("Sec-WebSocket-Accept: {accept}"),
    ];
    assert_eq!(
        receive_with(&hs, &lines).unwrap_err(),
        HandshakeFailure::InvalidHeader("Connection")
    );
}

#[test]
fn client_rejects_a_wrong_or_missing_accept() {
    let (hs, accept) = offering(&[]);
    let mut wrong = accept.clone().into_bytes();
    wrong[0] = if wrong[0] == b'A' { b'B' } else { b'A' };
    for bad in [
        String::from_utf8(wrong).unwrap(),
        RFC_ACCEPT.to_owned(), // the right answer for another key
        accept_key(b"not the key"),
        hs.key().to_owned(), // echoing the key back
        accept.to_lowercase(),
    ] {
        let mut lines = good_lines(&accept);
        lines[2] = format!("Sec-WebSocket-Accept: {bad}");
        assert_eq!(
            receive_with(&hs, &lines).unwrap_err(),
            HandshakeFailure::AcceptMismatch,
            "accept {bad}"
        );
    }
    let lines = vec![
        "Upgrade: websocket".to_string(),
        "Connection: Upgrade".to_string(),
    ];
    assert_eq!(
        receive_with(&hs, &lines).unwrap_err(),
        HandshakeFailure::MissingHeader("Sec-WebSocket-Accept")
    );
}

#[test]
fn client_rejects_a_repeated_accept_or_subprotocol() {
    let (hs, accept) = offering(&["chat"]);
    let mut lines = good_lines(&accept);
    lines.push(format!("Sec-WebSocket-Accept: {accept}"));
    assert_eq!(
        receive_with(&hs, &lines).unwrap_err(),
        HandshakeFailure::DuplicateHeader("Sec-WebSocket-Accept")
    );
    let mut lines = good_lines(&accept);
    lines.extend([
        "Sec-WebSocket-Protocol: chat".into(),
        "Sec-WebSocket-Protocol: chat".into(),
    ]);
    assert_eq!(
        receive_with(&hs, &lines).unwrap_err(),
        HandshakeFailure::DuplicateHeader("Sec-WebSocket-Protocol")
    );
}

#[test]
fn client_rejects_a_subprotocol_it_did_not_offer() {
    // Offered some, got another.
    let (hs, accept) = offering(&["chat"]);
    let mut lines = good_lines(&accept);
    lines.push("Sec-WebSocket-Protocol: superchat".into());
    assert_eq!(
        receive_with(&hs, &lines).unwrap_err(),
        HandshakeFailure::UnofferedProtocol("superchat".into())
    );
    // Offered none, got one.
    let (hs, accept) = offering(&[]);
    let mut lines = good_lines(&accept);
    lines.push("Sec-WebSocket-Protocol: chat".into());
    assert_eq!(
        receive_with(&hs, &lines).unwrap_err(),
        HandshakeFailure::UnofferedProtocol("chat".into())
    );
    // More than one chosen, even if all were offered.
    let (hs, accept) = offering(&["chat", "superchat"]);
    let mut lines = good_lines(&accept);
    lines.push("Sec-WebSocket-Protocol: chat, superchat".into());
    assert_eq!(
        receive_with(&hs, &lines).unwrap_err(),
        HandshakeFailure::UnofferedProtocol("chat, superchat".into())
    );
    // Protocol names are case-sensitive.
    let (hs, accept) = offering(&["chat"]);
    let mut lines = good_lines(&accept);
    lines.push("Sec-WebSocket-Protocol: Chat".into());
    assert_eq!(
        receive_with(&hs, &lines).unwrap_err(),
        HandshakeFailure::UnofferedProtocol("Chat".into())
    );
}

#[test]
fn client_rejects_any_extension_because_it_offers_none() {
    for (value, reported) in [
        ("permessage-deflate", "permessage-deflate"),
        (
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate; client_max_window_bits",
        ),
        (
            "x-webkit-deflate-frame, permessage-deflate",
            "x-webkit-deflate-frame",
        ),
        ("foo", "foo"),
    ] {
        let (hs, accept) = offering(&[]);
        let mut lines = good_lines(&accept);
        lines.push(format!("Sec-WebSocket-Extensions: {value}"));
        assert_eq!(
            receive_with(&hs, &lines).unwrap_err(),
            HandshakeFailure::UnofferedExtension(reported.into())
        );
    }
}

#[test]
fn client_rejects_a_response_header_block_over_the_limit() {
    let (hs, accept) = offering(&[]);
    let limits = Limits::default().max_header_bytes(200);
    let mut lines = good_lines(&accept);
    lines.push(format!("X-Padding: {}", "p".repeat(200)));
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    // Complete but too large.
    let mut input = response(&refs);
    assert_eq!(
        hs.receive(&mut input, &limits).unwrap_err(),
        HandshakeFailure::HeadersTooLarge(200)
    );
    // Not even complete yet, and already over the limit.
    let mut input = BytesMut::from(&response(&refs)[..201]);
    assert_eq!(
        hs.receive(&mut input, &limits).unwrap_err(),
        HandshakeFailure::HeadersTooLarge(200)
    );
    // Incomplete and within the limit: wait.
    let mut input = BytesMut::from(&response(&refs)[..200]);
    assert!(matches!(hs.receive(&mut input, &limits), Ok(None)));
}

#[test]
fn client_rejects_a_response_with_too_many_headers() {
    let (hs, accept) = offering(&[]);
    let limits = Limits::default().max_headers(5);
    let mut lines = good_lines(&accept);
    lines.push("X-A: 1".into());
    lines.push("X-B: 2".into());
    // Five headers: fine.
    assert!(hs
        .receive(
            &mut response(&lines.iter().map(String::as_str).collect::<Vec<_>>()),
            &limits
        )
        .unwrap()
        .is_some());
    lines.push("X-C: 3".into());
    assert_eq!(
        hs.receive(
            &mut response(&lines.iter().map(String::as_str).collect::<Vec<_>>()),
            &limits
        )
        .unwrap_err(),
        HandshakeFailure::TooManyHeaders(5)
    );
}

#[test]
fn client_rejects_malformed_http() {
    let (hs, _) = offering(&[]);
    for bad in [
        &b"HTTP/1.1 abc Switching\r\n\r\n"[..],
        b"SMTP ready\r\n\r\n",
        b"HTTP/1.1 101 OK\r\nBad Header Line\r\n\r\n",
    ] {
        let mut input = BytesMut::from(bad);
        assert!(
            matches!(
                hs.receive(&mut input, &Limits::default()),
                Err(HandshakeFailure::MalformedHttp(_))
            ),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn client_response_split_at_every_position_waits_then_keeps_the_frames_after_it() {
    let (hs, accept) = offering(&["chat"]);
    let mut lines = good_lines(&accept);
    lines.push("Sec-WebSocket-Protocol: chat".into());
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let head = response(&refs);
    // The server's first frames, sent right after the response.
    let mut frames = frame(false, true, 0, OP_TEXT, b"first");
    frames.extend_from_slice(&frame(false, true, 0, OP_PING, b"p"));
    let mut all = head.to_vec();
    all.extend_from_slice(&frames);

    for split in 0..head.len() {
        let mut input = BytesMut::from(&all[..split]);
        assert!(
            matches!(hs.receive(&mut input, &Limits::default()), Ok(None)),
            "split at {split}"
        );
        assert_eq!(input.len(), split, "nothing consumed while incomplete");
        input.extend_from_slice(&all[split..]);
        let resp = hs
            .receive(&mut input, &Limits::default())
            .unwrap()
            .expect("complete now");
        assert_eq!(resp.protocol.as_deref(), Some("chat"));
        assert_eq!(&input[..], &frames[..], "the frames stay in the input");
    }
    // Fed byte by byte in one buffer.
    let mut input = BytesMut::new();
    let mut done = None;
    for (i, b) in all.iter().enumerate() {
        input.extend_from_slice(&[*b]);
        if let Some(r) = hs.receive(&mut input, &Limits::default()).unwrap() {
            done = Some((i, r));
            break;
        }
    }
    let (i, _) = done.expect("the response completes");
    assert_eq!(i, head.len() - 1, "complete exactly at its last byte");
    input.extend_from_slice(&all[i + 1..]);
    assert_eq!(&input[..], &frames[..]);

    // And the connection takes over from there.
    let mut client = Connection::new(Role::Client, Limits::default());
    let mut out = BytesMut::new();
    assert_eq!(
        receive_all(&mut client, &mut input, &mut out).unwrap(),
        vec![Message::text("first"), Message::Ping("p".into())]
    );
}
