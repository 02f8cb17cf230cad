//! Small helpers: a non-cryptographic random source and correlation data.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// SplitMix64's finaliser: spreads the bits of `x` over the whole word.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// A random-looking number for backoff jitter: time, process id and a counter, mixed. Not for
/// anything that needs to be unpredictable.
pub(crate) fn random_u64() -> u64 {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    mix(now_nanos() ^ (u64::from(std::process::id()) << 32) ^ mix(n))
}

/// Correlation Data for one request: 16 bytes, unique within the process (a counter) and
/// practically unique across processes and restarts (time and process id).
pub(crate) fn correlation_data() -> Bytes {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let seed = mix(now_nanos() ^ (u64::from(std::process::id()) << 32));
    let mut out = Vec::with_capacity(16);
    out.extend_from_slice(&seed.to_be_bytes());
    out.extend_from_slice(&n.to_be_bytes());
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn correlation_data_is_unique() {
        let a = correlation_data();
        let b = correlation_data();
        assert_eq!(a.len(), 16);
        assert_ne!(a, b);
    }
}
