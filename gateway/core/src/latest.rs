//! A bounded queue that drops the oldest entry when full, for frames.
//!
//! A frame source captures into a [`LatestQueue`] and a separate task forwards
//! from it downstream. A slow consumer then never stalls capture and never
//! builds a backlog: the queue keeps the newest `capacity` frames and counts
//! the ones it overwrote.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Notify;

/// A bounded multi-producer queue that overwrites its oldest entry when full.
#[derive(Debug)]
pub struct LatestQueue<T> {
    inner: Mutex<Inner<T>>,
    notify: Notify,
    capacity: usize,
}

#[derive(Debug)]
struct Inner<T> {
    items: VecDeque<T>,
    closed: bool,
}

impl<T> LatestQueue<T> {
    /// A queue holding at most `capacity` entries (at least one).
    pub fn new(capacity: usize) -> Arc<Self> {
        let capacity = capacity.max(1);
        Arc::new(Self {
            inner: Mutex::new(Inner {
                items: VecDeque::with_capacity(capacity),
                closed: false,
            }),
            notify: Notify::new(),
            capacity,
        })
    }

    /// Adds `item`; returns the entry dropped to make room, if any.
    pub fn push(&self, item: T) -> Option<T> {
        let dropped = {
            let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
            let dropped = if inner.items.len() >= self.capacity {
                inner.items.pop_front()
            } else {
                None
            };
            inner.items.push_back(item);
            dropped
        };
        self.notify.notify_one();
        dropped
    }

    /// Marks the queue closed: [`LatestQueue::pop`] returns what is left, then `None`.
    pub fn close(&self) {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .closed = true;
        self.notify.notify_one();
    }

    /// Number of queued entries.
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .items
            .len()
    }

    /// Whether the queue is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The oldest entry, waiting for one; `None` once closed and drained.
    pub async fn pop(&self) -> Option<T> {
        loop {
            {
                let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some(item) = inner.items.pop_front() {
                    return Some(item);
                }
                if inner.closed {
                    return None;
                }
            }
            self.notify.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keeps_the_newest_entries_when_full() {
        let q = LatestQueue::new(2);
        assert_eq!(q.push(1), None);
        assert_eq!(q.push(2), None);
        assert_eq!(q.push(3), Some(1));
        assert_eq!(q.pop().await, Some(2));
        assert_eq!(q.pop().await, Some(3));
        assert_eq!(q.len(), 0);
    }

    #[tokio::test]
    async fn pop_drains_then_ends_after_close() {
        let q = LatestQueue::new(4);
        q.push("a");
        q.close();
        assert_eq!(q.pop().await, Some("a"));
        assert_eq!(q.pop().await, None);
    }

    #[tokio::test]
    async fn pop_wakes_up_on_push_from_another_task() {
        let q = LatestQueue::new(1);
        let q2 = Arc::clone(&q);
        let waiter = tokio::spawn(async move { q2.pop().await });
        tokio::task::yield_now().await;
        q.push(7);
        assert_eq!(waiter.await.unwrap(), Some(7));
    }
}
