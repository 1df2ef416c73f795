//! The connection the engine sends commands on: to one Redis (a reconnecting
//! multiplexed connection), to the master Sentinel names (found again when it fails), or
//! to a Redis Cluster (a connection per master, commands routed by the slot of their
//! keys).

use redis::aio::{ConnectionLike, ConnectionManager, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{MultipleNodeRoutingInfo, ResponsePolicy, RoutingInfo};
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{Cmd, Pipeline, RedisError, RedisFuture, RedisResult, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone)]
pub(super) enum Conn {
    Single(ConnectionManager),
    Sentinel(Arc<SentinelMaster>),
    Cluster(ClusterConnection),
}

/// Where a pub/sub connection is opened: a fixed Redis, or the master Sentinel names at
/// the time.
#[derive(Clone)]
pub(super) enum Source {
    Client(redis::Client),
    Sentinel(Arc<SentinelMaster>),
}

impl Source {
    pub(super) async fn client(&self) -> RedisResult<redis::Client> {
        match self {
            Source::Client(client) => Ok(client.clone()),
            Source::Sentinel(master) => master.client().await,
        }
    }
}

/// The master of a Sentinel-monitored Redis: asked of the Sentinels when there is no
/// connection yet or the last one failed (the master died, or was demoted and refuses
/// writes with `READONLY`). A failed command is not retried: its caller gets the error,
/// so a publish is never stored twice.
pub(super) struct SentinelMaster {
    sentinel: tokio::sync::Mutex<SentinelClient>,
    current: Mutex<Option<MultiplexedConnection>>,
    timeout: Duration,
}

impl SentinelMaster {
    /// `sentinels` are the Sentinels' URLs; the first one's password and database are
    /// also the master's.
    pub(super) fn new(
        sentinels: &[String],
        master: &str,
        timeout: Duration,
    ) -> RedisResult<SentinelMaster> {
        let mut node = SentinelNodeConnectionInfo::default();
        if let Some(first) = sentinels.first() {
            let info = redis::IntoConnectionInfo::into_connection_info(first.as_str())?;
            node = node.set_redis_connection_info(info.redis_settings().clone());
        }
        let sentinel = SentinelClient::build(
            sentinels.to_vec(),
            master.to_owned(),
            Some(node),
            SentinelServerType::Master,
        )?;
        Ok(SentinelMaster {
            sentinel: tokio::sync::Mutex::new(sentinel),
            current: Mutex::new(None),
            timeout,
        })
    }

    /// A client for the master the Sentinels name now (checked with `ROLE`).
    async fn client(&self) -> RedisResult<redis::Client> {
        let mut sentinel = self.sentinel.lock().await;
        match tokio::time::timeout(self.timeout, sentinel.async_get_client()).await {
            Ok(result) => result,
            Err(_) => Err(timed_out("asking the Sentinels for the master")),
        }
    }

    async fn connection(&self) -> RedisResult<MultiplexedConnection> {
        if let Some(conn) = self
            .current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            return Ok(conn);
        }
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout));
        let conn = self
            .client()
            .await?
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Some(conn.clone());
        Ok(conn)
    }

    /// After `error`: the next command asks the Sentinels again unless it was only the
    /// command's own fault.
    fn failed(&self, error: &RedisError) {
        if error.is_io_error()
            || error.is_connection_dropped()
            || error.is_timeout()
            || error.is_unrecoverable_error()
            || error.code() == Some("READONLY")
        {
            self.forget();
        }
    }

    fn forget(&self) {
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

fn timed_out(what: &str) -> RedisError {
    RedisError::from(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("{what}: no answer in time"),
    ))
}

/// True when one of a pipeline's replies says the server is a replica now.
fn demoted(values: &[Value]) -> bool {
    values
        .iter()
        .any(|v| matches!(v, Value::ServerError(e) if e.code() == "READONLY"))
}

impl Conn {
    /// A `PING` to the Redis, or to every master of the Cluster.
    pub(super) async fn ping(&mut self) -> redis::RedisResult<()> {
        match self {
            Conn::Single(conn) => redis::cmd("PING").query_async(conn).await,
            // A failure replaces the connection (the master may have moved): once more
            // on the replacement before the node counts as unhealthy.
            Conn::Sentinel(_) => match redis::cmd("PING").query_async(&mut *self).await {
                Ok(()) => Ok(()),
                Err(_) => redis::cmd("PING").query_async(self).await,
            },
            Conn::Cluster(conn) => conn
                .route_command(
                    redis::cmd("PING"),
                    RoutingInfo::MultiNode((
                        MultipleNodeRoutingInfo::AllMasters,
                        Some(ResponsePolicy::AllSucceeded),
                    )),
                )
                .await
                .map(|_| ()),
        }
    }

    pub(super) fn is_cluster(&self) -> bool {
        matches!(self, Conn::Cluster(_))
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(conn) => conn.req_packed_command(cmd),
            Conn::Sentinel(master) => Box::pin(async move {
                let mut conn = master.connection().await?;
                let result = conn.req_packed_command(cmd).await;
                if let Err(e) = &result {
                    master.failed(e);
                }
                result
            }),
            Conn::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(conn) => conn.req_packed_commands(pipeline, offset, count),
            Conn::Sentinel(master) => Box::pin(async move {
                let mut conn = master.connection().await?;
                let result = conn.req_packed_commands(pipeline, offset, count).await;
                match &result {
                    Err(e) => master.failed(e),
                    Ok(values) if demoted(values) => master.forget(),
                    Ok(_) => {}
                }
                result
            }),
            Conn::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(conn) => conn.get_db(),
            Conn::Sentinel(_) => 0,
            Conn::Cluster(conn) => conn.get_db(),
        }
    }
}
