//! Helpers shared by the modules: parameters, connection pairs, transfers, payloads.

use super::*;

pub(crate) const PMD: &str = "permessage-deflate";
pub(crate) const RSV1: u8 = 0b100;
pub(crate) const TAIL: [u8; 4] = [0x00, 0x00, 0xFF, 0xFF];
pub(crate) const MIB: usize = 1 << 20;
pub(crate) const RFC_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// RFC 7692 section 7.2.3.1: "Hello" compressed, tail stripped.
pub(crate) const HELLO: [u8; 7] = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
/// RFC 7692 section 7.2.3.2: "Hello" again, as a back-reference into the first one.
pub(crate) const HELLO_AGAIN: [u8; 5] = [0xf2, 0x00, 0x11, 0x00, 0x00];

pub(crate) fn p(snct: bool, cnct: bool, server_bits: u8, client_bits: u8) -> DeflateParams {
    DeflateParams {
        server_no_context_takeover: snct,
        client_no_context_takeover: cnct,
        server_max_window_bits: server_bits,
        client_max_window_bits: client_bits,
    }
}

pub(crate) fn cfg(snct: bool, cnct: bool, server_bits: u8, client_bits: u8) -> DeflateConfig {
    DeflateConfig::default()
        .server_no_context_takeover(snct)
        .client_no_context_takeover(cnct)
        .server_max_window_bits(server_bits)
        .client_max_window_bits(client_bits)
}

pub(crate) fn with_threshold(threshold: usize) -> DeflateConfig {
    DeflateConfig::default().threshold(threshold)
}

/// A connection of `role` with permessage-deflate on.
pub(crate) fn deflating(role: Role, params: DeflateParams) -> Connection {
    Connection::new(role, Limits::default()).with_deflate(params, &DeflateConfig::default())
}

/// A client and a server that agreed on `params`, both with `config` and `limits`.
pub(crate) fn pair(
    params: DeflateParams,
    config: &DeflateConfig,
    limits: Limits,
) -> (Connection, Connection) {
    (
        Connection::new(Role::Client, limits.clone()).with_deflate(params, config),
        Connection::new(Role::Server, limits).with_deflate(params, config),
    )
}

/// (sender, receiver) out of a (client, server) pair for a sender of `role`.
pub(crate) fn ends<'a>(
    role: Role,
    client: &'a mut Connection,
    server: &'a mut Connection,
) -> (&'a mut Connection, &'a mut Connection) {
    match role {
        Role::Client => (client, server),
        Role::Server => (server, client),
    }
}

/// A frame with RSV1 as the peer of `receiver` sends it (masked towards a server).
pub(crate) fn compressed_to(receiver: Role, fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    frame(receiver == Role::Server, fin, RSV1, opcode, payload)
}

/// Parses the frames `role` wrote, checking the masking but allowing RSV1.
pub(crate) fn frames_from(role: Role, out: &[u8]) -> Vec<WireFrame> {
    let frames = parse_frames(out);
    for f in &frames {
        assert_eq!(f.mask.is_some(), role == Role::Client, "{role:?} masking");
        assert_eq!(f.rsv & 0b011, 0, "RSV2/RSV3 are never written");
    }
    frames
}

/// Sends each message with `send` and decodes it on the other end, returning the frames
/// on the wire and the messages received.
pub(crate) fn transfer(
    from: &mut Connection,
    to: &mut Connection,
    msgs: &[Message],
) -> (Vec<WireFrame>, Vec<Message>) {
    let mut wire = BytesMut::new();
    for m in msgs {
        from.send(m, &mut wire).unwrap();
    }
    let frames = frames_from(from.role(), &wire);
    let mut out = BytesMut::new();
    let got = receive_all(to, &mut wire, &mut out).unwrap();
    assert!(wire.is_empty(), "every frame consumed");
    assert!(out.is_empty(), "nothing to answer");
    (frames, got)
}

/// Text with words repeating at all sorts of distances, from a fixed seed.
pub(crate) fn words(len: usize, seed: u64) -> Vec<u8> {
    const VOCABULARY: [&str; 16] = [
        "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
        "juliett", "kilo", "lima", "mike", "november", "oscar", "papa",
    ];
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    let mut out = Vec::with_capacity(len + 16);
    while out.len() < len {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        out.extend_from_slice(VOCABULARY[(state >> 60) as usize].as_bytes());
        out.push(if state & 0x100 == 0 { b' ' } else { b'\n' });
    }
    out.truncate(len);
    out
}

/// Bytes that do not compress, from a fixed seed.
pub(crate) fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed ^ 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// Header values whose syntax is broken: the server declines everything in the request.
pub(crate) const MALFORMED: &[&str] = &[
    "permessage-deflate; server_max_window_bits=",
    "permessage-deflate; server_max_window_bits=\"\"",
    "permessage-deflate; server_max_window_bits=\"10",
    "permessage-deflate; server_max_window_bits=\"1 0\"",
    "permessage-deflate; server_max_window_bits=1 0",
    "permessage-deflate; server_max_window_bits=10=10",
    "permessage-deflate; client_max_window_bits=\"10\"x",
    "permessage-deflate; x=\"a\\",
    "permessage deflate",
    "permessage-deflate;",
    "permessage-deflate; ; server_no_context_takeover",
    "permessage-deflate; =10",
    "permessage-deflate; client max_window_bits",
    "\"permessage-deflate\"",
    "; permessage-deflate",
];

/// Window values that are tokens but not 8 to 15 without a leading zero.
pub(crate) const BAD_BITS: &[&str] = &[
    "0",
    "7",
    "16",
    "08",
    "010",
    "abc",
    "-1",
    "+9",
    "9.0",
    "1e1",
    "255",
    "256",
    "99999999999999999999",
    "\"7\"",
    "\"08\"",
];

/// The payload bytes of a data message.
pub(crate) fn m_bytes(m: &Message) -> &[u8] {
    match m {
        Message::Text(t) => t.as_bytes(),
        Message::Binary(b) => b,
        _ => &[],
    }
}
