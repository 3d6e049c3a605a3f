//! `DiskStore`: the solver's `Store` over a `StateDir`.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use dashmap::DashMap;
use gantry_core::store::{ImageNames, Lock, RecordKind, Store};
use gantry_core::Digest;

use crate::error::Error;
use crate::layout::{Bucket, StateDir};

pub struct DiskStore {
    dir: StateDir,
    /// Records already read or written by this engine (see `memoized`).
    records: DashMap<(RecordKind, Digest), Vec<u8>>,
    /// Held by an engine (`for_engine`): records it reads are marked used.
    lease: Option<crate::EngineLease>,
    /// When the lease was taken: recipes last used before it are marked
    /// used when this engine reads them.
    since: std::time::SystemTime,
    /// Host-directory indexes of this engine, in memory (bounded, see
    /// `gantry_core::host::Indexes`).
    host_indexes: gantry_core::host::Indexes,
    /// Blobs this engine expects (`Store::arrivals`).
    arrivals: gantry_core::arrivals::Arrivals,
    /// Records to write off the caller's path (`Store::put_behind`).
    behind: crate::behind::Behind,
}

/// Whether records of `kind` are kept in memory once read. Most are small
/// and read on every cache lookup; a host index is read once per directory
/// read, rewritten when the directory changes and can be large; so is a
/// host tree (a new one per change, about 100 bytes an entry: kept, they
/// would grow an engine by a megabyte per edit of a large tree), whose
/// recent ones the host snapshots in memory hold anyway; an exec
/// result is read once per node by the solver, and another engine on the
/// state directory may replace it (when its image was gone), so it is always
/// read from disk; a step's runs are read once per cache miss and rewritten
/// by every engine that runs that command.
fn memoized(kind: RecordKind) -> bool {
    !matches!(
        kind,
        RecordKind::HostIndex | RecordKind::HostTree | RecordKind::Exec | RecordKind::StepRuns
    )
}

impl DiskStore {
    /// Opens (creating or migrating) the state directory at `root`.
    pub fn open(root: impl Into<PathBuf>) -> crate::Result<Self> {
        Ok(Self::new(StateDir::open(root)?))
    }

    pub fn new(dir: StateDir) -> Self {
        Self {
            dir,
            records: DashMap::new(),
            lease: None,
            since: std::time::SystemTime::now(),
            host_indexes: gantry_core::host::Indexes::default(),
            arrivals: Default::default(),
            behind: Default::default(),
        }
    }

    /// The store of an engine: it holds an engine lease for its life and
    /// marks every record it reads from disk as used now (its modification
    /// time), so that prunes evict the least recently used records and
    /// keep whatever a live engine used (see `locks.rs`). Inspecting a
    /// store (tests, `gantry cache ls`) does neither.
    pub fn for_engine(self) -> crate::Result<Self> {
        let lease = self.dir.lease_engine()?;
        // Taken after the lease file's time: what prunes keep for this engine
        // (used at or after that time) includes every recipe it marks.
        let since = std::time::SystemTime::now();
        Ok(Self {
            lease: Some(lease),
            since,
            ..self
        })
    }

    pub fn state_dir(&self) -> &StateDir {
        &self.dir
    }
}

impl Store for DiskStore {
    fn put_blob(&self, bytes: &[u8]) -> gantry_core::Result<Digest> {
        Ok(self.dir.write_blob(bytes)?)
    }

    fn put_blob_hashed(&self, digest: &Digest, bytes: &[u8]) -> gantry_core::Result<()> {
        Ok(self.dir.write_hashed_blob(digest, bytes)?)
    }

    fn get_blob(&self, digest: &Digest) -> gantry_core::Result<Vec<u8>> {
        self.arrivals
            .read(digest, || Ok(self.dir.read_blob(digest)?))
    }

    fn has_blob(&self, digest: &Digest) -> gantry_core::Result<bool> {
        Ok(self.dir.has_blob(digest)?)
    }

    fn open_blob(&self, digest: &Digest) -> gantry_core::Result<Box<dyn std::io::Read + Send>> {
        self.arrivals
            .read(digest, || Ok(self.dir.open_blob(digest)?))
    }

    fn put(&self, kind: RecordKind, key: &Digest, value: &[u8]) -> gantry_core::Result<()> {
        if kind == RecordKind::Recipe {
            self.dir.recipes().append(key, value)?;
        } else {
            self.dir
                .write(&self.dir.entry(Bucket::Records(kind), key), value, false)?;
        }
        if memoized(kind) {
            self.records.insert((kind, *key), value.to_vec());
        }
        Ok(())
    }

    fn put_behind(
        &self,
        keys: Vec<(RecordKind, Digest)>,
        encode: gantry_core::store::Encode,
    ) -> gantry_core::Result<()> {
        // Kept in memory or appended to a log: those are written the usual way.
        if keys
            .iter()
            .any(|(kind, _)| *kind == RecordKind::Recipe || memoized(*kind))
        {
            for ((kind, key), value) in keys.iter().zip(encode()) {
                self.put(*kind, key, &value)?;
            }
            return Ok(());
        }
        self.behind.put(&self.dir, keys, encode);
        Ok(())
    }

    fn flush(&self) {
        self.behind.flush();
    }

    fn get(&self, kind: RecordKind, key: &Digest) -> gantry_core::Result<Option<Vec<u8>>> {
        self.behind.wait_for(kind, key);
        if let Some(value) = self.records.get(&(kind, *key)) {
            return Ok(Some(value.clone()));
        }
        if kind == RecordKind::Recipe {
            let found = self.dir.recipes().get(key)?;
            if let Some(bytes) = &found {
                self.records.insert((kind, *key), bytes.clone());
                if self.lease.is_some() {
                    // Best effort, as for records: the recipe is still read.
                    if let Err(error) = self.dir.recipes().mark_used(key, self.since) {
                        tracing::debug!(%key, %error, "cannot mark a recipe used");
                    }
                }
            }
            return Ok(found);
        }
        let path = self.dir.entry(Bucket::Records(kind), key);
        match read_record(&path, self.lease.is_some()) {
            Ok(bytes) => {
                if memoized(kind) {
                    self.records.insert((kind, *key), bytes.clone());
                }
                Ok(Some(bytes))
            }
            Err(error) if error.kind() == ErrorKind::NotFound => Ok(None),
            Err(source) => Err(Error::io("reading", path)(source).into()),
        }
    }

    fn has(&self, kind: RecordKind, key: &Digest) -> gantry_core::Result<bool> {
        if self.behind.pending(kind, key) || self.records.contains_key(&(kind, *key)) {
            return Ok(true);
        }
        if memoized(kind) {
            return Ok(self.get(kind, key)?.is_some());
        }
        // Not read (and kept) just to be found: a stat.
        let path = self.dir.entry(Bucket::Records(kind), key);
        match fs::symlink_metadata(&path) {
            Ok(_) => Ok(true),
            Err(error) if error.kind() == ErrorKind::NotFound => Ok(false),
            Err(source) => Err(Error::io("reading", path)(source).into()),
        }
    }

    fn scratch_dir(&self) -> gantry_core::Result<PathBuf> {
        Ok(self.dir.new_scratch_dir()?)
    }

    fn cache_volume_dir(&self, name: &str) -> PathBuf {
        self.dir.cache_volume_dir(name)
    }

    fn put_blob_file(&self, path: &Path) -> gantry_core::Result<(Digest, u64)> {
        Ok(self.dir.write_blob_from(path)?)
    }

    fn lock(&self, kind: RecordKind, key: &Digest) -> gantry_core::Result<Lock> {
        Ok(Box::new(self.dir.lock_record(kind, key)?))
    }

    fn image_names(&self) -> ImageNames {
        self.dir.image_names()
    }

    fn host_indexes(&self) -> Option<&gantry_core::host::Indexes> {
        Some(&self.host_indexes)
    }

    fn arrivals(&self) -> Option<&gantry_core::arrivals::Arrivals> {
        Some(&self.arrivals)
    }
}

/// A record's bytes; with `mark_used`, its modification time becomes now
/// (best effort: a record that cannot be marked is still read).
fn read_record(path: &Path, mark_used: bool) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut file = fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    if mark_used {
        if let Err(error) = file.set_modified(std::time::SystemTime::now()) {
            tracing::debug!(path = %path.display(), %error, "cannot mark a record used");
        }
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn files_under(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for entry in fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(files_under(&path));
            } else {
                out.push(path);
            }
        }
        out
    }

    #[test]
    fn records_survive_reopening_in_their_kinds_bucket() {
        let dir = tempfile::tempdir().unwrap();
        let key = Digest::of_bytes(b"key");
        {
            let store = DiskStore::open(dir.path()).unwrap();
            store.put(RecordKind::Exec, &key, b"value").unwrap();
            let blob = store.put_blob(b"content").unwrap();
            assert_eq!(store.get_blob(&blob).unwrap(), b"content");
        }
        let store = DiskStore::open(dir.path()).unwrap();
        assert_eq!(
            store.get(RecordKind::Exec, &key).unwrap().as_deref(),
            Some(&b"value"[..])
        );
        // Kinds are separate key spaces.
        assert_eq!(store.get(RecordKind::Recipe, &key).unwrap(), None);
        let hex = key.hex();
        let expected = dir.path().join("store/exec").join(&hex[..2]).join(&hex);
        assert_eq!(fs::read(expected).unwrap(), b"value");
    }

    #[test]
    fn no_temp_files_are_left_behind() {
        let dir = tempfile::tempdir().unwrap();
        let store = DiskStore::open(dir.path()).unwrap();
        for n in 0..20u8 {
            store
                .put(RecordKind::Exec, &Digest::of_bytes(&[n]), &[n; 100])
                .unwrap();
            store.put_blob(&[n; 10]).unwrap();
        }
        let temp = store.state_dir().bucket(Bucket::Temp);
        assert_eq!(files_under(&temp), Vec::<PathBuf>::new());
    }

    #[test]
    fn a_failed_write_names_the_path_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = DiskStore::open(dir.path()).unwrap();
        let key = Digest::of_bytes(b"k");
        // Something that is not a record sits where the record must go.
        let path = store
            .state_dir()
            .entry(Bucket::Records(RecordKind::Exec), &key);
        fs::create_dir_all(path.join("in-the-way")).unwrap();
        let error = store.put(RecordKind::Exec, &key, b"value").unwrap_err();
        // The OS's reason, then what was being written.
        let message = error.to_string();
        assert!(
            message.contains(&key.hex()) && message.contains("while writing"),
            "{message}"
        );
        let temp = store.state_dir().bucket(Bucket::Temp);
        assert_eq!(files_under(&temp), Vec::<PathBuf>::new());
        // The engine carries on: other records still write.
        store
            .put(RecordKind::Exec, &Digest::of_bytes(b"other"), b"v")
            .unwrap();
    }

    #[test]
    fn small_blobs_are_packed_large_ones_files_and_layout_3_files_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = DiskStore::open(dir.path()).unwrap();
        let small = store.put_blob(b"small").unwrap();
        let large_bytes = vec![7u8; 300 * 1024];
        let large = store.put_blob(&large_bytes).unwrap();
        let source = dir.path().join("source");
        fs::write(&source, b"from a host file").unwrap();
        let (host, size) = store.put_blob_file(&source).unwrap();
        assert_eq!(size, 16);
        // A blob file written by layout 3.
        let old_bytes = b"written before packs";
        let old = Digest::of_bytes(old_bytes);
        let old_path = store.state_dir().entry(Bucket::Blobs, &old);
        fs::create_dir_all(old_path.parent().unwrap()).unwrap();
        fs::write(&old_path, old_bytes).unwrap();
        // Only the large one and the old one are files of their own.
        let blobs = store.state_dir().bucket(Bucket::Blobs);
        let mut files: Vec<_> = files_under(&blobs)
            .into_iter()
            .filter(|path| !path.starts_with(blobs.join("packs")))
            .collect();
        files.sort();
        let mut expected = vec![store.state_dir().entry(Bucket::Blobs, &large), old_path];
        expected.sort();
        assert_eq!(files, expected);
        // Another engine reads them all, by bytes and as streams.
        let other = DiskStore::open(dir.path()).unwrap();
        for (digest, bytes) in [
            (small, &b"small"[..]),
            (large, &large_bytes[..]),
            (host, &b"from a host file"[..]),
            (old, &old_bytes[..]),
        ] {
            assert_eq!(other.get_blob(&digest).unwrap(), bytes);
            let mut read = Vec::new();
            std::io::Read::read_to_end(&mut other.open_blob(&digest).unwrap(), &mut read).unwrap();
            assert_eq!(read, bytes);
        }
        let mut listed = other.state_dir().blob_digests().unwrap();
        listed.sort();
        let mut all = vec![small, large, host, old];
        all.sort();
        assert_eq!(listed, all);
        // Putting the old one again does not pack a copy.
        other.put_blob(old_bytes).unwrap();
        assert_eq!(
            other.state_dir().usage().unwrap().of(Bucket::Blobs).entries,
            4
        );
        // A missing blob names its path.
        let missing = other.get_blob(&Digest::of_bytes(b"never")).unwrap_err();
        assert!(missing.to_string().contains("store/blobs"), "{missing}");
    }

    #[test]
    fn a_torn_temp_file_is_not_a_valid_entry() {
        let dir = tempfile::tempdir().unwrap();
        let store = DiskStore::open(dir.path()).unwrap();
        let key = Digest::of_bytes(b"k");
        // A crash after writing the temp file but before the rename.
        let temp = store.state_dir().bucket(Bucket::Temp);
        fs::write(temp.join(".gantry-tmp-1-0"), b"partial").unwrap();
        assert_eq!(store.get(RecordKind::Exec, &key).unwrap(), None);
    }

    #[test]
    fn writes_recover_when_a_prune_removed_the_buckets() {
        let dir = tempfile::tempdir().unwrap();
        let store = DiskStore::open(dir.path()).unwrap();
        fs::remove_dir_all(dir.path().join("store")).unwrap();
        let key = Digest::of_bytes(b"k");
        store.put(RecordKind::PathRead, &key, b"tree").unwrap();
        let blob = store.put_blob(b"content").unwrap();
        assert_eq!(store.get_blob(&blob).unwrap(), b"content");
        let scratch = store.scratch_dir().unwrap();
        assert!(scratch.is_dir());
    }

    #[test]
    fn records_written_behind_are_had_at_once_in_order_and_on_disk_once_flushed() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(DiskStore::open(dir.path()).unwrap());
        let key = Digest::of_bytes(b"index");
        let (release, hold) = std::sync::mpsc::channel::<()>();
        // The first job waits for the test's go: its key is pending meanwhile.
        store
            .put_behind(
                vec![(RecordKind::HostIndex, key)],
                Box::new(move || {
                    hold.recv().unwrap();
                    vec![b"first".to_vec()]
                }),
            )
            .unwrap();
        store
            .put_behind(
                vec![(RecordKind::HostIndex, key)],
                Box::new(|| vec![b"second".to_vec()]),
            )
            .unwrap();
        assert!(
            store.has(RecordKind::HostIndex, &key).unwrap(),
            "a pending record counts as there"
        );
        let reader = {
            let store = store.clone();
            std::thread::spawn(move || store.get(RecordKind::HostIndex, &key).unwrap())
        };
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(
            !reader.is_finished(),
            "a read of a pending record waits for its write"
        );
        release.send(()).unwrap();
        assert_eq!(
            reader.join().unwrap().as_deref(),
            Some(&b"second"[..]),
            "the last write wins"
        );
        drop(store);
        let reopened = DiskStore::open(dir.path()).unwrap();
        assert_eq!(
            reopened
                .get(RecordKind::HostIndex, &key)
                .unwrap()
                .as_deref(),
            Some(&b"second"[..])
        );
    }

    #[test]
    fn dropping_or_flushing_the_store_writes_what_it_held_and_a_panic_holds_no_reader() {
        let dir = tempfile::tempdir().unwrap();
        let (tree, index) = (Digest::of_bytes(b"tree"), Digest::of_bytes(b"index"));
        let store = DiskStore::open(dir.path()).unwrap();
        store
            .put_behind(
                vec![(RecordKind::HostTree, tree)],
                Box::new(|| {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                    vec![b"tree".to_vec()]
                }),
            )
            .unwrap();
        drop(store);
        let store = DiskStore::open(dir.path()).unwrap();
        assert_eq!(
            store.get(RecordKind::HostTree, &tree).unwrap().as_deref(),
            Some(&b"tree"[..])
        );
        store
            .put_behind(
                vec![(RecordKind::HostIndex, index)],
                Box::new(|| panic!("an encoder that fails")),
            )
            .unwrap();
        assert_eq!(store.get(RecordKind::HostIndex, &index).unwrap(), None);
        store
            .put_behind(
                vec![(RecordKind::HostIndex, index)],
                Box::new(|| vec![b"index".to_vec()]),
            )
            .unwrap();
        store.flush();
        let path = store
            .dir
            .entry(Bucket::Records(RecordKind::HostIndex), &index);
        assert_eq!(fs::read(path).unwrap(), b"index");
    }

    #[test]
    fn records_kept_in_memory_are_not_written_behind() {
        let dir = tempfile::tempdir().unwrap();
        let store = DiskStore::open(dir.path()).unwrap();
        let key = Digest::of_bytes(b"fetch");
        store
            .put_behind(
                vec![(RecordKind::Fetch, key)],
                Box::new(|| vec![b"{}".to_vec()]),
            )
            .unwrap();
        let path = store.dir.entry(Bucket::Records(RecordKind::Fetch), &key);
        assert_eq!(
            fs::read(path).unwrap(),
            b"{}",
            "written before put_behind returned"
        );
    }
}
