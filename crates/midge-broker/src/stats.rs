//! Broker-wide counters (the future source of `$SYS` and `/metrics`).

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters updated with relaxed atomics on the hot path.
#[derive(Debug, Default)]
pub struct Stats {
    /// Clients currently connected.
    pub clients_connected: AtomicU64,
    /// PUBLISH packets received from clients.
    pub publish_received: AtomicU64,
    /// PUBLISH packets sent to clients.
    pub publish_sent: AtomicU64,
    /// Messages dropped because a queue was full or a client's Maximum Packet Size was too small.
    pub publish_dropped: AtomicU64,
    /// Bytes read from clients.
    pub bytes_received: AtomicU64,
    /// Bytes written to clients.
    pub bytes_sent: AtomicU64,
    /// Messages dropped because they expired before delivery.
    pub messages_expired: AtomicU64,
}

impl Stats {
    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
