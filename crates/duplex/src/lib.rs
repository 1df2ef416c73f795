//! # duplex
//!
//! Async WebSocket (RFC 6455) client and server on tokio, built on the sans-IO core
//! [`duplex_proto`].
//!
//! - [`connect`] / [`ClientBuilder`]: open a `ws://` or `wss://` connection.
//! - [`tls`]: TLS with rustls: [`ClientTls`] for `wss://` clients, [`ServerTls`] for a
//!   `TlsAcceptor` whose streams [`accept`] takes.
//! - [`Proxy`]: clients connect through HTTP CONNECT (`http://`, `https://`) and SOCKS5
//!   proxies, set on the builder or taken from the environment as curl does.
//! - [`accept`] / [`accept_with`]: accept a connection on any transport, optionally
//!   inspecting the request and rejecting it with an HTTP status.
//! - [`accept_with_http`]: also answer plain HTTP requests on the same port (404 by
//!   default, see [`not_found`]).
//! - [`hyper`] (feature `hyper`, on by default): upgrade requests inside a hyper 1.x
//!   service; [`axum`] (feature `axum`, on by default): the `WebSocketUpgrade` extractor.
//! - [`WebSocket`]: a `Stream` of incoming [`Message`]s and a `Sink` of outgoing ones,
//!   with `send`/`recv`/`close` methods and [`WebSocket::split`] into halves for two tasks.
//!
//! ```no_run
//! # async fn demo() -> Result<(), duplex::Error> {
//! use duplex::Message;
//! let (mut ws, _response) = duplex::connect("ws://127.0.0.1:9001/").await?;
//! ws.send(Message::text("hello")).await?;
//! if let Some(reply) = ws.recv().await {
//!     println!("{:?}", reply?);
//! }
//! ws.close(None).await?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "axum")]
pub mod axum;
mod client;
mod config;
mod error;
mod head;
#[cfg(feature = "hyper")]
pub mod hyper;
mod proxy;
mod server;
mod split;
pub mod tls;
mod transport;
mod websocket;
mod write_queue;

pub use client::{connect, ClientBuilder};
pub use config::Config;
pub use duplex_proto::deflate::{DeflateConfig, DeflateParams};
pub use duplex_proto::frame::SharedFrame;
pub use duplex_proto::handshake::client::ServerResponse;
pub use duplex_proto::handshake::server::UpgradeRequest;
pub use duplex_proto::InvalidSend;
pub use duplex_proto::{
    CloseCode, CloseFrame, ConnectionState, Limits, Message, OpCode, Role, Timeouts, Utf8Bytes,
};
pub use error::{Error, HeaderPart, Phase};
/// Hooks for the fuzz targets in `fuzz/`; not part of the API.
#[doc(hidden)]
pub use proxy::fuzzing;
pub use proxy::{no_proxy_matches, Proxy, ProxyScheme};
pub use server::{accept, accept_with, accept_with_http, not_found, Accept, Reject};
pub use split::{WebSocketReader, WebSocketWriter};
pub use tls::{ClientTls, ServerTls};
pub use transport::{ClientStream, Io};
pub use websocket::WebSocket;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The README's examples, compiled as doctests so they stay true.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
