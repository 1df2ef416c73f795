//! A connection's bounded queue of pushes, allocated only while it holds some.
//!
//! A tokio `mpsc` channel allocates a block of 32 slots and a cache-padded header when
//! it is made, about 2.3 KiB for [`Outgoing`], which an idle connection pays for its
//! whole life. This queue is a `VecDeque` behind a mutex (one producer at a time in
//! practice: the fan-out locks each subscriber's queue once per publication) and a
//! [`Notify`] for its one consumer, the session: empty, it holds no buffer.

use crate::registry::Outgoing;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// Buffers larger than this (a burst) are freed once the queue is empty again; smaller
/// ones are kept, so a connection that gets one push at a time does not allocate for
/// each.
const KEEP_WHEN_EMPTY: usize = 32;

/// Why an item was not queued.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// The queue holds its capacity: the consumer is too slow.
    Full,
    /// The session ended.
    Closed,
}

/// The producers' side, kept by the connection's handle.
#[derive(Debug)]
pub struct Queue {
    items: Mutex<VecDeque<Outgoing>>,
    capacity: usize,
    ready: Notify,
    closed: AtomicBool,
}

/// The consumer's side, kept by the session; dropping it closes the queue and drops
/// what is in it.
#[derive(Debug)]
pub struct Receiver {
    queue: Arc<Queue>,
}

impl Queue {
    /// A queue of at most `capacity` items, and its consumer.
    pub fn new(capacity: usize) -> (Arc<Queue>, Receiver) {
        let queue = Arc::new(Queue {
            items: Mutex::new(VecDeque::new()),
            capacity,
            ready: Notify::new(),
            closed: AtomicBool::new(false),
        });
        (queue.clone(), Receiver { queue })
    }

    fn items(&self) -> std::sync::MutexGuard<'_, VecDeque<Outgoing>> {
        self.items.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `item` unless the queue is full or closed.
    pub fn try_send(&self, item: Outgoing) -> Result<(), Refused> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Refused::Closed);
        }
        let mut items = self.items();
        if items.len() >= self.capacity {
            return Err(Refused::Full);
        }
        items.push_back(item);
        drop(items);
        // One consumer: a stored permit wakes it even if it is not waiting yet.
        self.ready.notify_one();
        Ok(())
    }
}

impl Receiver {
    /// The next item, if one is queued.
    pub fn try_recv(&mut self) -> Option<Outgoing> {
        let mut items = self.queue.items();
        let item = items.pop_front();
        if items.is_empty() && items.capacity() > KEEP_WHEN_EMPTY {
            *items = VecDeque::new();
        }
        item
    }

    /// Waits for the next item. Cancel safe: an item is taken only when returned.
    pub async fn recv(&mut self) -> Option<Outgoing> {
        loop {
            if let Some(item) = self.try_recv() {
                return Some(item);
            }
            self.queue.ready.notified().await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.queue.closed.store(true, Ordering::Release);
        *self.queue.items() = VecDeque::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unsubscribe(channel: &str) -> Outgoing {
        Outgoing::Unsubscribe {
            channel: Arc::from(channel),
        }
    }

    fn channel_of(item: Option<Outgoing>) -> String {
        match item {
            Some(Outgoing::Unsubscribe { channel }) => channel.to_string(),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn items_come_out_in_order_up_to_the_capacity_and_wake_the_consumer() {
        let (queue, mut rx) = Queue::new(2);
        assert!(rx.try_recv().is_none());
        let waiting = tokio::spawn(async move {
            let first = channel_of(rx.recv().await);
            (first, rx)
        });
        queue.try_send(unsubscribe("a")).unwrap();
        let (first, mut rx) = waiting.await.unwrap();
        assert_eq!(first, "a");
        queue.try_send(unsubscribe("b")).unwrap();
        queue.try_send(unsubscribe("c")).unwrap();
        assert_eq!(queue.try_send(unsubscribe("d")), Err(Refused::Full));
        assert_eq!(channel_of(rx.try_recv()), "b");
        assert_eq!(channel_of(rx.recv().await), "c");
        assert!(rx.try_recv().is_none());
        drop(rx);
        assert_eq!(queue.try_send(unsubscribe("e")), Err(Refused::Closed));
    }

    #[tokio::test]
    async fn an_empty_queue_gives_back_a_burst_s_buffer_and_keeps_a_small_one() {
        let (queue, mut rx) = Queue::new(1000);
        queue.try_send(unsubscribe("one")).unwrap();
        rx.try_recv().unwrap();
        let small = queue.items().capacity();
        assert!(small > 0 && small <= KEEP_WHEN_EMPTY, "{small}");
        for i in 0..500 {
            queue.try_send(unsubscribe(&i.to_string())).unwrap();
        }
        while rx.try_recv().is_some() {}
        assert_eq!(queue.items().capacity(), 0);
    }

    #[tokio::test]
    async fn a_dropped_wait_loses_no_item() {
        let (queue, mut rx) = Queue::new(4);
        // A wait that is given up (as a select! branch is) takes nothing.
        let gave_up = tokio::time::timeout(std::time::Duration::from_millis(1), rx.recv()).await;
        assert!(gave_up.is_err());
        queue.try_send(unsubscribe("kept")).unwrap();
        assert_eq!(channel_of(rx.recv().await), "kept");
    }
}
