//! The persistence boundary. `gantry-store` implements `Store` on disk; the
//! in-memory `MemoryStore` here serves unit tests.
//!
//! Three key spaces: blobs (file contents, keyed by their own sha256),
//! results (cached outcomes, keyed by a cache key) and recipes (the
//! operation behind an ID, so IDs load after a restart).

use dashmap::DashMap;

use crate::digest::Digest;
use crate::error::Result;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Space {
    Result,
    Recipe,
}

impl Space {
    pub fn dir_name(self) -> &'static str {
        match self {
            Space::Result => "results",
            Space::Recipe => "recipes",
        }
    }
}

pub trait Store: Send + Sync + 'static {
    fn put_blob(&self, bytes: &[u8]) -> Result<Digest>;
    fn get_blob(&self, digest: &Digest) -> Result<Vec<u8>>;
    /// Stores a record atomically: a reader sees the old value or the whole
    /// new one, never a partial write.
    fn put(&self, space: Space, key: &Digest, value: &[u8]) -> Result<()>;
    fn get(&self, space: Space, key: &Digest) -> Result<Option<Vec<u8>>>;
    fn remove(&self, space: Space, key: &Digest) -> Result<()>;
}

/// A `Store` in memory, for tests.
#[derive(Debug, Default)]
pub struct MemoryStore {
    blobs: DashMap<Digest, Vec<u8>>,
    records: DashMap<(Space, Digest), Vec<u8>>,
}

impl MemoryStore {
    /// Every record and blob as lossy text, for leak assertions in tests.
    pub fn dump_text(&self) -> String {
        let mut out = String::new();
        for item in self.records.iter() {
            out.push_str(&String::from_utf8_lossy(item.value()));
        }
        for item in self.blobs.iter() {
            out.push_str(&String::from_utf8_lossy(item.value()));
        }
        out
    }

    pub fn record_count(&self, space: Space) -> usize {
        self.records
            .iter()
            .filter(|item| item.key().0 == space)
            .count()
    }
}

impl Store for MemoryStore {
    fn put_blob(&self, bytes: &[u8]) -> Result<Digest> {
        let digest = Digest::of_bytes(bytes);
        self.blobs.entry(digest).or_insert_with(|| bytes.to_vec());
        Ok(digest)
    }

    fn get_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        self.blobs
            .get(digest)
            .map(|bytes| bytes.clone())
            .ok_or_else(|| {
                crate::error::Error::store(
                    "reading a blob",
                    std::io::Error::new(std::io::ErrorKind::NotFound, digest.to_string()),
                )
            })
    }

    fn put(&self, space: Space, key: &Digest, value: &[u8]) -> Result<()> {
        self.records.insert((space, *key), value.to_vec());
        Ok(())
    }

    fn get(&self, space: Space, key: &Digest) -> Result<Option<Vec<u8>>> {
        Ok(self.records.get(&(space, *key)).map(|value| value.clone()))
    }

    fn remove(&self, space: Space, key: &Digest) -> Result<()> {
        self.records.remove(&(space, *key));
        Ok(())
    }
}
