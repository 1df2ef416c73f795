//! Helpers shared by the integration tests: a frame builder and a frame parser that are
//! written independently of the crate's own encoder, so the tests check the wire format
//! rather than the crate against itself.
#![allow(dead_code)]

use bytes::BytesMut;
use duplex_proto::{CloseCode, Connection, ConnectionState, Error, Limits, Message, Role};

/// The masking key used by the frames this module builds (the one from RFC 6455 5.7).
pub const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

pub const OP_CONT: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

pub const ROLES: [Role; 2] = [Role::Client, Role::Server];

/// The role at the other end.
pub fn peer_of(role: Role) -> Role {
    match role {
        Role::Client => Role::Server,
        Role::Server => Role::Client,
    }
}

/// A frame header with the shortest length encoding, masked with [`MASK`] when `masked`.
pub fn header(masked: bool, fin: bool, rsv: u8, opcode: u8, len: u64) -> Vec<u8> {
    let mut out = vec![(fin as u8) << 7 | (rsv & 7) << 4 | (opcode & 0x0F)];
    let mask_bit = if masked { 0x80 } else { 0 };
    if len <= 125 {
        out.push(mask_bit | len as u8);
    } else if len <= 0xFFFF {
        out.push(mask_bit | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&len.to_be_bytes());
    }
    if masked {
        out.extend_from_slice(&MASK);
    }
    out
}

/// A complete frame, masked with [`MASK`] when `masked`.
pub fn frame(masked: bool, fin: bool, rsv: u8, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = header(masked, fin, rsv, opcode, payload.len() as u64);
    if masked {
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    } else {
        out.extend_from_slice(payload);
    }
    out
}

/// A frame as the peer of `receiver` legitimately sends it: masked towards a server,
/// unmasked towards a client.
pub fn frame_to(receiver: Role, fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    frame(receiver == Role::Server, fin, 0, opcode, payload)
}

/// A header as the peer of `receiver` legitimately sends it.
pub fn header_to(receiver: Role, fin: bool, opcode: u8, len: u64) -> Vec<u8> {
    header(receiver == Role::Server, fin, 0, opcode, len)
}

/// A close frame payload: the code in network order, then the reason.
pub fn close_payload(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason);
    p
}

/// A frame decoded from bytes a connection wrote, with the payload unmasked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireFrame {
    pub fin: bool,
    pub rsv: u8,
    pub opcode: u8,
    pub mask: Option<[u8; 4]>,
    pub payload: Vec<u8>,
    /// Bytes the header took on the wire.
    pub header_len: usize,
}

/// Decodes every frame in `bytes`, which must hold whole frames only.
pub fn parse_frames(mut bytes: &[u8]) -> Vec<WireFrame> {
    let mut frames = Vec::new();
    while !bytes.is_empty() {
        assert!(bytes.len() >= 2, "truncated frame header: {bytes:x?}");
        let fin = bytes[0] & 0x80 != 0;
        let rsv = (bytes[0] >> 4) & 7;
        let opcode = bytes[0] & 0x0F;
        let masked = bytes[1] & 0x80 != 0;
        let (len, mut pos) = match bytes[1] & 0x7F {
            126 => (u16::from_be_bytes([bytes[2], bytes[3]]) as usize, 4),
            127 => (
                u64::from_be_bytes(bytes[2..10].try_into().unwrap()) as usize,
                10,
            ),
            n => (n as usize, 2),
        };
        let mask = masked.then(|| {
            let m = [bytes[pos], bytes[pos + 1], bytes[pos + 2], bytes[pos + 3]];
            pos += 4;
            m
        });
        assert!(bytes.len() >= pos + len, "truncated frame payload");
        let mut payload = bytes[pos..pos + len].to_vec();
        if let Some(m) = mask {
            for (i, b) in payload.iter_mut().enumerate() {
                *b ^= m[i % 4];
            }
        }
        frames.push(WireFrame {
            fin,
            rsv,
            opcode,
            mask,
            payload,
            header_len: pos,
        });
        bytes = &bytes[pos + len..];
    }
    frames
}

/// Checks that `out` holds exactly the frames `role` must write: masked for a client,
/// unmasked for a server, never with reserved bits.
pub fn frames_written_by(role: Role, out: &[u8]) -> Vec<WireFrame> {
    let frames = parse_frames(out);
    for f in &frames {
        assert_eq!(f.rsv, 0, "reserved bits in a frame we wrote");
        assert_eq!(
            f.mask.is_some(),
            role == Role::Client,
            "{role:?} frames must be masked iff the writer is a client"
        );
    }
    frames
}

/// Asserts that the last bytes of `out` are a close frame with `code` and nothing else, in
/// the exact layout `role` writes: `88 02 hi lo` for a server, `88 82 m0 m1 m2 m3` and the
/// masked code for a client.
pub fn assert_ends_with_close(role: Role, out: &[u8], code: u16) {
    let [hi, lo] = code.to_be_bytes();
    match role {
        Role::Server => {
            assert!(
                out.ends_with(&[0x88, 0x02, hi, lo]),
                "server output {out:x?} does not end with close {code}"
            );
        }
        Role::Client => {
            assert!(
                out.len() >= 8,
                "client output {out:x?} too short for a close"
            );
            let tail = &out[out.len() - 8..];
            assert_eq!(&tail[..2], &[0x88, 0x82], "client close header in {out:x?}");
            let m = &tail[2..6];
            assert_eq!(
                [tail[6] ^ m[0], tail[7] ^ m[1]],
                [hi, lo],
                "client close code in {out:x?}"
            );
        }
    }
}

/// Feeds `input` to a fresh connection of `role` and checks it is rejected exactly: the
/// returned violation, its close code (checked against the RFC's number `code`), the close
/// frame at the end of the output, the state, and that the connection is dead afterwards.
/// Any messages decoded before the failure are returned.
pub fn assert_rejected(
    role: Role,
    limits: Limits,
    input: &[u8],
    expected: duplex_proto::Violation,
    code: u16,
) -> Vec<Message> {
    assert_rejected_by(Connection::new(role, limits), input, expected, code)
}

/// [`assert_rejected`] on a connection set up by the caller (with permessage-deflate, a
/// message in progress, ...).
pub fn assert_rejected_by(
    mut conn: Connection,
    input: &[u8],
    expected: duplex_proto::Violation,
    code: u16,
) -> Vec<Message> {
    let role = conn.role();
    let mut out = BytesMut::new();
    let mut buf = BytesMut::from(input);
    let mut before = Vec::new();
    let err = loop {
        match conn.receive(&mut buf, &mut out) {
            Ok(Some(m)) => before.push(m),
            Ok(None) => panic!("{role:?}: {input:x?} was not rejected (expected {expected:?})"),
            Err(e) => break e,
        }
    };
    check_failure(role, &mut conn, &mut out, err, expected, code);
    before
}

/// Checks a failure the caller provoked on `conn`: the returned error is exactly
/// `expected`, whose close code is the RFC's number `code`; `out` ends with the close
/// frame carrying that code (and holds only one close frame); the state is closed; and
/// the connection neither receives nor sends anything afterwards.
pub fn check_failure(
    role: Role,
    conn: &mut Connection,
    out: &mut BytesMut,
    err: Error,
    expected: duplex_proto::Violation,
    code: u16,
) {
    assert_eq!(err, Error::Protocol(expected.clone()), "{role:?}");
    assert_eq!(expected.close_code(), CloseCode::from(code));
    assert_eq!(expected.close_code().as_u16(), code);
    assert_ends_with_close(role, out, code);
    let closes = frames_written_by(role, out)
        .into_iter()
        .filter(|f| f.opcode == OP_CLOSE)
        .count();
    assert_eq!(closes, 1, "exactly one close frame written");
    assert_eq!(conn.state(), ConnectionState::Closed);

    // A failed connection receives nothing more and sends nothing more.
    let written = out.len();
    let mut more = BytesMut::from(&frame_to(role, true, OP_TEXT, b"late")[..]);
    assert_eq!(conn.receive(&mut more, out), Ok(None));
    assert!(more.is_empty(), "bytes after the failure are discarded");
    assert_eq!(
        conn.send(&Message::text("x"), out),
        Err(Error::SendAfterClose)
    );
    assert_eq!(out.len(), written, "nothing written after the failure");
}

/// Feeds all of `input` at once and collects messages until more input is needed.
pub fn receive_all(
    conn: &mut Connection,
    input: &mut BytesMut,
    out: &mut BytesMut,
) -> Result<Vec<Message>, Error> {
    let mut msgs = Vec::new();
    while let Some(m) = conn.receive(input, out)? {
        msgs.push(m);
    }
    Ok(msgs)
}

/// Feeds `wire` to `conn` in chunks of the given sizes (cycled; each at least 1), draining
/// messages after every chunk.
pub fn receive_chunked(
    conn: &mut Connection,
    wire: &[u8],
    sizes: &[usize],
    out: &mut BytesMut,
) -> Result<Vec<Message>, Error> {
    let mut input = BytesMut::new();
    let mut msgs = Vec::new();
    let mut pos = 0;
    let mut i = 0;
    while pos < wire.len() {
        let size = sizes
            .get(i % sizes.len().max(1))
            .copied()
            .unwrap_or(1)
            .max(1);
        let end = (pos + size).min(wire.len());
        input.extend_from_slice(&wire[pos..end]);
        pos = end;
        i += 1;
        msgs.extend(receive_all(conn, &mut input, out)?);
    }
    Ok(msgs)
}
