//! Every way a peer can break RFC 6455 after the handshake, in both roles where the rule
//! applies to both. Each test checks the exact violation, that its close code is the one
//! the RFC requires, the close frame written to the output, and the closed state.

mod close_and_limits;
#[path = "../common/mod.rs"]
mod common;
mod frames;
mod utf8;

use bytes::BytesMut;
use common::*;
use duplex_proto::{
    CloseFrame, Connection, ConnectionState, Error, Limits, Message, PeerClose, Role, Violation,
};

fn rejected(role: Role, input: &[u8], violation: Violation, code: u16) -> Vec<Message> {
    assert_rejected(role, Limits::default(), input, violation, code)
}

fn concat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}
