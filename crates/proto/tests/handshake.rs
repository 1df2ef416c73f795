//! The opening handshake in both roles: the client's request and its validation of the
//! response, the server's parsing of the request, its rejections and its 101 answer.

mod common;

use base64::{engine::general_purpose::STANDARD, Engine};
use bytes::BytesMut;
use common::*;
use duplex_proto::handshake::accept_key;
use duplex_proto::handshake::client::{ClientHandshake, ClientRequest};
use duplex_proto::handshake::server::{
    is_upgrade_attempt, reject, rejection, write_response, IncomingRequest, UpgradeRequest,
};
use duplex_proto::{Connection, HandshakeFailure, Limits, Message, Role};
use http::{HeaderMap, HeaderValue, StatusCode};

const RFC_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const RFC_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// A parsed HTTP request, owned.
struct ParsedRequest {
    method: String,
    path: String,
    version: u8,
    headers: Vec<(String, String)>,
}

impl ParsedRequest {
    fn parse(bytes: &[u8]) -> Self {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        let len = match req.parse(bytes).unwrap() {
            httparse::Status::Complete(len) => len,
            httparse::Status::Partial => panic!("incomplete request"),
        };
        assert_eq!(len, bytes.len(), "nothing after the header block");
        Self {
            method: req.method.unwrap().to_owned(),
            path: req.path.unwrap().to_owned(),
            version: req.version.unwrap(),
            headers: req
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_owned(),
                        String::from_utf8(h.value.to_vec()).unwrap(),
                    )
                })
                .collect(),
        }
    }

    fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn one(&self, name: &str) -> &str {
        match self.all(name)[..] {
            [v] => v,
            ref other => panic!("expected one {name} header, got {other:?}"),
        }
    }
}

/// A parsed HTTP response, owned.
struct ParsedResponse {
    code: u16,
    reason: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl ParsedResponse {
    fn parse(bytes: &[u8]) -> Self {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut resp = httparse::Response::new(&mut headers);
        let len = match resp.parse(bytes).unwrap() {
            httparse::Status::Complete(len) => len,
            httparse::Status::Partial => panic!("incomplete response"),
        };
        Self {
            code: resp.code.unwrap(),
            reason: resp.reason.unwrap().to_owned(),
            headers: resp
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_owned(),
                        String::from_utf8(h.value.to_vec()).unwrap(),
                    )
                })
                .collect(),
            body: bytes[len..].to_vec(),
        }
    }

    fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn one(&self, name: &str) -> &str {
        match self.all(name)[..] {
            [v] => v,
            ref other => panic!("expected one {name} header, got {other:?}"),
        }
    }
}

// ================================================================ client: the request

fn full_request() -> ClientRequest {
    let mut headers = HeaderMap::new();
    headers.insert("authorization", HeaderValue::from_static("Bearer token"));
    headers.append("x-custom", HeaderValue::from_static("one"));
    headers.append("x-custom", HeaderValue::from_static("two"));
    ClientRequest::default()
        .host("example.com:8080".into())
        .path("/chat?room=1".into())
        .origin(Some("https://example.com".into()))
        .protocols(vec!["chat.v2".into(), "chat".into()])
        .headers(headers)
        .deflate(None)
}

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

// ================================================================ server: parsing

fn request_text(lines: &[&str]) -> String {
    let mut s = String::new();
    for l in lines {
        s.push_str(l);
        s.push_str("\r\n");
    }
    s.push_str("\r\n");
    s
}

const GOOD: [&str; 6] = [
    "GET /chat HTTP/1.1",
    "Host: server.example.com",
    "Upgrade: websocket",
    "Connection: Upgrade",
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version: 13",
];

/// The good request with line `index` replaced (or removed, for `None`).
fn with_line(index: usize, line: Option<&str>) -> BytesMut {
    let mut lines: Vec<&str> = GOOD.to_vec();
    match line {
        Some(l) => lines[index] = l,
        None => {
            lines.remove(index);
        }
    }
    BytesMut::from(request_text(&lines).as_bytes())
}

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

fn incoming(text: &str) -> Result<Option<IncomingRequest>, HandshakeFailure> {
    IncomingRequest::parse(&mut BytesMut::from(text.as_bytes()), &Limits::default())
}

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
