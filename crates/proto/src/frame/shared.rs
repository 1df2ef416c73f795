//! Frames encoded once and sent to many connections.

use super::{FrameHeader, OpCode};
use crate::error::Error;
use crate::message::Message;
use bytes::{Bytes, BytesMut};

/// A message encoded once as a server frame (unmasked, uncompressed), to broadcast to any
/// number of server connections without re-encoding or copying it per connection: each
/// connection queues the same [`Bytes`].
///
/// ```
/// use bytes::BytesMut;
/// use duplex_proto::frame::SharedFrame;
/// use duplex_proto::{Connection, Limits, Message, Role};
///
/// let frame = SharedFrame::new(&Message::text("tick")).unwrap();
/// let mut server = Connection::new(Role::Server, Limits::default());
/// server.check_shared(&frame).unwrap(); // the connection may send it now
/// assert_eq!(&frame.bytes()[..], b"\x81\x04tick");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharedFrame {
    bytes: Bytes,
}

impl SharedFrame {
    /// Encodes a text, binary, ping or pong message. Close frames change the state of
    /// each connection and are sent one by one.
    pub fn new(message: &Message) -> Result<Self, Error> {
        let (opcode, payload): (OpCode, &[u8]) = match message {
            Message::Text(t) => (OpCode::Text, t.as_bytes()),
            Message::Binary(b) => (OpCode::Binary, b),
            Message::Ping(p) => (OpCode::Ping, p),
            Message::Pong(p) => (OpCode::Pong, p),
            Message::Close(_) => return Err(Error::InvalidSend("close frames cannot be shared")),
        };
        if opcode.is_control() && payload.len() > 125 {
            return Err(Error::InvalidSend("control frame payload over 125 bytes"));
        }
        let header = FrameHeader {
            fin: true,
            rsv: 0,
            opcode,
            mask: None,
            payload_len: payload.len() as u64,
        };
        let mut out = BytesMut::with_capacity(header.encoded_len() + payload.len());
        header.encode_with_payload(payload, &mut out);
        Ok(Self {
            bytes: out.freeze(),
        })
    }

    /// The encoded frame.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }
}
