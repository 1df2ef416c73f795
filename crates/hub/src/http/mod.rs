//! HTTP on the hub's port: the WebSocket endpoint, the server API, health, metrics and
//! the start page.

pub mod api;
mod page;
pub mod server;
