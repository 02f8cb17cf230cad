//! The subscription index: every session's subscriptions, keyed by topic filter, as a sharded
//! topic trie that PUBLISHes are routed through.
//!
//! # Why it looks like this
//!
//! A PUBLISH is routed on the publisher's own task (see `architecture.md`, "Concurrency"), so
//! many tasks match topics at once while subscribes and unsubscribes trickle in. The index is
//! therefore read-mostly and split into shards, each a [`parking_lot::RwLock`] over a trie:
//!
//! - a filter whose first level is literal (`sport/+`, `$SYS/#`, `a`) lives in the shard chosen
//!   by hashing that first level;
//! - a filter whose first level is `+` or `#` lives in one dedicated **wildcard shard**.
//!
//! A topic's first level is always literal, so a publish to `sport/tennis` can only match
//! filters in the shard of `sport` and in the wildcard shard: it takes those two read locks, one
//! after the other, and never looks at the other shards. A topic starting with `$` cannot match
//! a filter starting with a wildcard (`[MQTT-4.7.2-1]`), so such a publish skips the wildcard
//! shard altogether, and an empty shard is skipped without touching its lock. Subscribe and
//! unsubscribe take the write lock of the one shard that holds the filter. For shared
//! subscriptions only the inner filter counts: `$share/g/+/x` lives in the wildcard shard.
//!
//! Inside a shard, matching is a walk down the trie that follows, at each level, the topic's
//! literal level, the `+` child and the `#` child: it visits only the branches that can match,
//! never every filter.
//!
//! # Lock order
//!
//! Every method takes **at most one shard lock at a time** and releases it before taking the
//! next one, so the index cannot deadlock against itself. The `visit` callback of
//! [`SubscriptionIndex::for_each_match`] and the closure of
//! [`SubscriptionIndex::with_shared_group`] run **while a shard's read lock is held**: they must
//! be cheap (copy out an `Arc`, push to a `Vec`) and must not call back into the index: a
//! re-entrant read lock deadlocks as soon as a writer is queued on that shard, and a write
//! (subscribe, unsubscribe) deadlocks at once. Taking other locks inside the callback makes
//! that lock rank after every shard lock.
//!
//! # Memory
//!
//! The target is about 1 KB per idle connection with one subscription, so the trie is compact:
//! a node is 32 bytes (its children and an optional boxed payload), a node's children are a
//! `Vec` of `(level, node)` pairs grown one slot at a time up to eight children and a `HashMap`
//! only past that, and a node's subscribers are likewise a short `Vec` that becomes a `HashMap`
//! only when a filter has many subscribers. Levels are copied into `Box<str>` rather than kept
//! as slices of the SUBSCRIBE packet, so an index entry never pins a packet buffer.
//!
//! Walks, pruning and dropping are iterative, so a filter or topic with tens of thousands of
//! levels (65,535 bytes of `/` make 65,536 empty levels) cannot overflow a task's stack.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::num::NonZero;
use std::sync::atomic::{AtomicUsize, Ordering};

use midge_proto::topic::{TopicFilter, TopicName};
use parking_lot::RwLock;

use crate::small_map::SmallMap;

/// The single-level wildcard as a whole level.
const SINGLE_LEVEL: &str = "+";
/// The multi-level wildcard as a whole level.
const MULTI_LEVEL: &str = "#";
/// The fewest hashed shards [`SubscriptionIndex::new`] creates.
const MIN_DEFAULT_SHARDS: usize = 16;
/// The most hashed shards [`SubscriptionIndex::with_shards`] creates; more only costs memory.
const MAX_SHARDS: usize = 1024;

/// Subscriptions of all sessions, keyed by topic filter. `K` identifies a subscriber (e.g. a
/// session id), `V` is what the router needs to deliver (e.g. an `Arc` to the session's mailbox
/// plus the subscription options and identifier).
///
/// It is `Send + Sync` when `K` and `V` are, and meant to be shared (behind an `Arc`) by every
/// connection task. See the [module docs](self) for the sharding and the lock order.
pub struct SubscriptionIndex<K, V> {
    /// The shards of filters whose first level is literal, chosen by hashing that level. The
    /// length is a power of two, so the shard is the hash masked with `len - 1`.
    shards: Box<[Shard<K, V>]>,
    /// The shard of filters whose first level is `+` or `#`.
    wildcard: Shard<K, V>,
    /// Hashes first levels to shards. Seeded randomly per index, so clients cannot pick many
    /// distinct first levels that all land in one shard.
    hasher: RandomState,
    /// Total subscriptions, direct and shared, so `len` is O(1) and lock-free.
    len: AtomicUsize,
    /// Shared-subscription memberships (included in `len`).
    shared_len: AtomicUsize,
}

/// One shard: a trie behind its own lock. Aligned to 128 bytes so two shards' lock words never
/// share a cache line (or an adjacent-line prefetch pair): readers of different shards do not
/// slow each other down.
#[repr(align(128))]
struct Shard<K, V> {
    /// The root of this shard's trie; it stands for the empty prefix and has no level.
    root: RwLock<Node<K, V>>,
    /// Subscriptions stored in this shard, written under the write lock. A publish reads it
    /// first and skips an empty shard without touching the lock (a subscribe racing with that
    /// publish is then simply ordered after it).
    count: AtomicUsize,
}

impl<K, V> Shard<K, V> {
    fn new() -> Self {
        Shard {
            root: RwLock::new(Node::new()),
            count: AtomicUsize::new(0),
        }
    }
}

/// A trie node. The path from the root spells a filter, one level per edge; `+` and `#` are
/// ordinary edge labels (a topic level never is one, [`TopicName`] forbids them).
struct Node<K, V> {
    /// The next levels. A `#` child never has children of its own (`#` is always last).
    children: SmallMap<Box<str>, Node<K, V>>,
    /// The subscriptions to the filter this node spells; boxed so that the many nodes that
    /// only lead somewhere cost one pointer for it.
    subs: Option<Box<Subs<K, V>>>,
}

/// The subscriptions to one filter.
struct Subs<K, V> {
    /// Non-shared subscriptions by subscriber.
    direct: SmallMap<K, V>,
    /// One group per ShareName that has members on this filter; there are rarely more than a
    /// few, so a `Vec` searched by name.
    shared: Vec<SharedGroup<K, V>>,
}

impl<K, V> Subs<K, V> {
    fn is_empty(&self) -> bool {
        self.direct.is_empty() && self.shared.is_empty()
    }
}

/// What [`SubscriptionIndex::for_each_match`] hands to its visitor for one matching filter.
pub enum Match<'a, K, V> {
    /// A non-shared subscription of `key` whose filter matches. One subscriber can show up
    /// several times (once per overlapping filter); the broker dedupes.
    Direct {
        /// The subscriber.
        key: &'a K,
        /// What the subscriber stored with this subscription.
        value: &'a V,
    },
    /// A shared group whose filter matches: exactly one per matching group, whatever its
    /// number of members. Pick the member with [`SharedGroup::pick`].
    Shared(&'a SharedGroup<K, V>),
}

impl<K, V> Clone for Match<'_, K, V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K, V> Copy for Match<'_, K, V> {}

impl<K: fmt::Debug, V: fmt::Debug> fmt::Debug for Match<'_, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Match::Direct { key, value } => f
                .debug_struct("Direct")
                .field("key", key)
                .field("value", value)
                .finish(),
            Match::Shared(group) => f.debug_tuple("Shared").field(group).finish(),
        }
    }
}

/// Members of one `$share/{group}/{filter}` subscription. Messages go to one member at a time,
/// round-robin.
pub struct SharedGroup<K, V> {
    /// The ShareName.
    name: Box<str>,
    /// The inner filter that topics are matched against.
    filter: Box<str>,
    /// Members in the order they joined; round-robin walks this order. A re-subscribe replaces
    /// the value in place and keeps the position.
    members: Vec<(K, V)>,
    /// Where the next pick starts (taken modulo the member count). Atomic, so publishers that
    /// only hold the shard's read lock still take turns.
    cursor: AtomicUsize,
}

impl<K, V> SharedGroup<K, V> {
    fn new(name: &str, filter: &str) -> Self {
        SharedGroup {
            name: name.into(),
            filter: filter.into(),
            members: Vec::new(),
            cursor: AtomicUsize::new(0),
        }
    }

    /// The ShareName: `"g"` for `$share/g/a/+`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The inner filter that topics are matched against: `"a/+"` for `$share/g/a/+`.
    pub fn filter(&self) -> &str {
        &self.filter
    }

    /// The next member in round-robin order for which `eligible` returns true (the broker
    /// passes "is connected / has room"); if none is eligible, the next member regardless.
    /// `None` only if the group is empty.
    ///
    /// Lock-free: each call claims a turn from an atomic cursor, so concurrent publishers
    /// holding only the shard's read lock spread their messages over the members. A pick that
    /// skips ineligible members moves the cursor past the member it chose, so the skipped
    /// member's turn is not handed twice to the one after it.
    pub fn pick(&self, eligible: impl Fn(&K, &V) -> bool) -> Option<(&K, &V)> {
        self.pick_where(|_| true, eligible)
    }

    /// Like [`pick`](SharedGroup::pick) but never returns the member `exclude` (used to move an
    /// unacknowledged message from a member that left to another member). `None` if there is
    /// no other member.
    pub fn pick_other(&self, exclude: &K, eligible: impl Fn(&K, &V) -> bool) -> Option<(&K, &V)>
    where
        K: PartialEq,
    {
        self.pick_where(|k| k != exclude, eligible)
    }

    /// The members, in round-robin order.
    pub fn members(&self) -> impl Iterator<Item = (&K, &V)> {
        self.members.iter().map(|(k, v)| (k, v))
    }

    /// The number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the group has no members. A group in the index never is: removing its last
    /// member removes the group.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The round-robin pick among the members that pass `allowed`, preferring those that pass
    /// `eligible`.
    fn pick_where(
        &self,
        allowed: impl Fn(&K) -> bool,
        eligible: impl Fn(&K, &V) -> bool,
    ) -> Option<(&K, &V)> {
        let n = self.members.len();
        if n == 0 {
            return None;
        }
        // Claim a turn. Relaxed is enough: the cursor only spreads load, it guards no data.
        let ticket = self.cursor.fetch_add(1, Ordering::Relaxed);
        let start = ticket % n;
        let mut fallback = None;
        let mut chosen = None;
        for offset in 0..n {
            let idx = (start + offset) % n;
            let Some((k, v)) = self.members.get(idx) else {
                break;
            };
            if !allowed(k) {
                continue;
            }
            if eligible(k, v) {
                chosen = Some((offset, idx));
                break;
            }
            fallback.get_or_insert((offset, idx));
        }
        let (offset, idx) = chosen.or(fallback)?;
        if offset > 0 {
            // Skipped some members: the next turn belongs to the member after the chosen one.
            // If another publisher moved the cursor meanwhile, its turn stands and this is
            // skipped, which only makes the order slightly less strict under contention.
            let _ = self.cursor.compare_exchange(
                ticket.wrapping_add(1),
                ticket.wrapping_add(1 + offset),
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
        self.members.get(idx).map(|(k, v)| (k, v))
    }
}

impl<K: PartialEq, V> SharedGroup<K, V> {
    /// Adds or replaces `key`'s membership.
    fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.members.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => Some(std::mem::replace(v, value)),
            None => {
                push_small(&mut self.members, (key, value));
                None
            }
        }
    }

    /// Removes `key`'s membership, keeping the order of the others.
    fn remove(&mut self, key: &K) -> Option<V> {
        let pos = self.members.iter().position(|(k, _)| k == key)?;
        let (_, value) = self.members.remove(pos);
        if self.members.capacity() > 2 * self.members.len() + 4 {
            self.members.shrink_to_fit();
        }
        Some(value)
    }
}

impl<K, V> fmt::Debug for SharedGroup<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedGroup")
            .field("name", &self.name)
            .field("filter", &self.filter)
            .field("members", &self.members.len())
            .finish_non_exhaustive()
    }
}

impl<K, V> SubscriptionIndex<K, V> {
    /// An empty index with the default number of shards: the next power of two at or above
    /// twice the available parallelism, at least 16.
    pub fn new() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, NonZero::get);
        Self::with_shards(cores.saturating_mul(2).max(MIN_DEFAULT_SHARDS))
    }

    /// An empty index with `n` hashed shards, rounded up to a power of two and clamped to
    /// `1..=1024`, plus the wildcard shard.
    pub fn with_shards(n: usize) -> Self {
        let n = n.clamp(1, MAX_SHARDS).next_power_of_two();
        SubscriptionIndex {
            shards: (0..n).map(|_| Shard::new()).collect(),
            wildcard: Shard::new(),
            hasher: RandomState::new(),
            len: AtomicUsize::new(0),
            shared_len: AtomicUsize::new(0),
        }
    }

    /// The total number of subscriptions: direct ones plus shared-group memberships. O(1).
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// Whether there are no subscriptions.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of shared-subscription memberships (each also counted by
    /// [`len`](SubscriptionIndex::len)).
    pub fn shared_len(&self) -> usize {
        self.shared_len.load(Ordering::Relaxed)
    }

    /// The shard that holds filters whose first level is `first` (a literal level).
    fn hashed_shard(&self, first: &str) -> &Shard<K, V> {
        // `shards.len()` is a power of two, so masking keeps the index in range; the fallback
        // only keeps the code free of panics.
        let idx = (self.hasher.hash_one(first) as usize) & (self.shards.len() - 1);
        self.shards.get(idx).unwrap_or(&self.wildcard)
    }

    /// The shard that holds the (inner) filter `filter`.
    fn filter_shard(&self, filter: &str) -> &Shard<K, V> {
        match first_level(filter) {
            SINGLE_LEVEL | MULTI_LEVEL => &self.wildcard,
            first => self.hashed_shard(first),
        }
    }

    /// Counts the non-root nodes of every shard, to check that removal prunes.
    #[cfg(test)]
    fn node_count(&self) -> usize {
        self.shards
            .iter()
            .chain(std::iter::once(&self.wildcard))
            .map(|shard| shard.root.read().count_descendants())
            .sum()
    }
}

impl<K: Eq + Hash, V> SubscriptionIndex<K, V> {
    /// Adds `key`'s subscription to `filter`, replacing (and returning) the value of an
    /// existing subscription of the same key to the same filter (`[MQTT-3.8.4-3]`: a repeated
    /// subscribe replaces). A shared filter `$share/g/f` is stored as member `key` of group `g`
    /// on filter `f`; the same key may subscribe to `f` directly and via several groups, each
    /// is a separate subscription.
    pub fn insert(&self, filter: &TopicFilter, key: K, value: V) -> Option<V> {
        let inner = filter.filter();
        let shard = self.filter_shard(inner);
        let mut root = shard.root.write();
        let mut node = &mut *root;
        for level in inner.split('/') {
            node = node
                .children
                .get_or_insert_with(level, || (Box::from(level), Node::new()));
        }
        let subs = node.subs.get_or_insert_with(|| {
            Box::new(Subs {
                direct: SmallMap::new(),
                shared: Vec::new(),
            })
        });
        let replaced = match filter.share_name() {
            None => subs.direct.insert(key, value),
            Some(name) => match subs.shared.iter_mut().find(|g| *g.name == *name) {
                Some(group) => group.insert(key, value),
                None => {
                    let mut group = SharedGroup::new(name, inner);
                    group.insert(key, value);
                    push_small(&mut subs.shared, group);
                    None
                }
            },
        };
        if replaced.is_none() {
            shard.count.fetch_add(1, Ordering::Relaxed);
            self.len.fetch_add(1, Ordering::Relaxed);
            if filter.is_shared() {
                self.shared_len.fetch_add(1, Ordering::Relaxed);
            }
        }
        replaced
    }

    /// Removes `key`'s subscription to exactly this filter (shared or not) and returns its
    /// value. Removing a shared group's last member removes the group; trie nodes left without
    /// subscriptions or children are pruned.
    pub fn remove(&self, filter: &TopicFilter, key: &K) -> Option<V> {
        let inner = filter.filter();
        let shard = self.filter_shard(inner);
        let mut root = shard.root.write();
        let mut node = &mut *root;
        for level in inner.split('/') {
            node = node.children.get_mut(level)?;
        }
        let subs = node.subs.as_mut()?;
        let removed = match filter.share_name() {
            None => subs.direct.remove(key)?,
            Some(name) => {
                let (idx, group) =
                    (subs.shared.iter_mut().enumerate()).find(|(_, g)| *g.name == *name)?;
                let removed = group.remove(key)?;
                if group.is_empty() {
                    subs.shared.swap_remove(idx);
                }
                removed
            }
        };
        if subs.is_empty() {
            node.subs = None;
            if node.children.is_empty() {
                prune(&mut root, inner);
            }
        }
        shard.count.fetch_sub(1, Ordering::Relaxed);
        self.len.fetch_sub(1, Ordering::Relaxed);
        if filter.is_shared() {
            self.shared_len.fetch_sub(1, Ordering::Relaxed);
        }
        Some(removed)
    }

    /// Visits every subscription whose filter matches `topic` (§4.7: `#` also matches the
    /// parent level, `+` matches one possibly empty level, and filters starting with `+` or `#`
    /// do not match topics starting with `$`, `[MQTT-4.7.2-1]`). Non-shared subscriptions are
    /// visited as [`Match::Direct`], once per matching filter; every matching shared group is
    /// visited exactly once as [`Match::Shared`]. The order is unspecified. The
    /// [alias placeholder](TopicName::empty_for_alias) matches nothing.
    ///
    /// `visit` runs under a shard's read lock: keep it cheap (copy `Arc`s out) and do not call
    /// back into the index (see the [module docs](self)).
    pub fn for_each_match(&self, topic: &TopicName, mut visit: impl FnMut(Match<'_, K, V>)) {
        if topic.is_empty() {
            return;
        }
        let name = topic.as_str();
        let system = topic.is_system();
        let shard = self.hashed_shard(first_level(name));
        if shard.count.load(Ordering::Relaxed) > 0 {
            let root = shard.root.read();
            walk(&root, name, system, &mut visit);
        }
        // [MQTT-4.7.2-1]: nothing in the wildcard shard can match a `$` topic. The first guard
        // is dropped above: at most one shard lock at a time.
        if !system && self.wildcard.count.load(Ordering::Relaxed) > 0 {
            let root = self.wildcard.root.read();
            walk(&root, name, system, &mut visit);
        }
    }

    /// Finds the shared group `group` on the inner filter `filter` (as returned by
    /// [`SharedGroup::name`] and [`SharedGroup::filter`]) and runs `f` on it, under the shard's
    /// read lock. Used to hand an unacknowledged message of a departed member to another one.
    /// `None` if no such group exists.
    pub fn with_shared_group<R>(
        &self,
        group: &str,
        filter: &str,
        f: impl FnOnce(&SharedGroup<K, V>) -> R,
    ) -> Option<R> {
        let shard = self.filter_shard(filter);
        let root = shard.root.read();
        let mut node = &*root;
        for level in filter.split('/') {
            node = node.children.get(level)?;
        }
        let subs = node.subs.as_ref()?;
        let found = subs.shared.iter().find(|g| *g.name == *group)?;
        Some(f(found))
    }
}

impl<K, V> Default for SubscriptionIndex<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K, V> fmt::Debug for SubscriptionIndex<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubscriptionIndex")
            .field("len", &self.len())
            .field("shared_len", &self.shared_len())
            .field("shards", &self.shards.len())
            .finish_non_exhaustive()
    }
}

/// Pushes onto a `Vec` that is usually tiny: the first few slots are allocated one at a time
/// (a plain `push` would reserve four), then capacity doubles as usual.
fn push_small<T>(v: &mut Vec<T>, item: T) {
    if v.len() < 4 {
        v.reserve_exact(1);
    }
    v.push(item);
}

/// The first level of a topic or filter: everything before the first `/`.
fn first_level(s: &str) -> &str {
    s.split_once('/').map_or(s, |(first, _)| first)
}

/// Splits the next level off `rest`: `"a/b"` gives `("a", Some("b"))`, `"a"` gives
/// `("a", None)`, `"a/"` gives `("a", Some(""))`.
fn split_level(rest: &str) -> (&str, Option<&str>) {
    match rest.split_once('/') {
        Some((level, more)) => (level, Some(more)),
        None => (rest, None),
    }
}

/// Visits the subscriptions of every filter under `root` that matches the (non-empty) topic
/// `topic`; `system` says whether the topic starts with `$`.
///
/// Iterative: the literal path is followed in a loop and only `+` branches go on a stack,
/// which is allocated only if the trie has a `+` on the way.
fn walk<'a, K, V>(
    root: &'a Node<K, V>,
    topic: &str,
    system: bool,
    visit: &mut impl FnMut(Match<'a, K, V>),
) {
    // Pending branches: a node and the topic levels it has yet to consume (`None`: all).
    let mut pending: Vec<(&'a Node<K, V>, Option<&str>)> = Vec::new();
    let mut next = Some((root, Some(topic)));
    let mut at_root = true;
    while let Some((node, rest)) = next.take().or_else(|| pending.pop()) {
        // [MQTT-4.7.2-1]: a filter starting with a wildcard does not match a `$` topic.
        let wildcards = !(at_root && system);
        at_root = false;
        match rest {
            None => {
                // The whole topic is consumed: the filter spelled by this node matches, and
                // so does the same filter followed by `/#` (`#` matches the parent level).
                visit_subs(node, visit);
                if let Some(multi) = node.children.get(MULTI_LEVEL) {
                    visit_subs(multi, visit);
                }
            }
            Some(rest) => {
                let (level, more) = split_level(rest);
                if wildcards {
                    if let Some(multi) = node.children.get(MULTI_LEVEL) {
                        visit_subs(multi, visit);
                    }
                    if let Some(single) = node.children.get(SINGLE_LEVEL) {
                        pending.push((single, more));
                    }
                }
                // A topic level is never `+` or `#`, so this finds only literal children.
                if let Some(child) = node.children.get(level) {
                    next = Some((child, more));
                }
            }
        }
    }
}

/// Visits the subscriptions stored at `node`.
fn visit_subs<'a, K, V>(node: &'a Node<K, V>, visit: &mut impl FnMut(Match<'a, K, V>)) {
    let Some(subs) = node.subs.as_deref() else {
        return;
    };
    for (key, value) in subs.direct.iter() {
        visit(Match::Direct { key, value });
    }
    for group in &subs.shared {
        visit(Match::Shared(group));
    }
}

/// Removes the node that `path` spells if it has neither subscriptions nor children, together
/// with every ancestor that only existed to lead to it. Does nothing if the node does not
/// exist or is still needed.
fn prune<K, V>(root: &mut Node<K, V>, path: &str) {
    // The deepest node on the path that stays (the root, or one with subscriptions or with
    // another child); the chain below it goes. `cut` is its depth, which is also the index of
    // the level naming the child to remove from it.
    let mut cut = 0;
    let mut node = &*root;
    for (depth, level) in path.split('/').enumerate() {
        if node.subs.is_some() || node.children.len() > 1 {
            cut = depth;
        }
        match node.children.get(level) {
            Some(child) => node = child,
            None => return,
        }
    }
    if node.subs.is_some() || !node.children.is_empty() {
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

impl<K, V> Node<K, V> {
    fn new() -> Self {
        Node {
            children: SmallMap::new(),
            subs: None,
        }
    }

    /// The number of nodes below this one.
    #[cfg(test)]
    fn count_descendants(&self) -> usize {
        let mut count = 0;
        let mut stack: Vec<&Node<K, V>> = self.children.iter().map(|(_, n)| n).collect();
        while let Some(node) = stack.pop() {
            count += 1;
            stack.extend(node.children.iter().map(|(_, n)| n));
        }
        count
    }
}

/// Drops the subtree iteratively: the derived drop would recurse once per level, and a filter
/// may have up to 65,536 levels.
impl<K, V> Drop for Node<K, V> {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::BTreeMap;
    use std::sync::Arc;
    use std::sync::mpsc;
    use std::time::Duration;

    use midge_proto::topic::matches;
    use proptest::prelude::*;

    use super::*;

    fn filter(s: &str) -> TopicFilter {
        TopicFilter::new(s).unwrap()
    }

    fn name(s: &str) -> TopicName {
        TopicName::new(s).unwrap()
    }

    /// An index whose values are the full filter text, so that visits can be flattened.
    type Index = SubscriptionIndex<u32, String>;

    fn subscribe(index: &Index, f: &str, key: u32) -> Option<String> {
        index.insert(&filter(f), key, f.to_owned())
    }

    fn unsubscribe(index: &Index, f: &str, key: u32) -> Option<String> {
        index.remove(&filter(f), &key)
    }

    /// The matches for `topic` as sorted `(label, key)` pairs, a shared group contributing all
    /// its members (so a group visited twice shows up as duplicates).
    fn flatten<V>(
        index: &SubscriptionIndex<u32, V>,
        topic: &str,
        label: impl Fn(&V) -> String,
    ) -> Vec<(String, u32)> {
        let mut out = Vec::new();
        index.for_each_match(&name(topic), |m| match m {
            Match::Direct { key, value } => out.push((label(value), *key)),
            Match::Shared(group) => {
                for (key, value) in group.members() {
                    out.push((label(value), *key));
                }
            }
        });
        out.sort();
        out
    }

    fn matched(index: &Index, topic: &str) -> Vec<(String, u32)> {
        flatten(index, topic, String::clone)
    }

    /// `(filter, key)` pairs, sorted, for comparing with [`matched`].
    fn pairs(expected: &[(&str, u32)]) -> Vec<(String, u32)> {
        let mut out: Vec<(String, u32)> = expected
            .iter()
            .map(|(f, k)| ((*f).to_owned(), *k))
            .collect();
        out.sort();
        out
    }

    #[test]
    fn insert_replaces_and_remove_returns_the_value() {
        let index = SubscriptionIndex::<u32, &str>::with_shards(4);
        assert!(index.is_empty());
        assert_eq!(index.insert(&filter("a/b"), 1, "v1"), None);
        assert_eq!(index.len(), 1);
        // [MQTT-3.8.4-3]: a repeated subscribe replaces the subscription.
        assert_eq!(index.insert(&filter("a/b"), 1, "v2"), Some("v1"));
        assert_eq!(index.len(), 1);
        assert_eq!(index.insert(&filter("a/b"), 2, "w"), None);
        assert_eq!(index.insert(&filter("$share/g/a/b"), 1, "g1"), None);
        assert_eq!(index.insert(&filter("$share/h/a/b"), 1, "h1"), None);
        assert_eq!(index.insert(&filter("$share/g/a/b"), 1, "g2"), Some("g1"));
        assert_eq!((index.len(), index.shared_len()), (4, 2));
        assert!(!index.is_empty());

        let mut direct = Vec::new();
        let mut groups = Vec::new();
        index.for_each_match(&name("a/b"), |m| match m {
            Match::Direct { key, value } => direct.push((*key, *value)),
            Match::Shared(g) => groups.push((g.name().to_owned(), g.members().count())),
        });
        direct.sort();
        groups.sort();
        assert_eq!(direct, [(1, "v2"), (2, "w")]);
        assert_eq!(groups, [("g".to_owned(), 1), ("h".to_owned(), 1)]);

        // Removing what is not there changes nothing.
        assert_eq!(index.remove(&filter("a/b"), &3), None);
        assert_eq!(index.remove(&filter("a/c"), &1), None);
        assert_eq!(index.remove(&filter("a"), &1), None);
        assert_eq!(index.remove(&filter("a/b/c"), &1), None);
        assert_eq!(index.remove(&filter("$share/z/a/b"), &1), None);
        assert_eq!(index.remove(&filter("$share/g/a/b"), &2), None);
        assert_eq!((index.len(), index.shared_len()), (4, 2));

        assert_eq!(index.remove(&filter("a/b"), &1), Some("v2"));
        assert_eq!(index.remove(&filter("a/b"), &1), None);
        assert_eq!((index.len(), index.shared_len()), (3, 2));
        assert_eq!(index.remove(&filter("$share/g/a/b"), &1), Some("g2"));
        assert_eq!((index.len(), index.shared_len()), (2, 1));
        assert_eq!(index.remove(&filter("$share/h/a/b"), &1), Some("h1"));
        assert_eq!(index.remove(&filter("a/b"), &2), Some("w"));
        assert_eq!((index.len(), index.shared_len()), (0, 0));
        assert!(index.is_empty());
        assert_eq!(index.node_count(), 0);
    }

    #[test]
    fn one_key_direct_and_in_several_groups_are_separate_subscriptions() {
        let index = Index::with_shards(2);
        subscribe(&index, "s/+", 1);
        subscribe(&index, "$share/g/s/+", 1);
        subscribe(&index, "$share/h/s/+", 1);
        assert_eq!((index.len(), index.shared_len()), (3, 2));
        assert_eq!(
            matched(&index, "s/x"),
            pairs(&[("$share/g/s/+", 1), ("$share/h/s/+", 1), ("s/+", 1)])
        );
        assert_eq!(
            unsubscribe(&index, "$share/g/s/+", 1).as_deref(),
            Some("$share/g/s/+")
        );
        assert_eq!(
            matched(&index, "s/x"),
            pairs(&[("$share/h/s/+", 1), ("s/+", 1)])
        );
    }

    /// §4.7.1.2, §4.7.1.3 and §4.7.2 examples, each through an index holding that one filter
    /// (directly and shared).
    #[test]
    fn spec_matching_examples() {
        let cases: &[(&str, &str, bool)] = &[
            ("sport/tennis/player1/#", "sport/tennis/player1", true),
            (
                "sport/tennis/player1/#",
                "sport/tennis/player1/ranking",
                true,
            ),
            (
                "sport/tennis/player1/#",
                "sport/tennis/player1/score/wimbledon",
                true,
            ),
            ("sport/tennis/player1/#", "sport/tennis/player1/", true),
            ("sport/tennis/player1/#", "sport/tennis/player2", false),
            ("sport/tennis/player1/#", "sport/tennis", false),
            ("sport/#", "sport", true),
            ("sport/#", "sport/", true),
            ("sport/#", "sports", false),
            ("#", "sport/tennis", true),
            ("#", "/", true),
            ("#", "a", true),
            ("sport/tennis/+", "sport/tennis/player1", true),
            ("sport/tennis/+", "sport/tennis/player1/ranking", false),
            ("sport/+", "sport", false),
            ("sport/+", "sport/", true),
            ("+", "finance", true),
            ("+/+", "/finance", true),
            ("/+", "/finance", true),
            ("+", "/finance", false),
            ("+/tennis/#", "sport/tennis/player1/ranking", true),
            ("+/tennis/#", "sport/tennis", true),
            ("sport/+/player1", "sport/tennis/player1", true),
            ("sport/+/player1", "sport/tennis/player2", false),
            ("+/+/+", "a/b", false),
            ("+/#", "a", true),
            ("+/#", "a/b/c", true),
            ("#", "$SYS/x", false),
            ("#", "$SYS", false),
            ("+", "$SYS", false),
            ("+/x", "$SYS/x", false),
            ("$SYS/#", "$SYS/x", true),
            ("$SYS/#", "$SYS", true),
            ("$SYS/monitor/+", "$SYS/monitor/Clients", true),
            ("+/monitor/Clients", "$SYS/monitor/Clients", false),
            ("/+", "/$SYS", true),
            ("a/+", "a/$b", true),
            ("a/b", "a/b", true),
            ("a/b", "a/b/", false),
            ("a/b", "A/b", false),
            ("a//b", "a//b", true),
            ("a/+/b", "a//b", true),
            ("/", "/", true),
            ("+/+", "/", true),
            ("$share/g/a", "$share/g/a", false),
            ("$share", "$share", true),
        ];
        for &(f, topic, expected) in cases {
            let index = Index::with_shards(4);
            subscribe(&index, f, 1);
            let shared = format!("$share/grp/{}", filter(f).filter());
            subscribe(&index, &shared, 2);
            let inner = filter(f).filter().to_owned();
            let want = if expected {
                pairs(&[(f, 1), (&shared, 2)])
            } else {
                Vec::new()
            };
            assert_eq!(matched(&index, topic), want, "filter {f:?} topic {topic:?}");
            assert_eq!(
                matches(&inner, topic),
                expected,
                "reference for {f:?} {topic:?}"
            );
        }
    }

    #[test]
    fn dollar_topics_are_not_matched_by_leading_wildcards() {
        let index = Index::new();
        for f in [
            "#",
            "+",
            "+/x",
            "+/#",
            "+/monitor/Clients",
            "$SYS/#",
            "$SYS/+",
            "$SYS/monitor/+",
            "$share/g/#",
            "$share/g/$SYS/#",
            "a/+",
            "a/#",
        ] {
            subscribe(&index, f, 1);
        }
        assert_eq!(
            matched(&index, "$SYS/monitor/Clients"),
            pairs(&[("$SYS/#", 1), ("$SYS/monitor/+", 1), ("$share/g/$SYS/#", 1)])
        );
        assert_eq!(
            matched(&index, "$SYS"),
            pairs(&[("$SYS/#", 1), ("$share/g/$SYS/#", 1)])
        );
        assert_eq!(
            matched(&index, "$SYS/x"),
            pairs(&[("$SYS/#", 1), ("$SYS/+", 1), ("$share/g/$SYS/#", 1)])
        );
        // `$` deeper in the topic is an ordinary character.
        assert_eq!(
            matched(&index, "a/$b"),
            pairs(&[
                ("#", 1),
                ("$share/g/#", 1),
                ("+/#", 1),
                ("a/#", 1),
                ("a/+", 1)
            ])
        );
    }

    #[test]
    fn multi_level_wildcard_matches_the_parent_level() {
        let index = Index::with_shards(1);
        subscribe(&index, "a/#", 1);
        subscribe(&index, "+/#", 2);
        subscribe(&index, "a/+/#", 3);
        assert_eq!(matched(&index, "a"), pairs(&[("+/#", 2), ("a/#", 1)]));
        assert_eq!(
            matched(&index, "a/"),
            pairs(&[("+/#", 2), ("a/#", 1), ("a/+/#", 3)])
        );
        assert_eq!(
            matched(&index, "a/b/c"),
            pairs(&[("+/#", 2), ("a/#", 1), ("a/+/#", 3)])
        );
        assert_eq!(matched(&index, "ab"), pairs(&[("+/#", 2)]));
    }

    #[test]
    fn overlapping_subscriptions_of_one_key_are_each_visited() {
        let index = Index::with_shards(4);
        let filters = [
            "a/b",
            "a/+",
            "+/b",
            "#",
            "a/#",
            "a/b/#",
            "+/+",
            "$share/g/a/b",
        ];
        for f in filters {
            subscribe(&index, f, 7);
        }
        subscribe(&index, "a/c", 7);
        let mut direct = 0;
        let mut shared = 0;
        index.for_each_match(&name("a/b"), |m| match m {
            Match::Direct { key, .. } => {
                assert_eq!(*key, 7);
                direct += 1;
            }
            Match::Shared(_) => shared += 1,
        });
        assert_eq!((direct, shared), (7, 1));
    }

    #[test]
    fn the_alias_placeholder_matches_nothing() {
        let index = Index::with_shards(1);
        subscribe(&index, "#", 1);
        subscribe(&index, "+", 1);
        let mut visits = 0;
        index.for_each_match(&TopicName::empty_for_alias(), |_| visits += 1);
        assert_eq!(visits, 0);
    }

    #[test]
    fn shared_group_is_visited_once_and_picks_round_robin() {
        let index = Index::with_shards(4);
        for key in [1, 2, 3] {
            subscribe(&index, "$share/g/s/+", key);
        }
        let mut counts = BTreeMap::new();
        let mut visits = 0;
        index.for_each_match(&name("s/x"), |m| {
            let Match::Shared(group) = m else {
                panic!("unexpected {m:?}");
            };
            visits += 1;
            assert_eq!((group.name(), group.filter(), group.len()), ("g", "s/+", 3));
            for _ in 0..300 {
                let (key, _) = group.pick(|_, _| true).unwrap();
                *counts.entry(*key).or_insert(0) += 1;
            }
        });
        assert_eq!(visits, 1);
        assert_eq!(counts, BTreeMap::from([(1, 100), (2, 100), (3, 100)]));

        // Strict alternation, in join order.
        let order: Vec<u32> = index
            .with_shared_group("g", "s/+", |group| {
                (0..6)
                    .map(|_| *group.pick(|_, _| true).unwrap().0)
                    .collect()
            })
            .unwrap();
        let first = order[0];
        let expected: Vec<u32> = (0..6).map(|i| (first - 1 + i) % 3 + 1).collect();
        assert_eq!(order, expected);
    }

    #[test]
    fn pick_skips_ineligible_members_fairly() {
        let index = Index::with_shards(1);
        for key in [1, 2, 3] {
            subscribe(&index, "$share/g/s", key);
        }
        let counts = index
            .with_shared_group("g", "s", |group| {
                let mut counts = BTreeMap::new();
                for _ in 0..300 {
                    let (key, _) = group.pick(|key, _| *key != 2).unwrap();
                    *counts.entry(*key).or_insert(0) += 1;
                }
                counts
            })
            .unwrap();
        // Member 2's turns are not all handed to member 3.
        assert_eq!(counts, BTreeMap::from([(1, 150), (3, 150)]));

        // With nobody eligible, members still take turns.
        let picks: Vec<u32> = index
            .with_shared_group("g", "s", |group| {
                (0..3)
                    .map(|_| *group.pick(|_, _| false).unwrap().0)
                    .collect()
            })
            .unwrap();
        let mut sorted = picks.clone();
        sorted.sort();
        assert_eq!(sorted, [1, 2, 3], "picks {picks:?}");

        assert_eq!(
            SharedGroup::<u32, ()>::new("g", "s").pick(|_, _| true),
            None
        );
    }

    #[test]
    fn pick_other_never_returns_the_excluded_member() {
        let index = Index::with_shards(1);
        for key in [1, 2, 3] {
            subscribe(&index, "$share/g/s", key);
        }
        let counts = index
            .with_shared_group("g", "s", |group| {
                let mut counts = BTreeMap::new();
                for _ in 0..300 {
                    let (key, _) = group.pick_other(&2, |_, _| true).unwrap();
                    *counts.entry(*key).or_insert(0) += 1;
                }
                counts
            })
            .unwrap();
        assert_eq!(counts, BTreeMap::from([(1, 150), (3, 150)]));
        // Eligibility still counts; without an eligible one, any other member.
        index.with_shared_group("g", "s", |group| {
            for _ in 0..5 {
                assert_eq!(group.pick_other(&2, |key, _| *key == 3).unwrap().0, &3);
                assert_ne!(group.pick_other(&2, |_, _| false).unwrap().0, &2);
            }
        });

        unsubscribe(&index, "$share/g/s", 1);
        unsubscribe(&index, "$share/g/s", 3);
        let alone = index.with_shared_group("g", "s", |group| {
            group.pick_other(&2, |_, _| true).map(|(k, _)| *k)
        });
        assert_eq!(alone, Some(None));
        let any = index.with_shared_group("g", "s", |group| {
            group.pick_other(&9, |_, _| true).map(|(k, _)| *k)
        });
        assert_eq!(any, Some(Some(2)));
    }

    #[test]
    fn removing_the_last_member_removes_the_group() {
        let index = Index::with_shards(2);
        subscribe(&index, "$share/g/a/#", 1);
        subscribe(&index, "$share/g/a/#", 2);
        assert_eq!(
            index.with_shared_group("g", "a/#", SharedGroup::len),
            Some(2)
        );
        assert_eq!(index.with_shared_group("h", "a/#", SharedGroup::len), None);
        assert_eq!(index.with_shared_group("g", "a/+", SharedGroup::len), None);
        unsubscribe(&index, "$share/g/a/#", 1);
        assert_eq!(
            index.with_shared_group("g", "a/#", SharedGroup::len),
            Some(1)
        );
        unsubscribe(&index, "$share/g/a/#", 2);
        assert_eq!(index.with_shared_group("g", "a/#", SharedGroup::len), None);
        assert_eq!(matched(&index, "a/b"), []);
        assert_eq!(
            (index.len(), index.shared_len(), index.node_count()),
            (0, 0, 0)
        );
    }

    #[test]
    fn removal_prunes_exactly_the_empty_nodes() {
        let index = Index::with_shards(4);
        for f in ["a/b/c", "a/b/d", "a/x", "+/y", "#"] {
            subscribe(&index, f, 1);
        }
        // a, b, c, d, x, +, y, #
        assert_eq!(index.node_count(), 8);
        unsubscribe(&index, "a/b/c", 1);
        assert_eq!(index.node_count(), 7);
        unsubscribe(&index, "a/b/d", 1);
        assert_eq!(index.node_count(), 5);
        // A missing subscription neither creates nor removes nodes.
        unsubscribe(&index, "a/b/d", 1);
        unsubscribe(&index, "a/q/r", 1);
        assert_eq!(index.node_count(), 5);
        unsubscribe(&index, "a/x", 1);
        assert_eq!(index.node_count(), 3);

        // A node that still has subscriptions (or another subscriber) stays.
        subscribe(&index, "p", 1);
        subscribe(&index, "p/q/r", 1);
        subscribe(&index, "p/q/r", 2);
        unsubscribe(&index, "p/q/r", 1);
        assert_eq!(index.node_count(), 6);
        unsubscribe(&index, "p/q/r", 2);
        assert_eq!(index.node_count(), 4);
        assert_eq!(matched(&index, "p"), pairs(&[("#", 1), ("p", 1)]));
        for f in ["p", "+/y", "#"] {
            unsubscribe(&index, f, 1);
        }
        assert_eq!((index.node_count(), index.len()), (0, 0));
    }

    #[test]
    fn many_children_and_many_subscribers_switch_representation_and_back() {
        let index = Index::with_shards(1);
        for i in 0..40 {
            subscribe(&index, &format!("a/{i}"), 1);
            subscribe(&index, "a/broadcast", i);
        }
        assert_eq!(index.len(), 80);
        assert_eq!(matched(&index, "a/17"), pairs(&[("a/17", 1)]));
        assert_eq!(matched(&index, "a/broadcast").len(), 40);
        for i in 0..38 {
            assert!(unsubscribe(&index, &format!("a/{i}"), 1).is_some());
            assert!(unsubscribe(&index, "a/broadcast", i).is_some());
        }
        assert_eq!(matched(&index, "a/38"), pairs(&[("a/38", 1)]));
        assert_eq!(
            matched(&index, "a/broadcast"),
            pairs(&[("a/broadcast", 38), ("a/broadcast", 39)])
        );
        assert_eq!(index.node_count(), 4);
    }

    #[test]
    fn shard_counts_are_powers_of_two() {
        assert!(Index::new().shards.len() >= MIN_DEFAULT_SHARDS);
        assert!(Index::default().shards.len().is_power_of_two());
        assert_eq!(Index::with_shards(0).shards.len(), 1);
        assert_eq!(Index::with_shards(5).shards.len(), 8);
        assert_eq!(Index::with_shards(usize::MAX).shards.len(), MAX_SHARDS);
        // One shard or many, the same answers.
        for shards in [1, 2, 64] {
            let index = Index::with_shards(shards);
            for f in ["a/b", "b/a", "+/a", "#", "c"] {
                subscribe(&index, f, 1);
            }
            assert_eq!(
                matched(&index, "b/a"),
                pairs(&[("#", 1), ("+/a", 1), ("b/a", 1)])
            );
        }
    }

    #[test]
    fn index_and_nodes_stay_small() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<SubscriptionIndex<u64, Arc<String>>>();
        send_sync::<SharedGroup<u64, Arc<String>>>();
        if cfg!(target_pointer_width = "64") {
            assert_eq!(size_of::<SmallMap<Box<str>, u64>>(), 24);
            assert_eq!(size_of::<Node<u64, u64>>(), 32);
        }
    }

    #[test]
    fn deep_filters_do_not_overflow_the_stack() {
        const DEPTH: usize = 20_000;
        let worker = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(|| {
                let literal = vec!["a"; DEPTH].join("/");
                let plus = vec!["+"; DEPTH].join("/");
                let multi = format!("{}/#", vec!["a"; DEPTH - 1].join("/"));
                let index = Index::with_shards(2);
                for f in [&literal, &plus, &multi] {
                    subscribe(&index, f, 1);
                }
                assert_eq!(matched(&index, &literal).len(), 3);
                // `multi` shares all but its `#` with `literal`.
                assert_eq!(index.node_count(), 2 * DEPTH + 1);
                unsubscribe(&index, &plus, 1);
                assert_eq!(index.node_count(), DEPTH + 1);
                // Dropping the index drops the remaining deep chain.
            })
            .unwrap();
        worker.join().unwrap();
    }

    /// Nodes, in any shard, that have neither subscriptions nor children (pruning leaves none).
    fn dangling<V>(index: &SubscriptionIndex<u32, V>) -> usize {
        let mut count = 0;
        for shard in index.shards.iter().chain([&index.wildcard]) {
            let root = shard.root.read();
            let mut stack: Vec<&Node<u32, V>> = root.children.iter().map(|(_, n)| n).collect();
            while let Some(node) = stack.pop() {
                if node.subs.is_none() && node.children.is_empty() {
                    count += 1;
                }
                if node.subs.as_ref().is_some_and(|s| s.is_empty()) {
                    count += 1;
                }
                stack.extend(node.children.iter().map(|(_, n)| n));
            }
        }
        count
    }

    /// Builds a valid filter from levels, cutting it after the first `#`.
    fn filter_from_levels(levels: Vec<&'static str>) -> String {
        let mut out: Vec<&str> = Vec::new();
        for level in levels {
            out.push(level);
            if level == "#" {
                break;
            }
        }
        out.join("/")
    }

    fn filter_strategy() -> impl Strategy<Value = String> {
        (
            prop::option::of(prop::sample::select(vec!["g", "h"])),
            prop::collection::vec(
                prop::sample::select(vec!["", "a", "b", "$a", "+", "#"]),
                1..4,
            ),
        )
            .prop_filter_map("valid filters only", |(share, levels)| {
                let inner = filter_from_levels(levels);
                let full = match share {
                    Some(group) => format!("$share/{group}/{inner}"),
                    None => inner,
                };
                TopicFilter::new(full.as_str()).is_ok().then_some(full)
            })
    }

    fn topic_strategy() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(vec!["", "a", "b", "$a", "$"]), 1..4)
            .prop_filter_map("valid names only", |levels| {
                let topic = levels.join("/");
                TopicName::new(topic.as_str()).is_ok().then_some(topic)
            })
    }

    #[derive(Debug, Clone)]
    enum Op {
        Subscribe(String, u32),
        Unsubscribe(String, u32),
    }

    fn op_strategy() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (filter_strategy(), 0..3u32).prop_map(|(f, k)| Op::Subscribe(f, k)),
            2 => (filter_strategy(), 0..3u32).prop_map(|(f, k)| Op::Unsubscribe(f, k)),
        ]
    }

    proptest! {
        #[test]
        fn matches_agree_with_a_naive_scan(
            ops in prop::collection::vec(op_strategy(), 0..40),
            topics in prop::collection::vec(topic_strategy(), 1..8),
            shards in 1usize..5,
        ) {
            // Values carry the full filter and a serial, so replaced values can be told apart.
            let index: SubscriptionIndex<u32, (String, u64)> = SubscriptionIndex::with_shards(shards);
            let mut model: BTreeMap<(String, u32), u64> = BTreeMap::new();
            for (serial, op) in (0u64..).zip(ops) {
                match op {
                    Op::Subscribe(f, key) => {
                        let old = index.insert(&filter(&f), key, (f.clone(), serial));
                        let old_model = model.insert((f.clone(), key), serial);
                        prop_assert_eq!(old, old_model.map(|s| (f, s)));
                    }
                    Op::Unsubscribe(f, key) => {
                        let old = index.remove(&filter(&f), &key);
                        let old_model = model.remove(&(f.clone(), key));
                        prop_assert_eq!(old, old_model.map(|s| (f, s)));
                    }
                }
            }
            let shared = model.keys().filter(|(f, _)| f.starts_with("$share/")).count();
            prop_assert_eq!(index.len(), model.len());
            prop_assert_eq!(index.shared_len(), shared);
            prop_assert_eq!(dangling(&index), 0);
            for topic in &topics {
                let got = flatten(&index, topic, |(f, s)| format!("{f} #{s}"));
                let mut want: Vec<(String, u32)> = model
                    .iter()
                    .filter(|((f, _), _)| matches(filter(f).filter(), topic))
                    .map(|((f, key), s)| (format!("{f} #{s}"), *key))
                    .collect();
                want.sort();
                prop_assert_eq!(got, want, "topic {:?}", topic);
                // A shared visit describes its own group.
                let mut ok = true;
                index.for_each_match(&name(topic), |m| {
                    if let Match::Shared(g) = m {
                        let full = format!("$share/{}/{}", g.name(), g.filter());
                        ok &= !g.is_empty() && g.members().all(|(_, (f, _))| *f == full);
                    }
                });
                prop_assert!(ok);
            }
            for (f, key) in model.keys() {
                prop_assert!(index.remove(&filter(f), key).is_some());
            }
            prop_assert_eq!((index.len(), index.shared_len(), index.node_count()), (0, 0, 0));
        }
    }

    /// Runs `work` on its own thread and fails if it has not finished within a minute.
    fn within_a_minute(work: impl FnOnce() + Send + 'static) {
        let (done, finished) = mpsc::channel();
        std::thread::spawn(move || {
            work();
            let _ = done.send(());
        });
        match finished.recv_timeout(Duration::from_secs(60)) {
            Ok(()) => {}
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("deadlock or livelock"),
            Err(mpsc::RecvTimeoutError::Disconnected) => panic!("the worker panicked"),
        }
    }

    #[test]
    fn concurrent_publishers_and_subscribers() {
        within_a_minute(|| {
            const FILTERS: [&str; 8] = ["a/b", "a/+", "+/b", "#", "a/#", "$share/g/a/b", "c", "+"];
            const TOPICS: [&str; 4] = ["a/b", "a/c", "c", "$SYS/x"];
            let index = Arc::new(Index::with_shards(4));
            // Always present, so every publish to a/b sees at least these two.
            subscribe(&index, "a/b", 1000);
            subscribe(&index, "$share/g/a/b", 1000);

            let writers: Vec<_> = (0..2u32)
                .map(|w| {
                    let index = Arc::clone(&index);
                    std::thread::spawn(move || {
                        let mut mine: BTreeMap<(&str, u32), ()> = BTreeMap::new();
                        for i in 0..2000u32 {
                            let f = FILTERS[(i as usize * 7 + w as usize) % FILTERS.len()];
                            let key = w * 100 + i % 5;
                            if i % 3 == 2 {
                                let had = mine.remove(&(f, key)).is_some();
                                assert_eq!(unsubscribe(&index, f, key).is_some(), had);
                            } else {
                                let had = mine.insert((f, key), ()).is_some();
                                assert_eq!(subscribe(&index, f, key).is_some(), had);
                            }
                        }
                        mine.into_keys().collect::<Vec<_>>()
                    })
                })
                .collect();
            let readers: Vec<_> = (0..4usize)
                .map(|r| {
                    let index = Arc::clone(&index);
                    std::thread::spawn(move || {
                        let mut picks = 0;
                        for i in 0..3000usize {
                            let topic = name(TOPICS[(i + r) % TOPICS.len()]);
                            let mut stable = 0;
                            index.for_each_match(&topic, |m| match m {
                                Match::Direct { key: 1000, .. } => stable += 1,
                                Match::Direct { .. } => {}
                                Match::Shared(group) => {
                                    assert!(group.pick(|_, _| true).is_some());
                                    picks += 1;
                                    if group.members().any(|(k, _)| *k == 1000) {
                                        stable += 1;
                                    }
                                }
                            });
                            if topic.as_str() == "a/b" {
                                assert_eq!(stable, 2);
                            }
                        }
                        picks
                    })
                })
                .collect();
            let mut expected: Vec<(String, u32)> =
                vec![("a/b".into(), 1000), ("$share/g/a/b".into(), 1000)];
            for writer in writers {
                for (f, key) in writer.join().unwrap() {
                    expected.push((f.to_owned(), key));
                }
            }
            let picks: usize = readers.into_iter().map(|r| r.join().unwrap()).sum();
            assert!(picks > 0);
            assert_eq!(index.len(), expected.len());
            let shared = expected
                .iter()
                .filter(|(f, _)| f.starts_with("$share/"))
                .count();
            assert_eq!(index.shared_len(), shared);
            for topic in TOPICS {
                let mut want: Vec<(String, u32)> = expected
                    .iter()
                    .filter(|(f, _)| matches(filter(f).filter(), topic))
                    .cloned()
                    .collect();
                want.sort();
                assert_eq!(matched(&index, topic), want, "topic {topic:?}");
            }
        });
    }

    #[test]
    fn concurrent_picks_spread_exactly() {
        within_a_minute(|| {
            let index = Arc::new(Index::with_shards(1));
            for key in [1, 2, 3] {
                subscribe(&index, "$share/g/s", key);
            }
            let threads: Vec<_> = (0..4)
                .map(|_| {
                    let index = Arc::clone(&index);
                    std::thread::spawn(move || {
                        let mut counts = [0usize; 3];
                        for _ in 0..3000 {
                            let key = index
                                .with_shared_group("g", "s", |g| *g.pick(|_, _| true).unwrap().0)
                                .unwrap();
                            counts[key as usize - 1] += 1;
                        }
                        counts
                    })
                })
                .collect();
            let mut total = [0usize; 3];
            for thread in threads {
                for (t, c) in total.iter_mut().zip(thread.join().unwrap()) {
                    *t += c;
                }
            }
            // Every pick claims its own turn, so contention does not skew the spread.
            assert_eq!(total, [4000, 4000, 4000]);
        });
    }
}
