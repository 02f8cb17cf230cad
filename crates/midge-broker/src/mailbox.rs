//! A session's delivery queue: the only thing publishers touch on a subscriber.
//!
//! Publishers push on their own task under this mailbox's own lock (never a global one) and
//! wake the subscriber's connection task, which drains the queue into its socket as its
//! inflight window allows. The queue is bounded in messages and bytes; what happens when it is
//! full follows [`QueueFullPolicy`], and every drop is counted and logged.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use midge_proto::{ByteString, QoS};
use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::config::{LimitsConfig, QueueFullPolicy};
use crate::message::Delivery;
use crate::stats::Stats;

/// The queue limits of one mailbox, copied from the configuration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QueueLimits {
    max_messages: usize,
    max_bytes: usize,
    policy: QueueFullPolicy,
    queue_qos0_offline: bool,
}

impl QueueLimits {
    pub(crate) fn from_config(limits: &LimitsConfig) -> QueueLimits {
        QueueLimits {
            max_messages: limits.max_queued_messages,
            max_bytes: limits.max_queued_bytes,
            policy: limits.queue_full_policy,
            queue_qos0_offline: limits.queue_qos0_messages,
        }
    }

    /// Whether QoS 0 messages are queued for offline sessions.
    pub(crate) fn queues_qos0_offline(&self) -> bool {
        self.queue_qos0_offline
    }
}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<Delivery>,
    bytes: usize,
    closed: bool,
}

/// Outcome of [`Mailbox::push`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// Queued for delivery.
    Queued,
    /// Not queued: the session is offline and the message is QoS 0.
    SkippedOffline,
    /// Queued, and older messages were dropped to make room (they are in `evicted`).
    QueuedDroppingOldest,
    /// Not queued: the queue was full.
    Dropped,
    /// The session has ended.
    Closed,
}

/// The delivery queue of one session.
#[derive(Debug)]
pub(crate) struct Mailbox {
    /// Whether the session is persistent (Session Expiry Interval > 0) and its queue is
    /// mirrored in the durable store.
    persistent: AtomicBool,
    /// Next position in the stored queue.
    next_seq: AtomicU64,
    /// The session's client identifier (No Local compares against it).
    pub(crate) client_id: ByteString,
    state: Mutex<State>,
    notify: Notify,
    online: AtomicBool,
    /// Set when a full queue should disconnect the client ([`QueueFullPolicy::Disconnect`]).
    overflowed: AtomicBool,
    /// Wakes the connection when `overflowed` is raised, also while it is not draining (its
    /// write buffer full): the client it must disconnect is exactly the one that stalled.
    overflow_notify: Notify,
    dropped: AtomicU64,
    limits: QueueLimits,
}

impl Mailbox {
    pub(crate) fn new(client_id: ByteString, limits: QueueLimits) -> Mailbox {
        Mailbox {
            persistent: AtomicBool::new(false),
            next_seq: AtomicU64::new(0),
            client_id,
            state: Mutex::new(State::default()),
            notify: Notify::new(),
            online: AtomicBool::new(false),
            overflowed: AtomicBool::new(false),
            overflow_notify: Notify::new(),
            dropped: AtomicU64::new(0),
            limits,
        }
    }

    /// Whether the queue is mirrored in the durable store.
    pub(crate) fn is_persistent(&self) -> bool {
        self.persistent.load(Ordering::Acquire)
    }

    pub(crate) fn set_persistent(&self, persistent: bool) {
        self.persistent.store(persistent, Ordering::Release);
    }

    /// Allocates the next stored-queue position.
    pub(crate) fn next_seq(&self) -> u64 {
        self.next_seq.fetch_add(1, Ordering::AcqRel)
    }

    /// Continues numbering after recovered positions.
    pub(crate) fn set_next_seq(&self, next: u64) {
        self.next_seq.store(next, Ordering::Release);
    }

    /// Puts a delivery back at the front (it could not be sent yet).
    pub(crate) fn push_front(&self, delivery: Delivery) {
        let mut state = self.state.lock();
        state.bytes += delivery.message.size();
        state.queue.push_front(delivery);
    }

    /// Whether a connection is currently draining this mailbox.
    pub(crate) fn is_online(&self) -> bool {
        self.online.load(Ordering::Acquire)
    }

    pub(crate) fn set_online(&self, online: bool) {
        self.online.store(online, Ordering::Release);
        if online {
            self.overflowed.store(false, Ordering::Release);
            self.notify.notify_one();
        }
    }

    /// Queues a delivery, applying the limits.
    /// Older deliveries evicted by [`QueueFullPolicy::DropOldest`] are appended to `evicted`
    /// (the caller forgets them in the store).
    pub(crate) fn push(
        &self,
        delivery: Delivery,
        stats: &Stats,
        evicted: &mut Vec<Delivery>,
    ) -> Pushed {
        let online = self.is_online();
        if !online && delivery.qos == QoS::AtMostOnce && !self.limits.queue_qos0_offline {
            return Pushed::SkippedOffline;
        }
        let size = delivery.message.size();
        let mut state = self.state.lock();
        if state.closed {
            return Pushed::Closed;
        }
        let full = |s: &State| {
            (self.limits.max_messages != 0 && s.queue.len() >= self.limits.max_messages)
                || (self.limits.max_bytes != 0 && s.bytes + size > self.limits.max_bytes)
        };
        let mut outcome = Pushed::Queued;
        if full(&state) {
            match self.limits.policy {
                QueueFullPolicy::DropNewest => {
                    drop(state);
                    self.count_drop(stats, "queue full, newest message dropped");
                    return Pushed::Dropped;
                }
                QueueFullPolicy::Disconnect => {
                    drop(state);
                    self.overflowed.store(true, Ordering::Release);
                    self.count_drop(stats, "queue full, client will be disconnected");
                    self.overflow_notify.notify_one();
                    return Pushed::Dropped;
                }
                QueueFullPolicy::DropOldest => {
                    while full(&state) {
                        let Some(old) = state.queue.pop_front() else {
                            break;
                        };
                        state.bytes -= old.message.size();
                        outcome = Pushed::QueuedDroppingOldest;
                        evicted.push(old);
                        self.count_drop(stats, "queue full, oldest message dropped");
                    }
                }
            }
        }
        state.bytes += size;
        state.queue.push_back(delivery);
        drop(state);
        if online {
            self.notify.notify_one();
        }
        outcome
    }

    /// Queues a delivery regardless of the limits: retained messages sent in answer to a
    /// SUBSCRIBE are paced by flow control, never cut short.
    pub(crate) fn push_unbounded(&self, delivery: Delivery) {
        let mut state = self.state.lock();
        if state.closed {
            return;
        }
        state.bytes += delivery.message.size();
        state.queue.push_back(delivery);
        drop(state);
        self.notify.notify_one();
    }

    /// Moves deliveries from the front of the queue into `out`: every QoS 0 one, and QoS 1/2
    /// ones while `slots` (free inflight places) last, at most `max` in all. Stops at the
    /// first QoS 1/2 delivery that has no slot, so order is kept.
    pub(crate) fn take(&self, out: &mut Vec<Delivery>, mut slots: usize, max: usize) {
        let mut state = self.state.lock();
        while out.len() < max {
            let Some(front) = state.queue.front() else {
                break;
            };
            if front.qos != QoS::AtMostOnce {
                if slots == 0 {
                    break;
                }
                slots -= 1;
            }
            let Some(d) = state.queue.pop_front() else {
                break;
            };
            state.bytes -= d.message.size();
            out.push(d);
        }
    }

    /// Waits until something was pushed (or the overflow flag was raised).
    pub(crate) async fn notified(&self) {
        self.notify.notified().await;
    }

    /// Waits until a full queue asks for this client to be disconnected.
    pub(crate) async fn overflow_notified(&self) {
        self.overflow_notify.notified().await;
    }

    /// Whether a full queue asked for this client to be disconnected.
    pub(crate) fn take_overflow(&self) -> bool {
        self.overflowed.swap(false, Ordering::AcqRel)
    }

    /// Ends the mailbox: later pushes are refused. Returns what was still queued.
    pub(crate) fn close(&self) -> Vec<Delivery> {
        let mut state = self.state.lock();
        state.closed = true;
        state.bytes = 0;
        state.queue.drain(..).collect()
    }

    fn count_drop(&self, stats: &Stats, why: &str) {
        let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        stats.publish_dropped.fetch_add(1, Ordering::Relaxed);
        // Log the first drop and then every 1000th, so a flood does not flood the log.
        if n == 1 || n.is_multiple_of(1000) {
            tracing::warn!(client_id = %self.client_id, dropped_total = n, "{why}");
        }
    }
}
