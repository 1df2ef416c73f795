//! The session's side of backend proxies: each request is built from the connection's
//! state, and each verdict becomes the command's outcome. Calls that answer one command
//! (publish, rpc, send) run as deferred replies, so a slow backend holds back only
//! that command's reply, never the connection's other commands.

use super::{close_deadline, Deferred, Failure, Session, Step};
use crate::auth::Identity;
use crate::backend::{self, CallError, Caller, Event, EventRequest, Verdict};
use crate::node::Node;
use crate::protocol::command::{ConnectRequest, RpcRequest, SendRequest};
use crate::protocol::reply::{Json, Reply};
use crate::protocol::{DisconnectCode, ErrorCode, Payload};
use std::time::{Duration, Instant};

/// How soon a refresh is tried again when the backend could not answer: a backend that
/// is briefly down must not disconnect every client whose session came due.
const REFRESH_RETRY: Duration = Duration::from_secs(10);

/// The command's outcome for a backend's verdict; a call that failed is error 100
/// (temporary: the SDKs retry).
fn outcome<T>(verdict: Result<Verdict<T>, CallError>) -> Result<T, Failure> {
    match verdict {
        Ok(Verdict::Accept(result)) => Ok(result),
        Ok(Verdict::Reject(e)) => Err(Failure::Backend(e)),
        Ok(Verdict::Disconnect { code, reason }) => Err(Failure::BackendDisconnect(code, reason)),
        Err(_) => Err(Failure::Error(ErrorCode::Internal)),
    }
}

/// A deferred reply for a failed call (the verdict's error, disconnect or error 100).
fn deferred_failure(id: u32, failure: Failure) -> Deferred {
    Deferred::Answer(id, Err(failure))
}

impl Session {
    fn backend_handles(&self, event: Event) -> bool {
        self.node.backend.as_ref().is_some_and(|b| b.handles(event))
    }

    /// Whether a token-less connect goes to the backend.
    pub(super) fn connects_via_backend(&self) -> bool {
        self.backend_handles(Event::Connect)
    }

    // `&mut self` in these async methods: a shared borrow of the session (whose pending
    // futures are not `Sync`) would make the session's future not `Send`.
    async fn call<T: serde::de::DeserializeOwned>(
        &mut self,
        event: Event,
        body: &impl serde::Serialize,
    ) -> Result<T, Failure> {
        let Some(backend) = &self.node.backend else {
            return Err(Failure::Error(ErrorCode::NotAvailable));
        };
        outcome(backend.call(event, &self.headers, body).await)
    }

    /// Asks the backend who a client without a token is: its identity and the data for
    /// the connect reply.
    pub(super) async fn identity_from_backend(
        &mut self,
        client: &str,
        request: &ConnectRequest,
    ) -> Result<(Identity, Option<Json>), Failure> {
        let body = backend::ConnectRequest {
            caller: Caller::new(client.to_owned(), None),
            name: &request.name,
            version: &request.version,
            data: request.data.as_deref(),
        };
        let result: backend::ConnectResult = self.call(Event::Connect, &body).await?;
        let identity = Identity {
            user: result.user,
            expires_at: (result.expire_at > 0).then_some(result.expire_at),
            info: result.info,
            channels: result.channels,
        };
        Ok((identity, result.data))
    }

    /// The connection reached its expiry: a proxied one asks the backend to prolong it;
    /// any other was not refreshed by its client in time (3005).
    pub(super) async fn expired(&mut self) -> Step {
        let Some(connected) = &self.connected else {
            return Step::Continue;
        };
        if !connected.via_backend || !self.backend_handles(Event::Refresh) {
            tracing::info!("connection token expired without a refresh; disconnecting (3005)");
            return Step::Disconnect(DisconnectCode::Expired);
        }
        let body = EventRequest {
            caller: self.caller(),
            channel: None,
            method: None,
            data: None,
            b64data: None,
        };
        let result = self
            .call::<backend::RefreshResult>(Event::Refresh, &body)
            .await;
        let connected = self.connected.as_mut().expect("checked above");
        match result {
            Ok(r) if !r.expired => {
                let expires_at = (r.expire_at > 0).then_some(r.expire_at);
                connected.identity.expires_at = expires_at;
                connected.closes_at = close_deadline(expires_at, Duration::ZERO);
                if r.info.is_some() {
                    connected.identity.info = r.info;
                }
                Step::Continue
            }
            Ok(_) | Err(Failure::Backend(_)) => {
                tracing::info!(user = %connected.identity.user, "the backend did not prolong the connection; disconnecting (3005)");
                Step::Disconnect(DisconnectCode::Expired)
            }
            Err(Failure::BackendDisconnect(code, reason)) => Step::BackendDisconnect(code, reason),
            Err(_) => {
                connected.closes_at = Some(tokio::time::Instant::now() + REFRESH_RETRY);
                Step::Continue
            }
        }
    }

    /// Asks the backend whether the client may subscribe to `channel`.
    pub(super) async fn subscribe_via_backend(
        &mut self,
        channel: &str,
        data: Option<Json>,
    ) -> Result<backend::SubscribeResult, Failure> {
        let body = EventRequest {
            caller: self.caller(),
            channel: Some(channel.to_owned()),
            method: None,
            data,
            b64data: None,
        };
        self.call(Event::Subscribe, &body).await
    }

    /// Starts a publish the backend decides on; stored with the data it returns (or
    /// the client's), acknowledged once stored.
    pub(super) fn publish_via_backend(
        &mut self,
        id: u32,
        channel: String,
        data: Payload,
        idempotency_key: Option<String>,
    ) {
        let node = self.node.clone();
        let headers = self.headers.clone();
        let caller = self.caller();
        let info = self.connected().info_in(&channel);
        self.pending.push(Box::pin(async move {
            let started = Instant::now();
            let body = EventRequest {
                caller,
                channel: Some(channel.clone()),
                method: None,
                data: match &data {
                    Payload::Json(json) => Some(json.clone()),
                    Payload::Binary(_) => None,
                },
                b64data: data.base64(),
            };
            let result = match &node.backend {
                Some(b) => {
                    outcome::<backend::DataResult>(b.call(Event::Publish, &headers, &body).await)
                }
                None => Err(Failure::Error(ErrorCode::NotAvailable)),
            };
            let data = match result {
                Ok(r) => match r.publication() {
                    Ok(chosen) => chosen.unwrap_or(data),
                    Err(e) => {
                        tracing::warn!(%channel, error = %e, "publish proxy answered b64data that is not base64");
                        node.metrics.proxy_errors.inc("publish");
                        return deferred_failure(id, Failure::Error(ErrorCode::Internal));
                    }
                },
                Err(failure) => return deferred_failure(id, failure),
            };
            let ack = match idempotency_key {
                Some(key) => node.engine.publish_once(&channel, data, Some(info), key),
                None => node.engine.publish(&channel, data, Some(info)),
            };
            acknowledge(&node, id, ack, started).await
        }));
    }

    /// `rpc`: the backend answers (108 when no endpoint is configured).
    pub(super) fn rpc(&mut self, id: u32, request: RpcRequest) -> Result<(), Failure> {
        if !self.backend_handles(Event::Rpc) {
            return Err(Failure::Error(ErrorCode::NotAvailable));
        }
        let node = self.node.clone();
        let headers = self.headers.clone();
        let body = EventRequest {
            caller: self.caller(),
            channel: None,
            method: Some(request.method),
            data: request.data.map(Json::from),
            b64data: None,
        };
        self.pending.push(Box::pin(async move {
            let Some(backend) = &node.backend else {
                return deferred_failure(id, Failure::Error(ErrorCode::NotAvailable));
            };
            match outcome::<backend::DataResult>(backend.call(Event::Rpc, &headers, &body).await) {
                Ok(r) => Deferred::Answer(id, Ok(Reply::Rpc(r.data))),
                Err(failure) => deferred_failure(id, failure),
            }
        }));
        Ok(())
    }

    /// `send`: passed to the backend, no reply (dropped when no endpoint is configured).
    pub(super) fn send(&mut self, request: SendRequest) {
        if !self.backend_handles(Event::Send) {
            return;
        }
        let node = self.node.clone();
        let headers = self.headers.clone();
        let body = EventRequest {
            caller: self.caller(),
            channel: None,
            method: None,
            data: request.data.map(Json::from),
            b64data: None,
        };
        self.pending.push(Box::pin(async move {
            let Some(backend) = &node.backend else {
                return Deferred::Nothing;
            };
            match backend
                .call::<backend::Empty>(Event::Send, &headers, &body)
                .await
            {
                Ok(Verdict::Disconnect { code, reason }) => Deferred::Disconnect(code, reason),
                _ => Deferred::Nothing,
            }
        }));
    }

    fn caller(&self) -> Caller {
        let connected = self.connected();
        Caller::new(
            connected.handle.id.clone(),
            Some(connected.identity.user.clone()),
        )
    }
}

/// Answers publish `id` once `ack` (the engine's, already started) says it is stored.
pub(super) async fn acknowledge(
    node: &Node,
    id: u32,
    ack: futures_util::future::BoxFuture<'static, Result<crate::engine::Position, crate::Error>>,
    started: Instant,
) -> Deferred {
    match ack.await {
        Ok(_) => {
            node.metrics.publications.inc();
            node.metrics.ack_latency.observe(started.elapsed());
            Deferred::Answer(id, Ok(Reply::Publish))
        }
        Err(e) => {
            tracing::error!(error = %e, "publish not stored; answered with error 100");
            Deferred::Answer(id, Err(Failure::Error(ErrorCode::Internal)))
        }
    }
}
