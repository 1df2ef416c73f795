//! Behaviour of a healthy connection: pings and pongs, the close handshake, sending after
//! close, length encodings, masking, fragmented sending, and what a connection reports
//! (`misc`).

mod closing;
#[path = "../common/mod.rs"]
mod common;
mod fragmented;
mod misc;
mod ping_pong;
mod sizes;

use bytes::{Bytes, BytesMut};
use common::*;
use duplex_proto::{
    CloseCode, CloseFrame, Connection, ConnectionState, Error, InvalidSend, Limits, Message,
    OpCode, PeerClose, Role,
};

fn conn(role: Role) -> Connection {
    Connection::new(role, Limits::default())
}

/// Sends `msg` from `role` and decodes it with the other role, returning the message and
/// the frames on the wire.
fn round_trip(role: Role, msg: &Message) -> (Message, Vec<WireFrame>) {
    let mut sender = conn(role);
    let mut receiver = conn(peer_of(role));
    let (mut wire, mut out) = (BytesMut::new(), BytesMut::new());
    sender.send(msg, &mut wire).unwrap();
    let frames = frames_written_by(role, &wire);
    let got = receiver.receive(&mut wire, &mut out).unwrap().unwrap();
    assert!(wire.is_empty(), "the whole frame was consumed");
    assert_eq!(receiver.receive(&mut wire, &mut out), Ok(None));
    (got, frames)
}
