//! A small map for trie nodes, shared by the subscription index and the retained tree: a
//! `Vec` of pairs while it is short, a boxed `HashMap` past [`FEW_MAX`] entries.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;

/// The most entries a [`SmallMap`] keeps in its `Vec` form.
pub(crate) const FEW_MAX: usize = 8;

/// A map that is a `Vec` of pairs, grown one slot at a time, while it has at most
/// [`FEW_MAX`] entries, and a boxed `HashMap` past that. Most trie nodes have one child and
/// most filters few subscribers, so most maps are the short `Vec`: 24 bytes inline, no hashing,
/// no spare capacity. Order is unspecified.
pub(crate) enum SmallMap<K, V> {
    /// At most [`FEW_MAX`] entries, searched linearly.
    Few(Vec<(K, V)>),
    /// More than [`FEW_MAX`] entries; it turns back into `Few` when it shrinks to half that.
    // Boxed on purpose: a `HashMap` is 48 bytes inline, which would double the size of every
    // map (and so of every node) for the few that need one.
    #[allow(clippy::box_collection)]
    Many(Box<HashMap<K, V>>),
}

impl<K, V> Default for SmallMap<K, V> {
    fn default() -> Self {
        SmallMap::Few(Vec::new())
    }
}

impl<K, V> SmallMap<K, V> {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            SmallMap::Few(v) => v.len(),
            SmallMap::Many(m) => m.len(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn iter(&self) -> SmallMapIter<'_, K, V> {
        match self {
            SmallMap::Few(v) => SmallMapIter::Few(v.iter()),
            SmallMap::Many(m) => SmallMapIter::Many(m.iter()),
        }
    }

    pub(crate) fn values_mut(&mut self) -> SmallMapValuesMut<'_, K, V> {
        match self {
            SmallMap::Few(v) => SmallMapValuesMut::Few(v.iter_mut()),
            SmallMap::Many(m) => SmallMapValuesMut::Many(m.values_mut()),
        }
    }

    /// Moves every value into `out`, leaving the map empty.
    pub(crate) fn drain_values_into(&mut self, out: &mut Vec<V>) {
        match std::mem::take(self) {
            SmallMap::Few(v) => out.extend(v.into_iter().map(|(_, value)| value)),
            SmallMap::Many(m) => out.extend(m.into_values()),
        }
    }
}

impl<K: Eq + Hash, V> SmallMap<K, V> {
    pub(crate) fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        match self {
            SmallMap::Few(v) => v.iter().find(|(k, _)| k.borrow() == key).map(|(_, v)| v),
            SmallMap::Many(m) => m.get(key),
        }
    }

    pub(crate) fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        match self {
            SmallMap::Few(v) => v
                .iter_mut()
                .find(|(k, _)| k.borrow() == key)
                .map(|(_, v)| v),
            SmallMap::Many(m) => m.get_mut(key),
        }
    }

    /// Inserts or replaces, returning the replaced value.
    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<V> {
        if let Some(old) = self.get_mut(&key) {
            return Some(std::mem::replace(old, value));
        }
        self.grow_if_full();
        match self {
            SmallMap::Few(v) => {
                v.reserve_exact(1);
                v.push((key, value));
            }
            SmallMap::Many(m) => {
                m.insert(key, value);
            }
        }
        None
    }

    /// The value at `key`, inserting the pair made by `make` if there is none.
    pub(crate) fn get_or_insert_with<Q>(&mut self, key: &Q, make: impl FnOnce() -> (K, V)) -> &mut V
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let found = match self {
            SmallMap::Few(v) => v.iter().position(|(k, _)| k.borrow() == key),
            SmallMap::Many(_) => None,
        };
        if found.is_none() && self.len() >= FEW_MAX {
            self.grow_if_full();
        }
        match self {
            SmallMap::Few(v) => {
                let idx = match found {
                    Some(idx) => idx,
                    None => {
                        v.reserve_exact(1);
                        v.push(make());
                        v.len() - 1
                    }
                };
                &mut v[idx].1
            }
            // Makes the key even if it is present (the entry API needs it owned); this runs
            // only on subscribe, in nodes with many children.
            SmallMap::Many(m) => {
                let (k, value) = make();
                m.entry(k).or_insert(value)
            }
        }
    }

    pub(crate) fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        match self {
            SmallMap::Few(v) => {
                let idx = v.iter().position(|(k, _)| k.borrow() == key)?;
                let (_, value) = v.swap_remove(idx);
                v.shrink_to_fit();
                Some(value)
            }
            SmallMap::Many(m) => {
                let value = m.remove(key)?;
                if m.len() <= FEW_MAX / 2 {
                    *self = SmallMap::Few(m.drain().collect());
                }
                Some(value)
            }
        }
    }

    /// Turns a full `Few` into `Many` so one more entry fits.
    pub(crate) fn grow_if_full(&mut self) {
        if let SmallMap::Few(v) = self
            && v.len() >= FEW_MAX
        {
            let map: HashMap<K, V> = v.drain(..).collect();
            *self = SmallMap::Many(Box::new(map));
        }
    }
}

/// Iterator over a [`SmallMap`]'s entries.
pub(crate) enum SmallMapIter<'a, K, V> {
    Few(std::slice::Iter<'a, (K, V)>),
    Many(std::collections::hash_map::Iter<'a, K, V>),
}

impl<'a, K, V> Iterator for SmallMapIter<'a, K, V> {
    type Item = (&'a K, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            SmallMapIter::Few(it) => it.next().map(|(k, v)| (k, v)),
            SmallMapIter::Many(it) => it.next(),
        }
    }
}

/// Iterator over a [`SmallMap`]'s values, mutably.
pub(crate) enum SmallMapValuesMut<'a, K, V> {
    Few(std::slice::IterMut<'a, (K, V)>),
    Many(std::collections::hash_map::ValuesMut<'a, K, V>),
}

impl<'a, K, V> Iterator for SmallMapValuesMut<'a, K, V> {
    type Item = &'a mut V;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            SmallMapValuesMut::Few(it) => it.next().map(|(_, v)| v),
            SmallMapValuesMut::Many(it) => it.next(),
        }
    }
}
