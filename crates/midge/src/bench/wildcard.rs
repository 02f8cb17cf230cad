//! `wildcard`: P publishers over the W^D leaves of a topic tree D levels deep (default 4^5 =
//! 1,024 leaves), S subscribers (default 200) each with one filter mixing exact levels, `+`
//! and a trailing `#`. Each filter fixes two levels, so it matches 1/W² of the leaves
//! (default 1/16: 64 leaves) and every message reaches S/W² subscribers on average
//! (default 12.5). Measures the broker's subscription matching.
//!
//! The filters are pseudo-random but the same for every run with the same options, so runs
//! against different brokers are comparable.

use super::plan::{Plan, Settings};
use super::{Shape, describe};

/// One subscriber's filter over the tree: the digit each level must have (`None`: `+`), and
/// whether the trailing `+` levels are written as one `#`.
#[derive(Debug, Clone, PartialEq)]
struct Pattern {
    levels: Vec<Option<usize>>,
    hash_tail: bool,
}

impl Pattern {
    /// Filter `s` of `count`, for a tree `depth` levels deep and `width` wide.
    fn generate(s: usize, depth: usize, width: usize) -> Pattern {
        // xorshift64*, seeded by the subscriber's index: deterministic, well spread.
        let mut state = (s as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = move || {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11
        };
        let fixed = depth.min(2);
        let mut levels = vec![None; depth];
        let mut chosen = 0;
        while chosen < fixed {
            let level = (next() % depth as u64) as usize;
            if levels[level].is_none() {
                levels[level] = Some((next() % width as u64) as usize);
                chosen += 1;
            }
        }
        let trailing_free = levels.last().is_some_and(Option::is_none);
        Pattern {
            levels,
            hash_tail: trailing_free && next() % 2 == 0,
        }
    }

    fn matches(&self, leaf: &[usize]) -> bool {
        self.levels
            .iter()
            .zip(leaf)
            .all(|(want, have)| want.is_none_or(|w| w == *have))
    }

    fn filter(&self, root: &str) -> String {
        let mut out = root.to_owned();
        let keep = if self.hash_tail {
            self.levels
                .iter()
                .rposition(Option::is_some)
                .map_or(0, |i| i + 1)
        } else {
            self.levels.len()
        };
        for level in &self.levels[..keep] {
            match level {
                Some(d) => out.push_str(&format!("/{d}")),
                None => out.push_str("/+"),
            }
        }
        if self.hash_tail {
            out.push_str("/#");
        }
        out
    }
}

/// The plan.
pub(crate) fn plan(shape: &Shape, settings: &Settings) -> Plan {
    let publishers = shape.clients.unwrap_or(8);
    let subscribers = shape.subscribers.unwrap_or(200);
    let (depth, width) = (shape.depth, shape.width);
    let root = format!("{}/w", settings.prefix("wildcard"));
    let leaves = width.pow(depth as u32);
    let digits = |mut leaf: usize| {
        let mut d = vec![0; depth];
        for level in (0..depth).rev() {
            d[level] = leaf % width;
            leaf /= width;
        }
        d
    };
    let topics: Vec<String> = (0..leaves)
        .map(|leaf| {
            let mut t = root.clone();
            for d in digits(leaf) {
                t.push_str(&format!("/{d}"));
            }
            t
        })
        .collect();
    let patterns: Vec<Pattern> = (0..subscribers)
        .map(|s| Pattern::generate(s, depth, width))
        .collect();
    let subscribers_of: Vec<Vec<u32>> = (0..leaves)
        .map(|leaf| {
            let d = digits(leaf);
            (0..subscribers as u32)
                .filter(|&s| patterns[s as usize].matches(&d))
                .collect()
        })
        .collect();
    let fan: usize = subscribers_of.iter().map(Vec::len).sum();
    // Every publisher cycles through every leaf, each starting at its own offset.
    let publisher_topics = (0..publishers)
        .map(|p| {
            let offset = p * leaves / publishers.max(1);
            (0..leaves)
                .map(|i| ((offset + i) % leaves) as u32)
                .collect()
        })
        .collect();
    Plan {
        scenario: "wildcard",
        description: format!(
            "{} over {leaves} leaves {depth} levels deep -> {} with +/# filters (average fan-out {:.1})",
            describe(publishers, "publisher"),
            describe(subscribers, "subscriber"),
            fan as f64 / leaves.max(1) as f64
        ),
        topics,
        publishers: publisher_topics,
        subscribers: patterns.iter().map(|p| vec![p.filter(&root)]).collect(),
        subscribers_of,
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
    fn matches_agree_with_mqtt_matching() {
        let mut shape = Shape::test(Some(3), Some(40));
        shape.depth = 4;
        shape.width = 3;
        let plan = plan(&shape, &crate::bench::tests::settings());
        assert_eq!(plan.topics.len(), 81);
        plan.check();
        let filters: Vec<&str> = plan.subscribers.iter().map(|f| f[0].as_str()).collect();
        assert!(filters.iter().any(|f| f.ends_with("/#")), "{filters:?}");
        assert!(filters.iter().any(|f| f.contains("/+/")), "{filters:?}");
        // Every leaf is someone's, and each publisher covers every leaf.
        assert!(plan.publishers.iter().all(|p| p.len() == 81));
    }

    #[test]
    fn default_tree_fans_out_about_twelve() {
        let shape = Shape::test(None, None);
        let plan = plan(&shape, &crate::bench::tests::settings());
        assert_eq!(plan.topics.len(), 1024);
        let fan: usize = plan.subscribers_of.iter().map(Vec::len).sum();
        let average = fan as f64 / 1024.0;
        assert!((10.0..15.0).contains(&average), "{average}");
    }
}
