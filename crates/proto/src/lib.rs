//! # duplex-proto
//!
//! The WebSocket protocol (RFC 6455) as a sans-IO state machine: it owns no socket and
//! never blocks. The IO layer feeds it bytes and writes out the bytes it produces.
//!
//! - [`handshake`]: the HTTP/1.1 Upgrade handshake for both roles.
//! - [`frame`]: frame headers, masking, encoding.
//! - [`Connection`]: the per-connection state machine after the handshake: it decodes
//!   frames from a buffer the caller owns, validates them strictly, assembles messages,
//!   answers pings and runs the close handshake.
//! - Timers on the caller's clock ([`Timeouts`], [`Connection::set_timeouts`]): the
//!   keepalive ping, the idle timeout and the close deadline. Nothing here reads a clock;
//!   the driver sleeps until [`Connection::poll_timeout`] and calls
//!   [`Connection::handle_timeout`].
//!
//! ```
//! use bytes::BytesMut;
//! use duplex_proto::{Connection, Limits, Message, Role};
//!
//! let mut client = Connection::new(Role::Client, Limits::default());
//! let mut server = Connection::new(Role::Server, Limits::default());
//! let (mut wire, mut server_out) = (BytesMut::new(), BytesMut::new());
//!
//! client.send(&Message::text("hello"), &mut wire).unwrap();
//! let received = server.receive(&mut wire, &mut server_out).unwrap();
//! assert_eq!(received, Some(Message::text("hello")));
//! ```
// One `unsafe` block, in `Utf8Bytes::as_str` (see its SAFETY note and BENCHMARKS.md).
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod close;
mod config;
mod connection;
pub mod deflate;
mod error;
pub mod frame;
pub mod handshake;
mod message;
mod utf8;

pub use close::{CloseCode, CloseFrame, PeerClose};
pub use config::Limits;
pub use connection::{Connection, ConnectionState, Role, Timeouts};
pub use error::{Error, HandshakeFailure, InvalidSend, Violation};
pub use frame::{FrameHeader, OpCode};
pub use message::{Message, Utf8Bytes};
pub use utf8::Utf8Validator;
