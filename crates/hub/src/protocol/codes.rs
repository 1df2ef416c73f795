//! The Centrifugo client protocol's error, disconnect and unsubscribe codes: one place
//! that says what each failure looks like on the wire.
//!
//! Errors answer one command (the connection stays up). Disconnects end the connection
//! with the code as the WebSocket close code: 3000-3499 and 4000-4499 ask the client to
//! reconnect, 3500-3999 and 4500-4999 ask it not to (the SDKs follow this).

/// An error in the reply to one command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    /// 100: the hub failed (storage); the client may retry.
    Internal,
    /// 101: no valid credentials for this.
    Unauthorized,
    /// 102: the channel's namespace is not configured.
    UnknownChannel,
    /// 103: the credentials do not allow this.
    PermissionDenied,
    /// 104: no such method.
    MethodNotFound,
    /// 105: the client is already subscribed to the channel.
    AlreadySubscribed,
    /// 106: a limit was reached.
    LimitExceeded,
    /// 107: the command is malformed.
    BadRequest,
    /// 108: the feature is off for this channel, or not implemented.
    NotAvailable,
    /// 109: the token has expired; the SDK refreshes it and tries again.
    TokenExpired,
    /// 110: the connection's credentials expired.
    Expired,
    /// 111: too many requests.
    TooManyRequests,
    /// 112: the requested stream position cannot be recovered.
    UnrecoverablePosition,
}

impl ErrorCode {
    /// The numeric code.
    pub fn code(self) -> u32 {
        match self {
            ErrorCode::Internal => 100,
            ErrorCode::Unauthorized => 101,
            ErrorCode::UnknownChannel => 102,
            ErrorCode::PermissionDenied => 103,
            ErrorCode::MethodNotFound => 104,
            ErrorCode::AlreadySubscribed => 105,
            ErrorCode::LimitExceeded => 106,
            ErrorCode::BadRequest => 107,
            ErrorCode::NotAvailable => 108,
            ErrorCode::TokenExpired => 109,
            ErrorCode::Expired => 110,
            ErrorCode::TooManyRequests => 111,
            ErrorCode::UnrecoverablePosition => 112,
        }
    }

    /// The protocol's message for the code.
    pub fn message(self) -> &'static str {
        match self {
            ErrorCode::Internal => "internal server error",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::UnknownChannel => "unknown channel",
            ErrorCode::PermissionDenied => "permission denied",
            ErrorCode::MethodNotFound => "method not found",
            ErrorCode::AlreadySubscribed => "already subscribed",
            ErrorCode::LimitExceeded => "limit exceeded",
            ErrorCode::BadRequest => "bad request",
            ErrorCode::NotAvailable => "not available",
            ErrorCode::TokenExpired => "token expired",
            ErrorCode::Expired => "expired",
            ErrorCode::TooManyRequests => "too many requests",
            ErrorCode::UnrecoverablePosition => "unrecoverable position",
        }
    }

    /// Whether retrying the same command may succeed (the SDKs retry these).
    pub fn temporary(self) -> bool {
        matches!(self, ErrorCode::Internal | ErrorCode::TooManyRequests)
    }
}

/// Why the hub ends a connection: the WebSocket close code and reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DisconnectCode {
    /// 3001: the hub is shutting down; reconnect (to another node).
    Shutdown,
    /// 3004: the hub failed; reconnect.
    ServerError,
    /// 3005: the connection's token expired and was not refreshed; reconnect with a new one.
    Expired,
    /// 3006: a subscription's token expired and was not refreshed; reconnect.
    SubscriptionExpired,
    /// 3008: the client did not read fast enough; reconnect and recover.
    Slow,
    /// 3010: the client's position in a stream went wrong; reconnect and recover.
    InsufficientState,
    /// 3011: the server asked for a reconnect.
    ForceReconnect,
    /// 3012: no pong to the hub's ping in time.
    NoPong,
    /// 3500: the token is invalid (forged, malformed); do not reconnect.
    InvalidToken,
    /// 3501: the client broke the protocol; do not reconnect.
    BadRequest,
    /// 3502: no connect command in time; do not reconnect.
    Stale,
    /// 3503: the server asked the client to go away for good.
    ForceNoReconnect,
    /// 3504: too many connections.
    ConnectionLimit,
    /// 3505: too many channels.
    ChannelLimit,
}

impl DisconnectCode {
    /// The WebSocket close code.
    pub fn code(self) -> u16 {
        match self {
            DisconnectCode::Shutdown => 3001,
            DisconnectCode::ServerError => 3004,
            DisconnectCode::Expired => 3005,
            DisconnectCode::SubscriptionExpired => 3006,
            DisconnectCode::Slow => 3008,
            DisconnectCode::InsufficientState => 3010,
            DisconnectCode::ForceReconnect => 3011,
            DisconnectCode::NoPong => 3012,
            DisconnectCode::InvalidToken => 3500,
            DisconnectCode::BadRequest => 3501,
            DisconnectCode::Stale => 3502,
            DisconnectCode::ForceNoReconnect => 3503,
            DisconnectCode::ConnectionLimit => 3504,
            DisconnectCode::ChannelLimit => 3505,
        }
    }

    /// The close reason.
    pub fn reason(self) -> &'static str {
        match self {
            DisconnectCode::Shutdown => "shutdown",
            DisconnectCode::ServerError => "internal server error",
            DisconnectCode::Expired => "expired",
            DisconnectCode::SubscriptionExpired => "subscription expired",
            DisconnectCode::Slow => "slow",
            DisconnectCode::InsufficientState => "insufficient state",
            DisconnectCode::ForceReconnect => "force reconnect",
            DisconnectCode::NoPong => "no pong",
            DisconnectCode::InvalidToken => "invalid token",
            DisconnectCode::BadRequest => "bad request",
            DisconnectCode::Stale => "stale",
            DisconnectCode::ForceNoReconnect => "force disconnect",
            DisconnectCode::ConnectionLimit => "connection limit",
            DisconnectCode::ChannelLimit => "channel limit",
        }
    }

    /// Whether the client should reconnect (the protocol's code ranges say so).
    pub fn reconnect(self) -> bool {
        reconnects(self.code())
    }

    /// A short label for logs and metrics.
    pub fn label(self) -> &'static str {
        self.reason()
    }
}

/// Whether a disconnect code asks the client to reconnect: 3000-3499 and 4000-4499 do,
/// 3500-3999 and 4500-4999 do not.
pub fn reconnects(code: u16) -> bool {
    matches!(code, 3000..=3499 | 4000..=4499)
}

/// Why the hub ends one subscription (an `unsubscribe` push): below 2500 the subscription
/// ends for good, 2500 and above ask the client to subscribe again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnsubscribeCode {
    /// 2000: the server unsubscribed the client (API call); the subscription ends.
    Server,
}

impl UnsubscribeCode {
    /// The numeric code.
    pub fn code(self) -> u32 {
        match self {
            UnsubscribeCode::Server => 2000,
        }
    }

    /// The reason sent with it.
    pub fn reason(self) -> &'static str {
        match self {
            UnsubscribeCode::Server => "server unsubscribe",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnect_follows_the_protocol_ranges() {
        assert!(DisconnectCode::Shutdown.reconnect());
        assert!(DisconnectCode::Slow.reconnect());
        assert!(DisconnectCode::NoPong.reconnect());
        assert!(!DisconnectCode::InvalidToken.reconnect());
        assert!(!DisconnectCode::BadRequest.reconnect());
        assert!(!DisconnectCode::Stale.reconnect());
        assert!(reconnects(4000) && reconnects(4499));
        assert!(!reconnects(4500) && !reconnects(4999) && !reconnects(1000));
    }
}
