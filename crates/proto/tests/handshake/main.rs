//! The opening handshake in both roles: the client's request and its validation of the
//! response, the server's parsing of the request, its rejections and its 101 answer.

mod client;
#[path = "../common/mod.rs"]
mod common;
mod server;
mod together;

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

/// Header lookups of a parsed request or response, names case-insensitive.
trait HeaderLookup {
    fn headers(&self) -> &[(String, String)];

    fn all(&self, name: &str) -> Vec<&str> {
        self.headers()
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

/// Parsed headers as owned names and values (values must be UTF-8).
fn owned(headers: &[httparse::Header]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|h| {
            let value = String::from_utf8(h.value.to_vec()).unwrap();
            (h.name.to_owned(), value)
        })
        .collect()
}

/// A parsed HTTP request, owned.
struct ParsedRequest {
    method: String,
    path: String,
    version: u8,
    headers: Vec<(String, String)>,
}

impl HeaderLookup for ParsedRequest {
    fn headers(&self) -> &[(String, String)] {
        &self.headers
    }
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
            headers: owned(req.headers),
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

impl HeaderLookup for ParsedResponse {
    fn headers(&self) -> &[(String, String)] {
        &self.headers
    }
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
            headers: owned(resp.headers),
            body: bytes[len..].to_vec(),
        }
    }
}

// ================================================================ requests used by several parts

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

fn incoming(text: &str) -> Result<Option<IncomingRequest>, HandshakeFailure> {
    IncomingRequest::parse(&mut BytesMut::from(text.as_bytes()), &Limits::default())
}
