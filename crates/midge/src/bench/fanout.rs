//! `fanout`: 1 publisher → S subscribers, all on one topic. Measures how fast the broker
//! copies one stream to many connections.

use super::plan::{Plan, Settings};
use super::{Shape, describe};

/// The plan.
pub(crate) fn plan(shape: &Shape, settings: &Settings) -> Plan {
    let publishers = shape.clients.unwrap_or(1);
    let subscribers = shape.subscribers.unwrap_or(100);
    let topic = format!("{}/t", settings.prefix("fanout"));
    Plan {
        scenario: "fanout",
        description: format!(
            "{} -> {} on one topic",
            describe(publishers, "publisher"),
            describe(subscribers, "subscriber")
        ),
        topics: vec![topic.clone()],
        publishers: vec![vec![0]; publishers],
        subscribers: vec![vec![topic]; subscribers],
        subscribers_of: vec![(0..subscribers as u32).collect()],
        limit: shape.limit(),
        rate: shape.rate,
        warmup: shape.warmup(false),
        hold: None,
    }
}
