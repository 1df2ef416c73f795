//! The SQLite engine: publications in `<data_dir>/hub.sqlite3` (WAL mode).
//!
//! One writer thread owns the write connection and commits in groups: it takes every
//! operation queued while the previous transaction ran and applies them in one
//! transaction, so many concurrent publishes cost one commit. Only after the commit does
//! it deliver the publications (in offset order) and answer the publishers: an
//! acknowledged publication is in the database file and survives `kill -9`
//! (`durability = "fsync"`: power loss too). History is read on a separate connection,
//! which WAL lets run beside the writer on a consistent snapshot.

mod writer;

use super::{
    now_ms, Delivery, Engine, History, HistoryQuery, LocalPresence, Position, PresenceMap,
};
use crate::config::{Channels, Durability};
use crate::error::Error;
use crate::protocol::reply::{ClientInfo, Json, Publication};
use crate::protocol::Payload;
use futures_util::future::{BoxFuture, FutureExt};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::value::RawValue;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;
use writer::Writer;

/// The most operations one transaction takes; bounds the latency a batch adds.
const MAX_BATCH: usize = 4096;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS streams (
    channel TEXT PRIMARY KEY,
    epoch TEXT NOT NULL,
    top INTEGER NOT NULL,
    created_ms INTEGER NOT NULL DEFAULT 0,
    last_ms INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS publications (
    channel TEXT NOT NULL,
    offset INTEGER NOT NULL,
    time_ms INTEGER NOT NULL,
    data TEXT NOT NULL,
    user TEXT,
    client TEXT,
    conn_info TEXT,
    chan_info TEXT,
    PRIMARY KEY (channel, offset)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS health (id INTEGER PRIMARY KEY, at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS idempotency (
    channel TEXT NOT NULL,
    key TEXT NOT NULL,
    offset INTEGER NOT NULL,
    epoch TEXT NOT NULL,
    expires_ms INTEGER NOT NULL,
    PRIMARY KEY (channel, key)
) WITHOUT ROWID;
";

enum Op {
    Publish {
        channel: String,
        data: Payload,
        info: Option<ClientInfo>,
        /// Remembered for [`IDEMPOTENCY_WINDOW`]; a repeat answers the first position.
        key: Option<String>,
        reply: oneshot::Sender<Result<Position, Error>>,
    },
    /// Creates the channel's stream if it has none.
    Ensure {
        channel: String,
        reply: oneshot::Sender<Result<(), Error>>,
    },
    Check {
        reply: oneshot::Sender<Result<(), Error>>,
    },
    RemoveHistory {
        channel: String,
        reply: oneshot::Sender<Result<(), Error>>,
    },
    Expire {
        reply: oneshot::Sender<Result<(), Error>>,
    },
}

struct Inner {
    path: PathBuf,
    read: Mutex<Connection>,
    writer: Mutex<Option<mpsc::Sender<Op>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    channels: Channels,
}

/// Publications in SQLite.
pub struct SqliteEngine {
    inner: Arc<Inner>,
    presence: LocalPresence,
}

fn storage(e: rusqlite::Error) -> Error {
    Error::Storage(e.to_string())
}

fn open(path: &Path, durability: Durability) -> Result<Connection, Error> {
    let conn = Connection::open(path)
        .map_err(|e| Error::Storage(format!("cannot open {}: {e}", path.display())))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(storage)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(storage)?;
    let synchronous = match durability {
        Durability::Commit => "NORMAL",
        Durability::Fsync => "FULL",
    };
    conn.pragma_update(None, "synchronous", synchronous)
        .map_err(storage)?;
    Ok(conn)
}

impl SqliteEngine {
    /// Queues a publish for the writer (in call order: the order of the commits) and
    /// resolves once it is committed.
    fn queue_publish(
        &self,
        channel: &str,
        data: Payload,
        info: Option<ClientInfo>,
        key: Option<String>,
    ) -> BoxFuture<'static, Result<Position, Error>> {
        if self.inner.channels.options(channel).is_none() {
            return std::future::ready(Err(Error::UnknownChannel(channel.into()))).boxed();
        }
        let channel = channel.to_owned();
        self.inner.request(|reply| Op::Publish {
            channel,
            data,
            info,
            key,
            reply,
        })
    }

    /// Opens (or creates) the database in `data_dir` and starts the writer thread.
    pub fn open(
        data_dir: &Path,
        durability: Durability,
        channels: Channels,
        delivery: Delivery,
    ) -> Result<Self, Error> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            Error::Storage(format!(
                "cannot create the data directory {}: {e}",
                data_dir.display()
            ))
        })?;
        let path = data_dir.join("hub.sqlite3");
        let write = open(&path, durability)?;
        write.execute_batch(SCHEMA).map_err(storage)?;
        migrate(&write)?;
        let read = open(&path, durability)?;
        let (sender, receiver) = mpsc::channel();
        let writer_channels = channels.clone();
        let thread = std::thread::Builder::new()
            .name("duplex-hub-sqlite".into())
            .spawn(move || {
                Writer {
                    conn: write,
                    channels: writer_channels,
                    delivery,
                    tops: Default::default(),
                }
                .run(receiver)
            })
            .map_err(|e| Error::Storage(format!("cannot start the SQLite writer thread: {e}")))?;
        Ok(SqliteEngine {
            inner: Arc::new(Inner {
                path,
                read: Mutex::new(read),
                writer: Mutex::new(Some(sender)),
                thread: Mutex::new(Some(thread)),
                channels,
            }),
            presence: LocalPresence::default(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }
}

impl Inner {
    /// Queues the op `make` builds around its reply channel; resolves with the
    /// writer's answer (or [`Error::Stopped`] once the writer is gone).
    fn request<T: Send + 'static>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, Error>>) -> Op,
    ) -> BoxFuture<'static, Result<T, Error>> {
        let (reply, receiver) = oneshot::channel();
        let queued = self.send(make(reply));
        async move {
            queued?;
            answer(receiver).await
        }
        .boxed()
    }

    fn send(&self, op: Op) -> Result<(), Error> {
        let writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        match writer.as_ref() {
            Some(sender) => sender.send(op).map_err(|_| Error::Stopped),
            None => Err(Error::Stopped),
        }
    }

    /// One consistent read: the stream's position and the selected publications, or
    /// `None` when the channel has no stream yet.
    fn read_history(&self, channel: &str, query: HistoryQuery) -> Result<Option<History>, Error> {
        let options = self
            .channels
            .options(channel)
            .ok_or_else(|| Error::UnknownChannel(channel.into()))?;
        let ttl = i64::try_from(options.history_ttl.as_millis()).unwrap_or(i64::MAX);
        let oldest_time = now_ms().saturating_sub(ttl);
        let mut conn = self.read.lock().unwrap_or_else(|e| e.into_inner());
        let tx = conn.transaction().map_err(storage)?;
        let Some((epoch, top)) = tx
            .query_row(
                "SELECT epoch, top FROM streams WHERE channel = ?1",
                [channel],
                |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?)),
            )
            .optional()
            .map_err(storage)?
        else {
            return Ok(None);
        };
        let oldest: i64 = tx
            .query_row(
                "SELECT COALESCE(MIN(offset), 0) FROM publications WHERE channel = ?1 AND time_ms >= ?2",
                params![channel, oldest_time],
                |row| row.get(0),
            )
            .map_err(storage)?;
        let limit = query
            .limit
            .map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
        let sql = match (query.reverse, query.since.is_some()) {
            (false, false) => "SELECT offset, data, user, client, conn_info, chan_info FROM publications WHERE channel = ?1 AND time_ms >= ?2 ORDER BY offset ASC LIMIT ?3",
            (false, true) => "SELECT offset, data, user, client, conn_info, chan_info FROM publications WHERE channel = ?1 AND time_ms >= ?2 AND offset > ?4 ORDER BY offset ASC LIMIT ?3",
            (true, false) => "SELECT offset, data, user, client, conn_info, chan_info FROM publications WHERE channel = ?1 AND time_ms >= ?2 ORDER BY offset DESC LIMIT ?3",
            (true, true) => "SELECT offset, data, user, client, conn_info, chan_info FROM publications WHERE channel = ?1 AND time_ms >= ?2 AND offset < ?4 ORDER BY offset DESC LIMIT ?3",
        };
        let since = query
            .since
            .map_or(0, |s| i64::try_from(s).unwrap_or(i64::MAX));
        let mut statement = tx.prepare_cached(sql).map_err(storage)?;
        let mut rows = if query.since.is_some() {
            statement.query(params![channel, oldest_time, limit, since])
        } else {
            statement.query(params![channel, oldest_time, limit])
        }
        .map_err(storage)?;
        let mut publications = Vec::new();
        while let Some(row) = rows.next().map_err(storage)? {
            publications.push(publication_from_row(row)?);
        }
        drop(rows);
        drop(statement);
        tx.finish().map_err(storage)?;
        Ok(Some(History {
            position: Position {
                offset: u64::try_from(top).unwrap_or(0),
                epoch,
            },
            publications,
            oldest: u64::try_from(oldest).unwrap_or(0),
        }))
    }
}

fn raw_json(text: String) -> Result<Json, Error> {
    RawValue::from_string(text)
        .map(Arc::from)
        .map_err(|e| Error::Storage(format!("stored JSON is corrupt: {e}")))
}

fn publication_from_row(row: &rusqlite::Row<'_>) -> Result<Publication, Error> {
    let offset: i64 = row.get(0).map_err(storage)?;
    // JSON is stored as TEXT, a binary payload as a BLOB (the column's TEXT affinity
    // leaves blobs alone).
    let data = match row.get_ref(1).map_err(storage)? {
        rusqlite::types::ValueRef::Text(text) => Payload::from_json_text(text)
            .map_err(|e| Error::Storage(format!("stored data is corrupt: {e}")))?,
        rusqlite::types::ValueRef::Blob(bytes) => {
            Payload::Binary(bytes::Bytes::copy_from_slice(bytes))
        }
        other => {
            return Err(Error::Storage(format!(
                "stored data is corrupt: a {:?} value",
                other.data_type()
            )))
        }
    };
    let client: Option<String> = row.get(3).map_err(storage)?;
    let info = match client {
        Some(client) => Some(ClientInfo {
            user: row
                .get::<_, Option<String>>(2)
                .map_err(storage)?
                .unwrap_or_default(),
            client,
            conn_info: row
                .get::<_, Option<String>>(4)
                .map_err(storage)?
                .map(raw_json)
                .transpose()?,
            chan_info: row
                .get::<_, Option<String>>(5)
                .map_err(storage)?
                .map(raw_json)
                .transpose()?,
        }),
        None => None,
    };
    Ok(Publication {
        data,
        info,
        offset: u64::try_from(offset).unwrap_or(0),
    })
}

/// Brings a database from an earlier version up to [`SCHEMA`].
fn migrate(conn: &Connection) -> Result<(), Error> {
    for column in ["created_ms", "last_ms"] {
        let present: bool = conn
            .query_row(
                "SELECT COUNT(*) FROM pragma_table_info('streams') WHERE name = ?1",
                [column],
                |row| row.get::<_, i64>(0),
            )
            .map_err(storage)?
            > 0;
        if !present {
            conn.execute_batch(&format!(
                "ALTER TABLE streams ADD COLUMN {column} INTEGER NOT NULL DEFAULT 0"
            ))
            .map_err(storage)?;
        }
    }
    Ok(())
}

async fn answer<T>(receiver: oneshot::Receiver<Result<T, Error>>) -> Result<T, Error> {
    receiver.await.unwrap_or(Err(Error::Stopped))
}

impl Engine for SqliteEngine {
    fn publish(
        &self,
        channel: &str,
        data: Payload,
        info: Option<ClientInfo>,
    ) -> BoxFuture<'static, Result<Position, Error>> {
        self.queue_publish(channel, data, info, None)
    }

    fn publish_once(
        &self,
        channel: &str,
        data: Payload,
        info: Option<ClientInfo>,
        idempotency_key: String,
    ) -> BoxFuture<'static, Result<Position, Error>> {
        self.queue_publish(channel, data, info, Some(idempotency_key))
    }

    fn history(
        &self,
        channel: &str,
        query: HistoryQuery,
    ) -> BoxFuture<'static, Result<History, Error>> {
        let inner = self.inner.clone();
        let channel = channel.to_owned();
        async move {
            let read = {
                let inner = inner.clone();
                let channel = channel.clone();
                move || inner.read_history(&channel, query)
            };
            if let Some(history) = blocking(read.clone()).await? {
                return Ok(history);
            }
            let ensure = channel.clone();
            inner
                .request(|reply| Op::Ensure {
                    channel: ensure,
                    reply,
                })
                .await?;
            blocking(read).await?.ok_or_else(|| {
                Error::Storage(format!(
                    "the stream of {channel} vanished after it was created"
                ))
            })
        }
        .boxed()
    }

    fn add_presence(
        &self,
        channel: &str,
        client: &str,
        info: ClientInfo,
    ) -> BoxFuture<'static, Result<(), Error>> {
        self.presence.add(channel, client, info);
        std::future::ready(Ok(())).boxed()
    }

    fn remove_presence(
        &self,
        channel: &str,
        client: &str,
    ) -> BoxFuture<'static, Result<(), Error>> {
        self.presence.remove(channel, client);
        std::future::ready(Ok(())).boxed()
    }

    fn presence(&self, channel: &str) -> BoxFuture<'static, Result<PresenceMap, Error>> {
        std::future::ready(Ok(self.presence.get(channel))).boxed()
    }

    fn check_writable(&self) -> BoxFuture<'static, Result<(), Error>> {
        self.inner.request(|reply| Op::Check { reply })
    }

    fn remove_history(&self, channel: &str) -> BoxFuture<'static, Result<(), Error>> {
        let channel = channel.to_owned();
        self.inner
            .request(|reply| Op::RemoveHistory { channel, reply })
    }

    fn expire(&self) -> BoxFuture<'static, Result<(), Error>> {
        self.inner.request(|reply| Op::Expire { reply })
    }

    fn shutdown(&self) -> BoxFuture<'static, ()> {
        // Dropping the sender lets the writer finish what is queued, then stop.
        self.inner
            .writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let thread = self
            .inner
            .thread
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        async move {
            if let Some(thread) = thread {
                let _ = tokio::task::spawn_blocking(move || thread.join()).await;
            }
        }
        .boxed()
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(Error::Storage(format!("history read failed: {e}"))))
}
