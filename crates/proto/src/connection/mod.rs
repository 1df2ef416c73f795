//! The per-connection state machine after the handshake: its state and settings here,
//! the receiving side in `receive.rs`, the sending side in `send.rs`, the timers in
//! `timers.rs`.

mod receive;
mod send;
mod timers;

pub use timers::Timeouts;

use crate::close::{CloseFrame, PeerClose};
use crate::config::Limits;
use crate::deflate::{Codec, DeflateConfig, DeflateParams, DeflateState};
use crate::frame::FrameHeader;
use crate::utf8::Utf8Validator;
use rand::{rngs::StdRng, SeedableRng};
use timers::Timers;

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
    timers: Option<Box<Timers>>,
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

    /// Moves on from Open (or from CloseSent to Closed); the close deadline starts.
    fn leave_open(&mut self, state: ConnectionState) {
        self.state = state;
        if let Some(timers) = &mut self.timers {
            timers.closing_began();
        }
    }
}
