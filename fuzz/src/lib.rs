//! Helpers shared by the fuzz targets: reading the fuzzer's input, cutting the wire into
//! fuzzer-chosen chunks, and an independent frame parser (written apart from the crate's
//! own, so the targets check the wire format rather than the crate against itself).

use duplex_proto::{CloseCode, Limits, Violation};

/// The fuzzer's input, read front to back; reading past the end yields zeros, so every
/// input is valid.
pub struct Input<'a>(pub &'a [u8]);

impl<'a> Input<'a> {
    /// The next byte, or 0 at the end.
    pub fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    /// The next big-endian `u16`.
    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.byte(), self.byte()])
    }

    /// The next `n` bytes (fewer at the end).
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }

    /// Read chunk sizes: a count byte (0..=7), then one byte per size, where 0 means
    /// "everything left". An empty list also means one chunk.
    pub fn chunk_sizes(&mut self) -> Chunks {
        let n = usize::from(self.byte() % 8);
        let mut sizes = [0u8; 7];
        for s in sizes.iter_mut().take(n) {
            *s = self.byte();
        }
        Chunks { sizes, n }
    }

    /// Everything not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.0)
    }
}

/// Where to cut a byte stream, as the network would: sizes cycled over the stream.
#[derive(Clone, Copy, Debug)]
pub struct Chunks {
    sizes: [u8; 7],
    n: usize,
}

impl Chunks {
    /// The size of chunk `i` when `left` bytes remain: at least 1, at most `left`.
    pub fn size(&self, i: usize, left: usize) -> usize {
        let size = match self.n {
            0 => left,
            n => match self.sizes[i % n] {
                0 => left,
                s => usize::from(s),
            },
        };
        size.min(left).max(1)
    }

    /// Splits `wire` into the chunks, in order; never an empty chunk.
    pub fn split<'w>(&self, mut wire: &'w [u8]) -> impl Iterator<Item = &'w [u8]> + 'w {
        let this = *self;
        let mut i = 0;
        std::iter::from_fn(move || {
            if wire.is_empty() {
                return None;
            }
            let (chunk, rest) = wire.split_at(this.size(i, wire.len()));
            i += 1;
            wire = rest;
            Some(chunk)
        })
    }
}

/// Limits from a selector: small ones, so the fuzzer reaches every limit, and the default.
pub fn limits(selector: u8) -> Limits {
    let d = Limits::default();
    let (frame, message, fragments) = match selector % 8 {
        0 => return d,
        1 => (125, 125, 4),
        2 => (1000, 4000, 16),
        3 => (16, 64, 8),
        4 => (65_536, 65_536, 64),
        5 => (0, 0, 1),
        6 => (300, 200, 100_000),
        _ => (d.max_frame_size, d.max_message_size, 3),
    };
    d.max_frame_size(frame).max_message_size(message).max_fragments(fragments)
}

/// The close code RFC 6455 (sections 7.4.1, 8.1) requires for each violation, written out
/// here again rather than taken from the crate.
pub fn expected_close_code(v: &Violation) -> u16 {
    match v {
        Violation::InvalidUtf8
        | Violation::InvalidCloseReason
        | Violation::InvalidCompressedData => 1007,
        Violation::FrameTooLarge { .. }
        | Violation::MessageTooLarge { .. }
        | Violation::TooManyFragments(_) => 1009,
        Violation::ReservedBits
        | Violation::ReservedOpcode(_)
        | Violation::ControlFrameTooLong
        | Violation::FragmentedControlFrame
        | Violation::UnmaskedClientFrame
        | Violation::MaskedServerFrame
        | Violation::UnexpectedContinuation
        | Violation::ExpectedContinuation
        | Violation::LengthTopBit
        | Violation::CloseFrameOneByte
        | Violation::InvalidCloseCode(_) => 1002,
        // `Violation` is non-exhaustive: a new one fails the oracle loudly until its
        // code is written out here.
        other => panic!("no expected close code written for {other:?}: add it here"),
    }
}

/// Whether a close code may be on the wire (RFC 6455 section 7.4), written out again.
pub fn wire_close_code(code: CloseCode) -> bool {
    matches!(code.as_u16(), 1000..=1003 | 1007..=1011 | 1012..=1014 | 3000..=4999)
}

/// A frame decoded from bytes a connection wrote, with the payload unmasked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireFrame {
    pub fin: bool,
    pub rsv: u8,
    pub opcode: u8,
    pub masked: bool,
    pub payload: Vec<u8>,
}

/// Decodes every frame in `bytes`, which must hold whole frames only (it panics, and so
/// fails the target, otherwise).
pub fn parse_frames(mut bytes: &[u8]) -> Vec<WireFrame> {
    let mut frames = Vec::new();
    while !bytes.is_empty() {
        assert!(bytes.len() >= 2, "truncated frame header: {bytes:x?}");
        let masked = bytes[1] & 0x80 != 0;
        let (len, mut pos) = match bytes[1] & 0x7F {
            126 => (u16::from_be_bytes([bytes[2], bytes[3]]) as usize, 4),
            127 => (
                u64::from_be_bytes(bytes[2..10].try_into().unwrap()) as usize,
                10,
            ),
            n => (n as usize, 2),
        };
        let mut mask = [0u8; 4];
        if masked {
            mask.copy_from_slice(&bytes[pos..pos + 4]);
            pos += 4;
        }
        assert!(bytes.len() >= pos + len, "truncated frame payload");
        let mut payload = bytes[pos..pos + len].to_vec();
        if masked {
            for (i, b) in payload.iter_mut().enumerate() {
                *b ^= mask[i % 4];
            }
        }
        frames.push(WireFrame {
            fin: bytes[0] & 0x80 != 0,
            rsv: (bytes[0] >> 4) & 7,
            opcode: bytes[0] & 0x0F,
            masked,
            payload,
        });
        bytes = &bytes[pos + len..];
    }
    frames
}

/// A frame as a peer writes it: masked (with a fixed key) iff `masked`, shortest length.
pub fn frame(masked: bool, fin: bool, rsv: u8, opcode: u8, payload: &[u8], out: &mut Vec<u8>) {
    out.push((fin as u8) << 7 | (rsv & 7) << 4 | (opcode & 0x0F));
    let mask_bit = if masked { 0x80 } else { 0 };
    let len = payload.len();
    if len <= 125 {
        out.push(mask_bit | len as u8);
    } else if len <= 0xFFFF {
        out.push(mask_bit | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
    if masked {
        out.extend_from_slice(&MASK);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    } else {
        out.extend_from_slice(payload);
    }
}

pub mod hub;

pub mod frames {
    //! The frame decoder in one role: a shared body for `frame_server` and `frame_client`.

    use super::{expected_close_code, limits, parse_frames, wire_close_code, Input};
    use bytes::BytesMut;
    use duplex_proto::deflate::{DeflateConfig, DeflateParams};
    use duplex_proto::{Connection, ConnectionState, Error, Limits, Message, Role};

    /// Input: two config bytes (deflate on/off and its parameters, limits, the
    /// re-encoder's level), chunk sizes, then the bytes the peer sends.
    ///
    /// Invariants: no panic; every message obeys the limits (data at most
    /// `max_message_size`, text valid UTF-8, control payloads at most 125 bytes, close
    /// codes valid on the wire); every error is a protocol violation with the close code
    /// RFC 6455 requires, and the only frames written are the pongs, the close echo or
    /// that close frame, in order, masked iff a client writes them; once closed or failed
    /// the connection reads and writes nothing more; and the delivered messages, encoded
    /// again by a peer and decoded by a fresh connection, come out the same.
    pub fn run(role: Role, data: &[u8]) {
        let mut input = Input(data);
        let (a, b) = (input.byte(), input.byte());
        let params = DeflateParams {
            server_no_context_takeover: a & 0b10 != 0,
            client_no_context_takeover: a & 0b100 != 0,
            server_max_window_bits: 8 + ((a >> 3) & 7),
            client_max_window_bits: 8 + (b & 7),
        };
        let deflate = (a & 1 != 0).then_some(params);
        let limits = limits(b >> 3);
        let config = DeflateConfig::default().level([0, 1, 6, 9][usize::from(a >> 6)]).threshold(if b & 0x40 != 0 { 0 } else { 32 });
        let chunks = input.chunk_sizes();
        let wire = input.rest();

        let connection = |limits: Limits| {
            let c = Connection::new(role, limits);
            match deflate {
                Some(p) => c.with_deflate(p, &config),
                None => c,
            }
        };
        let mut conn = connection(limits.clone());
        let (mut buf, mut out) = (BytesMut::new(), BytesMut::new());
        let mut delivered = Vec::new();
        // (opcode, payload) of each frame the connection must have written.
        let mut expected: Vec<(u8, Vec<u8>)> = Vec::new();
        for chunk in chunks.split(wire) {
            buf.extend_from_slice(chunk);
            if conn.state() == ConnectionState::Closed {
                let written = out.len();
                assert_eq!(conn.receive(&mut buf, &mut out), Ok(None));
                assert!(buf.is_empty(), "bytes after the close are discarded");
                assert_eq!(out.len(), written, "nothing written once closed");
                continue;
            }
            loop {
                assert_eq!(conn.state(), ConnectionState::Open);
                match conn.receive(&mut buf, &mut out) {
                    Ok(Some(m)) => {
                        check_message(&m, &limits);
                        match &m {
                            Message::Ping(p) => expected.push((0xA, p.to_vec())),
                            Message::Close(f) => {
                                assert_eq!(conn.state(), ConnectionState::Closed);
                                let code = f.as_ref().map(|f| f.code.as_u16().to_be_bytes());
                                expected.push((0x8, code.map_or(Vec::new(), |c| c.to_vec())));
                            }
                            _ => {}
                        }
                        delivered.push(m);
                        if conn.state() == ConnectionState::Closed {
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(Error::Protocol(v)) => {
                        assert_eq!(conn.state(), ConnectionState::Closed);
                        let code = expected_close_code(&v);
                        assert_eq!(v.close_code().as_u16(), code, "{v:?}");
                        assert!(
                            deflate.is_some()
                                || v != duplex_proto::Violation::InvalidCompressedData,
                            "compressed data without deflate"
                        );
                        expected.push((0x8, code.to_be_bytes().to_vec()));
                        break;
                    }
                    Err(e) => panic!("receive failed with a non-protocol error: {e:?}"),
                }
            }
        }

        let written: Vec<(u8, Vec<u8>)> = parse_frames(&out)
            .into_iter()
            .map(|f| {
                assert!(f.fin && f.rsv == 0, "{f:?}");
                assert_eq!(f.masked, role == Role::Client, "{f:?}");
                (f.opcode, f.payload)
            })
            .collect();
        assert_eq!(written, expected, "frames written in reply");

        if delivered.is_empty() {
            return;
        }
        // Encode what was delivered as the peer would, decode it again: the same messages.
        let peer_role = match role {
            Role::Client => Role::Server,
            Role::Server => Role::Client,
        };
        let mut peer = Connection::new(peer_role, Limits::default());
        if let Some(p) = deflate {
            peer = peer.with_deflate(p, &config);
        }
        let mut again_wire = BytesMut::new();
        for m in &delivered {
            peer.send(m, &mut again_wire)
                .unwrap_or_else(|e| panic!("re-encoding {m:?}: {e:?}"));
        }
        // One frame per message now, so the frame limit is the message limit.
        let mut again = connection(Limits::default().max_frame_size(usize::MAX));
        let mut again_out = BytesMut::new();
        let mut decoded = Vec::new();
        loop {
            match again.receive(&mut again_wire, &mut again_out) {
                Ok(Some(m)) => decoded.push(m),
                Ok(None) => break,
                Err(e) => panic!("decoding re-encoded messages: {e:?}"),
            }
        }
        assert!(again_wire.is_empty());
        assert_eq!(
            decoded, delivered,
            "decode, encode, decode changed the messages"
        );
    }

    /// What every delivered message must satisfy under `limits`.
    fn check_message(m: &Message, limits: &Limits) {
        match m {
            Message::Text(t) => {
                assert!(
                    std::str::from_utf8(t.as_bytes()).is_ok(),
                    "text is not UTF-8"
                );
                assert!(t.len() <= limits.max_message_size, "text over the limit");
            }
            Message::Binary(b) => {
                assert!(b.len() <= limits.max_message_size, "binary over the limit")
            }
            Message::Ping(p) | Message::Pong(p) => assert!(p.len() <= 125),
            Message::Close(Some(f)) => {
                assert!(wire_close_code(f.code), "close code {}", f.code);
                assert!(f.reason.len() <= 123);
            }
            Message::Close(None) => {}
        }
    }
}

pub mod stream {
    //! An in-memory stream that plays a proxy: it serves a script in fuzzer-chosen
    //! chunks (then end of file) and records what the client writes; and a runner that
    //! polls a future to completion without a runtime, since the stream is always ready.

    use super::Chunks;
    use std::future::Future;
    use std::io;
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

    /// Serves `script` in chunks; `served` counts the bytes handed out.
    pub struct Scripted<'a> {
        pub script: &'a [u8],
        pub chunks: Chunks,
        pub served: usize,
        pub reads: usize,
        pub written: Vec<u8>,
    }

    impl<'a> Scripted<'a> {
        pub fn new(script: &'a [u8], chunks: Chunks) -> Self {
            Self {
                script,
                chunks,
                served: 0,
                reads: 0,
                written: Vec::new(),
            }
        }
    }

    impl AsyncRead for Scripted<'_> {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let left = self.script.len() - self.served;
            if left > 0 && buf.remaining() > 0 {
                let n = self.chunks.size(self.reads, left).min(buf.remaining());
                let start = self.served;
                buf.put_slice(&self.script[start..start + n]);
                self.served += n;
                self.reads += 1;
            }
            Poll::Ready(Ok(()))
        }
    }

    impl AsyncWrite for Scripted<'_> {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            data: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.written.extend_from_slice(data);
            Poll::Ready(Ok(data.len()))
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// Polls `f` until it is ready. Its stream never blocks, so a future still pending
    /// after many polls is stuck: that fails the target.
    pub fn run<F: Future>(f: F) -> F::Output {
        let mut f = std::pin::pin!(f);
        let waker = futures_task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        for _ in 0..1_000_000 {
            if let Poll::Ready(out) = f.as_mut().poll(&mut cx) {
                return out;
            }
        }
        panic!("the exchange is stuck on an always-ready stream");
    }
}

/// Whether any `name` header of `headers` lists `token` (comma-separated,
/// case-insensitive): the check both handshake targets make of accepted heads.
pub fn has_token(headers: &http::HeaderMap, name: &str, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.as_bytes()
            .split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    })
}
