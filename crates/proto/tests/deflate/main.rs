//! permessage-deflate (RFC 7692): the `Sec-WebSocket-Extensions` negotiation in both
//! roles, directly and through the handshake types, and compressed messages through
//! `Connection`: the RSV1 rules, context takeover, window sizes, invalid data, the message
//! limit against decompression bombs, lazy zlib state, and a property test over random
//! traffic. Compressed frames are built and checked with flate2 directly and with a small
//! inflater written here, so the tests check the wire format rather than the crate
//! against itself.
//!
//! One test crate in modules by behaviour: `server_negotiation`, `client_negotiation`,
//! `frames` (the RFC examples, sending, RSV1), `context` (context takeover, lazy state,
//! invalid data), `limits` (bombs, the message
//! limit, windows), `traffic` (the property test), `shared_frames`; with `support`
//! (helpers), `reference` (flate2 peers and an independent inflater) and `alloc` (the
//! allocation-tracking allocator).

#[path = "../common/mod.rs"]
mod common;

mod alloc;
mod reference;
mod support;

mod client_negotiation;
mod context;
mod frames;
mod limits;
mod server_negotiation;
mod shared_frames;
mod traffic;

use alloc::*;
use reference::*;
use support::*;

use bytes::BytesMut;
use common::*;
use duplex_proto::deflate::negotiate::{client_accept, client_offer, server_accept};
use duplex_proto::deflate::{DeflateConfig, DeflateParams, DeflateState};
use duplex_proto::handshake::accept_key;
use duplex_proto::handshake::client::{ClientHandshake, ClientRequest, ServerResponse};
use duplex_proto::handshake::server::UpgradeRequest;
use duplex_proto::{
    Connection, ConnectionState, Error, HandshakeFailure, Limits, Message, OpCode, Role, Violation,
};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use http::HeaderMap;
use proptest::prelude::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
