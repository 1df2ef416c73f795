//! Backend proxies: the application decides. When configured, the hub POSTs a client's
//! connect, refresh, subscribe, publish, RPC and send to the application's HTTP endpoints
//! (the JSON shapes of Centrifugo's HTTP proxy) and applies the answer: accept (with a
//! user, info, data), reject with an error code, or disconnect the client.
//!
//! A backend that is down, slow past `proxy.timeout` or answers something that is not
//! one of those three never takes the hub with it: the command gets error 100 (temporary,
//! so the SDKs retry), the failure is logged and counted in `duplex_hub_proxy_errors_total`.

mod client;

pub use client::{CallError, HttpClient};

use crate::config::ProxyOptions;
use crate::metrics::Metrics;
use crate::protocol::reply::Json;
use http::{HeaderMap, HeaderName, Uri};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// What a proxy call is for: names the endpoint, the metric label and the log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A client connects without a token.
    Connect,
    /// A proxied connection reaches its `expire_at`.
    Refresh,
    /// A client subscribes to a channel whose namespace has `proxy_subscribe`.
    Subscribe,
    /// A client publishes to a channel whose namespace has `proxy_publish`.
    Publish,
    /// A client calls `rpc`.
    Rpc,
    /// A client sends an asynchronous message (`send`).
    Send,
}

impl Event {
    /// The event's name in configuration keys, logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Event::Connect => "connect",
            Event::Refresh => "refresh",
            Event::Subscribe => "subscribe",
            Event::Publish => "publish",
            Event::Rpc => "rpc",
            Event::Send => "send",
        }
    }
}

/// The backend's decision.
#[derive(Debug)]
pub enum Verdict<T> {
    /// Go ahead, with what the backend added.
    Accept(T),
    /// Answer the command with this error; the connection stays.
    Reject(BackendError),
    /// End the connection with this close code and reason.
    Disconnect {
        /// 3000-4999: below 3500 and 4000-4499 ask the client to reconnect.
        code: u16,
        /// Sent as the close reason (at most 123 bytes of it).
        reason: String,
    },
}

/// An error the backend chose for the client.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct BackendError {
    /// 100-1999: the protocol's codes or the application's own.
    pub code: u32,
    /// Shown to the client.
    #[serde(default)]
    pub message: String,
    /// Whether the SDK should retry.
    #[serde(default)]
    pub temporary: bool,
}

/// The fields every request carries.
#[derive(Clone, Debug, Serialize)]
pub struct Caller {
    /// The hub's id for the connection.
    pub client: String,
    /// Always `websocket`.
    pub transport: &'static str,
    /// Always `json`.
    pub protocol: &'static str,
    /// Always `json`.
    pub encoding: &'static str,
    /// The user (empty for anonymous clients; absent on connect).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

impl Caller {
    /// A connection's caller fields.
    pub fn new(client: String, user: Option<String>) -> Self {
        Caller {
            client,
            transport: "websocket",
            protocol: "json",
            encoding: "json",
            user,
        }
    }
}

/// `connect` request body.
#[derive(Debug, Serialize)]
pub struct ConnectRequest<'a> {
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub caller: Caller,
    /// The SDK's name and version.
    pub name: &'a str,
    #[allow(missing_docs)]
    pub version: &'a str,
    /// The client's connect data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<&'a serde_json::value::RawValue>,
}

/// `connect` result: who the client is.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ConnectResult {
    /// The user id (empty: anonymous).
    pub user: String,
    /// Unix seconds when the connection expires (0: never); then `refresh` is called.
    pub expire_at: u64,
    /// Connection info shown to others (presence, publications).
    pub info: Option<Json>,
    /// Data for the client, in the connect reply.
    pub data: Option<Json>,
    /// Server-side subscriptions.
    pub channels: Vec<String>,
}

/// `refresh` result.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RefreshResult {
    /// End the connection (3005).
    pub expired: bool,
    /// The new expiry, Unix seconds (0: never).
    pub expire_at: u64,
    /// New connection info, when given.
    pub info: Option<Json>,
}

/// `refresh`, `subscribe`, `publish`, `rpc` and `send` request bodies.
#[derive(Debug, Serialize)]
pub struct EventRequest {
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub caller: Caller,
    /// The channel (subscribe, publish).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// The RPC method (rpc).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// The client's data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Json>,
    /// The client's data in base64, instead of `data`, when it is not JSON (publish;
    /// Centrifugo's name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub b64data: Option<String>,
}

/// `subscribe` result.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SubscribeResult {
    /// Channel info for this subscriber (presence, join/leave, its publications).
    pub info: Option<Json>,
    /// Data for the client, in the subscribe reply.
    pub data: Option<Json>,
}

/// `publish` and `rpc` result.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DataResult {
    /// Publish: the data to store instead of the client's; rpc: the answer.
    pub data: Option<Json>,
    /// Publish: binary data in base64 to store instead of the client's.
    pub b64data: Option<String>,
}

impl DataResult {
    /// The publication's data the backend chose: `data`, `b64data`, or (neither) none;
    /// `Err` for base64 that does not decode.
    pub fn publication(&self) -> Result<Option<crate::protocol::Payload>, base64::DecodeError> {
        use crate::protocol::Payload;
        match (&self.data, &self.b64data) {
            (Some(data), _) => Ok(Some(Payload::Json(data.clone()))),
            (None, Some(b64data)) => Payload::from_base64(b64data).map(Some),
            (None, None) => Ok(None),
        }
    }
}

/// `send` result: nothing.
#[derive(Debug, Default, Deserialize)]
pub struct Empty {}

/// The configured endpoints and the HTTP client that calls them.
pub struct Backend {
    client: client::HttpClient,
    endpoints: [Option<Uri>; 6],
    headers: Vec<HeaderName>,
    metrics: Arc<Metrics>,
}

impl Backend {
    /// Builds the client; `None` when no endpoint is configured. The options are
    /// validated with the configuration.
    pub fn new(options: &ProxyOptions, metrics: Arc<Metrics>) -> Option<Backend> {
        let endpoint = |e: &Option<String>| e.as_deref().and_then(|u| u.parse::<Uri>().ok());
        let endpoints = [
            endpoint(&options.connect_endpoint),
            endpoint(&options.refresh_endpoint),
            endpoint(&options.subscribe_endpoint),
            endpoint(&options.publish_endpoint),
            endpoint(&options.rpc_endpoint),
            endpoint(&options.send_endpoint),
        ];
        if endpoints.iter().all(Option::is_none) {
            return None;
        }
        Some(Backend {
            client: client::HttpClient::new(options.timeout),
            endpoints,
            headers: options
                .http_headers
                .iter()
                .filter_map(|h| HeaderName::try_from(h.as_str()).ok())
                .collect(),
            metrics,
        })
    }

    /// Whether `event` goes to the backend.
    pub fn handles(&self, event: Event) -> bool {
        self.endpoint(event).is_some()
    }

    fn endpoint(&self, event: Event) -> Option<&Uri> {
        self.endpoints[event as usize].as_ref()
    }

    /// The client's handshake headers that are forwarded (`proxy.http_headers`).
    pub fn forwarded(&self, headers: &HeaderMap) -> HeaderMap {
        let mut out = HeaderMap::new();
        for name in &self.headers {
            for value in headers.get_all(name) {
                out.append(name.clone(), value.clone());
            }
        }
        out
    }

    /// Calls the backend for `event`; a failure is logged and counted.
    pub async fn call<T: DeserializeOwned>(
        &self,
        event: Event,
        headers: &HeaderMap,
        body: &impl Serialize,
    ) -> Result<Verdict<T>, CallError> {
        let Some(uri) = self.endpoint(event) else {
            return Err(CallError::NotConfigured);
        };
        let body = serde_json::to_vec(body).map_err(|e| CallError::Garbage(e.to_string()))?;
        let result = match self.client.post(uri, headers, body).await {
            Ok(answer) => parse(&answer),
            Err(e) => Err(e),
        };
        if let Err(e) = &result {
            self.metrics.proxy_errors.inc(event.name());
            tracing::warn!(event = event.name(), endpoint = %uri, error = %e, "backend proxy call failed; the client gets error 100");
        }
        result
    }
}

/// The backend's answer: exactly one of `result`, `error` or `disconnect`.
#[derive(Deserialize)]
struct Answer<T> {
    result: Option<T>,
    error: Option<BackendError>,
    disconnect: Option<DisconnectAnswer>,
}

#[derive(Deserialize)]
struct DisconnectAnswer {
    code: u16,
    #[serde(default)]
    reason: String,
}

/// Reads an answer body, checking the codes the protocol allows.
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<Verdict<T>, CallError> {
    let answer: Answer<T> = serde_json::from_slice(body)
        .map_err(|e| CallError::Garbage(format!("the answer is not a proxy result: {e}")))?;
    match answer {
        Answer {
            disconnect: Some(d),
            ..
        } => {
            if !(3000..=4999).contains(&d.code) {
                return Err(CallError::Garbage(format!(
                    "disconnect code {} is outside 3000-4999",
                    d.code
                )));
            }
            let mut reason = d.reason;
            // A close reason is at most 123 bytes; cut at a character boundary.
            while reason.len() > 123 {
                reason.pop();
            }
            Ok(Verdict::Disconnect {
                code: d.code,
                reason,
            })
        }
        Answer { error: Some(e), .. } => {
            if !(100..=1999).contains(&e.code) {
                return Err(CallError::Garbage(format!(
                    "error code {} is outside 100-1999",
                    e.code
                )));
            }
            Ok(Verdict::Reject(e))
        }
        Answer {
            result: Some(r), ..
        } => Ok(Verdict::Accept(r)),
        _ => Err(CallError::Garbage(
            "the answer has none of result, error, disconnect".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_checked() {
        let accept: Verdict<ConnectResult> =
            parse(br#"{"result":{"user":"u1","expire_at":5,"info":{"a":1},"channels":["x"]}}"#)
                .unwrap();
        match accept {
            Verdict::Accept(r) => {
                assert_eq!((r.user.as_str(), r.expire_at), ("u1", 5));
                assert_eq!(r.info.unwrap().get(), r#"{"a":1}"#);
                assert_eq!(r.channels, ["x"]);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse::<Empty>(br#"{"error":{"code":1001,"message":"no"}}"#),
            Ok(Verdict::Reject(BackendError { code: 1001, .. }))
        ));
        assert!(matches!(
            parse::<Empty>(br#"{"disconnect":{"code":4501,"reason":"banned"}}"#),
            Ok(Verdict::Disconnect { code: 4501, .. })
        ));
        for garbage in [
            &b"<html>"[..],
            b"{}",
            b"[]",
            br#"{"error":{"code":5000}}"#,
            br#"{"error":{"code":99}}"#,
            br#"{"disconnect":{"code":1000}}"#,
            br#"{"disconnect":{"code":5000}}"#,
            br#"{"result":{"user":5}}"#,
        ] {
            assert!(
                matches!(parse::<ConnectResult>(garbage), Err(CallError::Garbage(_))),
                "{}",
                String::from_utf8_lossy(garbage)
            );
        }
    }

    #[test]
    fn a_long_reason_is_cut_to_fit_a_close_frame() {
        let body = format!(
            r#"{{"disconnect":{{"code":4000,"reason":"{}"}}}}"#,
            "é".repeat(100)
        );
        match parse::<Empty>(body.as_bytes()).unwrap() {
            Verdict::Disconnect { reason, .. } => assert!(reason.len() <= 123),
            other => panic!("{other:?}"),
        }
    }
}
