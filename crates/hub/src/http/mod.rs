//! HTTP on the hub's port: the WebSocket endpoint, the server API, health, metrics, the
//! start page and the admin dashboard.

pub mod admin;
pub mod api;
pub mod origin;
mod page;
pub mod server;
