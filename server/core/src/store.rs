//! The persistence boundary: what the solver keeps between runs, and the
//! room it needs on the host while it runs. `gantry-store` implements `Store`
//! over the state directory and owns every path in it; core never builds a
//! path under the state directory itself. `MemoryStore` here serves tests
//! (the `testing` feature).
//!
//! What is kept: blobs (file contents, keyed by their own sha256) and
//! records, each of one `RecordKind` with its own key space.

#[cfg(any(test, feature = "testing"))]
use std::fs;
use std::path::{Path, PathBuf};

#[cfg(any(test, feature = "testing"))]
use dashmap::DashMap;

use crate::digest::{Digest, Domain, Encoder};
#[cfg(any(test, feature = "testing"))]
use crate::error::Error;
use crate::error::Result;

/// The kinds of record the solver keeps. A record's kind is part of where
/// it is stored, so every record can be listed, sized and pruned by kind
/// without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordKind {
    /// A `withExec`'s outcome (`ExecRecord`), by the exec's cache key. Its
    /// filesystem is the Docker image tagged `ImageNames::step(key)`.
    Exec,
    /// A tree read out of a container's filesystem, by the container's key
    /// and the path.
    PathRead,
    /// A tree read from the host, or from a writable mount after an exec,
    /// by `host::tree_key` of its content digest.
    HostTree,
    /// The stat index of a host directory read (`host`), by root and filter.
    HostIndex,
    /// The op behind an ID, by node digest, so IDs load after a restart.
    Recipe,
    /// A source fetched from the network: a Git checkout's tree digest (by
    /// `Domain::GitTree` key), what an HTTP URL answered (by
    /// `Domain::HttpCache` key).
    Fetch,
    /// The inputs of a command line's last runs, by the command line
    /// (`history`), so a cache miss can say what changed. Rewritten on
    /// each miss of that command.
    StepRuns,
}

impl RecordKind {
    pub const ALL: [RecordKind; 7] = [
        RecordKind::Exec,
        RecordKind::PathRead,
        RecordKind::HostTree,
        RecordKind::HostIndex,
        RecordKind::Recipe,
        RecordKind::Fetch,
        RecordKind::StepRuns,
    ];
}

/// The names a state directory gives its Docker images: repositories of
/// its own, `gantry.local/<state id>/cache` for what execs committed and
/// `gantry.local/<state id>/image` for what `publish`/`asTarball` built. A
/// state directory only ever tags, untags or removes names in its own
/// repositories, so two state directories on one daemon never take each
/// other's images: Docker counts the references, and an image another one
/// also tagged survives an untag. (gantry before this kept one shared
/// repository, `gantry.local/cache`, for every state directory.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageNames {
    prefix: String,
}

impl ImageNames {
    /// The names of the state directory whose ID is `id` (lowercase hex).
    pub fn new(id: &str) -> Self {
        Self {
            prefix: format!("gantry.local/{id}"),
        }
    }

    /// The tag that keeps the filesystem an exec committed, by the exec's
    /// cache key: the solver commits under it and prune removes it.
    pub fn step(&self, key: &Digest) -> String {
        format!("{}:{}", self.step_repo(), key.hex())
    }

    /// The tag of the image built from a container state with content key
    /// `key` (for `publish` and `asTarball`).
    pub fn built(&self, key: &Digest) -> String {
        format!("{}:{}", self.built_repo(), key.hex())
    }

    pub fn step_repo(&self) -> String {
        format!("{}/cache", self.prefix)
    }

    pub fn built_repo(&self) -> String {
        format!("{}/image", self.prefix)
    }
}

/// The key that names cache volume `name`'s directory (names are free text,
/// directory names are not).
pub fn cache_volume_key(name: &str) -> Digest {
    let mut encoder = Encoder::new(Domain::CacheVolumeDir);
    encoder.str(name);
    encoder.finish()
}

/// What `Store::lock` hands out: the lock is held until it is dropped.
pub type Lock = Box<dyn std::any::Any + Send>;

/// What `Store::put_behind` runs to have its records: their values, one
/// per key, in the keys' order.
pub type Encode = Box<dyn FnOnce() -> Vec<Vec<u8>> + Send>;

pub trait Store: Send + Sync + 'static {
    fn put_blob(&self, bytes: &[u8]) -> Result<Digest>;
    /// `put_blob` for bytes the caller has hashed already: `digest` is
    /// `Digest::of_bytes(bytes)` (spares hashing them a second time).
    fn put_blob_hashed(&self, digest: &Digest, bytes: &[u8]) -> Result<()> {
        let stored = self.put_blob(bytes)?;
        debug_assert_eq!(
            stored, *digest,
            "put_blob_hashed: the digest is not the bytes'"
        );
        Ok(())
    }
    /// Stores the contents of the host file at `path` as a blob, streamed
    /// (memory stays bounded whatever its size); returns its digest and size.
    fn put_blob_file(&self, path: &Path) -> Result<(Digest, u64)>;
    fn get_blob(&self, digest: &Digest) -> Result<Vec<u8>>;
    /// A blob's contents as a stream, for copies too large to hold in memory.
    fn open_blob(&self, digest: &Digest) -> Result<Box<dyn std::io::Read + Send>>;
    /// Whether the blob is here now (an expected one is not, see
    /// `arrivals`), without reading it.
    fn has_blob(&self, digest: &Digest) -> Result<bool> {
        Ok(self.open_blob(digest).is_ok())
    }
    /// Stores a record atomically: a reader sees the old value or the whole
    /// new one, never a partial write.
    fn put(&self, kind: RecordKind, key: &Digest, value: &[u8]) -> Result<()>;
    fn get(&self, kind: RecordKind, key: &Digest) -> Result<Option<Vec<u8>>>;
    /// Stores records off the caller's path: `encode` gives the values of
    /// `keys` and runs, with their writes, when the store gets to it, in
    /// the order of the calls; a `get` of a key meanwhile waits for its
    /// write (and `has` counts it as there). A write that fails is logged, not returned, so this
    /// is for records the engine rebuilds when they are missing (a host
    /// directory's snapshot). By default, written at once.
    fn put_behind(&self, keys: Vec<(RecordKind, Digest)>, encode: Encode) -> Result<()> {
        for ((kind, key), value) in keys.iter().zip(encode()) {
            self.put(*kind, key, &value)?;
        }
        Ok(())
    }
    /// Waits until every record `put_behind` took is written (an engine
    /// that stops calls it).
    fn flush(&self) {}
    /// Whether a record is there, without copying it out (a stored host
    /// tree is checked on every unchanged reload and can be megabytes).
    fn has(&self, kind: RecordKind, key: &Digest) -> Result<bool> {
        Ok(self.get(kind, key)?.is_some())
    }
    /// A new, empty directory for one exec's mount copies, on the same
    /// filesystem as the cache volumes. The caller removes it when done.
    fn scratch_dir(&self) -> Result<PathBuf>;
    /// The host directory of cache volume `name`; it may not exist yet.
    fn cache_volume_dir(&self, name: &str) -> PathBuf;
    /// Holds other engines sharing this store off record `key` of `kind`
    /// until the returned lock is dropped (see gantry-store's `locks`).
    /// Blocking. Within one engine `InFlight` does this job.
    fn lock(&self, kind: RecordKind, key: &Digest) -> Result<Lock>;
    /// Where this store's Docker images are named.
    fn image_names(&self) -> ImageNames;
    /// The host-directory indexes the engine on this store keeps in memory
    /// (`host::Indexes`); `None`: every read starts from the stored index.
    fn host_indexes(&self) -> Option<&crate::host_memory::Indexes> {
        None
    }
    /// The blobs this store expects and reads only once they are here
    /// (`get_blob` and `open_blob` wait for them); `None`: a store that
    /// takes no blobs on trust (a path read from the remote cache then
    /// fetches its files' contents at once).
    fn arrivals(&self) -> Option<&crate::arrivals::Arrivals> {
        None
    }
}

/// A path read shared through the remote cache (`RemoteCache::offer_read`,
/// `lookup_read`): the tree as the store keeps it (`RecordKind::PathRead`
/// JSON) and the contents of the files it names, so that the machine that
/// finds it needs neither the container's filesystem nor the blob store of
/// the machine that read it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SharedRead {
    /// The path read (absolute), for listings only: the key names the read.
    pub path: String,
    /// The tree's JSON.
    pub tree: Vec<u8>,
    /// The contents of every file of the tree, each once, with its blob
    /// digest: the remote cache checks the one against the other (a
    /// registry client verifies what it downloads), so the engine that
    /// takes a read stores the contents without hashing them again.
    pub files: Vec<(Digest, Vec<u8>)>,
}

/// A path read found in the remote cache (`RemoteCache::lookup_read`): its
/// tree (`RecordKind::PathRead` JSON) and the files its entry holds, by
/// digest and size. Their contents are fetched (`RemoteCache::read_file`)
/// only when something reads them (see `arrivals`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FoundRead {
    pub tree: Vec<u8>,
    pub files: Vec<(Digest, u64)>,
}

/// A cache tier shared between machines, behind the store: exec results
/// and path reads by cache key, kept somewhere every engine can reach (an
/// OCI registry, see the binary's `cache` module and docs/cache.md). Exec
/// records cross it as the JSON the store keeps (`ExecRecord`).
///
/// No method fails: a cache that cannot be reached reports it itself
/// (once) and answers as a miss, so the pipeline runs locally.
#[async_trait::async_trait]
pub trait RemoteCache: Send + Sync + 'static {
    /// The record shared under `key`, when there is one and it is sound. Its
    /// image ID may name a filesystem the runtime fetches only when a step
    /// or export needs it.
    async fn lookup(&self, key: &Digest) -> Option<Vec<u8>>;
    /// Hands over a record just stored locally under `key`, to be shared in
    /// the background (never blocking the pipeline). `secrets`: secrets were
    /// attached to the step.
    fn offer(&self, key: &Digest, record: &[u8], secrets: bool);
    /// The path read shared under `key` (a `RecordKind::PathRead` key), when
    /// there is one and its tree is sound. A cache that shares no reads has
    /// none.
    async fn lookup_read(&self, key: &Digest) -> Option<FoundRead> {
        let _ = key;
        None
    }
    /// The contents of file `blob` (`size` bytes) of the path read found
    /// under `key`, checked against its digest. `None`: missing, corrupt or
    /// the cache failed (reported by the cache, which replaces a corrupt
    /// entry with the next push of that read).
    async fn read_file(&self, key: &Digest, blob: &Digest, size: u64) -> Option<Vec<u8>> {
        let _ = (key, blob, size);
        None
    }
    /// Hands over a path read just stored locally under `key`, to be shared
    /// in the background like `offer`. `secrets`: secrets were attached to
    /// the container read from.
    fn offer_read(&self, key: &Digest, read: SharedRead, secrets: bool) {
        let _ = (key, read, secrets);
    }
    /// Waits for what was offered to be shared (or given up on).
    async fn flush(&self);
}

/// A `Store` in memory, for tests. Scratch directories and cache volumes
/// still need a real directory: a private one under the system temp
/// directory, removed when the store is dropped.
#[cfg(any(test, feature = "testing"))]
#[derive(Debug)]
pub struct MemoryStore {
    blobs: DashMap<Digest, Vec<u8>>,
    records: DashMap<(RecordKind, Digest), Vec<u8>>,
    dir: PathBuf,
    host_indexes: crate::host_memory::Indexes,
    arrivals: crate::arrivals::Arrivals,
}

#[cfg(any(test, feature = "testing"))]
impl Default for MemoryStore {
    fn default() -> Self {
        Self {
            blobs: DashMap::new(),
            records: DashMap::new(),
            dir: std::env::temp_dir().join(format!(
                "gantry-memory-store-{}-{:016x}",
                std::process::id(),
                rand::random::<u64>()
            )),
            host_indexes: crate::host_memory::Indexes::default(),
            arrivals: Default::default(),
        }
    }
}

#[cfg(any(test, feature = "testing"))]
impl Drop for MemoryStore {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

#[cfg(any(test, feature = "testing"))]
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

    pub fn record_count(&self, kind: RecordKind) -> usize {
        self.records
            .iter()
            .filter(|item| item.key().0 == kind)
            .count()
    }
}

#[cfg(any(test, feature = "testing"))]
impl Store for MemoryStore {
    fn put_blob(&self, bytes: &[u8]) -> Result<Digest> {
        let digest = Digest::of_bytes(bytes);
        self.blobs.entry(digest).or_insert_with(|| bytes.to_vec());
        Ok(digest)
    }

    fn get_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        self.arrivals.read(digest, || {
            self.blobs
                .get(digest)
                .map(|bytes| bytes.clone())
                .ok_or_else(|| {
                    Error::store(
                        "reading a blob",
                        std::io::Error::new(std::io::ErrorKind::NotFound, digest.to_string()),
                    )
                })
        })
    }

    fn put(&self, kind: RecordKind, key: &Digest, value: &[u8]) -> Result<()> {
        self.records.insert((kind, *key), value.to_vec());
        Ok(())
    }

    fn get(&self, kind: RecordKind, key: &Digest) -> Result<Option<Vec<u8>>> {
        Ok(self.records.get(&(kind, *key)).map(|value| value.clone()))
    }

    fn scratch_dir(&self) -> Result<PathBuf> {
        crate::files::create_unique_dir(&self.dir.join("scratch"))
            .map_err(|source| Error::store("creating a scratch directory", source))
    }

    fn cache_volume_dir(&self, name: &str) -> PathBuf {
        self.dir
            .join("cache-volumes")
            .join(cache_volume_key(name).hex())
    }

    fn put_blob_file(&self, path: &Path) -> Result<(Digest, u64)> {
        let bytes = fs::read(path).map_err(|source| Error::store("reading a host file", source))?;
        Ok((self.put_blob(&bytes)?, bytes.len() as u64))
    }

    fn open_blob(&self, digest: &Digest) -> Result<Box<dyn std::io::Read + Send>> {
        Ok(Box::new(std::io::Cursor::new(self.get_blob(digest)?)))
    }

    fn has_blob(&self, digest: &Digest) -> Result<bool> {
        Ok(self.blobs.contains_key(digest))
    }

    fn lock(&self, _kind: RecordKind, _key: &Digest) -> Result<Lock> {
        Ok(Box::new(()))
    }

    fn image_names(&self) -> ImageNames {
        ImageNames::new("memory")
    }

    fn host_indexes(&self) -> Option<&crate::host_memory::Indexes> {
        Some(&self.host_indexes)
    }

    fn arrivals(&self) -> Option<&crate::arrivals::Arrivals> {
        Some(&self.arrivals)
    }
}
