//! The server's handshake parser, and the client's request encoder against it.
//!
//! Input: a flags byte. With its top bit clear, the rest is chunk sizes and request
//! bytes for `UpgradeRequest::parse` (or `IncomingRequest::parse`) under limits the flags
//! pick. Invariants: no panic; the same outcome whether the bytes come at once or in
//! chunks; while incomplete nothing is consumed; an accepted request is a GET with
//! exactly one Host, one `Sec-WebSocket-Key` that decodes to 16 bytes, one
//! `Sec-WebSocket-Version: 13`, `Upgrade: websocket` and `Connection: upgrade`, and
//! exactly its head was consumed; its 101 answer is valid HTTP with the right accept key
//! and a subprotocol only from the offer.
//!
//! With the top bit set, the rest describes a `ClientRequest` (host, path, origin,
//! subprotocols, deflate offer). Invariant (the round trip): a request
//! `ClientHandshake::start` writes is parsed back by the server with the same target,
//! host, origin, subprotocols and key, and the server's answer is accepted by the
//! client with the same subprotocol and permessage-deflate parameters on both ends.
#![no_main]

use bytes::BytesMut;
use duplex_fuzz::Input;
use duplex_proto::deflate::DeflateConfig;
use duplex_proto::handshake::accept_key;
use duplex_proto::handshake::client::{ClientHandshake, ClientRequest};
use duplex_proto::handshake::server::{IncomingRequest, UpgradeRequest};
use duplex_proto::{HandshakeFailure, Limits};
use http::HeaderMap;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let flags = input.byte();
    if flags & 0x80 != 0 {
        round_trip(flags, &mut input);
    } else {
        parse(flags, &mut input);
    }
});

/// A deflate configuration from a byte.
fn deflate_config(b: u8) -> DeflateConfig {
    DeflateConfig::default().server_no_context_takeover(b & 1 != 0).client_no_context_takeover(b & 2 != 0).server_max_window_bits(8 + ((b >> 2) & 7)).client_max_window_bits(15 - ((b >> 5) & 7))
}

#[derive(Debug, PartialEq)]
enum Outcome {
    Incomplete,
    /// Target, key and the bytes left in the input.
    Upgrade(String, String, usize),
    Http(String, usize),
    Failed(HandshakeFailure),
}

fn parse_once(incoming: bool, buf: &mut BytesMut, limits: &Limits) -> Outcome {
    let fed = buf.len();
    let result = if incoming {
        IncomingRequest::parse(buf, limits)
    } else {
        UpgradeRequest::parse(buf, limits).map(|r| r.map(IncomingRequest::Upgrade))
    };
    match result {
        Ok(None) => {
            assert_eq!(buf.len(), fed, "nothing is consumed while incomplete");
            assert!(fed <= limits.max_header_bytes);
            Outcome::Incomplete
        }
        Ok(Some(IncomingRequest::Upgrade(r))) => {
            check_upgrade(&r);
            Outcome::Upgrade(r.target().to_owned(), r.key().to_owned(), buf.len())
        }
        Ok(Some(IncomingRequest::Http(r))) => {
            assert!(incoming);
            assert!(!duplex_proto::handshake::server::is_upgrade_attempt(
                r.headers()
            ));
            Outcome::Http(r.uri().to_string(), buf.len())
        }
        Err(e) => {
            // The connection is dropped after a failure: whether its head was consumed
            // does not matter.
            assert!(buf.len() <= fed);
            Outcome::Failed(e)
        }
    }
}

fn parse(flags: u8, input: &mut Input) {
    let limits = Limits::default().max_header_bytes([64, 512, 8192, 1 << 20][usize::from(flags & 3)]).max_headers([4, 64][usize::from((flags >> 2) & 1)]);
    let incoming = flags & 8 != 0;
    let chunks = input.chunk_sizes();
    let wire = input.rest();

    let whole = parse_once(incoming, &mut BytesMut::from(wire), &limits);
    let mut buf = BytesMut::new();
    let mut fed = 0;
    let mut chunked = Outcome::Incomplete;
    for chunk in chunks.split(wire) {
        buf.extend_from_slice(chunk);
        fed += chunk.len();
        chunked = parse_once(incoming, &mut buf, &limits);
        if chunked != Outcome::Incomplete {
            break;
        }
    }
    // The chunked parse stops at the first complete head: the rest never arrived.
    let left_out = wire.len() - fed;
    let chunked = match chunked {
        Outcome::Upgrade(t, k, left) => Outcome::Upgrade(t, k, left + left_out),
        Outcome::Http(t, left) => Outcome::Http(t, left + left_out),
        other => other,
    };
    // A head over the size limit fails as soon as that much is buffered, which may be
    // before the bytes that would fail it otherwise arrive.
    let too_large =
        |o: &Outcome| matches!(o, Outcome::Failed(HandshakeFailure::HeadersTooLarge(_)));
    if !(matches!(whole, Outcome::Failed(_)) && too_large(&chunked)) {
        assert_eq!(whole, chunked, "all at once vs in chunks");
    }
    if let Outcome::Upgrade(_, _, left) | Outcome::Http(_, left) = whole {
        let head = &wire[..wire.len() - left];
        assert!(
            head.ends_with(b"\n\n") || head.ends_with(b"\n\r\n"),
            "{head:?}"
        );
    }
}

/// What every accepted upgrade request must satisfy (RFC 6455 4.2.1, 11.3), and its answer.
fn check_upgrade(r: &UpgradeRequest) {
    let h = r.headers();
    let count = |name: &str| h.get_all(name).iter().count();
    assert_eq!(r.method(), http::Method::GET);
    assert_eq!(count("host"), 1);
    assert_eq!(count("sec-websocket-key"), 1);
    assert_eq!(count("sec-websocket-version"), 1);
    assert_eq!(h["sec-websocket-version"].as_bytes().trim_ascii(), b"13");
    let has = |name: &str, token: &str| duplex_fuzz::has_token(&h, name, token);
    assert!(has("upgrade", "websocket"));
    assert!(has("connection", "upgrade"));
    assert_eq!(base64_len(r.key()), Some(16), "key {:?}", r.key());
    assert_eq!(h["sec-websocket-key"].to_str().unwrap().trim(), r.key());

    let offered: Vec<&str> = r.protocols().collect();
    let mut out = BytesMut::new();
    let config = DeflateConfig::default();
    r.accept_with_deflate(
        offered.first().copied(),
        Some(&config),
        &HeaderMap::new(),
        &mut out,
    );
    let mut headers = [httparse::EMPTY_HEADER; 16];
    let mut response = httparse::Response::new(&mut headers);
    let status = response.parse(&out).expect("the 101 answer is HTTP");
    assert_eq!(status, httparse::Status::Complete(out.len()));
    assert_eq!(response.code, Some(101));
    let get = |name: &str| {
        let mut all = response
            .headers
            .iter()
            .filter(|x| x.name.eq_ignore_ascii_case(name));
        let first = all.next().map(|x| x.value);
        assert!(all.next().is_none(), "{name} twice in the answer");
        first
    };
    assert_eq!(
        get("sec-websocket-accept"),
        Some(accept_key(r.key().as_bytes()).as_bytes())
    );
    if let Some(p) = get("sec-websocket-protocol") {
        assert_eq!(Some(p), offered.first().map(|o| o.as_bytes()));
    }
}

/// The decoded length of standard padded base64, or `None` if it is not that.
fn base64_len(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    if b.is_empty() || b.len() % 4 != 0 {
        return None;
    }
    let pad = b.iter().rev().take_while(|&&c| c == b'=').count();
    let body = &b[..b.len() - pad];
    if pad > 2
        || !body
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/')
    {
        return None;
    }
    Some(b.len() / 4 * 3 - pad)
}

fn round_trip(flags: u8, input: &mut Input) {
    let server_config = deflate_config(input.byte());
    let client_config = deflate_config(input.byte());
    let rest = input.rest();
    let mut parts = rest.split(|&b| b == 0xFF);
    let mut text = || String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let host = text();
    let path = text();
    let origin = text();
    let protocols = parts
        .next()
        .unwrap_or_default()
        .split(|&b| b == 0xFE)
        .filter(|p| !p.is_empty() || flags & 0x10 != 0)
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect::<Vec<_>>();
    let request = ClientRequest::default().host(host).path(path).origin((flags & 1 != 0).then_some(origin)).protocols(protocols).headers(HeaderMap::new()).deflate((flags & 2 != 0).then_some(client_config.clone()));
    let mut out = BytesMut::new();
    let handshake = match ClientHandshake::start(&request, &mut out) {
        Ok(h) => h,
        Err(_) => {
            assert!(out.is_empty(), "a refused request writes nothing");
            return;
        }
    };
    let limits = Limits::default().max_header_bytes(1 << 20);
    let written = out.clone();
    let upgrade = match UpgradeRequest::parse(&mut out, &limits) {
        Ok(Some(u)) => u,
        other => panic!("the server refuses {written:?} written by the client: {other:?}"),
    };
    assert!(out.is_empty());
    check_upgrade(&upgrade);
    assert_eq!(upgrade.target(), request.path);
    assert_eq!(
        upgrade.headers()["host"].as_bytes(),
        request.host.as_bytes()
    );
    // HTTP drops whitespace around a field value (RFC 9110 section 5.5).
    assert_eq!(
        upgrade.headers().get("origin").map(|o| o.as_bytes()),
        request
            .origin
            .as_deref()
            .map(|o| o.trim_matches([' ', '\t']).as_bytes())
    );
    assert_eq!(upgrade.protocols().collect::<Vec<_>>(), request.protocols);
    assert_eq!(upgrade.key(), handshake.key());

    let chosen = upgrade.protocols().last();
    let server_deflate = (flags & 4 != 0).then_some(&server_config);
    let mut response = BytesMut::new();
    let agreed =
        upgrade.accept_with_deflate(chosen, server_deflate, &HeaderMap::new(), &mut response);
    let answered = response.clone();
    let accepted = match handshake.receive(&mut response, &Limits::default()) {
        Ok(Some(r)) => r,
        other => panic!("the client refuses {answered:?} to {written:?}: {other:?}"),
    };
    assert!(response.is_empty());
    assert_eq!(accepted.protocol.as_deref(), chosen);
    assert_eq!(
        accepted.deflate, agreed,
        "both ends agree on permessage-deflate"
    );
    if let Some(p) = agreed {
        assert!(request.deflate.is_some() && server_deflate.is_some());
        assert!(p.server_max_window_bits <= server_config.server_max_window_bits);
        assert!(p.client_max_window_bits <= server_config.client_max_window_bits);
        assert!(p.server_max_window_bits <= client_config.server_max_window_bits);
        assert!(p.client_max_window_bits <= client_config.client_max_window_bits);
        assert!(p.server_no_context_takeover || !server_config.server_no_context_takeover);
        assert!(p.server_no_context_takeover || !client_config.server_no_context_takeover);
    }
}
