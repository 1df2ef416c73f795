//! The per-connection state machine after the handshake.

use crate::close::{CloseCode, CloseFrame, PeerClose};
use crate::config::Limits;
use crate::deflate::{Codec, DeflateConfig, DeflateParams, DeflateState};
use crate::error::{Error, InvalidSend, Violation};
use crate::frame::{apply_mask, FrameHeader, OpCode};
use crate::message::{Message, Utf8Bytes};
use crate::timers::Timers;
use crate::utf8::Utf8Validator;
use bytes::{Buf, Bytes, BytesMut};
use rand::{rngs::StdRng, Rng, SeedableRng};

/// Which end of the connection this is. Clients mask what they send; servers must not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The end that sent the handshake request.
    Client,
    /// The end that accepted it.
    Server,
}

/// Where the connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionState {
    /// Messages flow both ways.
    Open,
    /// We sent a close frame and wait for the peer's.
    CloseSent,
    /// Both close frames were exchanged (or the connection failed and our close frame is
    /// queued). Nothing more is received or sent; the transport should be closed: by
    /// the server at once, by the client once the server has closed it.
    Closed,
}

/// What the decoder is waiting for.
#[derive(Debug)]
enum Phase {
    Header,
    /// The header was consumed; `processed` payload bytes at the start of the input are
    /// already unmasked and validated.
    Payload {
        header: FrameHeader,
        processed: usize,
    },
}

/// A data message being assembled from fragments.
#[derive(Debug)]
struct Partial {
    text: bool,
    /// Sent with RSV1: the fragments are inflated as they arrive.
    compressed: bool,
    data: Vec<u8>,
    fragments: usize,
}

/// The WebSocket protocol for one connection, without IO.
///
/// Feed received bytes to [`receive`](Self::receive); it consumes what it decodes from
/// the caller's buffer and returns one message at a time. Bytes to transmit (data you
/// [`send`](Self::send), pongs, close replies) are appended to the output buffer the
/// caller passes; the caller writes them to the transport.
///
/// ```
/// use bytes::BytesMut;
/// use duplex_proto::{CloseCode, Connection, Limits, Message, Role};
///
/// let mut server = Connection::new(Role::Server, Limits::default());
/// let mut out = BytesMut::new();
/// // A masked client ping with payload "hi".
/// let mut input = BytesMut::from(&[0x89, 0x82, 0, 0, 0, 0, b'h', b'i'][..]);
/// assert_eq!(server.receive(&mut input, &mut out).unwrap(), Some(Message::Ping("hi".into())));
/// assert_eq!(&out[..], &[0x8A, 0x02, b'h', b'i']); // the pong is queued
///
/// // An unmasked client frame fails the connection with 1002.
/// let mut input = BytesMut::from(&[0x81, 0x00][..]);
/// let err = server.receive(&mut input, &mut out).unwrap_err();
/// assert!(matches!(err, duplex_proto::Error::Protocol(v) if v.close_code() == CloseCode::PROTOCOL_ERROR));
/// ```
#[derive(Debug)]
pub struct Connection {
    role: Role,
    limits: Limits,
    state: ConnectionState,
    phase: Phase,
    /// Boxed, like the fields below that are rarely set: an idle connection's state stays
    /// small.
    partial: Option<Box<Partial>>,
    utf8: Utf8Validator,
    /// A fragmented message we send is in progress.
    sending_fragmented: bool,
    /// Masking keys for client frames; created only for clients.
    rng: Option<Box<StdRng>>,
    /// The close frame the peer sent, once received.
    peer_close: Option<Box<Option<CloseFrame>>>,
    /// permessage-deflate, when negotiated. Boxed: most of it is zlib state that an
    /// uncompressed connection should not carry.
    deflate: Option<Box<Codec>>,
    /// Keepalive and close timers, once [`set_timeouts`](Self::set_timeouts) asked
    /// (their calls are in `timers.rs`).
    pub(crate) timers: Option<Box<Timers>>,
}

impl Connection {
    /// A connection in the open state, right after a successful handshake.
    pub fn new(role: Role, limits: Limits) -> Self {
        Self {
            role,
            limits,
            state: ConnectionState::Open,
            phase: Phase::Header,
            partial: None,
            utf8: Utf8Validator::default(),
            sending_fragmented: false,
            rng: (role == Role::Client).then(|| Box::new(StdRng::from_os_rng())),
            peer_close: None,
            deflate: None,
            timers: None,
        }
    }

    /// Masks this client's frames with keys drawn from a generator seeded with `seed`
    /// instead of the operating system's randomness: the same seed gives the same bytes
    /// on the wire, for tests and reproducible fuzzing. Never in production: a peer that
    /// can predict the masks defeats their purpose (RFC 6455 section 10.3). No effect on
    /// a server connection, which does not mask.
    #[must_use]
    pub fn with_mask_seed(mut self, seed: u64) -> Self {
        if self.role == Role::Client {
            self.rng = Some(Box::new(StdRng::seed_from_u64(seed)));
        }
        self
    }

    /// The connection a completed handshake leads to: permessage-deflate on when the
    /// handshake agreed on `negotiated` parameters and this end has a `deflate` config
    /// (its level and threshold), off otherwise. Both roles' handshakes end here.
    pub fn after_handshake(
        role: Role,
        limits: Limits,
        negotiated: Option<DeflateParams>,
        deflate: Option<&DeflateConfig>,
    ) -> Self {
        let connection = Self::new(role, limits);
        match (negotiated, deflate) {
            (Some(params), Some(config)) => connection.with_deflate(params, config),
            _ => connection,
        }
    }

    /// Enables permessage-deflate with the parameters the handshake agreed on and this
    /// end's level and threshold from `config`.
    pub fn with_deflate(mut self, params: DeflateParams, config: &DeflateConfig) -> Self {
        self.deflate = Some(Box::new(Codec::new(self.role, params, config)));
        self
    }

    /// Whether permessage-deflate is in use.
    pub fn is_compressing(&self) -> bool {
        self.deflate.is_some()
    }

    /// Which zlib state is allocated right now. Without context takeover both are
    /// released between messages.
    pub fn deflate_state(&self) -> DeflateState {
        self.deflate
            .as_ref()
            .map_or(DeflateState::default(), |d| d.holds_state())
    }

    /// This end's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The current state.
    pub fn state(&self) -> ConnectionState {
        self.state
    }

    /// The close frame the peer sent, once it arrived.
    pub fn peer_close(&self) -> Option<PeerClose<'_>> {
        self.peer_close.as_deref().map(|frame| match frame {
            Some(frame) => PeerClose::Frame(frame),
            None => PeerClose::WithoutCode,
        })
    }

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

    /// Moves on from Open (or from CloseSent to Closed); the close deadline starts.
    pub(crate) fn leave_open(&mut self, state: ConnectionState) {
        self.state = state;
        if let Some(timers) = &mut self.timers {
            timers.closing_began();
        }
    }

    fn write_frame(&mut self, opcode: OpCode, fin: bool, payload: &[u8], output: &mut BytesMut) {
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
