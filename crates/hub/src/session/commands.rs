//! The commands of a connected session: each checks what the channel's options and the
//! client's credentials allow, then answers with a result or the protocol's error code.

use super::proxied::acknowledge;
use super::{close_deadline, stats, Connected, Failure, Session, Step, Subscription, VERSION};
use crate::auth::{unix_now, ChannelGrant, Identity, TokenError};
use crate::config::user_may_use;
use crate::control::Control;
use crate::engine::HistoryQuery;
use crate::protocol::command::{
    ChannelRequest, ConnectRequest, HistoryRequest, PublishRequest, RefreshRequest,
    SubRefreshRequest, SubscribeRequest,
};
use crate::protocol::reply::{
    ConnectResult, HistoryResult, PresenceResult, RefreshResult, Reply, SubRefreshResult,
    SubscribeResult,
};
use crate::protocol::{DisconnectCode, ErrorCode, Request};
use crate::registry::{ClientHandle, ConnectionLimit};
use duplex::WebSocket;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};

/// `SubscribeRequest.flag` bit: answer an unrecoverable position with error 112.
const REJECT_UNRECOVERED: i64 = 2;

impl Session {
    pub(super) async fn handle_message<S>(&mut self, ws: &mut WebSocket<S>, message: &[u8]) -> Step
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let commands = match self.format.decode(message) {
            Ok(commands) => commands,
            Err(e) => {
                tracing::info!(error = %e, "malformed command; disconnecting (3501)");
                return Step::Disconnect(DisconnectCode::BadRequest);
            }
        };
        // A message over the byte budget has each of its commands refused, as over the
        // command budget (the budget is at least max_message_size, so any message fits).
        let over_bytes = self.byte_rate.as_ref().is_some_and(|r| {
            let n = u32::try_from(message.len()).unwrap_or(u32::MAX);
            std::num::NonZeroU32::new(n).is_some_and(|n| !matches!(r.check_n(n), Ok(Ok(()))))
        });
        for command in commands {
            self.node.metrics.commands.inc(command.request.method());
            let id = command.id;
            let free = matches!(command.request, Request::Pong | Request::Connect(_));
            let limit = if free {
                None
            } else if over_bytes {
                Some("max_bytes_per_second")
            } else if self
                .command_rate
                .as_ref()
                .is_some_and(|r| r.check().is_err())
            {
                Some("max_commands_per_second")
            } else {
                None
            };
            if let Some(limit) = limit {
                self.node.metrics.limits.inc(limit);
                if id != 0 {
                    self.push_out(self.format.error(id, ErrorCode::TooManyRequests));
                }
                continue;
            }
            // A token naming a key id the JWKS cache lacks (a rotation) fetches the set.
            if let (Some(jwks), Some(token)) = (self.node.jwks.clone(), command.request.token()) {
                jwks.prepare(token).await;
            }
            let result = match command.request {
                Request::Pong => continue,
                Request::Refused { method, reason } => {
                    tracing::info!(method, reason, "command refused (107)");
                    Err(Failure::Error(ErrorCode::BadRequest))
                }
                Request::Connect(r) => {
                    let result = self.connect(r).await;
                    self.connect_failed = result.is_err();
                    result
                }
                // SDKs send connect and their subscribes in one message; after a
                // refused connect (an expired token, say) the rest is moot: the SDK
                // closes and connects again, and connect_timeout bounds one that does not.
                _ if self.connected.is_none() && self.connect_failed => continue,
                _ if self.connected.is_none() => {
                    tracing::info!("command before connect; disconnecting (3501)");
                    return Step::Disconnect(DisconnectCode::BadRequest);
                }
                Request::Subscribe(r) => self.subscribe(r).await.map(Reply::Subscribe),
                Request::Unsubscribe(r) => self.unsubscribe(r).await,
                Request::Publish(r) => match self.publish(id, r) {
                    Ok(()) => continue,
                    Err(e) => Err(Failure::Error(e)),
                },
                Request::Rpc(r) => match self.rpc(id, r) {
                    Ok(()) => continue,
                    Err(failure) => Err(failure),
                },
                Request::Presence(r) => self.presence(r).await,
                Request::PresenceStats(r) => self.presence_stats(r).await,
                Request::History(r) => self.history(r).await,
                Request::Ping => Ok(Reply::Ping),
                Request::Refresh(r) => self.refresh(r),
                Request::Send(r) => {
                    self.send(r);
                    continue;
                }
                Request::SubRefresh(r) => self.sub_refresh(r),
            };
            match self.answer(id, result) {
                Step::Continue => {}
                step => return step,
            }
            if self.out_is_full() {
                match self.write_out(ws).await {
                    Ok(()) => {}
                    Err(Some(code)) => return Step::Disconnect(code),
                    Err(None) => return Step::Gone,
                }
            }
        }
        Step::Continue
    }

    fn verifier(&self) -> Result<&crate::auth::Verifier, Failure> {
        self.node.verifier.as_ref().ok_or_else(|| {
            self.node.metrics.auth_failures.inc("no secret configured");
            tracing::info!("token refused: no token key is configured (token_hmac_secret, token_rsa_public_key or token_ecdsa_public_key)");
            Failure::Disconnect(DisconnectCode::InvalidToken)
        })
    }

    /// The protocol's answer to a refused token: expired 109 (the SDK gets a new one),
    /// valid but for another channel or user 103, forged or malformed 3500.
    fn token_failure(&self, e: TokenError) -> Failure {
        let metrics = &self.node.metrics;
        match e {
            TokenError::Expired { .. } => {
                metrics.auth_failures.inc("expired");
                tracing::info!(error = %e, "token refused");
                Failure::Error(ErrorCode::TokenExpired)
            }
            TokenError::NotForThis(_) => {
                metrics.auth_failures.inc("not for this");
                tracing::info!(error = %e, "token refused");
                Failure::Error(ErrorCode::PermissionDenied)
            }
            TokenError::Invalid(_) => {
                metrics.auth_failures.inc("invalid");
                tracing::info!(error = %e, "token refused; disconnecting (3500)");
                Failure::Disconnect(DisconnectCode::InvalidToken)
            }
        }
    }

    fn verify(&self, token: &str) -> Result<Identity, Failure> {
        self.verifier()?
            .verify(token, unix_now())
            .map_err(|e| self.token_failure(e))
    }

    fn verify_channel(&self, token: &str, channel: &str) -> Result<ChannelGrant, Failure> {
        let user = &self.connected().identity.user;
        self.verifier()?
            .verify_channel(token, channel, user, unix_now())
            .map_err(|e| self.token_failure(e))
    }

    fn sub_refresh(&mut self, request: SubRefreshRequest) -> Result<Reply, Failure> {
        if !self
            .connected()
            .subscriptions
            .contains_key(request.channel.as_str())
        {
            return Err(Failure::Error(ErrorCode::PermissionDenied));
        }
        let grant = self.verify_channel(&request.token, &request.channel)?;
        let delay = self.node.config.expired_close_delay;
        let connected = self.connected.as_mut().expect("checked before dispatch");
        let sub = connected
            .subscriptions
            .get_mut(request.channel.as_str())
            .expect("checked above");
        sub.closes_at = close_deadline(grant.expires_at, delay);
        if grant.info.is_some() {
            sub.chan_info = grant.info;
        }
        let ttl = grant.expires_at.map(|at| at.saturating_sub(unix_now()));
        Ok(Reply::SubRefresh(SubRefreshResult {
            expires: ttl.is_some(),
            ttl: ttl.map_or(0, |t| u32::try_from(t).unwrap_or(u32::MAX)),
        }))
    }

    async fn connect(&mut self, mut request: ConnectRequest) -> Result<Reply, Failure> {
        if self.connected.is_some() {
            tracing::info!("second connect command; disconnecting (3501)");
            return Err(Failure::Disconnect(DisconnectCode::BadRequest));
        }
        let client_id = self.node.new_client_id();
        let mut backend_data = None;
        let via_backend = request.token.is_empty() && self.connects_via_backend();
        let (identity, anonymous) = if via_backend {
            let (identity, data) = self.identity_from_backend(&client_id, &request).await?;
            backend_data = data;
            let anonymous = identity.user.is_empty();
            (identity, anonymous)
        } else if request.token.is_empty() {
            if !self.node.config.allow_anonymous {
                self.node.metrics.auth_failures.inc("missing token");
                tracing::info!("connect without a token refused: allow_anonymous is off");
                return Err(Failure::Error(ErrorCode::Unauthorized));
            }
            let identity = Identity {
                user: String::new(),
                expires_at: None,
                info: None,
                channels: Vec::new(),
            };
            (identity, true)
        } else {
            (self.verify(&request.token)?, false)
        };
        let config = &self.node.config;
        let (handle, queue) = ClientHandle::new(
            client_id,
            identity.user.clone(),
            self.format,
            config.client_queue_size,
        );
        if let Err(limit) = self.node.registry.add_client(
            handle.clone(),
            config.max_connections,
            config.max_connections_per_user,
        ) {
            let label = match limit {
                ConnectionLimit::Node => "max_connections",
                ConnectionLimit::User => "max_connections_per_user",
            };
            self.node.metrics.limits.inc(label);
            tracing::info!(user = %identity.user, limit = label, "connection limit reached; disconnecting (3504)");
            return Err(Failure::Disconnect(DisconnectCode::ConnectionLimit));
        }
        tracing::debug!(client = %handle.id, user = %identity.user, sdk = %request.name, sdk_version = %request.version, "client connected");
        // A proxied connection is prolonged by the hub asking the backend at `expire_at`;
        // the client is not told to refresh (it has no token to refresh with).
        let (ttl, closes_at) = if via_backend {
            (None, close_deadline(identity.expires_at, Duration::ZERO))
        } else {
            (
                identity.expires_at.map(|at| at.saturating_sub(unix_now())),
                close_deadline(identity.expires_at, config.expired_close_delay),
            )
        };
        let server_channels = identity.channels.clone();
        self.connected = Some(Connected {
            closes_at,
            identity,
            anonymous,
            via_backend,
            handle: handle.clone(),
            queue,
            subscriptions: HashMap::new(),
        });
        let mut result = ConnectResult {
            client: handle.id.clone(),
            version: VERSION.into(),
            expires: ttl.is_some(),
            ttl: ttl.map_or(0, |t| u32::try_from(t).unwrap_or(u32::MAX)),
            ping: u32::try_from(config.ping_interval.as_secs()).unwrap_or(u32::MAX),
            pong: true,
            data: backend_data,
            ..Default::default()
        };
        for channel in server_channels {
            // On a reconnect the SDK sends the position it has for each server-side
            // subscription in `subs`: recover from there.
            let known = request.subs.remove(&channel).unwrap_or_default();
            let request = SubscribeRequest {
                channel: channel.clone(),
                recover: known.recover,
                offset: known.offset,
                epoch: known.epoch,
                ..Default::default()
            };
            match self.subscribe_checked(request, true).await {
                Ok(sub) => {
                    result.subs.insert(channel, sub);
                }
                Err(Failure::Error(code)) => {
                    tracing::info!(%channel, error = code.message(), "server-side subscription from the token failed");
                }
                Err(disconnect) => return Err(disconnect),
            }
        }
        Ok(Reply::Connect(result))
    }

    pub(super) fn connected(&self) -> &Connected {
        self.connected.as_ref().expect("checked before dispatch")
    }

    /// A server-side subscription made after connect (the API's `subscribe`): the
    /// client learns of it from a `subscribe` push.
    pub(super) async fn subscribe_from_server<S>(
        &mut self,
        ws: &mut WebSocket<S>,
        channel: &str,
    ) -> Result<(), duplex::Error>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let request = SubscribeRequest {
            channel: channel.to_owned(),
            ..Default::default()
        };
        match self.subscribe_checked(request, true).await {
            Ok(result) => {
                let push = self.format.subscribe(channel, &result);
                ws.feed(self.format.message(push)).await
            }
            Err(Failure::Error(code)) => {
                tracing::info!(%channel, error = code.message(), "server-side subscription failed");
                Ok(())
            }
            Err(Failure::Disconnect(code)) => {
                self.connected().handle.end(code);
                Ok(())
            }
            Err(Failure::Backend(e)) => {
                tracing::info!(%channel, error = %e.message, code = e.code, "server-side subscription refused by the backend");
                Ok(())
            }
            Err(Failure::BackendDisconnect(code, reason)) => {
                tracing::info!(%channel, code, %reason, "the backend refused a server-side subscription with a disconnect; ignored");
                Ok(())
            }
        }
    }

    async fn subscribe(&mut self, request: SubscribeRequest) -> Result<SubscribeResult, Failure> {
        self.subscribe_checked(request, false).await
    }

    /// Subscribes after checking permissions (`server`: a token's channel, allowed).
    async fn subscribe_checked(
        &mut self,
        request: SubscribeRequest,
        server: bool,
    ) -> Result<SubscribeResult, Failure> {
        let node = self.node.clone();
        let channel = request.channel.as_str();
        let options = node
            .channels
            .options(channel)
            .ok_or(Failure::Error(ErrorCode::UnknownChannel))?
            .clone();
        let connected = self.connected();
        if connected.subscriptions.contains_key(channel) {
            return Err(Failure::Error(ErrorCode::AlreadySubscribed));
        }
        let max = node.config.max_subscriptions_per_client;
        if max > 0 && connected.subscriptions.len() >= max {
            node.metrics.limits.inc("max_subscriptions_per_client");
            return Err(Failure::Error(ErrorCode::LimitExceeded));
        }
        // A subscription token grants the channel (private channels need one).
        let grant = if !server && !request.token.is_empty() {
            Some(self.verify_channel(&request.token, channel)?)
        } else {
            None
        };
        // Without a token, a proxied namespace asks the backend; the others apply
        // their options.
        let proxied = if !server && grant.is_none() && options.proxy_subscribe {
            let data = request.data.map(crate::protocol::reply::Json::from);
            Some(self.subscribe_via_backend(channel, data).await?)
        } else {
            None
        };
        let connected = self.connected();
        if !server && grant.is_none() && proxied.is_none() {
            if options.require_subscription_token {
                return Err(Failure::Error(ErrorCode::PermissionDenied));
            }
            let allowed = if connected.anonymous {
                options.allow_subscribe_for_anonymous
            } else {
                options.allow_subscribe_for_client
            };
            if !allowed || !user_may_use(channel, &connected.identity.user) {
                return Err(Failure::Error(ErrorCode::PermissionDenied));
            }
        }
        let join_leave = options.join_leave && (request.join_leave || server);
        let (chan_info, backend_data) = match proxied {
            Some(p) => (p.info, p.data),
            None => (grant.as_ref().and_then(|g| g.info.clone()), None),
        };
        let mut info = connected.info();
        info.chan_info = chan_info.clone();
        let handle = connected.handle.clone();
        // Register (and have the engine feed the channel here) first, then read: every
        // publication stored after the read is in the queue, every one before it in the
        // history; the offset filter drops the overlap.
        let key = match node.subscribe(channel, &handle, join_leave).await {
            Ok(key) => key,
            Err(e) => {
                tracing::error!(%channel, error = %e, "the engine cannot feed the channel here");
                return Err(Failure::Error(ErrorCode::Internal));
            }
        };
        let query = if request.recover {
            HistoryQuery {
                since: Some(request.offset),
                limit: None,
                reverse: false,
            }
        } else {
            HistoryQuery {
                since: None,
                limit: Some(0),
                reverse: false,
            }
        };
        let history = match node.engine.history(channel, query).await {
            Ok(history) => history,
            Err(e) => {
                node.unsubscribe(channel, &handle.id);
                tracing::error!(%channel, error = %e, "history read for subscribe failed");
                return Err(Failure::Error(ErrorCode::Internal));
            }
        };
        let position = history.position;
        let ttl = grant
            .as_ref()
            .and_then(|g| g.expires_at)
            .map(|at| at.saturating_sub(unix_now()));
        let mut result = SubscribeResult {
            expires: ttl.is_some(),
            ttl: ttl.map_or(0, |t| u32::try_from(t).unwrap_or(u32::MAX)),
            recoverable: true,
            positioned: true,
            epoch: position.epoch.clone(),
            offset: position.offset,
            was_recovering: request.recover,
            data: backend_data,
            ..Default::default()
        };
        if request.recover {
            let same_epoch = request.epoch == position.epoch;
            let in_range = request.offset <= position.offset;
            let covered = request.offset == position.offset
                || (history.oldest != 0 && history.oldest <= request.offset.saturating_add(1));
            // Every missed offset present (guards against holes, e.g. a clock step
            // that expired publications out of order).
            let complete =
                in_range && history.publications.len() as u64 == position.offset - request.offset;
            if same_epoch && in_range && covered && complete {
                result.recovered = true;
                result.publications = history.publications;
            } else if request.flag & REJECT_UNRECOVERED != 0 {
                // The SDK asked for an error instead (it then reloads state itself).
                node.unsubscribe(channel, &handle.id);
                return Err(Failure::Error(ErrorCode::UnrecoverablePosition));
            }
        }
        if options.presence {
            if let Err(e) = node
                .engine
                .add_presence(channel, &handle.id, info.clone())
                .await
            {
                tracing::warn!(%channel, error = %e, "presence update failed");
            }
        }
        if options.join_leave {
            if let Err(e) = node.control(Control::presence(channel, &info, true)).await {
                tracing::warn!(%channel, error = %e, "join not announced");
            }
        }
        let connected = self.connected.as_mut().expect("checked above");
        connected.subscriptions.insert(
            key,
            Subscription {
                offset: position.offset,
                epoch: position.epoch,
                join_leave,
                chan_info,
                closes_at: grant
                    .as_ref()
                    .and_then(|g| close_deadline(g.expires_at, node.config.expired_close_delay)),
            },
        );
        Ok(result)
    }

    async fn unsubscribe(&mut self, request: ChannelRequest) -> Result<Reply, Failure> {
        self.leave(&request.channel).await;
        Ok(Reply::Unsubscribe)
    }

    pub(super) async fn leave(&mut self, channel: &str) {
        let Some(connected) = self.connected.as_mut() else {
            return;
        };
        let Some(subscription) = connected.subscriptions.remove(channel) else {
            return;
        };
        let mut info = connected.info();
        info.chan_info = subscription.chan_info;
        let node = &self.node;
        node.unsubscribe(channel, &info.client);
        if let Some(options) = node.channels.options(channel) {
            if options.presence {
                let _ = node.engine.remove_presence(channel, &info.client).await;
            }
            if options.join_leave {
                if let Err(e) = node.control(Control::presence(channel, &info, false)).await {
                    tracing::warn!(%channel, error = %e, "leave not announced");
                }
            }
        }
    }

    pub(super) async fn leave_all(&mut self) {
        let channels: Vec<Arc<str>> = match &self.connected {
            Some(c) => c.subscriptions.keys().cloned().collect(),
            None => return,
        };
        for channel in channels {
            self.leave(&channel).await;
        }
        if let Some(connected) = &self.connected {
            self.node.registry.remove_client(&connected.handle.id);
        }
    }

    /// Starts a publish; its reply is sent once the engine has stored it.
    fn publish(&mut self, id: u32, request: PublishRequest) -> Result<(), ErrorCode> {
        let node = self.node.clone();
        let options = node
            .channels
            .options(&request.channel)
            .ok_or(ErrorCode::UnknownChannel)?;
        let data = request.data.ok_or(ErrorCode::BadRequest)?;
        node.check_publication_size(options, &data)?;
        if options.proxy_publish {
            self.publish_via_backend(id, request.channel, data, request.idempotency_key);
            return Ok(());
        }
        let connected = self.connected();
        let subscribed = connected
            .subscriptions
            .contains_key(request.channel.as_str());
        let allowed = user_may_use(&request.channel, &connected.identity.user)
            && (options.allow_publish_for_client
                || (subscribed && options.allow_publish_for_subscriber))
            && (!connected.anonymous || options.allow_publish_for_anonymous);
        if !allowed {
            return Err(ErrorCode::PermissionDenied);
        }
        let started = Instant::now();
        let info = Some(connected.info_in(&request.channel));
        let ack = match request.idempotency_key {
            Some(key) => node.engine.publish_once(&request.channel, data, info, key),
            None => node.engine.publish(&request.channel, data, info),
        };
        self.pending.push(Box::pin(async move {
            acknowledge(&node, id, ack, started).await
        }));
        Ok(())
    }

    /// Checks that the client may read `channel`'s history or presence.
    fn may_read(&self, channel: &str, allowed_for_subscriber: bool) -> Result<(), Failure> {
        if !self.connected().subscriptions.contains_key(channel) || !allowed_for_subscriber {
            return Err(Failure::Error(ErrorCode::PermissionDenied));
        }
        Ok(())
    }

    async fn history(&mut self, request: HistoryRequest) -> Result<Reply, Failure> {
        let node = self.node.clone();
        let options = node
            .channels
            .options(&request.channel)
            .ok_or(Failure::Error(ErrorCode::UnknownChannel))?;
        self.may_read(&request.channel, options.allow_history_for_subscriber)?;
        let limit = match request.limit {
            l if l < 0 => None,
            l => Some(usize::try_from(l).unwrap_or(0)),
        };
        let query = HistoryQuery {
            since: request.since.as_ref().map(|s| s.offset),
            limit,
            reverse: request.reverse,
        };
        let history = node
            .engine
            .history(&request.channel, query)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "history read failed");
                Failure::Error(ErrorCode::Internal)
            })?;
        if let Some(since) = &request.since {
            if since.epoch != history.position.epoch {
                return Err(Failure::Error(ErrorCode::UnrecoverablePosition));
            }
        }
        Ok(Reply::History(HistoryResult {
            publications: history.publications,
            epoch: history.position.epoch,
            offset: history.position.offset,
        }))
    }

    async fn presence_map(&mut self, channel: &str) -> Result<crate::engine::PresenceMap, Failure> {
        let options = self
            .node
            .channels
            .options(channel)
            .ok_or(Failure::Error(ErrorCode::UnknownChannel))?;
        if !options.presence {
            return Err(Failure::Error(ErrorCode::NotAvailable));
        }
        self.may_read(channel, options.allow_presence_for_subscriber)?;
        self.node.engine.presence(channel).await.map_err(|e| {
            tracing::error!(error = %e, "presence read failed");
            Failure::Error(ErrorCode::Internal)
        })
    }

    async fn presence(&mut self, request: ChannelRequest) -> Result<Reply, Failure> {
        let presence = self.presence_map(&request.channel).await?;
        Ok(Reply::Presence(PresenceResult { presence }))
    }

    async fn presence_stats(&mut self, request: ChannelRequest) -> Result<Reply, Failure> {
        let presence = self.presence_map(&request.channel).await?;
        Ok(Reply::PresenceStats(stats(&presence)))
    }

    fn refresh(&mut self, request: RefreshRequest) -> Result<Reply, Failure> {
        if self.connected().anonymous {
            return Err(Failure::Error(ErrorCode::BadRequest));
        }
        let identity = self.verify(&request.token)?;
        let connected = self.connected.as_mut().expect("checked before dispatch");
        if identity.user != connected.identity.user {
            tracing::info!("refresh token names another user; disconnecting (3500)");
            return Err(Failure::Disconnect(DisconnectCode::InvalidToken));
        }
        connected.identity.expires_at = identity.expires_at;
        connected.closes_at =
            close_deadline(identity.expires_at, self.node.config.expired_close_delay);
        connected.identity.info = identity.info.or(connected.identity.info.take());
        let ttl = identity.expires_at.map(|at| at.saturating_sub(unix_now()));
        Ok(Reply::Refresh(RefreshResult {
            client: connected.handle.id.clone(),
            version: VERSION.into(),
            expires: ttl.is_some(),
            ttl: ttl.map_or(0, |t| u32::try_from(t).unwrap_or(u32::MAX)),
        }))
    }
}
