//! `latency`: N pairs sharing a fixed total rate (10,000 msg/s unless `-r`), far below what
//! any broker saturates at, so the figures are the broker's per-message delay and not queueing.
//! The pairs send at staggered instants of their period, and the first second is left out
//! as warm-up unless `--warmup` says otherwise.

use super::pairs::pairs;
use super::plan::{Plan, Settings};
use super::{Shape, describe, engine::si};

/// The default total rate, in messages per second.
pub(crate) const DEFAULT_RATE: f64 = 10_000.0;

/// The plan.
pub(crate) fn plan(shape: &Shape, settings: &Settings) -> Plan {
    let n = shape.clients.unwrap_or(100);
    let rate = shape.rate.unwrap_or(DEFAULT_RATE);
    Plan {
        description: format!(
            "{} on their own topics, {} msg/s in total",
            describe(n, "publisher/subscriber pair"),
            si(rate)
        ),
        rate: Some(rate),
        warmup: shape.warmup(true),
        ..pairs("latency", n, shape, settings)
    }
}
