//! The demo page at `/`, its client module at `/duplex-client.js` and the admin
//! dashboard at `/admin`, from `web/`, embedded in the binary (nothing is fetched at run or build time).

/// The demo page: chat with presence and history, the demo ticker, a shared board.
pub const INDEX_HTML: &str = include_str!("../../web/index.html");

/// The ES module client the page imports (usable by any page).
pub const CLIENT_JS: &str = include_str!("../../web/duplex-client.js");

/// The admin dashboard: live charts, the busiest channels, a channel inspector.
pub const ADMIN_HTML: &str = include_str!("../../web/admin.html");
