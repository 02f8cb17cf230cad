//! What a scenario asks for ([`Plan`]) and what every connection task shares while it runs
//! ([`Shared`]).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use midge_proto::{ProtocolVersion, QoS};
use tokio::sync::{Notify, watch};

use super::stats::Histogram;

/// Everything the command line fixes that is not scenario-specific.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// The broker's address, resolved once.
    pub(crate) addr: SocketAddr,
    /// What the user typed, for the report.
    pub(crate) target: String,
    pub(crate) qos: QoS,
    /// Payload bytes per message (at least the 24-byte header).
    pub(crate) size: usize,
    pub(crate) version: ProtocolVersion,
    /// End-to-end window: deliveries published but not yet received, across all publishers.
    pub(crate) window: u64,
    /// QoS 1/2 messages each publisher keeps unacknowledged (lowered to the broker's Receive
    /// Maximum).
    pub(crate) inflight: u16,
    /// The drain ends after this long without a delivery.
    pub(crate) drain_idle: Duration,
    /// Number of 127.0.0.x source addresses to spread connections over (1: let the system
    /// choose).
    pub(crate) sources: u8,
    /// Connections handshaking at once.
    pub(crate) concurrency: usize,
    /// The broker's process, for memory and CPU figures.
    pub(crate) pid: Option<u32>,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<String>,
    pub(crate) keep_alive: u16,
    pub(crate) connect_timeout: Duration,
    /// Print the progress line.
    pub(crate) progress: bool,
    /// Distinguishes this run's client identifiers and topics from any other's.
    pub(crate) run_id: u32,
}

impl Settings {
    /// The local address connection number `n` connects from.
    pub(crate) fn source(&self, n: usize) -> Option<IpAddr> {
        match self.addr.ip() {
            IpAddr::V4(ip) if ip.is_loopback() && self.sources > 1 => Some(IpAddr::V4(
                Ipv4Addr::new(127, 0, 0, 1 + (n % usize::from(self.sources)) as u8),
            )),
            _ => None,
        }
    }

    /// The topic prefix of this run.
    pub(crate) fn prefix(&self, scenario: &str) -> String {
        format!("midge-bench/{:08x}/{scenario}", self.run_id)
    }
}

/// When publishing stops.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Limit {
    /// After this long.
    Duration(Duration),
    /// After this many messages in total (split evenly over the publishers), or after the
    /// hard time cap.
    Count(u64),
}

/// A scenario, reduced to who publishes what where and who subscribes to what.
///
/// Publisher `p` sends to the topics `publishers[p]` in turn, one message each; its messages
/// to one topic form a *stream* with sequence numbers 0, 1, 2, …. Subscriber `s` subscribes
/// to the filters `subscribers[s]`, which match exactly the topics `t` for which
/// `subscribers_of[t]` lists `s`: that is how the run knows how many deliveries each
/// message should cause and what each subscriber should have received.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) scenario: &'static str,
    /// One line for the report: who sends to whom.
    pub(crate) description: String,
    pub(crate) topics: Vec<String>,
    pub(crate) publishers: Vec<Vec<u32>>,
    pub(crate) subscribers: Vec<Vec<String>>,
    pub(crate) subscribers_of: Vec<Vec<u32>>,
    pub(crate) limit: Limit,
    /// Total publish rate in messages per second; `None`: as fast as the window allows.
    pub(crate) rate: Option<f64>,
    /// Messages sent during the first `warmup` count for loss but not for rates or latency.
    pub(crate) warmup: Duration,
    /// `conns`: keep every connection idle this long (and measure the broker's memory)
    /// before publishing.
    pub(crate) hold: Option<Duration>,
}

impl Plan {
    /// Deliveries one message to `topic` causes.
    pub(crate) fn fan(&self, topic: u32) -> u64 {
        self.subscribers_of[topic as usize].len() as u64
    }

    /// For each subscriber, the topics its filters match.
    pub(crate) fn topics_of_subscribers(&self) -> Vec<Vec<u32>> {
        let mut out = vec![Vec::new(); self.subscribers.len()];
        for (t, subs) in self.subscribers_of.iter().enumerate() {
            for &s in subs {
                out[s as usize].push(t as u32);
            }
        }
        out
    }

    /// Checks the plan is consistent with the matching rules (scenarios compute
    /// `subscribers_of` themselves, which can be much faster than matching every pair).
    #[cfg(test)]
    pub(crate) fn check(&self) {
        for (t, topic) in self.topics.iter().enumerate() {
            for (s, filters) in self.subscribers.iter().enumerate() {
                let matches = filters
                    .iter()
                    .any(|f| midge_proto::topic::matches(f, topic));
                assert_eq!(
                    matches,
                    self.subscribers_of[t].contains(&(s as u32)),
                    "topic {topic} vs subscriber {s} {filters:?}"
                );
            }
        }
    }
}

/// Where the run is. Tasks watch it; it only moves forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Phase {
    /// Connecting and subscribing.
    Setup,
    /// `conns`: everyone connected, idle.
    Hold,
    /// Publishing.
    Run,
    /// Publishing stopped; waiting for the last deliveries.
    Drain,
    /// Everyone closes and reports.
    Stop,
}

/// Counters and signals shared by the coordinator and every connection task. Tasks add to
/// the counters once per batch, not per message.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The clock of every timestamp in payloads.
    pub(crate) base: Instant,
    pub(crate) phase: watch::Sender<Phase>,
    /// Deliveries due: each message published times the subscribers it should reach.
    pub(crate) expected: AtomicU64,
    /// Deliveries received (duplicates included).
    pub(crate) received: AtomicU64,
    /// Deliveries written off after a stall (see [`Shared::room`]).
    pub(crate) forgiven: AtomicU64,
    /// The `received` value at the last write-off, so concurrent publishers write off once.
    pub(crate) last_stall: AtomicU64,
    pub(crate) stalls: AtomicU64,
    pub(crate) published: AtomicU64,
    pub(crate) acked: AtomicU64,
    /// When publishing started (ns since `base`); rates are scheduled from it.
    pub(crate) run_start_ns: AtomicU64,
    /// Messages sent before this (ns since `base`) are left out of the latency figures.
    pub(crate) warmup_end_ns: AtomicU64,
    pub(crate) window: u64,
    /// Set by a publisher waiting for room in the window, cleared by the subscriber that
    /// wakes it.
    pub(crate) waiting: AtomicBool,
    pub(crate) room: Notify,
    /// Connections established and subscribed.
    pub(crate) ready: AtomicUsize,
    /// Connections that could not be set up.
    pub(crate) failed: AtomicUsize,
    /// Publishers finished: nothing left to send or to be acknowledged.
    pub(crate) publishers_done: AtomicUsize,
    /// Wakes the coordinator when `ready`, `failed` or `publishers_done` change.
    pub(crate) changed: Notify,
    pub(crate) errors: Mutex<Vec<String>>,
    /// End-to-end latencies, in nanoseconds.
    pub(crate) latency: Mutex<Histogram>,
}

impl Shared {
    pub(crate) fn new(window: u64) -> Shared {
        Shared {
            base: Instant::now(),
            phase: watch::Sender::new(Phase::Setup),
            expected: AtomicU64::new(0),
            received: AtomicU64::new(0),
            forgiven: AtomicU64::new(0),
            last_stall: AtomicU64::new(u64::MAX),
            stalls: AtomicU64::new(0),
            published: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            run_start_ns: AtomicU64::new(0),
            warmup_end_ns: AtomicU64::new(u64::MAX),
            window,
            waiting: AtomicBool::new(false),
            room: Notify::new(),
            ready: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            publishers_done: AtomicUsize::new(0),
            changed: Notify::new(),
            errors: Mutex::new(Vec::new()),
            latency: Mutex::new(Histogram::default()),
        }
    }

    /// Nanoseconds on the run's clock.
    pub(crate) fn now_ns(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }

    /// Deliveries that may still be published before the window is full (negative: over).
    ///
    /// A broker may drop messages (QoS 0 under load, or a full queue), and deliveries that
    /// never come would close the window for good. So when no delivery at all arrives for a
    /// second while publishers wait, half a window is written off ([`Shared::stall`]); the
    /// report counts these stalls.
    pub(crate) fn room(&self) -> i64 {
        let outstanding = self.expected.load(Ordering::SeqCst) as i64
            - self.received.load(Ordering::SeqCst) as i64
            - self.forgiven.load(Ordering::SeqCst) as i64;
        self.window as i64 - outstanding
    }

    /// A publisher waited a second for room with `received` unchanged: write off half a
    /// window, once per stall however many publishers notice it.
    pub(crate) fn stall(&self, received: u64) {
        if self.last_stall.swap(received, Ordering::SeqCst) != received {
            self.forgiven
                .fetch_add(self.window / 2 + 1, Ordering::SeqCst);
            self.stalls.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Subscribers call this after counting a batch of deliveries.
    pub(crate) fn delivered(&self, n: u64) {
        self.received.fetch_add(n, Ordering::SeqCst);
        if self.waiting.load(Ordering::SeqCst) && self.waiting.swap(false, Ordering::SeqCst) {
            self.room.notify_waiters();
        }
    }

    /// Records an error (a connection lost or refused).
    pub(crate) fn error(&self, message: String) {
        if let Ok(mut errors) = self.errors.lock() {
            // Thousands of connections failing the same way need not all be listed.
            if errors.len() < 100 {
                errors.push(message);
            }
        }
        self.changed.notify_one();
    }

    /// Adds a subscriber's latency samples to the histogram.
    pub(crate) fn record_latencies(&self, samples: &[u64]) {
        if samples.is_empty() {
            return;
        }
        if let Ok(mut h) = self.latency.lock() {
            for &v in samples {
                h.record(v);
            }
        }
    }

    /// The current phase.
    pub(crate) fn phase(&self) -> Phase {
        *self.phase.borrow()
    }

    /// Moves to `phase`.
    pub(crate) fn set_phase(&self, phase: Phase) {
        self.phase.send_replace(phase);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_spread_over_loopback_only() {
        let mut s = Settings {
            addr: "127.0.0.1:1883".parse().expect("addr"),
            target: String::new(),
            qos: QoS::AtMostOnce,
            size: 64,
            version: ProtocolVersion::V3_1_1,
            window: 10,
            inflight: 10,
            drain_idle: Duration::from_secs(1),
            sources: 4,
            concurrency: 1,
            pid: None,
            username: None,
            password: None,
            keep_alive: 60,
            connect_timeout: Duration::from_secs(1),
            progress: false,
            run_id: 1,
        };
        assert_eq!(s.source(0), Some("127.0.0.1".parse().expect("ip")));
        assert_eq!(s.source(5), Some("127.0.0.2".parse().expect("ip")));
        s.sources = 1;
        assert_eq!(s.source(5), None);
        s.sources = 4;
        s.addr = "[::1]:1883".parse().expect("addr");
        assert_eq!(s.source(5), None);
    }

    #[test]
    fn stalls_are_written_off_once() {
        let shared = Shared::new(100);
        shared.expected.store(100, Ordering::SeqCst);
        assert_eq!(shared.room(), 0);
        shared.stall(0);
        shared.stall(0);
        assert_eq!(shared.room(), 51);
        assert_eq!(shared.stalls.load(Ordering::SeqCst), 1);
    }
}
