//! Sending: messages, shared frames, fragments and the close frame, encoded into the
//! caller's output buffer (masked for a client, compressed when permessage-deflate
//! asks).

use super::{Connection, ConnectionState, Role};
use crate::close::CloseFrame;
use crate::error::{Error, InvalidSend};
use crate::frame::{FrameHeader, OpCode};
use crate::message::Message;
use bytes::{Bytes, BytesMut};
use rand::Rng;

impl Connection {
    /// Encodes a message into `output`: a data message as one frame (compressed when
    /// permessage-deflate is on and the message reaches the threshold), a ping or pong,
    /// or a close frame, which starts the close handshake.
    pub fn send(&mut self, message: &Message, output: &mut BytesMut) -> Result<(), Error> {
        let payload = match message {
            Message::Text(t) => Some((OpCode::Text, t.as_bytes())),
            Message::Binary(b) => Some((OpCode::Binary, b)),
            _ => None,
        };
        if let Some((opcode, payload)) = payload {
            if self
                .deflate
                .as_ref()
                .is_some_and(|d| d.wants(payload.len()))
            {
                return self.send_compressed(opcode, payload, output);
            }
        }
        self.send_uncompressed(message, output)
    }

    /// Like [`send`](Self::send), but never compresses: for payloads already compressed
    /// or too small to gain anything.
    pub fn send_uncompressed(
        &mut self,
        message: &Message,
        output: &mut BytesMut,
    ) -> Result<(), Error> {
        match message {
            Message::Text(t) => self.send_frame(OpCode::Text, t.as_bytes(), true, output),
            Message::Binary(b) => self.send_frame(OpCode::Binary, b, true, output),
            Message::Ping(p) => self.send_frame(OpCode::Ping, p, true, output),
            Message::Pong(p) => self.send_frame(OpCode::Pong, p, true, output),
            Message::Close(frame) => self.close(frame.as_ref(), output),
        }
    }

    /// Like [`send`](Self::send), but a payload that would be copied into `output`
    /// unchanged (a server's uncompressed data message) is left out and returned: the
    /// caller writes it right after `output`'s bytes, so a large payload reaches the
    /// socket without a copy.
    pub fn send_zero_copy(
        &mut self,
        message: &Message,
        output: &mut BytesMut,
    ) -> Result<Option<Bytes>, Error> {
        let (opcode, payload) = match message {
            Message::Text(t) => (OpCode::Text, t.as_bytes()),
            Message::Binary(b) => (OpCode::Binary, b),
            _ => return self.send(message, output).map(|()| None),
        };
        let compress = self
            .deflate
            .as_ref()
            .is_some_and(|d| d.wants(payload.len()));
        if self.role == Role::Client || compress {
            return self.send(message, output).map(|()| None);
        }
        self.check_data_send()?;
        FrameHeader {
            fin: true,
            rsv: 0,
            opcode,
            mask: None,
            payload_len: payload.len() as u64,
        }
        .encode(output);
        Ok(Some(payload.clone()))
    }

    /// The bytes to write to send a [`SharedFrame`](crate::frame::SharedFrame) on this
    /// connection: its compressed encoding for this connection's compressor setting when
    /// permessage-deflate is on and the message is at least the threshold and shrinks,
    /// its plain encoding otherwise. Fails unless this is a server connection, open, with
    /// no fragmented message in progress.
    pub fn send_shared(&mut self, frame: &crate::frame::SharedFrame) -> Result<Bytes, Error> {
        if self.role == Role::Client {
            return Err(Error::InvalidSend(InvalidSend::SharedFromClient));
        }
        self.check_data_send()?;
        if let Some(codec) = self.deflate.as_mut() {
            if frame.is_data() && codec.wants(frame.payload_len()) {
                if let Some(compressed) = frame.compressed(codec.send_setting()) {
                    codec.forget_sent_history();
                    return Ok(compressed);
                }
            }
        }
        Ok(frame.bytes().clone())
    }

    /// A complete data message may be sent now.
    fn check_data_send(&self) -> Result<(), Error> {
        if self.state != ConnectionState::Open {
            return Err(Error::SendAfterClose);
        }
        if self.sending_fragmented {
            return Err(Error::InvalidSend(InvalidSend::FragmentInProgress));
        }
        Ok(())
    }

    fn send_compressed(
        &mut self,
        opcode: OpCode,
        payload: &[u8],
        output: &mut BytesMut,
    ) -> Result<(), Error> {
        self.check_data_send()?;
        let codec = self.deflate.as_mut().expect("checked by the caller");
        let mut compressed = Vec::new();
        codec.compress(payload, &mut compressed);
        if compressed.len() >= payload.len() && codec.resets_between_messages() {
            // Without context takeover the peer keeps no history of this message, so
            // when compression did not pay, the plain bytes can go instead.
            self.write_frame(opcode, true, payload, output);
        } else {
            self.write_frame_rsv(opcode, true, 0b100, &compressed, output);
        }
        Ok(())
    }

    /// Sends one frame, uncompressed. Data frames may form a fragmented message: `Text`/`Binary` with
    /// `fin = false`, then `Continuation` frames, the last with `fin = true`. Control
    /// frames may be sent between fragments.
    pub fn send_frame(
        &mut self,
        opcode: OpCode,
        payload: &[u8],
        fin: bool,
        output: &mut BytesMut,
    ) -> Result<(), Error> {
        if self.state != ConnectionState::Open {
            return Err(Error::SendAfterClose);
        }
        if opcode.is_control() {
            if payload.len() > 125 {
                return Err(Error::InvalidSend(InvalidSend::ControlPayloadTooLong));
            }
            if !fin {
                return Err(Error::InvalidSend(InvalidSend::FragmentedControl));
            }
            if opcode == OpCode::Close {
                return Err(Error::InvalidSend(InvalidSend::CloseThroughSendFrame));
            }
        } else {
            match (opcode, self.sending_fragmented) {
                (OpCode::Continuation, false) => {
                    return Err(Error::InvalidSend(InvalidSend::ContinuationWithoutMessage))
                }
                (OpCode::Text | OpCode::Binary, true) => {
                    return Err(Error::InvalidSend(InvalidSend::FragmentInProgress))
                }
                _ => {}
            }
            self.sending_fragmented = !fin;
        }
        self.write_frame(opcode, fin, payload, output);
        Ok(())
    }

    /// Starts the close handshake (or completes it when called after the peer's close,
    /// which [`receive`](Self::receive) already answers). `None` sends a close frame
    /// without a status code.
    pub fn close(
        &mut self,
        frame: Option<&CloseFrame>,
        output: &mut BytesMut,
    ) -> Result<(), Error> {
        if self.state != ConnectionState::Open {
            return Err(Error::SendAfterClose);
        }
        let mut payload = Vec::new();
        if let Some(f) = frame {
            if !f.code.is_valid_on_wire() {
                return Err(Error::InvalidSend(InvalidSend::CloseCodeNotSendable));
            }
            if f.reason.len() > CloseFrame::MAX_REASON_LEN {
                return Err(Error::InvalidSend(InvalidSend::CloseReasonTooLong));
            }
            payload.extend_from_slice(&f.code.as_u16().to_be_bytes());
            payload.extend_from_slice(f.reason.as_bytes());
        }
        self.write_frame(OpCode::Close, true, &payload, output);
        self.leave_open(ConnectionState::CloseSent);
        Ok(())
    }

    pub(super) fn write_frame(
        &mut self,
        opcode: OpCode,
        fin: bool,
        payload: &[u8],
        output: &mut BytesMut,
    ) {
        self.write_frame_rsv(opcode, fin, 0, payload, output);
    }

    fn write_frame_rsv(
        &mut self,
        opcode: OpCode,
        fin: bool,
        rsv: u8,
        payload: &[u8],
        output: &mut BytesMut,
    ) {
        let header = FrameHeader {
            fin,
            rsv,
            opcode,
            mask: self.rng.as_mut().map(|rng| rng.random::<[u8; 4]>()),
            payload_len: payload.len() as u64,
        };
        header.encode_with_payload(payload, output);
    }
}
