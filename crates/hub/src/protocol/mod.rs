//! The Centrifugo client protocol v2, JSON format, as a codec without IO: messages from
//! clients decode to [`Command`]s; replies and pushes encode to lines the session joins
//! into WebSocket messages. `docs/protocol.md` lists every field and what the hub does
//! with it.

pub mod codes;
pub mod command;
pub mod reply;

pub use codes::{DisconnectCode, ErrorCode, UnsubscribeCode};
pub use command::{decode, Command, DecodeError, Request};
