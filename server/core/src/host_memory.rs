//! The host-directory snapshots a running engine keeps in memory
//! (`Indexes`), bounded by their total entries, least recently used first
//! out, found by index key (the directory and its filters) or by content
//! digest (what a `Host.directory` node holds). Values are opaque here
//! (`host` stores its `host_index::Snapshot`), so the store can own the
//! cache without depending on trees.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::digest::Digest;

/// How many entries (recorded paths) the snapshots kept in memory may hold
/// together: about 250 bytes each, so some 50 MB at most. The least
/// recently used snapshots go first; the newest is always kept.
pub const MAX_ENTRIES_IN_MEMORY: usize = 200_000;
/// How many snapshots are kept in memory at most.
pub const MAX_INDEXES_IN_MEMORY: usize = 16;

/// Snapshots of recently read host directories, by index key, in memory.
#[derive(Debug)]
pub struct Indexes {
    inner: Mutex<Recent>,
    max_entries: usize,
}

impl Default for Indexes {
    fn default() -> Self {
        Self::with_bound(MAX_ENTRIES_IN_MEMORY)
    }
}

#[derive(Debug, Default)]
struct Recent {
    clock: u64,
    snapshots: HashMap<Digest, Held>,
}

/// One snapshot in memory.
#[derive(Debug)]
struct Held {
    /// The clock when it was last asked for.
    used: u64,
    entries: usize,
    content: Digest,
    snapshot: Arc<dyn Any + Send + Sync>,
}

impl Indexes {
    /// Indexes holding at most `max_entries` entries together.
    pub fn with_bound(max_entries: usize) -> Self {
        Self {
            inner: Mutex::default(),
            max_entries,
        }
    }

    /// The snapshot stored under index `key`.
    pub(crate) fn get(&self, key: &Digest) -> Option<Arc<dyn Any + Send + Sync>> {
        let mut recent = self.lock();
        recent.clock += 1;
        let clock = recent.clock;
        let held = recent.snapshots.get_mut(key)?;
        held.used = clock;
        Some(held.snapshot.clone())
    }

    /// A snapshot whose content digest is `content`, under any index key
    /// (at most `MAX_INDEXES_IN_MEMORY` to look through).
    pub(crate) fn by_content(&self, content: &Digest) -> Option<Arc<dyn Any + Send + Sync>> {
        let mut recent = self.lock();
        recent.clock += 1;
        let clock = recent.clock;
        let held = recent
            .snapshots
            .values_mut()
            .find(|held| held.content == *content)?;
        held.used = clock;
        Some(held.snapshot.clone())
    }

    /// Keeps `snapshot` (of `entries` recorded paths, content digest
    /// `content`) under index `key`, dropping the least recently used ones
    /// past the bounds.
    pub(crate) fn put(
        &self,
        key: Digest,
        content: Digest,
        snapshot: Arc<dyn Any + Send + Sync>,
        entries: usize,
    ) {
        let mut recent = self.lock();
        recent.clock += 1;
        let used = recent.clock;
        recent.snapshots.insert(
            key,
            Held {
                used,
                entries,
                content,
                snapshot,
            },
        );
        loop {
            let total: usize = recent.snapshots.values().map(|held| held.entries).sum();
            let over = total > self.max_entries || recent.snapshots.len() > MAX_INDEXES_IN_MEMORY;
            if !over || recent.snapshots.len() <= 1 {
                break;
            }
            let oldest = recent
                .snapshots
                .iter()
                .filter(|(candidate, _)| **candidate != key)
                .min_by_key(|(_, held)| held.used)
                .map(|(oldest, _)| *oldest);
            match oldest {
                Some(oldest) => recent.snapshots.remove(&oldest),
                None => break,
            };
        }
    }

    /// Forgets every snapshot (as a restarted engine would have none).
    pub fn clear(&self) {
        self.lock().snapshots.clear();
    }

    /// How many snapshots are held, for tests.
    pub fn len(&self) -> usize {
        self.lock().snapshots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recent> {
        // A panic while holding the lock leaves a consistent map (every
        // update is one insert or remove).
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_is_bounded_by_entries_least_recently_used_first() {
        let indexes = Indexes::with_bound(25);
        let big: Arc<dyn Any + Send + Sync> = Arc::new(());
        let keys: Vec<Digest> = (0u8..4).map(|n| Digest::of_bytes(&[n])).collect();
        let content = |n: u8| Digest::of_bytes(&[n, n]);
        indexes.put(keys[0], content(0), big.clone(), 10);
        indexes.put(keys[1], content(1), big.clone(), 10);
        // Using the first makes the second the least recently used.
        assert!(indexes.get(&keys[0]).is_some());
        indexes.put(keys[2], content(2), big.clone(), 10);
        assert_eq!(indexes.len(), 2, "three thirds and a bit exceed the bound");
        assert!(indexes.get(&keys[1]).is_none());
        assert!(indexes.by_content(&content(1)).is_none());
        assert!(indexes.by_content(&content(2)).is_some());
        assert!(indexes.get(&keys[0]).is_some() && indexes.get(&keys[2]).is_some());
        // One snapshot over the bound on its own is still kept.
        let huge: Arc<dyn Any + Send + Sync> = Arc::new(());
        indexes.put(keys[3], content(3), huge, 31);
        assert_eq!(indexes.len(), 1);
        assert!(indexes.get(&keys[3]).is_some());
    }
}
