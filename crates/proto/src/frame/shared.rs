//! Frames encoded once and sent to many connections.

use super::{FrameHeader, OpCode};
use crate::error::{Error, InvalidSend};
use crate::message::Message;
use bytes::{Bytes, BytesMut};
use std::sync::{Arc, RwLock};

/// A message encoded once as a server frame, to broadcast to any number of server
/// connections without re-encoding or copying it per connection: each connection queues
/// the same [`Bytes`].
///
/// Connections that negotiated permessage-deflate get the message compressed, also once:
/// once per compressor setting (level and window size), on the first connection that
/// needs that setting, with a fresh compressor, so that every connection with that
/// setting can send it whatever its compression history. (A connection with context
/// takeover then starts its own history afresh: its next message compresses without
/// reference to earlier ones.) Cloning is cheap; clones share the encodings.
///
/// ```
/// use bytes::BytesMut;
/// use duplex_proto::frame::SharedFrame;
/// use duplex_proto::{Connection, Limits, Message, Role};
///
/// let frame = SharedFrame::new(&Message::text("tick")).unwrap();
/// let mut server = Connection::new(Role::Server, Limits::default());
/// let bytes = server.send_shared(&frame).unwrap(); // what this connection must write
/// assert_eq!(&bytes[..], b"\x81\x04tick");
/// assert_eq!(&frame.bytes()[..], b"\x81\x04tick");
/// ```
#[derive(Clone, Debug)]
pub struct SharedFrame {
    inner: Arc<Encodings>,
}

#[derive(Debug)]
struct Encodings {
    opcode: OpCode,
    /// The payload as given, kept for compressing (data messages only).
    payload: Bytes,
    /// The uncompressed frame.
    plain: Bytes,
    /// Compressed frames by (level, window bits); `None` where compressing does not
    /// make the frame smaller.
    compressed: RwLock<Vec<(Setting, Option<Bytes>)>>,
}

use crate::deflate::CompressorSetting as Setting;

impl SharedFrame {
    /// Encodes a text, binary, ping or pong message. Close frames change the state of
    /// each connection and are sent one by one.
    pub fn new(message: &Message) -> Result<Self, Error> {
        let (opcode, payload): (OpCode, Bytes) = match message {
            Message::Text(t) => (OpCode::Text, t.as_bytes().clone()),
            Message::Binary(b) => (OpCode::Binary, b.clone()),
            Message::Ping(p) => (OpCode::Ping, p.clone()),
            Message::Pong(p) => (OpCode::Pong, p.clone()),
            Message::Close(_) => return Err(Error::InvalidSend(InvalidSend::SharedClose)),
        };
        if opcode.is_control() && payload.len() > 125 {
            return Err(Error::InvalidSend(InvalidSend::ControlPayloadTooLong));
        }
        let plain = encode(opcode, 0, &payload);
        Ok(Self {
            inner: Arc::new(Encodings {
                opcode,
                payload: if opcode.is_control() {
                    Bytes::new()
                } else {
                    payload
                },
                plain,
                compressed: RwLock::new(Vec::new()),
            }),
        })
    }

    /// The uncompressed frame.
    pub fn bytes(&self) -> &Bytes {
        &self.inner.plain
    }

    /// Whether it carries a data message (text or binary), which may be compressed.
    pub(crate) fn is_data(&self) -> bool {
        !self.inner.opcode.is_control()
    }

    /// The payload length before compression.
    pub(crate) fn payload_len(&self) -> usize {
        self.inner.payload.len()
    }

    /// The frame compressed with this setting, compressed on first use; `None` when
    /// compression does not make it smaller.
    pub(crate) fn compressed(&self, setting: Setting) -> Option<Bytes> {
        let found = |list: &[(Setting, Option<Bytes>)]| {
            list.iter()
                .find(|(s, _)| *s == setting)
                .map(|(_, b)| b.clone())
        };
        // A poisoned lock only means another thread panicked while holding it; the list
        // is still consistent (entries are pushed whole).
        if let Some(hit) = found(
            &self
                .inner
                .compressed
                .read()
                .unwrap_or_else(|e| e.into_inner()),
        ) {
            return hit;
        }
        let mut list = self
            .inner
            .compressed
            .write()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(hit) = found(&list) {
            return hit;
        }
        let payload = &self.inner.payload;
        let mut deflated = Vec::new();
        crate::deflate::compress_fresh(setting.level, setting.window_bits, payload, &mut deflated);
        let frame =
            (deflated.len() < payload.len()).then(|| encode(self.inner.opcode, 0b100, &deflated));
        list.push((setting, frame.clone()));
        frame
    }
}

/// Two shared frames are equal when they carry the same message.
impl PartialEq for SharedFrame {
    fn eq(&self, other: &Self) -> bool {
        self.inner.plain == other.inner.plain
    }
}

impl Eq for SharedFrame {}

fn encode(opcode: OpCode, rsv: u8, payload: &[u8]) -> Bytes {
    let header = FrameHeader {
        fin: true,
        rsv,
        opcode,
        mask: None,
        payload_len: payload.len() as u64,
    };
    let mut out = BytesMut::with_capacity(header.encoded_len() + payload.len());
    header.encode_with_payload(payload, &mut out);
    out.freeze()
}
