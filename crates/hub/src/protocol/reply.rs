//! Replies and pushes to clients, one JSON object per line.
//!
//! As in protobuf's JSON mapping, fields at their default (false, 0, empty) are left
//! out; the SDKs read a missing field as its default.

use super::codes::{ErrorCode, UnsubscribeCode};
use serde::Serialize;
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use std::sync::Arc;

fn is_false(b: &bool) -> bool {
    !*b
}
fn is_zero(n: &u64) -> bool {
    *n == 0
}
fn is_zero32(n: &u32) -> bool {
    *n == 0
}

/// Raw JSON shared between the stored publication, its pushes and history replies.
pub type Json = Arc<RawValue>;

/// `ClientInfo`: who a connection is.
#[derive(Clone, Debug, Serialize)]
pub struct ClientInfo {
    /// The user id (empty for anonymous).
    pub user: String,
    /// The connection's client id.
    pub client: String,
    /// The token's `info` claim.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conn_info: Option<Json>,
    /// Channel-specific info (channel tokens, a later issue).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chan_info: Option<Json>,
}

/// [`ClientInfo`] as its JSON reads back (the raw fields become shared).
#[derive(serde::Deserialize)]
struct ClientInfoJson {
    user: String,
    client: String,
    conn_info: Option<Box<RawValue>>,
    chan_info: Option<Box<RawValue>>,
}

impl ClientInfo {
    /// Reads the JSON this type serializes to (kept in Redis, sent between nodes).
    pub fn from_json(bytes: &[u8]) -> Result<ClientInfo, serde_json::Error> {
        let info: ClientInfoJson = serde_json::from_slice(bytes)?;
        Ok(ClientInfo {
            user: info.user,
            client: info.client,
            conn_info: info.conn_info.map(Arc::from),
            chan_info: info.chan_info.map(Arc::from),
        })
    }
}

/// `Publication` as clients see it.
#[derive(Clone, Debug, Serialize)]
pub struct Publication {
    /// The payload.
    pub data: super::Payload,
    /// The publisher, when a client published.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub info: Option<ClientInfo>,
    /// The publication's offset in its channel's stream.
    #[serde(skip_serializing_if = "is_zero")]
    pub offset: u64,
}

/// `ConnectResult`.
#[derive(Debug, Default, Serialize)]
pub struct ConnectResult {
    /// The client id the hub gave the connection.
    pub client: String,
    /// The hub's version.
    pub version: String,
    /// Whether the connection expires (token `exp`).
    #[serde(skip_serializing_if = "is_false")]
    pub expires: bool,
    /// Seconds until then.
    #[serde(skip_serializing_if = "is_zero32")]
    pub ttl: u32,
    /// Server-side subscriptions made from the token's `channels` claim.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub subs: BTreeMap<String, SubscribeResult>,
    /// The ping interval in seconds.
    #[serde(skip_serializing_if = "is_zero32")]
    pub ping: u32,
    /// Whether the client must answer pings.
    #[serde(skip_serializing_if = "is_false")]
    pub pong: bool,
    /// Data from the backend's connect proxy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Json>,
}

/// `SubscribeResult`.
#[derive(Debug, Default, Serialize)]
pub struct SubscribeResult {
    /// Whether the subscription expires (its token's `exp`).
    #[serde(skip_serializing_if = "is_false")]
    pub expires: bool,
    /// Seconds until then.
    #[serde(skip_serializing_if = "is_zero32")]
    pub ttl: u32,
    /// Whether the channel keeps a stream the client can recover from.
    #[serde(skip_serializing_if = "is_false")]
    pub recoverable: bool,
    /// The stream's epoch.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub epoch: String,
    /// Publications recovered since the client's position.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub publications: Vec<Publication>,
    /// Whether every missed publication is in `publications`.
    #[serde(skip_serializing_if = "is_false")]
    pub recovered: bool,
    /// The stream's top offset (after the recovered publications).
    #[serde(skip_serializing_if = "is_zero")]
    pub offset: u64,
    /// Whether the hub checks the stream position (it always does).
    #[serde(skip_serializing_if = "is_false")]
    pub positioned: bool,
    /// Whether the client asked to recover.
    #[serde(skip_serializing_if = "is_false")]
    pub was_recovering: bool,
    /// Data from the backend's subscribe proxy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Json>,
}

/// `HistoryResult`.
#[derive(Debug, Default, Serialize)]
pub struct HistoryResult {
    /// The publications asked for.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub publications: Vec<Publication>,
    /// The stream's epoch.
    pub epoch: String,
    /// The stream's top offset.
    #[serde(skip_serializing_if = "is_zero")]
    pub offset: u64,
}

/// `PresenceResult`: client id to info.
#[derive(Debug, Default, Serialize)]
pub struct PresenceResult {
    /// Who is subscribed.
    pub presence: BTreeMap<String, ClientInfo>,
}

/// `PresenceStatsResult`.
#[derive(Debug, Default, Serialize)]
pub struct PresenceStatsResult {
    /// Connections subscribed.
    pub num_clients: u32,
    /// Distinct users among them.
    pub num_users: u32,
}

/// `RefreshResult`.
#[derive(Debug, Default, Serialize)]
pub struct RefreshResult {
    /// The client id.
    pub client: String,
    /// The hub's version.
    pub version: String,
    /// Whether the connection expires.
    #[serde(skip_serializing_if = "is_false")]
    pub expires: bool,
    /// Seconds until then.
    #[serde(skip_serializing_if = "is_zero32")]
    pub ttl: u32,
}

/// `SubRefreshResult`.
#[derive(Debug, Default, Serialize)]
pub struct SubRefreshResult {
    /// Whether the subscription expires.
    #[serde(skip_serializing_if = "is_false")]
    pub expires: bool,
    /// Seconds until then.
    #[serde(skip_serializing_if = "is_zero32")]
    pub ttl: u32,
}

/// The successful result of a command.
#[derive(Debug)]
pub enum Reply {
    /// `connect`
    Connect(ConnectResult),
    /// `subscribe`
    Subscribe(SubscribeResult),
    /// `unsubscribe`
    Unsubscribe,
    /// `publish`
    Publish,
    /// `presence`
    Presence(PresenceResult),
    /// `presence_stats`
    PresenceStats(PresenceStatsResult),
    /// `history`
    History(HistoryResult),
    /// `ping`
    Ping,
    /// `rpc`: the backend's answer.
    Rpc(Option<Json>),
    /// `refresh`
    Refresh(RefreshResult),
    /// `sub_refresh`
    SubRefresh(SubRefreshResult),
}

/// One line: the reply to command `id`.
pub fn encode_reply(id: u32, reply: &Reply) -> String {
    let (field, body) = match reply {
        Reply::Connect(r) => ("connect", to_json(r)),
        Reply::Subscribe(r) => ("subscribe", to_json(r)),
        Reply::Unsubscribe => ("unsubscribe", "{}".to_owned()),
        Reply::Publish => ("publish", "{}".to_owned()),
        Reply::Presence(r) => ("presence", to_json(r)),
        Reply::PresenceStats(r) => ("presence_stats", to_json(r)),
        Reply::History(r) => ("history", to_json(r)),
        Reply::Ping => ("ping", "{}".to_owned()),
        Reply::Rpc(data) => (
            "rpc",
            match data {
                Some(d) => format!("{{\"data\":{}}}", d.get()),
                None => "{}".to_owned(),
            },
        ),
        Reply::Refresh(r) => ("refresh", to_json(r)),
        Reply::SubRefresh(r) => ("sub_refresh", to_json(r)),
    };
    format!("{{\"id\":{id},\"{field}\":{body}}}")
}

/// One line: command `id` failed with an error the backend chose (any code and message).
pub fn encode_custom_error(id: u32, code: u32, message: &str, temporary: bool) -> String {
    let message = serde_json::to_string(message).unwrap_or_else(|_| "\"\"".into());
    let temporary = if temporary { ",\"temporary\":true" } else { "" };
    format!("{{\"id\":{id},\"error\":{{\"code\":{code},\"message\":{message}{temporary}}}}}")
}

/// One line: command `id` failed with `code`.
pub fn encode_error(id: u32, code: ErrorCode) -> String {
    let temporary = if code.temporary() {
        ",\"temporary\":true"
    } else {
        ""
    };
    format!(
        "{{\"id\":{id},\"error\":{{\"code\":{},\"message\":\"{}\"{temporary}}}}}",
        code.code(),
        code.message()
    )
}

/// The hub's ping: an empty reply.
pub const PING: &str = "{}";

/// A `pub` push: one publication in `channel`.
pub fn encode_publication(channel: &str, publication: &Publication) -> String {
    push(channel, "pub", &to_json(publication))
}

/// A `join` push.
pub fn encode_join(channel: &str, info: &ClientInfo) -> String {
    push(channel, "join", &format!("{{\"info\":{}}}", to_json(info)))
}

/// A `leave` push.
pub fn encode_leave(channel: &str, info: &ClientInfo) -> String {
    push(channel, "leave", &format!("{{\"info\":{}}}", to_json(info)))
}

/// An `unsubscribe` push: the hub ended the subscription.
pub fn encode_unsubscribe(channel: &str, code: UnsubscribeCode) -> String {
    push(
        channel,
        "unsubscribe",
        &format!(
            "{{\"code\":{},\"reason\":\"{}\"}}",
            code.code(),
            code.reason()
        ),
    )
}

/// A `disconnect` push, sent just before the close frame with the same code: the SDKs
/// act on either, and it survives intermediaries that rewrite close codes.
pub fn encode_disconnect(code: super::DisconnectCode) -> String {
    encode_custom_disconnect(code.code(), code.reason())
}

/// A `disconnect` push with any code and reason (the backend's).
pub fn encode_custom_disconnect(code: u16, reason: &str) -> String {
    let reason = serde_json::to_string(reason).unwrap_or_else(|_| "\"\"".into());
    let reconnect = super::codes::reconnects(code);
    format!("{{\"push\":{{\"disconnect\":{{\"code\":{code},\"reason\":{reason},\"reconnect\":{reconnect}}}}}}}")
}

/// A `subscribe` push: a server-side subscription made after connect.
pub fn encode_subscribe(channel: &str, result: &SubscribeResult) -> String {
    push(channel, "subscribe", &to_json(result))
}

fn push(channel: &str, field: &str, body: &str) -> String {
    format!(
        "{{\"push\":{{\"channel\":{},\"{field}\":{body}}}}}",
        to_json(channel)
    )
}

fn to_json<T: Serialize + ?Sized>(value: &T) -> String {
    // Serializing these types cannot fail: string keys, no non-finite floats.
    serde_json::to_string(value).expect("reply types serialize")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Json {
        Arc::from(RawValue::from_string(s.to_owned()).unwrap())
    }

    #[test]
    fn defaults_are_left_out() {
        let line = encode_reply(4, &Reply::Subscribe(SubscribeResult::default()));
        assert_eq!(line, "{\"id\":4,\"subscribe\":{}}");
        let line = encode_reply(
            5,
            &Reply::Subscribe(SubscribeResult {
                recoverable: true,
                positioned: true,
                epoch: "ab".into(),
                offset: 9,
                ..Default::default()
            }),
        );
        assert_eq!(
            line,
            "{\"id\":5,\"subscribe\":{\"recoverable\":true,\"epoch\":\"ab\",\"offset\":9,\"positioned\":true}}"
        );
    }

    #[test]
    fn errors_carry_code_message_and_temporary() {
        assert_eq!(
            encode_error(2, ErrorCode::PermissionDenied),
            "{\"id\":2,\"error\":{\"code\":103,\"message\":\"permission denied\"}}"
        );
        assert_eq!(
            encode_error(3, ErrorCode::Internal),
            "{\"id\":3,\"error\":{\"code\":100,\"message\":\"internal server error\",\"temporary\":true}}"
        );
    }

    #[test]
    fn a_publication_push_embeds_the_data_as_json() {
        let publication = Publication {
            data: crate::protocol::Payload::Json(raw("{\"text\":\"hi\"}")),
            info: None,
            offset: 12,
        };
        let line = encode_publication("chat:\"x\"", &publication);
        assert_eq!(
            line,
            "{\"push\":{\"channel\":\"chat:\\\"x\\\"\",\"pub\":{\"data\":{\"text\":\"hi\"},\"offset\":12}}}"
        );
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["push"]["pub"]["data"]["text"], "hi");
    }
}
