//! An archive's entries by name: found by hash, listed in name order.
//!
//! A busy host's bundle holds ~40,000 entries, arriving in the order they were
//! collected. Inserted one by one into a `BTreeMap` (string comparisons down the tree,
//! keys shifted in its nodes) they took 12-20 ms of a 2,000-process bundle's opening,
//! and its analysis's ~18,000 lookups 4-5 ms. Here they are gathered, sorted once
//! (~6 ms), and found through a hash table of their positions in the sorted list
//! (built in ~2-4 ms, the lookups ~1-2 ms; the names are not stored twice).
//!
//! The hash is std's SipHash with a random key: entry names come from an untrusted
//! archive, and must not be able to make lookups collide.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::ops::Range;

use hashbrown::HashTable;

/// Names and where their bytes lie in the archive's buffer.
pub(crate) struct Index {
    /// Sorted by name, no name twice.
    sorted: Vec<(String, Range<usize>)>,
    /// Positions in `sorted`, hashed by their name with `hasher`.
    position: HashTable<usize>,
    hasher: RandomState,
}

impl Index {
    /// Indexes entries given in any order; a name given twice is returned as the error.
    pub(crate) fn new(mut entries: Vec<(String, Range<usize>)>) -> Result<Index, String> {
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        if let Some(pair) = entries.windows(2).find(|pair| pair[0].0 == pair[1].0) {
            return Err(pair[0].0.clone());
        }
        let hasher = RandomState::new();
        let mut position = HashTable::with_capacity(entries.len());
        for (i, (name, _)) in entries.iter().enumerate() {
            position.insert_unique(hasher.hash_one(name.as_str()), i, |&j| hasher.hash_one(entries[j].0.as_str()));
        }
        Ok(Index { sorted: entries, position, hasher })
    }

    fn find(&self, name: &str) -> Option<usize> {
        self.position.find(self.hasher.hash_one(name), |&i| self.sorted[i].0 == name).copied()
    }

    pub(crate) fn get(&self, name: &str) -> Option<Range<usize>> {
        self.find(name).map(|i| self.sorted[i].1.clone())
    }

    pub(crate) fn contains(&self, name: &str) -> bool {
        self.find(name).is_some()
    }

    /// Every name, sorted.
    pub(crate) fn names(&self) -> impl DoubleEndedIterator<Item = &str> {
        self.sorted.iter().map(|(name, _)| name.as_str())
    }

    /// The names that start with `prefix`, sorted.
    pub(crate) fn starting_with<'s>(&'s self, prefix: &'s str) -> impl Iterator<Item = &'s str> {
        let start = self.sorted.partition_point(|(name, _)| name.as_str() < prefix);
        self.sorted[start..].iter().map(|(name, _)| name.as_str()).take_while(move |name| name.starts_with(prefix))
    }

    /// The index with `prefix` taken off every name; names that are only the prefix
    /// or do not start with it are left out.
    pub(crate) fn strip(self, prefix: &str) -> Index {
        let entries = self
            .sorted
            .into_iter()
            .filter_map(|(name, range)| {
                let rest = name.strip_prefix(prefix).filter(|rest| !rest.is_empty())?;
                Some((rest.to_string(), range))
            })
            .collect();
        Index::new(entries).expect("names that were distinct stay distinct without their common prefix")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(names: &[&str]) -> Result<Index, String> {
        Index::new(names.iter().enumerate().map(|(i, n)| (n.to_string(), i * 10..i * 10 + 5)).collect())
    }

    #[test]
    fn entries_are_found_by_name_and_listed_in_order() {
        let i = index(&["proc/stat", "manifest.json", "proc/1/stat", "proc/10/stat", "proc/1/status"]).unwrap();
        assert_eq!(i.get("proc/1/stat"), Some(20..25));
        assert_eq!(i.get("manifest.json"), Some(10..15));
        assert_eq!(i.get("proc/2/stat"), None);
        assert!(i.contains("proc/stat") && !i.contains("proc"));
        assert_eq!(
            i.names().collect::<Vec<_>>(),
            ["manifest.json", "proc/1/stat", "proc/1/status", "proc/10/stat", "proc/stat"]
        );
        assert_eq!(i.starting_with("proc/1/").collect::<Vec<_>>(), ["proc/1/stat", "proc/1/status"]);
        assert_eq!(i.starting_with("sys/").count(), 0);
        assert_eq!(i.names().next_back(), Some("proc/stat"));
    }

    #[test]
    fn a_name_given_twice_is_the_error() {
        assert_eq!(index(&["b", "a", "c", "a"]).err().as_deref(), Some("a"));
    }

    #[test]
    fn a_prefix_is_stripped_from_every_name() {
        let i = index(&["top/", "top/b", "top/a/x", "other"]).unwrap().strip("top/");
        assert_eq!(i.names().collect::<Vec<_>>(), ["a/x", "b"]);
        assert_eq!(i.get("b"), Some(10..15));
    }
}
