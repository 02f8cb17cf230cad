//! Retained messages by topic name, as a trie.
//!
//! A SUBSCRIBE must deliver every retained message whose topic matches the new filter
//! (`[MQTT-3.3.1-9]`). Keeping the messages in a trie of topic levels means a filter like
//! `home/+/temperature` walks only the `home` branch and, below each of its children, only
//! `temperature`, instead of testing every retained topic. The matching rules are those of
//! §4.7, the same as [`midge_proto::topic::matches`]: `+` matches one possibly empty level,
//! `#` also matches the parent level, and a filter starting with `+` or `#` does not match a
//! topic starting with `$` (`[MQTT-4.7.2-1]`).
//!
//! The tree is not synchronised: the broker wraps it in a lock. Every entry keeps its
//! [`TopicName`] next to the value, so visitors get a `&TopicName` without strings being
//! rebuilt from levels. Walks, pruning and dropping are iterative, so a topic with tens of
//! thousands of levels cannot overflow a task's stack.

use std::fmt;

use midge_proto::topic::TopicName;

use crate::small_map::SmallMap;

/// The single-level wildcard as a whole level.
const SINGLE_LEVEL: &str = "+";
/// The multi-level wildcard as a whole level.
const MULTI_LEVEL: &str = "#";

/// Retained messages by topic name, as a trie so a wildcard subscribe walks only the matching
/// branches (never a scan of every retained topic). Not synchronised: the broker wraps it in a
/// lock.
pub struct RetainTree<V> {
    /// The root stands for the empty prefix; it never holds an entry.
    root: Node<V>,
    /// The number of entries, kept so `len` is O(1).
    len: usize,
}

/// A trie node: the path from the root spells a topic, one level per edge.
struct Node<V> {
    /// The next levels.
    children: SmallMap<Box<str>, Node<V>>,
    /// The message retained at the topic this node spells, with that topic. Boxed so that
    /// nodes that only lead somewhere cost one pointer for it.
    entry: Option<Box<(TopicName, V)>>,
}

impl<V> RetainTree<V> {
    /// An empty tree.
    pub fn new() -> Self {
        RetainTree {
            root: Node::new(),
            len: 0,
        }
    }

    /// Retains `value` at `topic`, returning the value it replaces.
    ///
    /// The [alias placeholder](TopicName::empty_for_alias) is not a topic: it is never stored
    /// (the value is dropped and `None` returned), as it could never be matched.
    pub fn insert(&mut self, topic: &TopicName, value: V) -> Option<V> {
        debug_assert!(
            !topic.is_empty(),
            "the alias placeholder cannot be retained"
        );
        if topic.is_empty() {
            return None;
        }
        let mut node = &mut self.root;
        for level in topic.levels() {
            node = node
                .children
                .get_or_insert_with(level, || (Box::from(level), Node::new()));
        }
        match &mut node.entry {
            Some(entry) => Some(std::mem::replace(&mut entry.1, value)),
            None => {
                node.entry = Some(Box::new((topic.clone(), value)));
                self.len += 1;
                None
            }
        }
    }

    /// Removes the message retained at `topic` and prunes the nodes that only led to it.
    pub fn remove(&mut self, topic: &TopicName) -> Option<V> {
        if topic.is_empty() {
            return None;
        }
        let node = self.root.find_mut(topic.as_str())?;
        let (_, value) = *node.entry.take()?;
        let leaf = node.children.is_empty();
        self.len -= 1;
        if leaf {
            prune(&mut self.root, topic.as_str());
        }
        Some(value)
    }

    /// The message retained at `topic`.
    pub fn get(&self, topic: &TopicName) -> Option<&V> {
        if topic.is_empty() {
            return None;
        }
        let mut node = &self.root;
        for level in topic.levels() {
            node = node.children.get(level)?;
        }
        node.entry.as_deref().map(|(_, value)| value)
    }

    /// Visits every retained message whose topic matches `filter` (an inner filter string,
    /// i.e. without `$share/g/`), applying the rules of §4.7: `+` matches one possibly empty
    /// level, `#` also matches the parent level (`a/#` matches `a`), and a filter starting with
    /// `+` or `#` does not match a topic starting with `$` (`[MQTT-4.7.2-1]`). The order is
    /// unspecified. An empty filter matches nothing; for an invalid filter the result is
    /// unspecified (but nothing panics).
    pub fn for_each_match(&self, filter: &str, mut visit: impl FnMut(&TopicName, &V)) {
        if filter.is_empty() {
            return;
        }
        // Pending branches: a node and the filter levels it has yet to match (`None`: all).
        let mut pending: Vec<(&Node<V>, Option<&str>)> = vec![(&self.root, Some(filter))];
        // Whole subtrees matched by a `#`.
        let mut subtrees: Vec<&Node<V>> = Vec::new();
        let mut at_root = true;
        while let Some((node, rest)) = pending.pop() {
            // [MQTT-4.7.2-1]: at the root, a wildcard level skips the `$` topics.
            let skip_system = at_root;
            at_root = false;
            let Some(rest) = rest else {
                node.visit_entry(&mut visit);
                continue;
            };
            let (level, more) = split_level(rest);
            match level {
                MULTI_LEVEL => {
                    // `#` matches the parent level (the root has no entry) and everything
                    // below it; it is the last level of a valid filter.
                    node.visit_entry(&mut visit);
                    for (label, child) in node.children.iter() {
                        if !(skip_system && label.starts_with('$')) {
                            subtrees.push(child);
                        }
                    }
                    while let Some(sub) = subtrees.pop() {
                        sub.visit_entry(&mut visit);
                        subtrees.extend(sub.children.iter().map(|(_, child)| child));
                    }
                }
                SINGLE_LEVEL => {
                    for (label, child) in node.children.iter() {
                        if !(skip_system && label.starts_with('$')) {
                            pending.push((child, more));
                        }
                    }
                }
                literal => {
                    if let Some(child) = node.children.get(literal) {
                        pending.push((child, more));
                    }
                }
            }
        }
    }

    /// Removes every entry for which `keep` returns false (message expiry sweeps), pruning the
    /// nodes that only led to removed entries. `keep` may also update the values it keeps
    /// (e.g. their remaining expiry interval). The order is unspecified.
    pub fn retain(&mut self, mut keep: impl FnMut(&TopicName, &mut V) -> bool) {
        let mut removed: Vec<TopicName> = Vec::new();
        let mut stack: Vec<&mut Node<V>> = vec![&mut self.root];
        while let Some(node) = stack.pop() {
            let drop_entry = match node.entry.as_deref_mut() {
                Some((topic, value)) => !keep(topic, value),
                None => false,
            };
            if drop_entry && let Some(entry) = node.entry.take() {
                let (topic, _value) = *entry;
                removed.push(topic);
            }
            stack.extend(node.children.values_mut());
        }
        self.len -= removed.len();
        // Pruning afterwards, path by path, keeps the walk above simple; each prune is
        // O(levels) and tolerates paths an earlier prune already removed.
        for topic in &removed {
            prune(&mut self.root, topic.as_str());
        }
    }

    /// The number of retained messages.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no message is retained.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every retained message with its topic, in unspecified order.
    pub fn iter(&self) -> impl Iterator<Item = (&TopicName, &V)> {
        Iter {
            stack: vec![&self.root],
        }
    }

    /// Counts the non-root nodes, to check that removal prunes.
    #[cfg(test)]
    fn node_count(&self) -> usize {
        let mut count = 0;
        let mut stack = vec![&self.root];
        while let Some(node) = stack.pop() {
            count += 1;
            stack.extend(node.children.iter().map(|(_, child)| child));
        }
        count - 1
    }
}

impl<V> Default for RetainTree<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V> fmt::Debug for RetainTree<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetainTree")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

/// Depth-first iterator over the entries.
struct Iter<'a, V> {
    /// Nodes whose entry and children are still to be visited.
    stack: Vec<&'a Node<V>>,
}

impl<'a, V> Iterator for Iter<'a, V> {
    type Item = (&'a TopicName, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        while let Some(node) = self.stack.pop() {
            self.stack
                .extend(node.children.iter().map(|(_, child)| child));
            if let Some((topic, value)) = node.entry.as_deref() {
                return Some((topic, value));
            }
        }
        None
    }
}

impl<V> Node<V> {
    fn new() -> Self {
        Node {
            children: SmallMap::new(),
            entry: None,
        }
    }

    /// The node that `path` spells, if it exists.
    fn find_mut(&mut self, path: &str) -> Option<&mut Node<V>> {
        let mut node = self;
        for level in path.split('/') {
            node = node.children.get_mut(level)?;
        }
        Some(node)
    }

    fn visit_entry(&self, visit: &mut impl FnMut(&TopicName, &V)) {
        if let Some((topic, value)) = self.entry.as_deref() {
            visit(topic, value);
        }
    }
}

/// Drops the subtree iteratively: the derived drop would recurse once per level, and a topic
/// may have up to 65,536 levels.
impl<V> Drop for Node<V> {
    fn drop(&mut self) {
        if self.children.is_empty() {
            return;
        }
        let mut stack = Vec::new();
        self.children.drain_values_into(&mut stack);
        while let Some(mut node) = stack.pop() {
            node.children.drain_values_into(&mut stack);
            // `node` has no children left, so dropping it here does not recurse.
        }
    }
}

/// Splits the next level off `rest`: `"a/b"` gives `("a", Some("b"))`, `"a"` gives
/// `("a", None)`, `"a/"` gives `("a", Some(""))`.
fn split_level(rest: &str) -> (&str, Option<&str>) {
    match rest.split_once('/') {
        Some((level, more)) => (level, Some(more)),
        None => (rest, None),
    }
}

/// Removes the node that `path` spells if it has neither an entry nor children, together with
/// every ancestor that only existed to lead to it. Does nothing if the node does not exist or
/// is still needed.
fn prune<V>(root: &mut Node<V>, path: &str) {
    // The deepest node on the path that stays (the root, or one with an entry or with another
    // child); the chain below it goes. `cut` is its depth, which is also the index of the level
    // naming the child to remove from it.
    let mut cut = 0;
    let mut node = &*root;
    for (depth, level) in path.split('/').enumerate() {
        if node.entry.is_some() || node.children.len() > 1 {
            cut = depth;
        }
        match node.children.get(level) {
            Some(child) => node = child,
            None => return,
        }
    }
    if node.entry.is_some() || !node.children.is_empty() {
        return;
    }
    let mut levels = path.split('/');
    let mut node = root;
    for _ in 0..cut {
        let Some(child) = levels.next().and_then(|level| node.children.get_mut(level)) else {
            return;
        };
        node = child;
    }
    if let Some(level) = levels.next() {
        // Dropping the removed chain is iterative, see `Drop for Node`.
        node.children.remove(level);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::BTreeMap;

    use midge_proto::topic::{TopicFilter, matches};
    use proptest::prelude::*;

    use super::*;

    fn name(s: &str) -> TopicName {
        TopicName::new(s).unwrap()
    }

    /// The topics whose messages match `filter`, sorted; a topic visited twice shows up twice.
    fn matched<V>(tree: &RetainTree<V>, filter: &str) -> Vec<String> {
        let mut out = Vec::new();
        tree.for_each_match(filter, |topic, _| out.push(topic.as_str().to_owned()));
        out.sort();
        out
    }

    fn sorted(topics: &[&str]) -> Vec<String> {
        let mut out: Vec<String> = topics.iter().map(|t| (*t).to_owned()).collect();
        out.sort();
        out
    }

    #[test]
    fn insert_replace_get_remove() {
        let mut tree = RetainTree::new();
        assert!(tree.is_empty());
        assert_eq!(tree.insert(&name("a/b"), 1), None);
        assert_eq!(tree.insert(&name("a/b"), 2), Some(1));
        assert_eq!(tree.insert(&name("a"), 3), None);
        assert_eq!(tree.len(), 2);
        assert_eq!(tree.get(&name("a/b")), Some(&2));
        assert_eq!(tree.get(&name("a")), Some(&3));
        assert_eq!(tree.get(&name("a/b/c")), None);
        assert_eq!(tree.get(&name("b")), None);
        assert_eq!(tree.remove(&name("a/c")), None);
        assert_eq!(tree.remove(&name("a/b/c")), None);
        assert_eq!(tree.len(), 2);
        assert_eq!(tree.remove(&name("a")), Some(3));
        assert_eq!(tree.remove(&name("a")), None);
        assert_eq!(tree.get(&name("a/b")), Some(&2));
        assert_eq!(tree.len(), 1);
        assert_eq!(tree.remove(&name("a/b")), Some(2));
        assert!(tree.is_empty());
        assert_eq!(tree.node_count(), 0);
        assert!(!format!("{tree:?}").is_empty());
        let default: RetainTree<()> = RetainTree::default();
        assert!(default.is_empty());
    }

    #[test]
    fn removal_prunes_exactly_the_empty_nodes() {
        let mut tree = RetainTree::new();
        for topic in ["a/b/c", "a/b/d", "a/x", "a"] {
            tree.insert(&name(topic), ());
        }
        // a, b, c, d, x
        assert_eq!(tree.node_count(), 5);
        tree.remove(&name("a/b/c"));
        assert_eq!(tree.node_count(), 4);
        tree.remove(&name("a/b/d"));
        assert_eq!(tree.node_count(), 2);
        // `a` holds a message, so removing its last child keeps it.
        tree.remove(&name("a/x"));
        assert_eq!(tree.node_count(), 1);
        // Removing an inner node's message keeps the node while it has children.
        tree.insert(&name("a/y"), ());
        tree.remove(&name("a"));
        assert_eq!(tree.node_count(), 2);
        assert_eq!(matched(&tree, "#"), ["a/y"]);
        tree.remove(&name("a/y"));
        assert_eq!(tree.node_count(), 0);
    }

    /// A fixed set of topics, including `$` topics and empty levels, against filters.
    #[test]
    fn wildcard_lookups() {
        let topics = [
            "a", "a/b", "a/b/c", "a//b", "a/", "/a", "/", "b", "$SYS", "$SYS/x", "$SYS/x/y",
            "a/$b", "$", "//",
        ];
        let mut tree = RetainTree::new();
        for topic in topics {
            tree.insert(&name(topic), topic.len());
        }
        let cases: &[(&str, &[&str])] = &[
            (
                "#",
                &[
                    "a", "a/b", "a/b/c", "a//b", "a/", "/a", "/", "b", "a/$b", "//",
                ],
            ),
            ("+", &["a", "b"]),
            ("+/+", &["a/b", "a/", "/a", "/", "a/$b"]),
            (
                "+/#",
                &[
                    "a", "a/b", "a/b/c", "a//b", "a/", "/a", "/", "b", "a/$b", "//",
                ],
            ),
            ("a/#", &["a", "a/b", "a/b/c", "a//b", "a/", "a/$b"]),
            ("a/+", &["a/b", "a/", "a/$b"]),
            ("a/+/b", &["a//b"]),
            ("a//b", &["a//b"]),
            ("a/", &["a/"]),
            ("/a", &["/a"]),
            ("/+", &["/a", "/"]),
            ("/#", &["/a", "/", "//"]),
            ("+/+/+", &["a/b/c", "a//b", "//"]),
            ("$SYS/#", &["$SYS", "$SYS/x", "$SYS/x/y"]),
            ("$SYS/+", &["$SYS/x"]),
            ("$SYS", &["$SYS"]),
            ("+/x", &[]),
            ("$", &["$"]),
            ("a/b", &["a/b"]),
            ("a/b/c/d", &[]),
            ("c/#", &[]),
            ("", &[]),
        ];
        for (filter, expected) in cases {
            assert_eq!(
                matched(&tree, filter),
                sorted(expected),
                "filter {filter:?}"
            );
            for topic in topics {
                let listed = expected.contains(&topic);
                assert_eq!(
                    matches(filter, topic),
                    listed,
                    "reference {filter:?} {topic:?}"
                );
            }
        }
        // Visitors get the stored value with its topic.
        tree.for_each_match("#", |topic, len| assert_eq!(topic.as_str().len(), *len));
    }

    #[test]
    fn iter_and_retain() {
        let mut tree = RetainTree::new();
        for (i, topic) in ["a", "a/b", "a/b/c", "b/c", "$SYS/x"]
            .into_iter()
            .enumerate()
        {
            tree.insert(&name(topic), i);
        }
        let mut all: Vec<(String, usize)> = tree
            .iter()
            .map(|(t, v)| (t.as_str().to_owned(), *v))
            .collect();
        all.sort();
        assert_eq!(
            all,
            [
                ("$SYS/x".to_owned(), 4),
                ("a".to_owned(), 0),
                ("a/b".to_owned(), 1),
                ("a/b/c".to_owned(), 2),
                ("b/c".to_owned(), 3)
            ]
        );
        // Drop the odd values and bump the others.
        tree.retain(|_, v| {
            *v += 10;
            *v % 2 == 0
        });
        assert_eq!(tree.len(), 3);
        let mut all: Vec<(String, usize)> = tree
            .iter()
            .map(|(t, v)| (t.as_str().to_owned(), *v))
            .collect();
        all.sort();
        assert_eq!(
            all,
            [
                ("$SYS/x".to_owned(), 14),
                ("a".to_owned(), 10),
                ("a/b/c".to_owned(), 12)
            ]
        );
        // a, b, c, $SYS, x: `b/c` went entirely, `a/b` stays as the way to `a/b/c`.
        assert_eq!(tree.node_count(), 5);
        tree.retain(|_, _| false);
        assert!(tree.is_empty());
        assert_eq!(tree.iter().count(), 0);
        assert_eq!(tree.node_count(), 0);
    }

    #[test]
    fn wide_nodes_switch_representation_and_back() {
        let mut tree = RetainTree::new();
        for i in 0..40 {
            tree.insert(&name(&format!("a/{i}")), i);
        }
        assert_eq!(matched(&tree, "a/+").len(), 40);
        assert_eq!(tree.get(&name("a/17")), Some(&17));
        tree.retain(|_, v| *v >= 37);
        assert_eq!(matched(&tree, "a/#"), ["a/37", "a/38", "a/39"]);
        assert_eq!(tree.node_count(), 4);
    }

    #[test]
    fn the_alias_placeholder_is_never_found() {
        let mut tree: RetainTree<u8> = RetainTree::new();
        let empty = TopicName::empty_for_alias();
        assert_eq!(tree.get(&empty), None);
        assert_eq!(tree.remove(&empty), None);
        if !cfg!(debug_assertions) {
            assert_eq!(tree.insert(&empty, 1), None);
            assert!(tree.is_empty());
        }
    }

    #[test]
    fn deep_topics_do_not_overflow_the_stack() {
        const DEPTH: usize = 20_000;
        let worker = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(|| {
                let deep = vec!["a"; DEPTH].join("/");
                let mut tree = RetainTree::new();
                tree.insert(&name(&deep), 1);
                tree.insert(&name("a"), 2);
                assert_eq!(matched(&tree, "#").len(), 2);
                assert_eq!(matched(&tree, &vec!["+"; DEPTH].join("/")).len(), 1);
                assert_eq!(tree.iter().count(), 2);
                assert_eq!(tree.get(&name(&deep)), Some(&1));
                tree.insert(&name(&format!("{deep}/b")), 3);
                tree.retain(|_, v| *v != 3);
                assert_eq!(tree.node_count(), DEPTH);
                assert_eq!(tree.remove(&name(&deep)), Some(1));
                assert_eq!(tree.node_count(), 1);
                tree.insert(&name(&deep), 1);
                // Dropping the tree drops the deep chain.
            })
            .unwrap();
        worker.join().unwrap();
    }

    /// Nodes below the root that have neither an entry nor children (pruning leaves none).
    fn dangling<V>(tree: &RetainTree<V>) -> usize {
        let mut count = 0;
        let mut stack: Vec<&Node<V>> = tree.root.children.iter().map(|(_, n)| n).collect();
        while let Some(node) = stack.pop() {
            if node.entry.is_none() && node.children.is_empty() {
                count += 1;
            }
            stack.extend(node.children.iter().map(|(_, n)| n));
        }
        count
    }

    fn topic_strategy() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(vec!["", "a", "b", "$a", "$"]), 1..4)
            .prop_filter_map("valid names only", |levels| {
                let topic = levels.join("/");
                TopicName::new(topic.as_str()).is_ok().then_some(topic)
            })
    }

    fn filter_strategy() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop::sample::select(vec!["", "a", "b", "$a", "$", "+", "#"]),
            1..5,
        )
        .prop_filter_map("valid filters only", |levels| {
            let mut out: Vec<&str> = Vec::new();
            for level in levels {
                out.push(level);
                if level == "#" {
                    break;
                }
            }
            let filter = out.join("/");
            TopicFilter::new(filter.as_str()).is_ok().then_some(filter)
        })
    }

    proptest! {
        #[test]
        fn agrees_with_a_naive_map(
            ops in prop::collection::vec((topic_strategy(), prop::option::of(0..100u32)), 0..40),
            filters in prop::collection::vec(filter_strategy(), 1..8),
            threshold in 0..100u32,
        ) {
            let mut tree = RetainTree::new();
            let mut model: BTreeMap<String, u32> = BTreeMap::new();
            for (topic, value) in ops {
                match value {
                    Some(v) => prop_assert_eq!(
                        tree.insert(&name(&topic), v),
                        model.insert(topic.clone(), v)
                    ),
                    None => prop_assert_eq!(tree.remove(&name(&topic)), model.remove(&topic)),
                }
            }
            prop_assert_eq!(tree.len(), model.len());
            prop_assert_eq!(dangling(&tree), 0);
            for (topic, v) in &model {
                prop_assert_eq!(tree.get(&name(topic)), Some(v));
            }
            let mut all: Vec<(String, u32)> =
                tree.iter().map(|(t, v)| (t.as_str().to_owned(), *v)).collect();
            all.sort();
            let want: Vec<(String, u32)> = model.iter().map(|(t, v)| (t.clone(), *v)).collect();
            prop_assert_eq!(all, want);
            let check = |tree: &RetainTree<u32>, model: &BTreeMap<String, u32>| {
                for filter in &filters {
                    let mut got = Vec::new();
                    tree.for_each_match(filter, |t, v| got.push((t.as_str().to_owned(), *v)));
                    got.sort();
                    let want: Vec<(String, u32)> = model
                        .iter()
                        .filter(|(t, _)| matches(filter, t))
                        .map(|(t, v)| (t.clone(), *v))
                        .collect();
                    if got != want {
                        return Err(format!("filter {filter:?}: got {got:?}, want {want:?}"));
                    }
                }
                Ok(())
            };
            prop_assert_eq!(check(&tree, &model), Ok(()));
            tree.retain(|_, v| *v < threshold);
            model.retain(|_, v| *v < threshold);
            prop_assert_eq!(tree.len(), model.len());
            prop_assert_eq!(dangling(&tree), 0);
            prop_assert_eq!(check(&tree, &model), Ok(()));
            tree.retain(|_, _| false);
            prop_assert_eq!((tree.len(), tree.node_count()), (0, 0));
        }
    }
}
