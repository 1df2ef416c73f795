//! The client's handshake response parser.
//!
//! Input: a byte choosing the client's offer (subprotocols, permessage-deflate and its
//! parameters), a limits byte, chunk sizes, then the server's response. Every `@A@` in
//! the response is replaced by the right `Sec-WebSocket-Accept` value for this
//! handshake's random key, so the fuzzer gets past the accept check.
//!
//! Invariants: no panic; the same outcome at once or in chunks; nothing consumed while
//! incomplete; an accepted response is a 101 with exactly one
//! `Sec-WebSocket-Accept` that matches the key, `Upgrade: websocket`,
//! `Connection: upgrade`, at most one subprotocol and only an offered one, and
//! permessage-deflate only if offered, within the offered windows and with the context
//! takeover asked for; exactly its head is consumed; and the agreed parameters work: a
//! message compressed by either end inflates at the other.
#![no_main]

use bytes::BytesMut;
use duplex_fuzz::Input;
use duplex_proto::deflate::DeflateConfig;
use duplex_proto::handshake::accept_key;
use duplex_proto::handshake::client::{ClientHandshake, ClientRequest, ServerResponse};
use duplex_proto::{Connection, HandshakeFailure, Limits, Message, Role};
use libfuzzer_sys::fuzz_target;

const PROTOCOLS: [&str; 3] = ["chat", "superchat", "v2.json"];

#[derive(Debug, PartialEq)]
enum Outcome {
    Incomplete,
    /// Protocol, deflate parameters, bytes left in the input.
    Accepted(
        Option<String>,
        Option<duplex_proto::deflate::DeflateParams>,
        usize,
    ),
    Failed(HandshakeFailure),
}

fn receive(handshake: &ClientHandshake, buf: &mut BytesMut, limits: &Limits) -> Outcome {
    let fed = buf.len();
    match handshake.receive(buf, limits) {
        Ok(None) => {
            assert_eq!(buf.len(), fed);
            assert!(fed <= limits.max_header_bytes);
            Outcome::Incomplete
        }
        Ok(Some(r)) => {
            check(handshake, &r);
            Outcome::Accepted(r.protocol, r.deflate, buf.len())
        }
        Err(e) => {
            // The connection is dropped after a failure: whether its head was consumed
            // does not matter.
            assert!(buf.len() <= fed);
            Outcome::Failed(e)
        }
    }
}

fn check(handshake: &ClientHandshake, r: &ServerResponse) {
    let h = &r.headers;
    assert_eq!(r.status, 101);
    let accepts: Vec<_> = h.get_all("sec-websocket-accept").iter().collect();
    assert_eq!(accepts.len(), 1);
    assert_eq!(
        accepts[0].as_bytes().trim_ascii(),
        accept_key(handshake.key().as_bytes()).as_bytes()
    );
    let has = |name: &str, token: &str| duplex_fuzz::has_token(&h, name, token);
    assert!(has("upgrade", "websocket"));
    assert!(has("connection", "upgrade"));
    assert!(h.get_all("sec-websocket-protocol").iter().count() <= 1);
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let offer = input.byte();
    let deflate_byte = input.byte();
    let limits_byte = input.byte();
    let protocols: Vec<String> = PROTOCOLS
        .iter()
        .enumerate()
        .filter(|(i, _)| offer & (1 << i) != 0)
        .map(|(_, p)| p.to_string())
        .collect();
    let config = DeflateConfig::default().server_no_context_takeover(deflate_byte & 1 != 0).client_no_context_takeover(deflate_byte & 2 != 0).server_max_window_bits(8 + ((deflate_byte >> 2) & 7)).client_max_window_bits(15 - ((deflate_byte >> 5) & 7));
    let request = ClientRequest::default().host("example.com".into()).path("/".into()).protocols(protocols).deflate((offer & 8 != 0).then_some(config.clone()));
    let limits = Limits::default().max_header_bytes([64, 512, 8192, 1 << 20][usize::from(limits_byte & 3)]).max_headers([4, 64][usize::from((limits_byte >> 2) & 1)]);
    let chunks = input.chunk_sizes();
    let mut out = BytesMut::new();
    let handshake = ClientHandshake::start(&request, &mut out).expect("a valid request");

    let raw = input.rest();
    let accept = accept_key(handshake.key().as_bytes());
    let mut wire = Vec::with_capacity(raw.len() + 32);
    let mut i = 0;
    while i < raw.len() {
        if raw[i..].starts_with(b"@A@") {
            wire.extend_from_slice(accept.as_bytes());
            i += 3;
        } else {
            wire.push(raw[i]);
            i += 1;
        }
    }

    let whole = receive(&handshake, &mut BytesMut::from(&wire[..]), &limits);
    let mut buf = BytesMut::new();
    let mut fed = 0;
    let mut chunked = Outcome::Incomplete;
    for chunk in chunks.split(&wire) {
        buf.extend_from_slice(chunk);
        fed += chunk.len();
        chunked = receive(&handshake, &mut buf, &limits);
        if chunked != Outcome::Incomplete {
            break;
        }
    }
    if let Outcome::Accepted(_, _, left) = &mut chunked {
        *left += wire.len() - fed;
    }
    // A head over the size limit fails as soon as that much is buffered, which may be
    // before the bytes that would fail it otherwise arrive.
    let too_large =
        |o: &Outcome| matches!(o, Outcome::Failed(HandshakeFailure::HeadersTooLarge(_)));
    if !(matches!(whole, Outcome::Failed(_)) && too_large(&chunked)) {
        assert_eq!(whole, chunked, "all at once vs in chunks");
    }

    let Outcome::Accepted(protocol, deflate, left) = whole else {
        return;
    };
    let head = &wire[..wire.len() - left];
    assert!(head.ends_with(b"\n\n") || head.ends_with(b"\n\r\n"));
    if let Some(p) = &protocol {
        assert!(request.protocols.contains(p), "{p:?} was not offered");
    }
    let Some(params) = deflate else {
        return;
    };
    assert!(
        request.deflate.is_some(),
        "deflate accepted without an offer"
    );
    assert!((8..=15).contains(&params.server_max_window_bits));
    assert!((8..=15).contains(&params.client_max_window_bits));
    assert!(params.server_max_window_bits <= config.server_max_window_bits);
    assert!(params.client_max_window_bits <= config.client_max_window_bits);
    assert!(params.server_no_context_takeover || !config.server_no_context_takeover);
    assert!(params.client_no_context_takeover || !config.client_no_context_takeover);

    // The agreed parameters work both ways.
    let server_config = DeflateConfig::default().threshold(0);
    let client_config = config.threshold(0);
    let mut client =
        Connection::new(Role::Client, Limits::default()).with_deflate(params, &client_config);
    let mut server =
        Connection::new(Role::Server, Limits::default()).with_deflate(params, &server_config);
    let text: String = "fuzzed handshake, agreed window ".repeat(40);
    let message = Message::text(text.as_str());
    let exchange = |tx: &mut Connection, rx: &mut Connection| {
        let mut wire = BytesMut::new();
        tx.send(&message, &mut wire).unwrap();
        let got = rx.receive(&mut wire, &mut BytesMut::new()).unwrap();
        assert_eq!(got.as_ref(), Some(&message));
    };
    // Twice each way, so a kept context is used again.
    for _ in 0..2 {
        exchange(&mut client, &mut server);
        exchange(&mut server, &mut client);
    }
});
