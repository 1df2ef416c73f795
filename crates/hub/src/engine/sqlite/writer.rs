//! The SQLite writer: one thread, the only one that writes, applying every operation
//! queued while the previous transaction ran in one transaction (group commit), then
//! delivering and answering what it committed.

use super::{Op, MAX_BATCH};
use crate::config::Channels;
use crate::engine::{new_epoch, now_ms, Delivery, Position, IDEMPOTENCY_WINDOW};
use crate::error::Error;
use crate::protocol::reply::Publication;
use crate::protocol::Payload;
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::hash_map::{Entry, HashMap};
use std::sync::mpsc;

/// The thread that owns the write connection.
pub(super) struct Writer {
    pub(super) conn: Connection,
    pub(super) channels: Channels,
    pub(super) delivery: Delivery,
    /// Each stream's epoch and top offset as committed: the writer is the only one
    /// that changes them, so it need not read them back for every publish. Filled on
    /// first use, updated after each commit, emptied when streams may have expired.
    pub(super) tops: HashMap<String, Top>,
}

/// A stream's epoch and top offset.
#[derive(Clone)]
pub(super) struct Top {
    epoch: String,
    top: i64,
}

/// A stream touched by the transaction in progress: where it is now, and whether its
/// row (top, last use) and its history's trim are still to be written.
struct Staged {
    top: Top,
    dirty: bool,
}

/// What one operation produced inside the transaction, answered after the commit.
enum Done {
    Published(String, Publication, Position),
    /// A repeated idempotency key: the first publication's position, nothing stored.
    Repeated(Position),
    Unit,
}

impl Writer {
    pub(super) fn run(mut self, receiver: mpsc::Receiver<Op>) {
        while let Ok(first) = receiver.recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match receiver.try_recv() {
                    Ok(op) => batch.push(op),
                    Err(_) => break,
                }
            }
            let outcome = self.apply(&batch);
            match outcome {
                Ok(done) => {
                    for (op, done) in batch.into_iter().zip(done) {
                        self.answer(op, done);
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, operations = batch.len(), "SQLite transaction failed; nothing in it was acknowledged");
                    // Read the tops again from the database: if something else changed
                    // it (another process on the same file), the next batch starts right.
                    self.tops.clear();
                    for op in batch {
                        fail(op, Error::Storage(e.to_string()));
                    }
                }
            }
        }
        tracing::debug!("SQLite writer stopped");
    }

    fn answer(&self, op: Op, done: Done) {
        match (op, done) {
            (Op::Publish { reply, .. }, Done::Published(channel, publication, position)) => {
                (self.delivery)(&channel, &publication, &position.epoch);
                let _ = reply.send(Ok(position));
            }
            (
                Op::Ensure { reply, .. }
                | Op::Check { reply }
                | Op::Expire { reply }
                | Op::RemoveHistory { reply, .. },
                _,
            ) => {
                let _ = reply.send(Ok(()));
            }
            (Op::Publish { reply, .. }, Done::Repeated(position)) => {
                let _ = reply.send(Ok(position));
            }
            (Op::Publish { reply, .. }, Done::Unit) => {
                let _ = reply.send(Err(Error::Storage(
                    "publish produced no publication".into(),
                )));
            }
        }
    }

    /// Applies `batch` in one transaction. Per publish it inserts the publication; each
    /// stream's row and history trim are written once per batch (before any other kind
    /// of operation, and at the end), which halves the statements of a batch of
    /// publishes to many channels.
    fn apply(&mut self, batch: &[Op]) -> Result<Vec<Done>, rusqlite::Error> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut done = Vec::with_capacity(batch.len());
        let now = now_ms();
        let mut staged: HashMap<String, Staged> = HashMap::new();
        // Set by an expiry: streams may be gone, so the committed tops are forgotten.
        let mut forget = false;
        for op in batch {
            if !matches!(op, Op::Publish { .. }) {
                write_staged(&self.channels, &tx, &mut staged, now)?;
            }
            done.push(match op {
                Op::Publish { channel, data, info, key, .. } => {
                    if let Some(key) = key {
                        let seen = tx
                            .prepare_cached("SELECT offset, epoch FROM idempotency WHERE channel = ?1 AND key = ?2 AND expires_ms > ?3")?
                            .query_row(params![channel, key, now], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?)))
                            .optional()?;
                        if let Some((offset, epoch)) = seen {
                            done.push(Done::Repeated(Position { offset: u64::try_from(offset).unwrap_or(0), epoch }));
                            continue;
                        }
                    }
                    let stream = match staged.entry(channel.clone()) {
                        Entry::Occupied(e) => e.into_mut(),
                        Entry::Vacant(e) => {
                            let top = match self.tops.get(channel).filter(|_| !forget) {
                                Some(top) => top.clone(),
                                None => ensure(&tx, channel)?,
                            };
                            e.insert(Staged { top, dirty: false })
                        }
                    };
                    let offset = stream.top.top + 1;
                    stream.top.top = offset;
                    stream.dirty = true;
                    let epoch = stream.top.epoch.clone();
                    tx.prepare_cached(
                        "INSERT INTO publications (channel, offset, time_ms, data, user, client, conn_info, chan_info) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    )?
                    .execute(params![
                        channel,
                        offset,
                        now,
                        stored_data(data),
                        info.as_ref().map(|i| i.user.as_str()),
                        info.as_ref().map(|i| i.client.as_str()),
                        info.as_ref().and_then(|i| i.conn_info.as_ref()).map(|j| j.get()),
                        info.as_ref().and_then(|i| i.chan_info.as_ref()).map(|j| j.get()),
                    ])?;
                    let publication = Publication {
                        data: data.clone(),
                        info: info.clone(),
                        offset: u64::try_from(offset).unwrap_or(0),
                    };
                    let position = Position {
                        offset: publication.offset,
                        epoch,
                    };
                    if let Some(key) = key {
                        let window = i64::try_from(IDEMPOTENCY_WINDOW.as_millis()).unwrap_or(i64::MAX);
                        tx.prepare_cached("INSERT OR REPLACE INTO idempotency (channel, key, offset, epoch, expires_ms) VALUES (?1, ?2, ?3, ?4, ?5)")?
                            .execute(params![channel, key, offset, position.epoch, now.saturating_add(window)])?;
                    }
                    Done::Published(channel.clone(), publication, position)
                }
                Op::Ensure { channel, .. } => {
                    if !staged.contains_key(channel) {
                        let top = ensure(&tx, channel)?;
                        staged.insert(channel.clone(), Staged { top, dirty: false });
                    }
                    Done::Unit
                }
                Op::Check { .. } => {
                    tx.execute("INSERT OR REPLACE INTO health (id, at) VALUES (1, ?1)", [now])?;
                    Done::Unit
                }
                Op::RemoveHistory { channel, .. } => {
                    tx.execute("DELETE FROM publications WHERE channel = ?1", [channel])?;
                    Done::Unit
                }
                Op::Expire { .. } => {
                    expire(&self.channels, &tx, now)?;
                    tx.execute("DELETE FROM idempotency WHERE expires_ms <= ?1", [now])?;
                    // What was staged before is written; what streams are left is read
                    // again when next used.
                    staged.clear();
                    forget = true;
                    Done::Unit
                }
            });
        }
        write_staged(&self.channels, &tx, &mut staged, now)?;
        tx.commit()?;
        // Committed: the tops are now the database's.
        if forget {
            self.tops.clear();
        }
        self.tops
            .extend(staged.into_iter().map(|(channel, s)| (channel, s.top)));
        Ok(done)
    }
}

/// Writes each changed stream's row (top, last use) and trims its history to the
/// channel's size and time-to-live.
fn write_staged(
    channels: &Channels,
    tx: &rusqlite::Transaction<'_>,
    staged: &mut HashMap<String, Staged>,
    now: i64,
) -> Result<(), rusqlite::Error> {
    for (channel, stream) in staged.iter_mut().filter(|(_, s)| s.dirty) {
        let top = stream.top.top;
        tx.prepare_cached("UPDATE streams SET top = ?2, last_ms = ?3 WHERE channel = ?1")?
            .execute(params![channel, top, now])?;
        if let Some(options) = channels.options(channel) {
            let keep = i64::try_from(options.history_size).unwrap_or(i64::MAX);
            let ttl = i64::try_from(options.history_ttl.as_millis()).unwrap_or(i64::MAX);
            tx.prepare_cached(
                "DELETE FROM publications WHERE channel = ?1 AND (offset <= ?2 OR time_ms < ?3)",
            )?
            .execute(params![channel, top - keep, now.saturating_sub(ttl)])?;
        }
        stream.dirty = false;
    }
    Ok(())
}

fn expire(
    channels_config: &Channels,
    tx: &rusqlite::Transaction<'_>,
    now: i64,
) -> Result<(), rusqlite::Error> {
    let channels: Vec<String> = tx
        .prepare("SELECT channel FROM streams")?
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    for channel in channels {
        let ttl = channels_config.options(&channel).map_or(0, |o| {
            i64::try_from(o.history_ttl.as_millis()).unwrap_or(i64::MAX)
        });
        tx.execute(
            "DELETE FROM publications WHERE channel = ?1 AND time_ms < ?2",
            params![channel, now.saturating_sub(ttl)],
        )?;
        // A stream whose whole history expired is lost: its next use starts a new
        // epoch, so no client trusts an offset from before. A stream never published
        // to goes once it is as old as the time-to-live, so subscribing to ever new
        // names cannot grow the table for good.
        tx.execute(
            "DELETE FROM streams WHERE channel = ?1 AND ((top > 0 AND last_ms < ?2) OR (top = 0 AND created_ms < ?2)) AND NOT EXISTS (SELECT 1 FROM publications WHERE channel = ?1)",
            params![channel, now.saturating_sub(ttl)],
        )?;
    }
    Ok(())
}

/// The channel's epoch and top, creating the stream when it has none.
fn ensure(tx: &rusqlite::Transaction<'_>, channel: &str) -> Result<Top, rusqlite::Error> {
    if let Some(found) = tx
        .prepare_cached("SELECT epoch, top FROM streams WHERE channel = ?1")?
        .query_row([channel], |row| {
            Ok(Top {
                epoch: row.get(0)?,
                top: row.get(1)?,
            })
        })
        .optional()?
    {
        return Ok(found);
    }
    let epoch = new_epoch();
    tx.prepare_cached(
        "INSERT INTO streams (channel, epoch, top, created_ms) VALUES (?1, ?2, 0, ?3)",
    )?
    .execute(params![channel, epoch, now_ms()])?;
    Ok(Top { epoch, top: 0 })
}

fn fail(op: Op, error: Error) {
    match op {
        Op::Publish { reply, .. } => {
            let _ = reply.send(Err(error));
        }
        Op::Ensure { reply, .. }
        | Op::Check { reply }
        | Op::Expire { reply }
        | Op::RemoveHistory { reply, .. } => {
            let _ = reply.send(Err(error));
        }
    }
}

/// How a payload goes into the `data` column: JSON as TEXT, binary as a BLOB.
fn stored_data(data: &Payload) -> rusqlite::types::ToSqlOutput<'_> {
    use rusqlite::types::{ToSqlOutput, ValueRef};
    ToSqlOutput::Borrowed(match data {
        Payload::Json(raw) => ValueRef::Text(raw.get().as_bytes()),
        Payload::Binary(bytes) => ValueRef::Blob(bytes),
    })
}
