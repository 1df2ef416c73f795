//! Outgoing bytes of one connection, written in order with as few syscalls as possible.

use bytes::{Buf, Bytes, BytesMut};
use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::AsyncWrite;

/// Most buffers handed to one vectored write.
const MAX_SLICES: usize = 64;
/// Payloads at least this large are queued by reference instead of copied.
pub(crate) const ZERO_COPY_MIN: usize = 4096;

/// Frames are built in `tail`; shared frames and large payloads are queued as `Bytes`
/// without copying. Everything goes out in order, in vectored writes.
#[derive(Debug, Default)]
pub(crate) struct WriteQueue {
    /// Sealed chunks, written before `tail`.
    chunks: VecDeque<Bytes>,
    chunks_len: usize,
    /// Where the protocol appends encoded frames.
    tail: BytesMut,
}

impl WriteQueue {
    /// The buffer frames are encoded into.
    pub(crate) fn tail(&mut self) -> &mut BytesMut {
        &mut self.tail
    }

    /// Queues `bytes` after everything encoded so far, without copying it.
    pub(crate) fn push(&mut self, bytes: Bytes) {
        if bytes.is_empty() {
            return;
        }
        if !self.tail.is_empty() {
            let sealed = self.tail.split().freeze();
            self.chunks_len += sealed.len();
            self.chunks.push_back(sealed);
        }
        self.chunks_len += bytes.len();
        self.chunks.push_back(bytes);
    }

    /// Queued bytes.
    pub(crate) fn len(&self) -> usize {
        self.chunks_len + self.tail.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Gives the memory back while nothing is queued, so an idle connection holds no
    /// write buffer.
    pub(crate) fn release_if_empty(&mut self) {
        if self.is_empty() && self.tail.capacity() > 0 {
            self.tail = BytesMut::new();
        }
    }

    /// Writes some of the queue; `Ok(0)` means the transport accepted nothing.
    pub(crate) fn poll_write<S: AsyncWrite + Unpin>(
        &mut self,
        io: &mut S,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        let n = if self.chunks.is_empty() {
            ready!(Pin::new(&mut *io).poll_write(cx, &self.tail))?
        } else if io.is_write_vectored() {
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let mut count = 0;
            for chunk in self.chunks.iter().take(MAX_SLICES - 1) {
                slices[count] = IoSlice::new(chunk);
                count += 1;
            }
            if count < MAX_SLICES && count == self.chunks.len() && !self.tail.is_empty() {
                slices[count] = IoSlice::new(&self.tail);
                count += 1;
            }
            ready!(Pin::new(&mut *io).poll_write_vectored(cx, &slices[..count]))?
        } else {
            let first = self.chunks.front().expect("not empty");
            ready!(Pin::new(&mut *io).poll_write(cx, first))?
        };
        self.consume(n);
        Poll::Ready(Ok(n))
    }

    fn consume(&mut self, mut n: usize) {
        while n > 0 {
            let Some(front) = self.chunks.front_mut() else {
                self.tail.advance(n);
                return;
            };
            let take = n.min(front.len());
            front.advance(take);
            self.chunks_len -= take;
            n -= take;
            if front.is_empty() {
                self.chunks.pop_front();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Waker;

    /// A writer that accepts at most `max` bytes per call and records everything.
    struct Trickle {
        max: usize,
        got: Vec<u8>,
        vectored: bool,
    }

    impl AsyncWrite for Trickle {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let n = buf.len().min(self.max);
            self.got.extend_from_slice(&buf[..n]);
            Poll::Ready(Ok(n))
        }
        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            let mut left = self.max;
            let mut n = 0;
            for b in bufs {
                let take = b.len().min(left);
                self.got.extend_from_slice(&b[..take]);
                left -= take;
                n += take;
            }
            Poll::Ready(Ok(n))
        }
        fn is_write_vectored(&self) -> bool {
            self.vectored
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[test]
    fn keeps_order_across_tail_and_chunks_under_any_write_size() {
        for vectored in [true, false] {
            for max in [1, 3, 7, 100, 10_000] {
                let mut q = WriteQueue::default();
                q.tail().extend_from_slice(b"head1");
                q.push(Bytes::from_static(b"shared-payload"));
                q.tail().extend_from_slice(b"head2");
                q.push(Bytes::from_static(b""));
                q.push(Bytes::from_static(b"second"));
                q.tail().extend_from_slice(b"tail");
                assert_eq!(q.len(), 34);
                let mut w = Trickle {
                    max,
                    got: Vec::new(),
                    vectored,
                };
                let mut cx = Context::from_waker(Waker::noop());
                while !q.is_empty() {
                    assert!(matches!(q.poll_write(&mut w, &mut cx), Poll::Ready(Ok(n)) if n > 0));
                }
                assert_eq!(
                    w.got, b"head1shared-payloadhead2secondtail",
                    "max {max} vectored {vectored}"
                );
                q.release_if_empty();
                assert_eq!(q.tail().capacity(), 0);
            }
        }
    }
}
