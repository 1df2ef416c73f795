//! The Centrifugo client protocol v2 as a codec without IO, in its two formats (JSON and
//! Protobuf, [`Format`]): messages from clients decode to [`Command`]s; replies and
//! pushes encode to items the session joins into WebSocket messages. `docs/protocol.md` lists every field and what the hub does
//! with it.

pub mod codes;
pub mod command;
pub mod format;
pub mod payload;
pub mod protobuf;
pub mod reply;

pub use codes::{DisconnectCode, ErrorCode, UnsubscribeCode};
pub use command::{Command, DecodeError, Request};
pub use format::Format;
pub use payload::Payload;
