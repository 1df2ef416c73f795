//! The admin dashboard: the page at `/admin`, its data at `/admin/stats`, and the server
//! API behind it at `/admin/api/<method>` (for the channel inspector).
//!
//! The page itself is public (it holds no data); everything it fetches needs
//! `Authorization: Bearer SECRET`, where the secret is `admin_password` or `api_key`.
//! A header, not a cookie: another site's page cannot make the browser send it, so
//! there is no cross-site request forgery to defend against.

use super::api;
use crate::node::Node;
use crate::stats::Sample;
use http::{header, HeaderMap, StatusCode};
use serde::Serialize;
use std::sync::Arc;

/// How many channels the busiest-channels table shows.
const BUSIEST: usize = 20;

/// Why a request may not see the dashboard's data.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Neither `admin_password` nor `api_key` is set (403).
    Off,
    /// No secret, or not the right one (401).
    Unauthorized,
}

impl Refusal {
    /// The status and JSON body to answer with.
    pub fn answer(&self) -> api::Answer {
        match self {
            Refusal::Off => (
                StatusCode::FORBIDDEN,
                "{\"error\":{\"code\":103,\"message\":\"the admin dashboard is off: set admin_password (or api_key)\"}}".into(),
            ),
            Refusal::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "{\"error\":{\"code\":101,\"message\":\"unauthorized: send Authorization: Bearer <admin_password or api_key>\"}}".into(),
            ),
        }
    }
}

/// Whether `headers` carry the admin password or the API key as a bearer token.
pub fn check(node: &Node, headers: &HeaderMap) -> Result<(), Refusal> {
    let secrets: Vec<&str> = [&node.config.admin_password, &node.config.api_key]
        .into_iter()
        .filter_map(|s| s.as_deref())
        .collect();
    if secrets.is_empty() {
        return Err(Refusal::Off);
    }
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        // The scheme is case-insensitive (RFC 9110).
        .and_then(|v| {
            v.get(..7)
                .filter(|scheme| scheme.eq_ignore_ascii_case("bearer "))
                .map(|_| v[7..].trim())
        });
    // Both are compared, so the time taken doesn't tell which one nearly matched.
    let matched = given.is_some_and(|g| {
        secrets
            .iter()
            .fold(false, |any, s| api::same_secret(g, s) | any)
    });
    if matched {
        Ok(())
    } else {
        node.metrics.auth_failures.inc("admin");
        Err(Refusal::Unauthorized)
    }
}

#[derive(Serialize)]
struct NodeInfo {
    uid: String,
    version: &'static str,
    uptime: u64,
    engine: crate::config::EngineKind,
    durability: crate::config::Durability,
}

#[derive(Serialize)]
struct Totals {
    connections: i64,
    subscriptions: i64,
    users: usize,
    channels: usize,
    publications: u64,
    deliveries: u64,
    slow_disconnects: u64,
}

#[derive(Serialize)]
struct ChannelCount {
    channel: String,
    subscribers: usize,
}

#[derive(Serialize)]
struct Stats<'a> {
    node: NodeInfo,
    totals: Totals,
    /// One a second, oldest first (see [`crate::stats`]).
    series: Vec<&'a Sample>,
    /// Most subscribers first, then by name.
    busiest_channels: Vec<ChannelCount>,
}

/// The dashboard's data: node, totals, the recent series and the busiest channels.
pub fn stats(node: &Arc<Node>) -> String {
    let snapshot = node.metrics.snapshot();
    let channels = node.registry.busiest_channels(BUSIEST);
    let history = node.stats.lock().unwrap_or_else(|e| e.into_inner());
    let stats = Stats {
        node: NodeInfo {
            uid: node.uid(),
            version: crate::session::VERSION,
            uptime: node.started.elapsed().as_secs(),
            engine: node.config.engine,
            durability: node.config.durability,
        },
        totals: Totals {
            connections: snapshot.connections,
            subscriptions: snapshot.subscriptions,
            users: node.registry.user_count(),
            channels: node.registry.channel_count(),
            publications: snapshot.publications,
            deliveries: snapshot.deliveries,
            slow_disconnects: snapshot.slow_disconnects,
        },
        series: history.samples().collect(),
        busiest_channels: channels
            .into_iter()
            .map(|(channel, subscribers)| ChannelCount {
                channel,
                subscribers,
            })
            .collect(),
    };
    serde_json::to_string(&stats).expect("stats serialize")
}
