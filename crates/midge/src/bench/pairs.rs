//! `pairs`: N publisher/subscriber pairs, each pair on its own topic. Measures many
//! independent streams at once, the case a multi-threaded broker should scale with.

use super::plan::{Plan, Settings};
use super::{Shape, describe};

/// The plan.
pub(crate) fn plan(shape: &Shape, settings: &Settings) -> Plan {
    let n = shape.clients.unwrap_or(100);
    Plan {
        description: format!(
            "{} on their own topics",
            describe(n, "publisher/subscriber pair")
        ),
        ..pairs("pairs", n, shape, settings)
    }
}

/// `n` pairs: publisher `i` sends to topic `i`, which only subscriber `i` subscribes to.
pub(crate) fn pairs(scenario: &'static str, n: usize, shape: &Shape, settings: &Settings) -> Plan {
    let prefix = settings.prefix(scenario);
    let topics: Vec<String> = (0..n).map(|i| format!("{prefix}/{i}")).collect();
    Plan {
        scenario,
        description: String::new(),
        subscribers: topics.iter().map(|t| vec![t.clone()]).collect(),
        topics,
        publishers: (0..n as u32).map(|i| vec![i]).collect(),
        subscribers_of: (0..n as u32).map(|i| vec![i]).collect(),
        limit: shape.limit(),
        rate: shape.rate,
        warmup: shape.warmup(false),
        hold: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_consistent() {
        let shape = Shape::test(Some(7), None);
        let plan = plan(&shape, &crate::bench::tests::settings());
        assert_eq!(plan.publishers.len(), 7);
        assert_eq!(plan.subscribers.len(), 7);
        plan.check();
    }
}
