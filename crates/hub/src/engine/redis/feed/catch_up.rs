//! After an outage: what a feed missed, read from the streams.

use crate::engine::redis::conn::Conn;
use crate::engine::redis::Keys;
use crate::engine::Delivery;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// Reads of a stream after an outage before the channel waits for the next probe.
const CATCH_UP_ATTEMPTS: u32 = 3;

/// What a feed knows of the streams it follows, to catch up after an outage.
pub(super) struct Streams {
    pub(super) conn: Conn,
    pub(super) keys: Keys,
    pub(super) delivery: Delivery,
    /// Live channel to the last (offset, epoch) delivered.
    pub(super) last: HashMap<String, (u64, String)>,
    /// Live channels whose catch-up read failed: read again at each probe.
    pub(super) behind: HashSet<String>,
}

impl Streams {
    /// Catches up the fed channels `which` selects (see [`catch_up`]).
    pub(super) async fn catch_up(&mut self, which: impl Fn(&str) -> bool) {
        catch_up(
            &mut self.conn,
            &self.keys,
            &self.delivery,
            &mut self.last,
            &mut self.behind,
            which,
        )
        .await;
    }

    /// Reads again the channels whose last catch-up failed.
    pub(super) async fn catch_up_behind(&mut self) {
        if !self.behind.is_empty() {
            let retry = self.behind.clone();
            self.catch_up(|l| retry.contains(l)).await;
        }
    }

    /// A channel no longer fed.
    pub(super) fn forget(&mut self, live: &str) {
        self.last.remove(live);
        self.behind.remove(live);
    }
}

/// After an outage: delivers what each fed channel that `which` selects stored since
/// the last publication delivered, from its stream, so subscribers see no gap. A channel
/// whose stream could not be read goes into `behind` (the feed reads it again at each
/// probe) and leaves it once read. A stream whose epoch changed meanwhile is left alone:
/// its subscribers learn it at its next publication (3010).
async fn catch_up(
    conn: &mut Conn,
    keys: &Keys,
    delivery: &Delivery,
    last: &mut HashMap<String, (u64, String)>,
    behind: &mut HashSet<String>,
    which: impl Fn(&str) -> bool,
) {
    for (live, (offset, epoch)) in last.iter_mut() {
        if !which(live) {
            continue;
        }
        let Some(channel) = keys.channel_of_live(live) else {
            continue;
        };
        let mut read = redis::pipe();
        read.cmd("HGET")
            .arg(keys.meta(channel))
            .arg("e")
            .cmd("XRANGE")
            .arg(keys.stream(channel))
            .arg(format!("({offset}-0"))
            .arg("+");
        // A read can be repeated: the command connection may still be the one the
        // outage broke (with Sentinel, the old master's), and a failed read replaces it.
        let mut attempt = 0;
        let read = loop {
            attempt += 1;
            match read
                .query_async::<(Option<String>, Vec<redis::Value>)>(conn)
                .await
            {
                Err(e) if attempt < CATCH_UP_ATTEMPTS => {
                    tracing::info!(%channel, error = %e, "catching up: reading again");
                    tokio::time::sleep(Duration::from_millis(100) * attempt).await;
                }
                read => break read,
            }
        };
        let entries = match read {
            Ok((Some(now), entries)) if now == *epoch => entries,
            Ok(_) => {
                tracing::info!(%channel, "the stream was lost during the outage; its subscribers learn it at its next publication");
                continue;
            }
            Err(e) => {
                tracing::warn!(%channel, error = %e, "catching up after the outage failed; trying again at the next probe");
                behind.insert(live.clone());
                continue;
            }
        };
        behind.remove(live);
        for value in &entries {
            match crate::engine::redis::entry(value) {
                Ok((_, publication)) => {
                    delivery(channel, &publication, epoch);
                    *offset = publication.offset;
                }
                Err(e) => {
                    tracing::error!(%channel, error = %e, "undeliverable stored publication")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::redis::test_server::RedisServer;
    use crate::protocol::reply::Publication;
    use std::sync::{Arc, Mutex};

    #[tokio::test]
    async fn a_failed_catch_up_is_kept_and_done_when_the_stream_reads_again() {
        let server = RedisServer::start();
        let client = redis::Client::open(server.url.as_str()).unwrap();
        let mut conn = Conn::Single(client.get_connection_manager().await.unwrap());
        let keys = Keys {
            prefix: "t".into(),
            sharded: false,
        };
        let delivered: Arc<Mutex<Vec<u64>>> = Arc::default();
        let d = delivered.clone();
        let delivery: Delivery =
            Arc::new(move |_: &str, p: &Publication, _: &str| d.lock().unwrap().push(p.offset));
        let live = keys.live("c");
        // The feed delivered offset 1 of epoch "e"; 2 and 3 were stored meanwhile.
        let _: () = redis::pipe()
            .cmd("HSET")
            .arg(keys.meta("c"))
            .arg("e")
            .arg("e")
            .arg("s")
            .arg(3)
            .ignore()
            .cmd("XADD")
            .arg(keys.stream("c"))
            .arg("2-0")
            .arg("d")
            .arg("2")
            .ignore()
            .cmd("XADD")
            .arg(keys.stream("c"))
            .arg("3-0")
            .arg("d")
            .arg("3")
            .ignore()
            .query_async(&mut conn)
            .await
            .unwrap();
        let mut last = HashMap::from([(live.clone(), (1, "e".to_owned()))]);
        let mut behind = HashSet::new();
        // The stream cannot be read (wrong type): the channel is kept as behind.
        let _: () = redis::cmd("RENAME")
            .arg(keys.stream("c"))
            .arg("aside")
            .query_async(&mut conn)
            .await
            .unwrap();
        let _: () = redis::cmd("SET")
            .arg(keys.stream("c"))
            .arg("not a stream")
            .query_async(&mut conn)
            .await
            .unwrap();
        catch_up(&mut conn, &keys, &delivery, &mut last, &mut behind, |_| {
            true
        })
        .await;
        assert_eq!(behind, HashSet::from([live.clone()]));
        assert!(delivered.lock().unwrap().is_empty());
        // Readable again: the retry delivers what was missed, and nothing is behind.
        let _: () = redis::cmd("RENAME")
            .arg("aside")
            .arg(keys.stream("c"))
            .query_async(&mut conn)
            .await
            .unwrap();
        let retry = behind.clone();
        catch_up(&mut conn, &keys, &delivery, &mut last, &mut behind, |l| {
            retry.contains(l)
        })
        .await;
        assert!(behind.is_empty());
        assert_eq!(*delivered.lock().unwrap(), [2, 3]);
        assert_eq!(last[&live].0, 3);
    }
}
