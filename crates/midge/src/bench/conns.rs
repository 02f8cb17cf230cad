//! `conns`: K idle connections, each subscribed to its own topic, spread over 127.0.0.x source
//! addresses. Reports how fast they were set up (CONNECT + SUBSCRIBE per second) and, with
//! `--pid`, the broker's resident memory per connection after holding them idle for `-d`
//! seconds. Then one probe message is published to every connection's topic, to check that
//! each connection is still alive and subscribed: those K deliveries are what `lost` counts.

use std::time::Duration;

use super::plan::{Limit, Plan, Settings};
use super::{Shape, describe};

/// How long connections are held idle unless `-d` says otherwise.
pub(crate) const DEFAULT_HOLD: Duration = Duration::from_secs(5);

/// The plan.
pub(crate) fn plan(shape: &Shape, settings: &Settings) -> Plan {
    let k = shape.clients.unwrap_or(1000);
    let prefix = settings.prefix("conns");
    let topics: Vec<String> = (0..k).map(|i| format!("{prefix}/{i}")).collect();
    let hold = match shape.limit() {
        Limit::Duration(d) if shape.duration_given => d,
        _ => DEFAULT_HOLD,
    };
    Plan {
        scenario: "conns",
        description: format!(
            "{} each subscribed to its own topic, idle for {:.0} s, then one probe message each",
            describe(k, "connection"),
            hold.as_secs_f64()
        ),
        subscribers: topics.iter().map(|t| vec![t.clone()]).collect(),
        topics,
        publishers: vec![(0..k as u32).collect()],
        subscribers_of: (0..k as u32).map(|i| vec![i]).collect(),
        limit: Limit::Count(k as u64),
        rate: shape.rate,
        warmup: Duration::ZERO,
        hold: Some(hold),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_probe_per_connection() {
        let shape = Shape::test(Some(5), None);
        let plan = plan(&shape, &crate::bench::tests::settings());
        assert_eq!(plan.subscribers.len(), 5);
        assert_eq!(plan.publishers, vec![vec![0, 1, 2, 3, 4]]);
        assert_eq!(plan.limit, Limit::Count(5));
        plan.check();
    }
}
