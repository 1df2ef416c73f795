//! Actions on clients wherever they are connected: the server API's `subscribe`,
//! `unsubscribe` and `disconnect` (by user, optionally one client), and join/leave pushes.
//!
//! With one node they apply here at once. With a shared engine (Redis) they go to every
//! node, this one included, through the engine's control channel, and each node applies
//! them to its own clients ([`apply`]).

use crate::error::Error;
use crate::protocol::reply::ClientInfo;
use crate::protocol::DisconnectCode;
use crate::registry::Registry;
use serde::{Deserialize, Serialize};

/// One action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Control {
    /// Subscribes the user's connections (or one of them) to a channel.
    Subscribe {
        /// The user.
        user: String,
        /// Only this client, when set.
        client: Option<String>,
        /// The channel.
        channel: String,
    },
    /// Unsubscribes the user's connections (or one of them) from a channel.
    Unsubscribe {
        /// The user.
        user: String,
        /// Only this client, when set.
        client: Option<String>,
        /// The channel.
        channel: String,
    },
    /// Disconnects the user's connections (or one of them).
    Disconnect {
        /// The user.
        user: String,
        /// Only this client, when set.
        client: Option<String>,
        /// With 3011 (reconnect) instead of 3503.
        reconnect: bool,
    },
    /// A client joined (`joined`) or left a channel: a push to its subscribers that
    /// asked for them.
    Presence {
        /// The channel.
        channel: String,
        /// Who, as JSON (the shape of [`ClientInfo`]).
        info: String,
        /// Joined, or left.
        joined: bool,
    },
}

impl Control {
    /// A join or leave of `info` in `channel`.
    pub fn presence(channel: &str, info: &ClientInfo, joined: bool) -> Control {
        Control::Presence {
            channel: channel.to_owned(),
            info: serde_json::to_value(info)
                .map(|v| v.to_string())
                .expect("client info serializes"),
            joined,
        }
    }

    /// The wire form between nodes.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("control messages serialize")
    }

    /// Reads the wire form.
    pub fn decode(bytes: &[u8]) -> Result<Control, Error> {
        serde_json::from_slice(bytes)
            .map_err(|e| Error::Storage(format!("a control message that is not one: {e}")))
    }
}

/// Carries out `control` on this node's clients.
pub fn apply(registry: &Registry, control: &Control) {
    match control {
        Control::Subscribe {
            user,
            client,
            channel,
        } => {
            for c in registry.clients_of(user, client.as_deref()) {
                c.subscribe(channel);
            }
        }
        Control::Unsubscribe {
            user,
            client,
            channel,
        } => {
            for c in registry.clients_of(user, client.as_deref()) {
                c.unsubscribe(channel);
            }
        }
        Control::Disconnect {
            user,
            client,
            reconnect,
        } => {
            let code = if *reconnect {
                DisconnectCode::ForceReconnect
            } else {
                DisconnectCode::ForceNoReconnect
            };
            for c in registry.clients_of(user, client.as_deref()) {
                c.end(code);
            }
        }
        Control::Presence {
            channel,
            info,
            joined,
        } => match ClientInfo::from_json(info.as_bytes()) {
            Ok(info) => registry.announce(channel, &info, *joined),
            Err(e) => tracing::error!(%channel, error = %e, "a join/leave without client info"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_garbage() {
        let info = ClientInfo {
            user: "u".into(),
            client: "c".into(),
            conn_info: Some(std::sync::Arc::from(
                serde_json::value::RawValue::from_string("{\n \"n\": 1\n}".into()).unwrap(),
            )),
            chan_info: None,
        };
        for control in [
            Control::Disconnect {
                user: "u".into(),
                client: None,
                reconnect: true,
            },
            Control::Subscribe {
                user: "u".into(),
                client: Some("c".into()),
                channel: "chat:a".into(),
            },
            Control::presence("chat:a", &info, true),
        ] {
            let wire = control.encode();
            assert!(!wire.contains('\n'), "{wire}");
            assert_eq!(Control::decode(wire.as_bytes()).unwrap(), control);
        }
        assert!(Control::decode(b"{\"op\":\"reboot\"}").is_err());
        assert!(Control::decode(b"\xff").is_err());
    }
}
