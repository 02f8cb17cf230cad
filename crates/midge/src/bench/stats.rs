//! What the subscribers measure: per-stream sequence tracking (lost, duplicated, out of order)
//! and a latency histogram.
//!
//! A *stream* is what one publisher sends to one topic: its messages carry consecutive
//! sequence numbers from 0. Each subscriber keeps one [`SeqTracker`] per stream it receives,
//! so a message delivered twice, delivered after a later one, or never delivered is counted
//! exactly, whatever else the subscriber receives.

use std::collections::{BTreeSet, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

/// The fixed part of every benchmark payload: publisher id, topic index, sequence number and
/// send time, little-endian. The rest of the payload (up to `--size`) is filler.
pub(crate) const HEADER_LEN: usize = 24;

/// The identity and timing of one benchmark message, read from its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    /// Which publisher sent it.
    pub(crate) publisher: u32,
    /// Which topic of the plan it was sent to.
    pub(crate) topic: u32,
    /// Its position in the (publisher, topic) stream, from 0.
    pub(crate) seq: u64,
    /// When it was written, in nanoseconds on the run's monotonic clock.
    pub(crate) sent_ns: u64,
}

impl Stamp {
    /// Writes the header into the first [`HEADER_LEN`] bytes of `payload`.
    pub(crate) fn write(&self, payload: &mut [u8]) {
        payload[0..4].copy_from_slice(&self.publisher.to_le_bytes());
        payload[4..8].copy_from_slice(&self.topic.to_le_bytes());
        payload[8..16].copy_from_slice(&self.seq.to_le_bytes());
        payload[16..24].copy_from_slice(&self.sent_ns.to_le_bytes());
    }

    /// Reads the header; `None` if the payload is too short to be one of ours.
    pub(crate) fn read(payload: &[u8]) -> Option<Stamp> {
        let header: &[u8; HEADER_LEN] = payload.get(..HEADER_LEN)?.try_into().ok()?;
        let u32_at =
            |i: usize| u32::from_le_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
        let u64_at = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&header[i..i + 8]);
            u64::from_le_bytes(b)
        };
        Some(Stamp {
            publisher: u32_at(0),
            topic: u32_at(4),
            seq: u64_at(8),
            sent_ns: u64_at(16),
        })
    }

    /// The stream this message belongs to, as one map key.
    pub(crate) fn stream(&self) -> u64 {
        stream_key(self.publisher, self.topic)
    }
}

/// The map key of the (publisher, topic) stream.
pub(crate) fn stream_key(publisher: u32, topic: u32) -> u64 {
    (u64::from(publisher) << 32) | u64::from(topic)
}

/// What one arrival was, relative to what the stream had already delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arrival {
    /// A sequence number not seen before, and higher than every one seen before.
    InOrder,
    /// A sequence number not seen before, but lower than one already seen.
    OutOfOrder,
    /// A sequence number already seen.
    Duplicate,
}

/// How many sequence numbers above a gap are remembered before the gap is given up on. Only
/// reached when messages are really lost (or reordered by more than this); memory stays
/// bounded either way.
const MAX_PENDING: usize = 1 << 16;

/// The sequence numbers one stream has delivered, in O(1) memory while delivery is in order.
///
/// Everything below `low` has arrived (or was given up on, see [`MAX_PENDING`]); `above`
/// holds the numbers seen beyond the first gap. A late arrival into a range that was given up
/// on counts as distinct and out of order (a second copy of it would also count as distinct:
/// the one inaccuracy, and only after a reordering by more than 65,536 positions).
#[derive(Debug, Clone, Default)]
pub(crate) struct SeqTracker {
    low: u64,
    /// One past the highest sequence number seen.
    high: u64,
    above: BTreeSet<u64>,
    /// Ranges below `low` that were given up on: `[start, end)`.
    abandoned: Vec<(u64, u64)>,
    /// Distinct sequence numbers received.
    pub(crate) distinct: u64,
}

impl SeqTracker {
    /// Records an arrival.
    pub(crate) fn record(&mut self, seq: u64) -> Arrival {
        if seq == self.low && self.above.is_empty() {
            // The fast path: the next message of an in-order stream.
            self.low += 1;
            self.high = self.high.max(self.low);
            self.distinct += 1;
            return Arrival::InOrder;
        }
        if seq < self.low {
            if self.abandoned.iter().any(|&(s, e)| (s..e).contains(&seq)) {
                self.distinct += 1;
                return Arrival::OutOfOrder;
            }
            return Arrival::Duplicate;
        }
        if seq != self.low && !self.above.insert(seq) {
            return Arrival::Duplicate;
        }
        self.distinct += 1;
        let arrival = if seq + 1 < self.high {
            Arrival::OutOfOrder
        } else {
            Arrival::InOrder
        };
        self.high = self.high.max(seq + 1);
        if seq == self.low {
            self.low += 1;
        }
        self.advance();
        if self.above.len() > MAX_PENDING {
            // Give up on the lowest gap: those numbers are almost certainly lost.
            if let Some(&first) = self.above.first() {
                self.abandoned.push((self.low, first));
                self.low = first;
                self.advance();
            }
        }
        arrival
    }

    fn advance(&mut self) {
        while self.above.first() == Some(&self.low) {
            self.above.pop_first();
            self.low += 1;
        }
    }
}

/// A cheap hasher for the stream keys (publisher and topic packed in a `u64`): the subscriber
/// looks one up per message, and SipHash would cost more than the rest of the bookkeeping.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct StreamHasher(u64);

impl Hasher for StreamHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }

    fn write_u64(&mut self, n: u64) {
        // Fibonacci hashing; the high bits (which hashbrown uses for its control bytes) mix
        // both halves of the key.
        self.0 = (n ^ (n >> 29)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// The per-stream trackers of one subscriber.
pub(crate) type Streams = HashMap<u64, SeqTracker, BuildHasherDefault<StreamHasher>>;

/// Linear buckets below this value; above it, 64 buckets per power of two.
const LINEAR: u64 = 128;
const SUB_BITS: u32 = 6;
const BUCKETS: usize = LINEAR as usize + (64 - 7) * (1 << SUB_BITS);

/// A log-linear histogram of nanosecond values: exact below 128 ns, within 1/64 (1.6 %)
/// above. 30 KB, allocated on the first value.
#[derive(Debug, Clone, Default)]
pub(crate) struct Histogram {
    counts: Vec<u64>,
    total: u64,
    sum: u128,
    min: u64,
    max: u64,
}

fn bucket_of(v: u64) -> usize {
    if v < LINEAR {
        return v as usize;
    }
    let exp = 63 - v.leading_zeros(); // >= 7
    let mantissa = (v >> (exp - SUB_BITS)) & ((1 << SUB_BITS) - 1);
    LINEAR as usize + ((exp - 7) as usize) * (1 << SUB_BITS) + mantissa as usize
}

/// The largest value that falls in bucket `i`.
fn bucket_high(i: usize) -> u64 {
    if i < LINEAR as usize {
        return i as u64;
    }
    let j = i - LINEAR as usize;
    let exp = (j >> SUB_BITS) as u32 + 7;
    let mantissa = (j & ((1 << SUB_BITS) - 1)) as u64;
    let low = (1u64 << exp) | (mantissa << (exp - SUB_BITS));
    low.saturating_add((1u64 << (exp - SUB_BITS)) - 1)
}

impl Histogram {
    /// Records one value.
    pub(crate) fn record(&mut self, v: u64) {
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS];
            self.min = v;
        }
        self.counts[bucket_of(v)] += 1;
        self.total += 1;
        self.sum += u128::from(v);
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }

    /// How many values were recorded.
    pub(crate) fn count(&self) -> u64 {
        self.total
    }

    /// The largest value.
    pub(crate) fn max(&self) -> u64 {
        self.max
    }

    /// The mean.
    pub(crate) fn mean(&self) -> u64 {
        if self.total == 0 {
            0
        } else {
            (self.sum / u128::from(self.total)) as u64
        }
    }

    /// The value below which a fraction `q` (0..=1) of the values fall: the upper edge of the
    /// bucket holding that rank, never above the maximum.
    pub(crate) fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return bucket_high(i).clamp(self.min, self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_round_trips() {
        let s = Stamp {
            publisher: 7,
            topic: 1023,
            seq: 1 << 40,
            sent_ns: 123_456_789,
        };
        let mut payload = [0u8; 64];
        s.write(&mut payload);
        assert_eq!(Stamp::read(&payload), Some(s));
        assert_eq!(Stamp::read(&payload[..23]), None);
    }

    #[test]
    fn tracker_counts_in_order_duplicates_and_reordering() {
        let mut t = SeqTracker::default();
        assert_eq!(t.record(0), Arrival::InOrder);
        assert_eq!(t.record(1), Arrival::InOrder);
        assert_eq!(t.record(1), Arrival::Duplicate);
        assert_eq!(t.record(3), Arrival::InOrder); // a gap: 2 is missing so far
        assert_eq!(t.record(2), Arrival::OutOfOrder);
        assert_eq!(t.record(3), Arrival::Duplicate);
        assert_eq!(t.record(0), Arrival::Duplicate);
        assert_eq!(t.record(4), Arrival::InOrder);
        assert_eq!(t.distinct, 5);
        assert!(t.above.is_empty());
        // A permanent gap: 5 never arrives.
        for s in 6..10 {
            assert_eq!(t.record(s), Arrival::InOrder);
        }
        assert_eq!(t.distinct, 9);
        assert_eq!(t.record(7), Arrival::Duplicate);
    }

    #[test]
    fn tracker_memory_is_bounded_when_messages_are_lost() {
        let mut t = SeqTracker::default();
        t.record(0);
        // 1 is lost; far more than MAX_PENDING arrive after it.
        let n = MAX_PENDING as u64 + 100;
        for s in 2..n {
            t.record(s);
        }
        assert!(t.above.len() <= MAX_PENDING);
        assert_eq!(t.distinct, n - 1);
        // The lost one arriving very late still counts once.
        assert_eq!(t.record(1), Arrival::OutOfOrder);
        assert_eq!(t.distinct, n);
    }

    #[test]
    fn histogram_buckets_are_monotonic_and_tight() {
        let mut last = 0;
        for v in [
            0u64,
            1,
            127,
            128,
            129,
            1000,
            65_535,
            1 << 20,
            1 << 40,
            u64::MAX,
        ] {
            let b = bucket_of(v);
            assert!(b >= last, "{v}");
            last = b;
            let high = bucket_high(b);
            assert!(high >= v, "{v} above its bucket's edge {high}");
            assert!(high - v <= v / 64 + 1, "{v}: bucket too wide ({high})");
        }
        assert!(bucket_of(u64::MAX) < BUCKETS);
    }

    #[test]
    fn histogram_quantiles() {
        let mut h = Histogram::default();
        for v in 1..=1000u64 {
            h.record(v * 1000);
        }
        let p50 = h.quantile(0.5);
        assert!((495_000..=510_000).contains(&p50), "{p50}");
        let p99 = h.quantile(0.99);
        assert!((985_000..=1_000_000).contains(&p99), "{p99}");
        assert_eq!(h.quantile(1.0), 1_000_000);
        assert_eq!(h.max(), 1_000_000);
        assert_eq!(h.mean(), 500_500);
        h.record(5);
        assert_eq!(h.count(), 1001);
        assert_eq!(h.quantile(0.0), 5);
    }
}
