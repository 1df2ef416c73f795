//! HTTP on the hub's port: the WebSocket endpoint, the server API, health, metrics and
//! the start page.

pub mod api;
pub mod origin;
mod page;
pub mod server;
