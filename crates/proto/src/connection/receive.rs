//! Receiving: frames decoded from the caller's buffer, checked, and assembled into
//! messages; the replies the protocol owes (pongs, the close echo) and the close frame
//! of a failure.

use super::{Connection, ConnectionState, Partial, Phase, Role};
use crate::close::{CloseCode, CloseFrame};
use crate::error::{Error, Violation};
use crate::frame::{apply_mask, FrameHeader, OpCode};
use crate::message::{Message, Utf8Bytes};
use bytes::{Buf, Bytes, BytesMut};

impl Connection {
    /// Decodes from `input` until one message or control frame is complete, consuming the
    /// bytes it decodes. Returns `Ok(None)` when more input is needed (or the connection is
    /// closed). Replies the protocol requires (pongs, the close echo) are appended to
    /// `output`.
    ///
    /// On a protocol violation, a close frame with the matching code is appended to
    /// `output`, the state becomes [`ConnectionState::Closed`], and the violation is
    /// returned. Partial text is validated as it arrives, so invalid UTF-8 fails the
    /// connection before the rest of its frame is received.
    pub fn receive(
        &mut self,
        input: &mut BytesMut,
        output: &mut BytesMut,
    ) -> Result<Option<Message>, Error> {
        loop {
            if self.state == ConnectionState::Closed {
                // Nothing may follow a close frame; whatever does is discarded.
                input.clear();
                return Ok(None);
            }
            let step = self.decode_frame(input).and_then(|frame| match frame {
                Some((header, payload)) => self.handle_frame(header, payload, output),
                None => Ok(Step::NeedInput),
            });
            match step {
                Ok(Step::Message(m)) => return Ok(Some(m)),
                Ok(Step::Continue) => continue,
                Ok(Step::NeedInput) => return Ok(None),
                Err(violation) => {
                    self.fail(violation.close_code(), output);
                    return Err(Error::Protocol(violation));
                }
            }
        }
    }

    /// How many more input bytes the decoder needs before it can make progress, when that
    /// is known (the rest of a frame payload). A hint for sizing reads; never trust it as
    /// an allocation size beyond the limits it is already checked against.
    pub fn payload_remaining(&self, input: &BytesMut) -> Option<usize> {
        match &self.phase {
            Phase::Payload { header, .. } => {
                Some((header.payload_len as usize).saturating_sub(input.len()))
            }
            Phase::Header => None,
        }
    }

    fn decode_frame(
        &mut self,
        input: &mut BytesMut,
    ) -> Result<Option<(FrameHeader, Bytes)>, Violation> {
        if let Phase::Header = self.phase {
            let Some((header, header_len)) = FrameHeader::parse(input)? else {
                return Ok(None);
            };
            self.check_header(&header)?;
            input.advance(header_len);
            if matches!(header.opcode, OpCode::Text | OpCode::Binary) {
                self.utf8.reset();
            }
            self.phase = Phase::Payload {
                header,
                processed: 0,
            };
        }
        let Phase::Payload { header, processed } = &mut self.phase else {
            unreachable!("phase is Payload here")
        };
        let len = header.payload_len as usize;
        let available = input.len().min(len);
        if available > *processed {
            let fresh = &mut input[*processed..available];
            if let Some(mask) = header.mask {
                apply_mask(fresh, mask, *processed);
            }
            // Compressed text is validated after inflating, in handle_frame.
            let is_plain_text = match header.opcode {
                OpCode::Text => header.rsv == 0,
                OpCode::Continuation => self
                    .partial
                    .as_ref()
                    .is_some_and(|p| p.text && !p.compressed),
                _ => false,
            };
            if is_plain_text {
                self.utf8.feed(fresh).map_err(|_| Violation::InvalidUtf8)?;
            }
            *processed = available;
        }
        if available < len {
            return Ok(None);
        }
        let header = *header;
        self.phase = Phase::Header;
        Ok(Some((header, input.split_to(len).freeze())))
    }

    /// Checks what the connection decides about a header, before any payload is buffered.
    fn check_header(&self, header: &FrameHeader) -> Result<(), Violation> {
        // RSV1 marks a compressed message: legal only on its first frame, and only once
        // permessage-deflate was negotiated. RSV2 and RSV3 have no meaning here.
        let rsv1_allowed =
            self.deflate.is_some() && matches!(header.opcode, OpCode::Text | OpCode::Binary);
        if header.rsv & 0b011 != 0 || (header.rsv & 0b100 != 0 && !rsv1_allowed) {
            return Err(Violation::ReservedBits);
        }
        match (self.role, header.mask.is_some()) {
            (Role::Server, false) => return Err(Violation::UnmaskedClientFrame),
            (Role::Client, true) => return Err(Violation::MaskedServerFrame),
            _ => {}
        }
        match (header.opcode, &self.partial) {
            (OpCode::Continuation, None) => return Err(Violation::UnexpectedContinuation),
            (OpCode::Text | OpCode::Binary, Some(_)) => {
                return Err(Violation::ExpectedContinuation)
            }
            _ => {}
        }
        if header.opcode.is_control() {
            return Ok(());
        }
        if header.payload_len > self.limits.max_frame_size as u64 {
            return Err(Violation::FrameTooLarge {
                len: header.payload_len,
                limit: self.limits.max_frame_size,
            });
        }
        let so_far = self.partial.as_ref().map_or(0, |p| p.data.len()) as u64;
        let mut room = (self.limits.max_message_size as u64).saturating_sub(so_far);
        if header.rsv != 0 || self.partial.as_ref().is_some_and(|p| p.compressed) {
            // Compressed bytes may outnumber what they inflate to (fixed Huffman codes
            // spend up to 9 bits on a byte, each flush a few bytes), so a message at the
            // limit must still pass; inflating holds the message itself to the limit.
            room = room.saturating_add(room / 8 + 64);
        }
        if header.payload_len > room {
            return Err(Violation::MessageTooLarge {
                len: so_far + header.payload_len,
                limit: self.limits.max_message_size,
            });
        }
        if let Some(p) = &self.partial {
            if p.fragments >= self.limits.max_fragments {
                return Err(Violation::TooManyFragments(self.limits.max_fragments));
            }
        }
        Ok(())
    }

    fn handle_frame(
        &mut self,
        header: FrameHeader,
        payload: Bytes,
        output: &mut BytesMut,
    ) -> Result<Step, Violation> {
        match header.opcode {
            OpCode::Ping => {
                if self.state == ConnectionState::Open {
                    self.write_frame(OpCode::Pong, true, &payload, output);
                }
                Ok(Step::Message(Message::Ping(payload)))
            }
            OpCode::Pong => Ok(Step::Message(Message::Pong(payload))),
            OpCode::Close => {
                let frame = parse_close_payload(&payload)?;
                if self.state == ConnectionState::Open {
                    // Echo the peer's code, as RFC 6455 section 5.5.1 asks.
                    let mut reply = BytesMut::new();
                    if let Some(f) = &frame {
                        reply.extend_from_slice(&f.code.as_u16().to_be_bytes());
                    }
                    self.write_frame(OpCode::Close, true, &reply, output);
                }
                self.leave_open(ConnectionState::Closed);
                self.peer_close = Some(Box::new(frame.clone()));
                Ok(Step::Message(Message::Close(frame)))
            }
            OpCode::Text | OpCode::Binary if header.fin && header.rsv == 0 => {
                let text = header.opcode == OpCode::Text;
                Ok(Step::Message(self.finish_message(text, payload, false)?))
            }
            OpCode::Text | OpCode::Binary => {
                let mut partial = Partial {
                    text: header.opcode == OpCode::Text,
                    compressed: header.rsv != 0,
                    data: Vec::new(),
                    fragments: 1,
                };
                self.append(&mut partial, &payload, header.fin)?;
                if header.fin {
                    return Ok(Step::Message(self.finish_message(
                        partial.text,
                        partial.data.into(),
                        partial.compressed,
                    )?));
                }
                self.partial = Some(Box::new(partial));
                Ok(Step::Continue)
            }
            OpCode::Continuation => {
                let mut partial = self
                    .partial
                    .take()
                    .ok_or(Violation::UnexpectedContinuation)?;
                partial.fragments += 1;
                self.append(&mut partial, &payload, header.fin)?;
                if !header.fin {
                    self.partial = Some(partial);
                    return Ok(Step::Continue);
                }
                Ok(Step::Message(self.finish_message(
                    partial.text,
                    partial.data.into(),
                    partial.compressed,
                )?))
            }
        }
    }

    /// Adds a fragment's payload to a message: inflated (and, for text, validated as it
    /// comes out) when compressed, copied otherwise.
    fn append(
        &mut self,
        partial: &mut Partial,
        payload: &[u8],
        fin: bool,
    ) -> Result<(), Violation> {
        if !partial.compressed {
            partial.data.extend_from_slice(payload);
            return Ok(());
        }
        let codec = self
            .deflate
            .as_mut()
            .expect("RSV1 is only accepted with deflate");
        let start = partial.data.len();
        codec.decompress(
            payload,
            fin,
            &mut partial.data,
            self.limits.max_message_size,
        )?;
        if partial.text {
            self.utf8
                .feed(&partial.data[start..])
                .map_err(|_| Violation::InvalidUtf8)?;
        }
        Ok(())
    }

    /// The message; text is `Utf8Bytes`, which never holds anything but UTF-8.
    /// `inflated`: the data was inflated into the connection's own buffer and validated
    /// there as it came out. Otherwise it was validated as it arrived, in the caller's
    /// input buffer, which the caller (safe code) may change between calls: it is
    /// checked again here, once per message (simdutf8, far faster than the decoding).
    fn finish_message(
        &mut self,
        text: bool,
        data: Bytes,
        inflated: bool,
    ) -> Result<Message, Violation> {
        if !text {
            return Ok(Message::Binary(data));
        }
        if !self.utf8.is_complete() {
            return Err(Violation::InvalidUtf8);
        }
        if inflated {
            return Ok(Message::Text(Utf8Bytes::from_validated(data)));
        }
        Utf8Bytes::try_from_bytes(data)
            .map(Message::Text)
            .map_err(|_| Violation::InvalidUtf8)
    }

    /// Queues a close frame for `code` and marks the connection closed.
    fn fail(&mut self, code: CloseCode, output: &mut BytesMut) {
        if self.state == ConnectionState::Open {
            self.write_frame(OpCode::Close, true, &code.as_u16().to_be_bytes(), output);
        }
        self.leave_open(ConnectionState::Closed);
        self.partial = None;
        self.phase = Phase::Header;
    }
}

enum Step {
    Message(Message),
    Continue,
    NeedInput,
}

/// Parses and validates a received close payload.
fn parse_close_payload(payload: &[u8]) -> Result<Option<CloseFrame>, Violation> {
    match payload {
        [] => Ok(None),
        [_] => Err(Violation::CloseFrameOneByte),
        [hi, lo, reason @ ..] => {
            let code = CloseCode::from(u16::from_be_bytes([*hi, *lo]));
            if !code.is_valid_on_wire() {
                return Err(Violation::InvalidCloseCode(code.as_u16()));
            }
            let reason = std::str::from_utf8(reason).map_err(|_| Violation::InvalidCloseReason)?;
            Ok(Some(CloseFrame::new(code, reason)))
        }
    }
}
