//! Commands from clients: one JSON object per line, several lines per WebSocket message
//! (the Protobuf format decodes to the same types, in `protobuf`).
//!
//! Field names and meanings are those of `client.proto` (Command and the requests it
//! carries); `bytes` fields are raw JSON in the JSON protocol. Unknown fields are ignored,
//! as protobuf's JSON mapping does, so newer SDKs keep working.

use serde::Deserialize;
use serde_json::value::RawValue;
use std::collections::HashMap;

/// One decoded command: the id the reply carries, and the request.
#[derive(Debug)]
pub struct Command {
    /// The id the client matches the reply by; 0 only for `send` and pongs, which get none.
    pub id: u32,
    /// What the client asks for.
    pub request: Request,
}

/// The request inside a command (the protocol takes the first one set).
#[derive(Debug)]
pub enum Request {
    /// An empty command: the answer to the hub's ping.
    Pong,
    /// `connect`
    Connect(ConnectRequest),
    /// `subscribe`
    Subscribe(SubscribeRequest),
    /// `unsubscribe`
    Unsubscribe(ChannelRequest),
    /// `publish`
    Publish(PublishRequest),
    /// `presence`
    Presence(ChannelRequest),
    /// `presence_stats`
    PresenceStats(ChannelRequest),
    /// `history`
    History(HistoryRequest),
    /// `ping` (a client-initiated ping, answered with an empty result)
    Ping,
    /// `send`: an asynchronous message without a reply (not available yet).
    Send(SendRequest),
    /// `rpc` (not available yet).
    Rpc(RpcRequest),
    /// `refresh`
    Refresh(RefreshRequest),
    /// `sub_refresh`: a new subscription token for a channel.
    SubRefresh(SubRefreshRequest),
    /// A command the hub cannot take as sent (answered with error 107, bad request).
    Refused {
        /// The method.
        method: &'static str,
        /// Why, for the log.
        reason: &'static str,
    },
}

impl Request {
    /// The token the request carries, if any.
    pub fn token(&self) -> Option<&str> {
        let token = match self {
            Request::Connect(r) => &r.token,
            Request::Subscribe(r) => &r.token,
            Request::Refresh(r) => &r.token,
            Request::SubRefresh(r) => &r.token,
            _ => return None,
        };
        (!token.is_empty()).then_some(token.as_str())
    }

    /// The method name, for logs and metrics.
    pub fn method(&self) -> &'static str {
        match self {
            Request::Pong => "pong",
            Request::Connect(_) => "connect",
            Request::Subscribe(_) => "subscribe",
            Request::Unsubscribe(_) => "unsubscribe",
            Request::Publish(_) => "publish",
            Request::Presence(_) => "presence",
            Request::PresenceStats(_) => "presence_stats",
            Request::History(_) => "history",
            Request::Ping => "ping",
            Request::Send(_) => "send",
            Request::Rpc(_) => "rpc",
            Request::Refresh(_) => "refresh",
            Request::SubRefresh(_) => "sub_refresh",
            Request::Refused { method, .. } => method,
        }
    }
}

/// `ConnectRequest`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ConnectRequest {
    /// The connection JWT.
    pub token: String,
    /// Custom data (raw JSON).
    pub data: Option<Box<RawValue>>,
    /// Subscriptions to make along with connect (not supported: answered per channel).
    pub subs: HashMap<String, SubscribeRequest>,
    /// The SDK's name.
    pub name: String,
    /// The SDK's version.
    pub version: String,
}

/// `SubscribeRequest`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SubscribeRequest {
    /// The channel.
    pub channel: String,
    /// A subscription token (private channels: a later issue).
    pub token: String,
    /// Whether the client asks to recover from `epoch`/`offset`.
    pub recover: bool,
    /// The stream epoch the client last saw.
    pub epoch: String,
    /// The last offset the client saw.
    pub offset: u64,
    /// Asks for a positioned subscription (every channel is).
    pub positioned: bool,
    /// Asks for a recoverable subscription (every channel is).
    pub recoverable: bool,
    /// Asks for join and leave pushes.
    pub join_leave: bool,
    /// Custom data for the backend's subscribe proxy (raw JSON).
    pub data: Option<Box<RawValue>>,
    /// Subscription features: 1 channel compaction (not supported: the hub never sets
    /// a numeric id, so channel names stay), 2 reject an unrecoverable position with an
    /// error instead of `recovered: false`.
    pub flag: i64,
}

/// A request naming only a channel (`unsubscribe`, `presence`, `presence_stats`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ChannelRequest {
    /// The channel.
    pub channel: String,
}

/// `RPCRequest`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RpcRequest {
    /// The application's method name.
    pub method: String,
    /// The call's data (raw JSON).
    pub data: Option<Box<RawValue>>,
}

/// `SendRequest`: a message for the application, no reply.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SendRequest {
    /// The message (raw JSON).
    pub data: Option<Box<RawValue>>,
}

/// `PublishRequest`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PublishRequest {
    /// The channel.
    pub channel: String,
    /// The publication's data.
    pub data: Option<super::Payload>,
    /// A duplex extension (the official SDKs do not send it): a repeat with the same key
    /// in this channel within 5 minutes is acknowledged without storing again.
    pub idempotency_key: Option<String>,
}

/// `StreamPosition`.
#[derive(Debug, Default, Deserialize, Clone, PartialEq, Eq)]
#[serde(default)]
pub struct StreamPosition {
    /// The offset.
    pub offset: u64,
    /// The epoch.
    pub epoch: String,
}

/// `HistoryRequest`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct HistoryRequest {
    /// The channel.
    pub channel: String,
    /// At most this many publications; 0 asks only for the position; negative for all.
    pub limit: i32,
    /// Publications after this position.
    pub since: Option<StreamPosition>,
    /// Newest first.
    pub reverse: bool,
}

/// `SubRefreshRequest` (the token-tracking fields of newer SDKs are ignored).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SubRefreshRequest {
    /// The channel.
    pub channel: String,
    /// The new subscription token.
    pub token: String,
}

/// `RefreshRequest`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RefreshRequest {
    /// The new connection JWT.
    pub token: String,
}

/// The wire form: every request optional, the first present wins.
#[derive(Deserialize)]
struct RawCommand {
    #[serde(default)]
    id: u32,
    connect: Option<ConnectRequest>,
    subscribe: Option<SubscribeRequest>,
    unsubscribe: Option<ChannelRequest>,
    publish: Option<PublishRequest>,
    presence: Option<ChannelRequest>,
    presence_stats: Option<ChannelRequest>,
    history: Option<HistoryRequest>,
    ping: Option<serde::de::IgnoredAny>,
    send: Option<SendRequest>,
    rpc: Option<RpcRequest>,
    refresh: Option<RefreshRequest>,
    sub_refresh: Option<SubRefreshRequest>,
}

/// The most commands one client message may hold (more than a connect with
/// `max_subscriptions_per_client`'s default 1,024 subscribes). A decoded command takes
/// far more memory than its bytes (an empty Protobuf command is one byte), so without
/// a cap a 64 KiB message of pongs or pings would decode to megabytes held while its
/// replies are written.
pub const MAX_COMMANDS: usize = 4096;

/// Why a client's message is not a valid batch of commands.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// A line is not a JSON command.
    #[error("command {line} is not valid JSON for a command: {reason}")]
    Json {
        /// The line, counted from 1.
        line: usize,
        /// serde_json's description.
        reason: String,
    },
    /// A Protobuf command is not a valid length-delimited `Command`.
    #[error("command {index} is not a valid Protobuf command: {reason}")]
    Protobuf {
        /// The command's place in the message, counted from 1.
        index: usize,
        /// prost's description.
        reason: String,
    },
    /// The message holds more than [`MAX_COMMANDS`] commands.
    #[error("the message holds more than {MAX_COMMANDS} commands")]
    TooMany,
    /// A command other than `send` or a pong has no id.
    #[error("command {index} ({method}) has no id")]
    MissingId {
        /// The command's place in the message (its line in JSON), counted from 1.
        index: usize,
        /// The method.
        method: &'static str,
    },
}

/// Decodes one WebSocket text message: newline-separated commands (blank lines skipped).
pub fn decode(message: &str) -> Result<Vec<Command>, DecodeError> {
    let mut commands = Vec::new();
    for (index, line) in message.split('\n').enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let raw: RawCommand = serde_json::from_str(line).map_err(|e| DecodeError::Json {
            line: index + 1,
            reason: e.to_string(),
        })?;
        if commands.len() == MAX_COMMANDS {
            return Err(DecodeError::TooMany);
        }
        commands.push(checked(into_command(raw), index + 1)?);
    }
    Ok(commands)
}

/// `command`, unless it lacks the id its method needs (all but `send` and pongs).
pub(super) fn checked(command: Command, index: usize) -> Result<Command, DecodeError> {
    let needs_id = !matches!(command.request, Request::Pong | Request::Send(_));
    if needs_id && command.id == 0 {
        return Err(DecodeError::MissingId {
            index,
            method: command.request.method(),
        });
    }
    Ok(command)
}

fn into_command(raw: RawCommand) -> Command {
    let request = if let Some(r) = raw.connect {
        Request::Connect(r)
    } else if let Some(r) = raw.subscribe {
        Request::Subscribe(r)
    } else if let Some(r) = raw.unsubscribe {
        Request::Unsubscribe(r)
    } else if let Some(r) = raw.publish {
        Request::Publish(r)
    } else if let Some(r) = raw.presence {
        Request::Presence(r)
    } else if let Some(r) = raw.presence_stats {
        Request::PresenceStats(r)
    } else if let Some(r) = raw.history {
        Request::History(r)
    } else if raw.ping.is_some() {
        Request::Ping
    } else if let Some(r) = raw.send {
        Request::Send(r)
    } else if let Some(r) = raw.rpc {
        Request::Rpc(r)
    } else if let Some(r) = raw.refresh {
        Request::Refresh(r)
    } else if let Some(r) = raw.sub_refresh {
        Request::SubRefresh(r)
    } else {
        Request::Pong
    };
    Command {
        id: raw.id,
        request,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_commands_per_message() {
        let commands = decode(
            "{\"id\":1,\"connect\":{\"token\":\"t\",\"name\":\"js\"}}\n{\"id\":2,\"subscribe\":{\"channel\":\"chat:a\",\"recover\":true,\"offset\":7,\"epoch\":\"e\"}}\n",
        )
        .unwrap();
        assert_eq!(commands.len(), 2);
        assert!(
            matches!(&commands[0].request, Request::Connect(c) if c.token == "t" && c.name == "js")
        );
        match &commands[1].request {
            Request::Subscribe(s) => {
                assert_eq!(
                    (s.channel.as_str(), s.recover, s.offset, s.epoch.as_str()),
                    ("chat:a", true, 7, "e")
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_empty_object_is_a_pong_and_needs_no_id() {
        let commands = decode("{}").unwrap();
        assert!(matches!(commands[0].request, Request::Pong));
        assert_eq!(commands[0].id, 0);
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let commands = decode(
            "{\"id\":3,\"publish\":{\"channel\":\"c\",\"data\":{\"a\":[1]},\"future\":1},\"x\":2}",
        )
        .unwrap();
        match &commands[0].request {
            Request::Publish(p) => assert_eq!(p.data.as_ref().unwrap().as_bytes(), b"{\"a\":[1]}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_message_holds_at_most_max_commands() {
        let pongs = |n: usize| vec!["{}"; n].join("\n");
        assert_eq!(decode(&pongs(MAX_COMMANDS)).unwrap().len(), MAX_COMMANDS);
        assert_eq!(
            decode(&pongs(MAX_COMMANDS + 1)).unwrap_err(),
            DecodeError::TooMany
        );
    }

    #[test]
    fn rejections_name_the_line() {
        assert!(matches!(
            decode("{}\nnot json"),
            Err(DecodeError::Json { line: 2, .. })
        ));
        assert_eq!(
            decode("{\"publish\":{\"channel\":\"c\"}}").unwrap_err(),
            DecodeError::MissingId {
                index: 1,
                method: "publish"
            }
        );
        assert!(matches!(
            decode("{\"id\":-1}"),
            Err(DecodeError::Json { .. })
        ));
        assert!(matches!(decode("[1]"), Err(DecodeError::Json { .. })));
    }
}
