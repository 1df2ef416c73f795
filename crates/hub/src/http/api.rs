//! The server HTTP API, compatible with Centrifugo's: `POST /api/<method>` with a JSON
//! body, the key in `X-API-Key: KEY` or `Authorization: apikey KEY`, and an answer of
//! `{"result": ...}` or `{"error": {"code", "message"}}`. Publish answers only after the
//! commit, with the publication's offset and epoch (with an `idempotency_key`, a retry
//! within five minutes, across restarts with SQLite, gets the first answer and stores
//! nothing). Methods: publish, broadcast,
//! history, history_remove, presence, presence_stats, info, channels (channels with
//! subscribers here and their counts), subscribe and unsubscribe (a user's server-side
//! subscription, with a `subscribe` or `unsubscribe` push), disconnect (a user's
//! connections, 3503 or with `reconnect` 3011) and batch (up to 1,000 of these, answered
//! as Centrifugo does, `{"replies": [...]}`).

use crate::control::Control;
use crate::engine::{HistoryQuery, Position};
use crate::node::Node;
use crate::protocol::command::StreamPosition;
use crate::protocol::reply::HistoryResult;
use crate::protocol::{ErrorCode, Payload};
use crate::session::stats;
use http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::sync::Arc;
use std::time::Instant;

/// The most commands one `batch` call may carry.
const MAX_BATCH: usize = 1000;

/// What the API answers: the HTTP status and the JSON body.
pub type Answer = (StatusCode, String);

fn error(code: ErrorCode) -> String {
    format!(
        "{{\"error\":{{\"code\":{},\"message\":\"{}\"}}}}",
        code.code(),
        code.message()
    )
}

fn result<T: Serialize>(value: &T) -> String {
    format!(
        "{{\"result\":{}}}",
        serde_json::to_string(value).expect("API results serialize")
    )
}

/// Whether the request carries the configured key.
pub fn authorized(headers: &HeaderMap, key: &str) -> bool {
    let given = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| {
            headers
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("apikey ").map(|k| k.trim().to_owned()))
        });
    given.is_some_and(|g| same_secret(&g, key))
}

/// Whether `given` is `secret`, compared in constant time (for equal lengths).
pub(crate) fn same_secret(given: &str, secret: &str) -> bool {
    given.len() == secret.len()
        && given
            .bytes()
            .zip(secret.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

#[derive(Deserialize)]
struct PublishParams {
    channel: String,
    data: Option<Box<RawValue>>,
    /// Binary data in base64, instead of `data` (Centrifugo's name).
    b64data: Option<String>,
    /// A retry with the same key within five minutes gets the first result.
    idempotency_key: Option<String>,
}

#[derive(Deserialize)]
struct BroadcastParams {
    channels: Vec<String>,
    data: Option<Box<RawValue>>,
    /// Binary data in base64, instead of `data`.
    b64data: Option<String>,
    /// Applies to each channel.
    idempotency_key: Option<String>,
}

/// The payload of a publish or broadcast: exactly one of `data` (JSON) and `b64data`
/// (base64), or error 107.
fn payload(data: Option<Box<RawValue>>, b64data: Option<String>) -> Result<Payload, ErrorCode> {
    match (data, b64data) {
        (Some(data), None) => Ok(Payload::from(data)),
        (None, Some(b64data)) => Payload::from_base64(&b64data).map_err(|_| ErrorCode::BadRequest),
        _ => Err(ErrorCode::BadRequest),
    }
}

/// Why a publication cannot go to `channel`: an unknown namespace (102) or data over
/// the namespace's `max_publication_size` (106).
fn refusal(node: &Node, channel: &str, data: &Payload) -> Option<ErrorCode> {
    let Some(options) = node.channels.options(channel) else {
        return Some(ErrorCode::UnknownChannel);
    };
    node.check_publication_size(options, data).err()
}

/// Stores a publication, once per idempotency key when one is given.
fn store(
    node: &Node,
    channel: &str,
    data: Payload,
    key: Option<&str>,
) -> futures_util::future::BoxFuture<'static, Result<Position, crate::Error>> {
    match key {
        Some(key) if !key.is_empty() => {
            node.engine
                .publish_once(channel, data, None, key.to_owned())
        }
        _ => node.engine.publish(channel, data, None),
    }
}

#[derive(Deserialize)]
struct ChannelParams {
    channel: String,
}

#[derive(Deserialize)]
struct HistoryParams {
    channel: String,
    #[serde(default)]
    limit: i32,
    since: Option<StreamPosition>,
    #[serde(default)]
    reverse: bool,
}

#[derive(Deserialize)]
struct UnsubscribeParams {
    user: String,
    channel: String,
    #[serde(default)]
    client: Option<String>,
}

#[derive(Deserialize)]
struct DisconnectParams {
    user: String,
    #[serde(default)]
    client: Option<String>,
    /// Ask the client to reconnect (3011) instead of staying away (3503).
    #[serde(default)]
    reconnect: bool,
}

#[derive(Serialize)]
struct PublishResult {
    offset: u64,
    epoch: String,
}

impl From<Position> for PublishResult {
    fn from(p: Position) -> Self {
        PublishResult {
            offset: p.offset,
            epoch: p.epoch,
        }
    }
}

fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, Answer> {
    serde_json::from_slice(body).map_err(|e| {
        (
            StatusCode::BAD_REQUEST,
            format!(
                "{{\"error\":{{\"code\":107,\"message\":{}}}}}",
                serde_json::to_string(&format!("bad request: {e}")).expect("a string serializes")
            ),
        )
    })
}

/// Answers `POST /api/<method>` with `body`; the key was already checked.
pub async fn call(node: &Arc<Node>, method: &str, body: &[u8]) -> Answer {
    match dispatch(node, method, body).await {
        Ok(body) => (StatusCode::OK, body),
        Err(answer) => answer,
    }
}

/// The API's methods: the metric label for anything else is `api_unknown`, so made-up
/// method names cannot grow the metrics without bound.
const METHODS: &[&str] = &[
    "publish",
    "broadcast",
    "history",
    "subscribe",
    "channels",
    "history_remove",
    "batch",
    "unsubscribe",
    "disconnect",
    "info",
    "presence",
    "presence_stats",
];

async fn dispatch(node: &Arc<Node>, method: &str, body: &[u8]) -> Result<String, Answer> {
    let label = if METHODS.contains(&method) {
        method
    } else {
        "unknown"
    };
    node.metrics.commands.inc(&format!("api_{label}"));
    Ok(match method {
        "publish" => {
            let params: PublishParams = parse(body)?;
            match payload(params.data, params.b64data) {
                Ok(data) => {
                    publish(
                        node,
                        &params.channel,
                        data,
                        params.idempotency_key.as_deref(),
                    )
                    .await
                }
                Err(code) => error(code),
            }
        }
        "broadcast" => {
            let params: BroadcastParams = parse(body)?;
            let data = match payload(params.data, params.b64data) {
                Ok(data) => data,
                Err(code) => return Ok(error(code)),
            };
            // Queue every channel's publish first (one commit group), then await them.
            let started = Instant::now();
            let acks: Vec<_> = params
                .channels
                .iter()
                .map(|channel| match refusal(node, channel, &data) {
                    Some(code) => Err(code),
                    None => Ok(store(
                        node,
                        channel,
                        data.clone(),
                        params.idempotency_key.as_deref(),
                    )),
                })
                .collect();
            let mut responses = Vec::with_capacity(acks.len());
            for ack in acks {
                responses.push(match ack {
                    Err(code) => error(code),
                    Ok(ack) => match ack.await {
                        Ok(position) => {
                            node.metrics.publications.inc();
                            node.metrics.ack_latency.observe(started.elapsed());
                            result(&PublishResult::from(position))
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "API broadcast not stored");
                            error(ErrorCode::Internal)
                        }
                    },
                });
            }
            format!("{{\"result\":{{\"responses\":[{}]}}}}", responses.join(","))
        }
        "history" => {
            let params: HistoryParams = parse(body)?;
            if node.channels.options(&params.channel).is_none() {
                return Ok(error(ErrorCode::UnknownChannel));
            }
            let query = HistoryQuery {
                since: params.since.as_ref().map(|s| s.offset),
                limit: if params.limit < 0 {
                    None
                } else {
                    Some(usize::try_from(params.limit).unwrap_or(0))
                },
                reverse: params.reverse,
            };
            match node.engine.history(&params.channel, query).await {
                Ok(history) => {
                    if params
                        .since
                        .as_ref()
                        .is_some_and(|s| s.epoch != history.position.epoch)
                    {
                        return Ok(error(ErrorCode::UnrecoverablePosition));
                    }
                    result(&HistoryResult {
                        publications: history.publications,
                        epoch: history.position.epoch,
                        offset: history.position.offset,
                    })
                }
                Err(e) => {
                    tracing::error!(error = %e, "API history failed");
                    error(ErrorCode::Internal)
                }
            }
        }
        "presence" | "presence_stats" => {
            let params: ChannelParams = parse(body)?;
            let Some(options) = node.channels.options(&params.channel) else {
                return Ok(error(ErrorCode::UnknownChannel));
            };
            if !options.presence {
                return Ok(error(ErrorCode::NotAvailable));
            }
            match node.engine.presence(&params.channel).await {
                Ok(presence) if method == "presence" => {
                    result(&crate::protocol::reply::PresenceResult { presence })
                }
                Ok(presence) => result(&stats(&presence)),
                Err(e) => {
                    tracing::error!(error = %e, "API presence failed");
                    error(ErrorCode::Internal)
                }
            }
        }
        "subscribe" => {
            let params: UnsubscribeParams = parse(body)?;
            if node.channels.options(&params.channel).is_none() {
                return Ok(error(ErrorCode::UnknownChannel));
            }
            control(
                node,
                Control::Subscribe {
                    user: params.user,
                    client: params.client,
                    channel: params.channel,
                },
            )
            .await
        }
        "channels" => {
            #[derive(Serialize)]
            struct ChannelInfo {
                num_clients: usize,
            }
            let channels: std::collections::BTreeMap<String, ChannelInfo> = node
                .registry
                .channel_counts()
                .into_iter()
                .map(|(c, n)| (c, ChannelInfo { num_clients: n }))
                .collect();
            #[derive(Serialize)]
            struct Channels {
                channels: std::collections::BTreeMap<String, ChannelInfo>,
            }
            result(&Channels { channels })
        }
        "history_remove" => {
            let params: ChannelParams = parse(body)?;
            if node.channels.options(&params.channel).is_none() {
                return Ok(error(ErrorCode::UnknownChannel));
            }
            match node.engine.remove_history(&params.channel).await {
                Ok(()) => "{\"result\":{}}".to_owned(),
                Err(e) => {
                    tracing::error!(error = %e, "API history_remove failed");
                    error(ErrorCode::Internal)
                }
            }
        }
        "batch" => {
            #[derive(Deserialize)]
            struct BatchParams {
                commands: Vec<serde_json::Map<String, serde_json::Value>>,
            }
            let params: BatchParams = parse(body)?;
            if params.commands.len() > MAX_BATCH {
                return Ok(error(ErrorCode::LimitExceeded));
            }
            let mut replies = Vec::with_capacity(params.commands.len());
            for command in params.commands {
                // Each command is an object with one method name as its key.
                let Some((method, params)) = command.into_iter().next() else {
                    replies.push(error(ErrorCode::BadRequest));
                    continue;
                };
                if method == "batch" {
                    replies.push(error(ErrorCode::BadRequest));
                    continue;
                }
                let body = params.to_string();
                let answer = match Box::pin(dispatch(node, &method, body.as_bytes())).await {
                    Ok(answer) | Err((_, answer)) => answer,
                };
                // `{"result": R}` becomes `{"<method>": R}`; errors stay as they are.
                let reply = match answer.strip_prefix("{\"result\":") {
                    Some(rest) => format!(
                        "{{{}:{rest}",
                        serde_json::to_string(&method).expect("a string serializes")
                    ),
                    None => answer,
                };
                replies.push(reply);
            }
            // Centrifugo answers a batch with `replies` at the top, not inside `result`.
            format!("{{\"replies\":[{}]}}", replies.join(","))
        }
        "unsubscribe" => {
            let params: UnsubscribeParams = parse(body)?;
            control(
                node,
                Control::Unsubscribe {
                    user: params.user,
                    client: params.client,
                    channel: params.channel,
                },
            )
            .await
        }
        "disconnect" => {
            let params: DisconnectParams = parse(body)?;
            control(
                node,
                Control::Disconnect {
                    user: params.user,
                    client: params.client,
                    reconnect: params.reconnect,
                },
            )
            .await
        }
        "info" => {
            // This node, then the others a shared engine knows of (each reports itself
            // every few seconds; a node that stopped drops out after a few more).
            let this = node.info();
            let mut nodes = vec![serde_json::to_value(&this).expect("node info serializes")];
            match node.engine.nodes().await {
                Ok(others) => {
                    for text in others {
                        match serde_json::from_str::<serde_json::Value>(&text) {
                            Ok(other) if other["uid"] != this.uid.as_str() => nodes.push(other),
                            Ok(_) => {}
                            Err(e) => tracing::warn!(error = %e, "a node's info is not JSON"),
                        }
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "the other nodes' info cannot be read");
                    return Ok(error(ErrorCode::Internal));
                }
            }
            format!(
                "{{\"result\":{{\"nodes\":{}}}}}",
                serde_json::Value::Array(nodes)
            )
        }
        _ => {
            return Err((StatusCode::NOT_FOUND, error(ErrorCode::MethodNotFound)));
        }
    })
}

/// Acts on a user's clients on every node; an error when the other nodes could not be
/// told (nothing is claimed done that was not sent).
async fn control(node: &Node, control: Control) -> String {
    match node.control(control).await {
        Ok(()) => "{\"result\":{}}".to_owned(),
        Err(e) => {
            tracing::error!(error = %e, "API command not sent to the other nodes");
            error(ErrorCode::Internal)
        }
    }
}

async fn publish(node: &Arc<Node>, channel: &str, data: Payload, key: Option<&str>) -> String {
    if let Some(code) = refusal(node, channel, &data) {
        return error(code);
    }
    let started = Instant::now();
    match store(node, channel, data, key).await {
        Ok(position) => {
            node.metrics.publications.inc();
            node.metrics.ack_latency.observe(started.elapsed());
            result(&PublishResult::from(position))
        }
        Err(e) => {
            tracing::error!(error = %e, "API publish not stored");
            error(ErrorCode::Internal)
        }
    }
}
