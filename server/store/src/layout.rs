//! `StateDir`: the layout of the state directory. Every path under it is
//! decided here, and every file written under it goes through
//! `StateDir::write` (one atomic write, temp files in one bucket).
//!
//! Like uv's cache, the directory is divided into buckets, one per kind of
//! thing it holds; records are sharded by the first two hex digits of their
//! key so no directory grows too large.

use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use gantry_core::files::{create_unique_dir, AtomicFile, WriteOutcome};
use gantry_core::store::{cache_volume_key, ImageNames, RecordKind};
use gantry_core::Digest;

use crate::error::{Error, Result};
use crate::packs::{Packs, PACKED_MAX, PACKS_DIR};
use crate::recipes::RecipeLog;

/// The layout this gantry writes; `StateDir::open` migrates older ones.
/// 3: recipes in one log (`store/recipes.log`) instead of a file each.
/// 4: small blobs in packs (`store/blobs/packs/`, see `packs.rs`); blob
/// files of layout 3 stay where they are and are still read, so nothing
/// moves, but a gantry that knows only layout 3 would not find packed blobs.
pub const LAYOUT: u32 = 4;

/// Holds the layout number. Layout 1 (before this file existed) had none.
const LAYOUT_FILE: &str = "layout";

/// The key that MACs secret values in cache keys (see `StateDir::secret_key`).
const SECRET_KEY_FILE: &str = "secret-mac.key";

/// This state directory's name among others on one Docker daemon (see
/// `StateDir::image_names`): 16 hex digits, first writer wins.
const ID_FILE: &str = "id";

/// One directory of the state directory, by what it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bucket {
    /// File contents by their sha256: small ones in packs
    /// (`store/blobs/packs/`, see `packs.rs`), larger ones a file each
    /// (`store/blobs/ab/<hex>`).
    Blobs,
    /// Records of one kind by key: `store/<kind>/ab/<hex>`.
    Records(RecordKind),
    /// One directory per cache volume, by `cache_volume_key` of its name.
    CacheVolumes,
    /// Per-exec copies of mounted directories and files, removed after each
    /// exec; `<pid>-<random>` names tell whose they are.
    Scratch,
    /// Temp files of writes in progress (`.gantry-tmp-<pid>-<random>`),
    /// renamed into their bucket when complete.
    Temp,
    /// The native runtime's snapshot store (`gantry-native`): unpacked
    /// layers, image and tag records, the upper directories of running
    /// steps. The runtime lays out the inside; removing the bucket removes
    /// every step image of the native runtime.
    Snapshots,
    /// What `gantry call` keeps per module, all of it rebuilt when missing:
    /// function descriptions by source digest, the language runtimes' files
    /// and built Go dispatchers (docs/modules.md, "Caches").
    Modules,
    /// One lock file per record being produced (`store/locks/<kind>/ab/<hex>`),
    /// held while one engine produces it so that the others on this state
    /// directory wait for its record instead of doing the work again
    /// (`StateDir::lock_record`).
    Locks,
}

impl Bucket {
    pub const ALL: [Bucket; 14] = [
        Bucket::Blobs,
        Bucket::Records(RecordKind::Exec),
        Bucket::Records(RecordKind::PathRead),
        Bucket::Records(RecordKind::HostTree),
        Bucket::Records(RecordKind::HostIndex),
        Bucket::Records(RecordKind::Recipe),
        Bucket::Records(RecordKind::Fetch),
        Bucket::Records(RecordKind::StepRuns),
        Bucket::CacheVolumes,
        Bucket::Scratch,
        Bucket::Temp,
        Bucket::Snapshots,
        Bucket::Modules,
        Bucket::Locks,
    ];

    /// The bucket's directory, relative to the state directory.
    pub fn dir(self) -> &'static str {
        match self {
            Bucket::Blobs => "store/blobs",
            Bucket::Records(RecordKind::Exec) => "store/exec",
            Bucket::Records(RecordKind::PathRead) => "store/path-reads",
            Bucket::Records(RecordKind::HostTree) => "store/host-trees",
            Bucket::Records(RecordKind::HostIndex) => "store/host-indexes",
            // One append-only file, not a directory (see `recipes`).
            Bucket::Records(RecordKind::Recipe) => "store/recipes.log",
            Bucket::Records(RecordKind::Fetch) => "store/fetches",
            Bucket::Records(RecordKind::StepRuns) => "store/step-runs",
            Bucket::CacheVolumes => "cache-volumes",
            Bucket::Scratch => "scratch",
            Bucket::Temp => "store/tmp",
            Bucket::Snapshots => "snapshots",
            Bucket::Modules => "modules",
            Bucket::Locks => "store/locks",
        }
    }

    /// What the bucket holds, for people.
    pub fn name(self) -> &'static str {
        match self {
            Bucket::Blobs => "blobs",
            Bucket::Records(RecordKind::Exec) => "exec results",
            Bucket::Records(RecordKind::PathRead) => "container path reads",
            Bucket::Records(RecordKind::HostTree) => "host trees",
            Bucket::Records(RecordKind::HostIndex) => "host indexes",
            Bucket::Records(RecordKind::Recipe) => "recipes",
            Bucket::Records(RecordKind::Fetch) => "fetched sources",
            Bucket::Records(RecordKind::StepRuns) => "step runs (cache explanations)",
            Bucket::CacheVolumes => "cache volumes",
            Bucket::Scratch => "scratch",
            Bucket::Temp => "temp files",
            Bucket::Snapshots => "snapshots (native runtime)",
            Bucket::Modules => "module caches",
            Bucket::Locks => "record locks",
        }
    }
}

/// The state directory: everything gantry keeps on disk, in one place.
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
    id: String,
    recipes: Arc<RecipeLog>,
    packs: Arc<Packs>,
}

impl StateDir {
    /// Opens the state directory at `root`, creating it when missing and
    /// migrating an older layout (logged) before anything reads it.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        fs::create_dir_all(&root).map_err(Error::io("creating", &root))?;
        // Private: it holds the secret MAC key and every cached output. Best
        // effort, as before: a directory someone else set up keeps its mode.
        let _ = fs::set_permissions(&root, fs::Permissions::from_mode(0o700));
        let recipes = Arc::new(RecipeLog::new(
            root.join(Bucket::Records(RecordKind::Recipe).dir()),
            root.join(Bucket::Temp.dir()),
        ));
        let packs = Arc::new(Packs::new(root.join(Bucket::Blobs.dir()).join(PACKS_DIR)));
        let mut dir = Self {
            root,
            id: String::new(),
            recipes,
            packs,
        };
        let marker = dir.root.join(LAYOUT_FILE);
        let found = match fs::read_to_string(&marker) {
            Ok(text) => Some(text.trim().to_owned()),
            Err(error) if error.kind() == ErrorKind::NotFound => None,
            Err(source) => return Err(Error::io("reading", &marker)(source)),
        };
        let migrate = found.as_deref() != Some(LAYOUT.to_string().as_str());
        match found.as_deref() {
            Some(found) if found == LAYOUT.to_string() => {}
            // Nothing moves from layout 3 to 4 (blob files are still read).
            Some("2" | "3") => {}
            Some(found) => {
                return Err(Error::NewerLayout {
                    path: dir.root.clone(),
                    found: found.to_owned(),
                    known: LAYOUT,
                })
            }
            None => crate::migrate::from_layout_1(&dir)?,
        }
        for bucket in Bucket::ALL {
            if bucket == Bucket::Records(RecordKind::Recipe) {
                continue;
            }
            let path = dir.bucket(bucket);
            fs::create_dir_all(&path).map_err(Error::io("creating", &path))?;
        }
        if migrate {
            crate::migrate::from_layout_2(&dir)?;
            // Last, so that an interrupted migration runs again.
            dir.write(&marker, format!("{LAYOUT}\n").as_bytes(), false)?;
        }
        dir.id = dir.read_or_create_id()?;
        crate::sweep::sweep(&dir);
        Ok(dir)
    }

    /// The names this state directory gives its Docker images: its own
    /// repositories, so that no other state directory on the daemon can
    /// untag or remove them (see `ImageNames`).
    pub fn image_names(&self) -> ImageNames {
        ImageNames::new(&self.id)
    }

    fn read_or_create_id(&self) -> Result<String> {
        let path = self.root.join(ID_FILE);
        let valid = |text: &str| {
            let id = text.trim();
            (id.len() == 16
                && id
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
            .then(|| id.to_owned())
        };
        let replace = match fs::read_to_string(&path) {
            Ok(text) => match valid(&text) {
                Some(id) => return Ok(id),
                None => true,
            },
            Err(error) if error.kind() == ErrorKind::NotFound => false,
            Err(source) => return Err(Error::io("reading", &path)(source)),
        };
        let id = format!("{:016x}", rand::random::<u64>());
        self.write(&path, format!("{id}\n").as_bytes(), !replace)?;
        let text = fs::read_to_string(&path).map_err(Error::io("reading", &path))?;
        valid(&text).ok_or_else(|| {
            Error::io("reading", &path)(std::io::Error::new(
                ErrorKind::InvalidData,
                "not a state directory ID",
            ))
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The recipe log (`Bucket::Records(RecordKind::Recipe)`).
    pub(crate) fn recipes(&self) -> &RecipeLog {
        &self.recipes
    }

    pub fn bucket(&self, bucket: Bucket) -> PathBuf {
        self.root.join(bucket.dir())
    }

    /// Where the entry `key` of a sharded bucket (blobs, records) lives.
    pub(crate) fn entry(&self, bucket: Bucket, key: &Digest) -> PathBuf {
        let hex = key.hex();
        self.bucket(bucket).join(&hex[..2]).join(hex)
    }

    pub fn cache_volume_dir(&self, name: &str) -> PathBuf {
        self.bucket(Bucket::CacheVolumes)
            .join(cache_volume_key(name).hex())
    }

    /// A new, empty scratch directory for one exec (see `Bucket::Scratch`).
    pub fn new_scratch_dir(&self) -> Result<PathBuf> {
        let scratch = self.bucket(Bucket::Scratch);
        create_unique_dir(&scratch).map_err(Error::io("creating a directory in", scratch))
    }

    /// The one write under the state directory: atomic, with its temp file
    /// in the `Temp` bucket. With `first_writer_wins`, an existing file is
    /// kept (even against another process writing at the same time).
    pub(crate) fn write(
        &self,
        path: &Path,
        bytes: &[u8],
        first_writer_wins: bool,
    ) -> Result<WriteOutcome> {
        let parent = path.parent().unwrap_or(&self.root);
        if !parent.is_dir() {
            // A new shard, or a bucket a prune removed under a running engine.
            fs::create_dir_all(parent).map_err(Error::io("creating", parent))?;
        }
        let temp = self.bucket(Bucket::Temp);
        let mut file = AtomicFile::new(path).temp_dir(&temp);
        if first_writer_wins {
            file = file.keep_existing();
        }
        match file.write(bytes) {
            // The temp bucket was removed (by a prune) under a running engine.
            Err(error) if error.source.kind() == ErrorKind::NotFound && !temp.is_dir() => {
                fs::create_dir_all(&temp).map_err(Error::io("creating", &temp))?;
                Ok(file.write(bytes)?)
            }
            outcome => Ok(outcome?),
        }
    }

    /// Stores `bytes` as a blob (packed when small, see `packs.rs`) unless
    /// it is there already, and returns its digest.
    pub(crate) fn write_blob(&self, bytes: &[u8]) -> Result<Digest> {
        let digest = Digest::of_bytes(bytes);
        self.write_hashed_blob(&digest, bytes)?;
        Ok(digest)
    }

    /// `write_blob` of bytes whose digest (`Digest::of_bytes`) the caller
    /// computed.
    pub(crate) fn write_hashed_blob(&self, digest: &Digest, bytes: &[u8]) -> Result<()> {
        debug_assert_eq!(*digest, Digest::of_bytes(bytes));
        let file = self.entry(Bucket::Blobs, digest);
        if bytes.len() as u64 <= PACKED_MAX {
            // A file of layout 3 holds it, or a pack.
            if !self.packs.contains(digest)? && !file.exists() {
                self.packs.put(digest, bytes)?;
            }
        } else if !file.exists() {
            // Content-addressed: whoever wrote it first wrote the same bytes.
            self.write(&file, bytes, true)?;
        }
        Ok(())
    }

    /// Whether the blob is here (in a pack this engine has seen, or as a
    /// file), without reading it.
    pub(crate) fn has_blob(&self, digest: &Digest) -> Result<bool> {
        Ok(self.packs.contains(digest)? || self.entry(Bucket::Blobs, digest).exists())
    }

    /// A blob's bytes, from its pack or its file.
    pub(crate) fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        if let Some(bytes) = self.packs.get(digest, false)? {
            return Ok(bytes);
        }
        let file = self.entry(Bucket::Blobs, digest);
        match fs::read(&file) {
            Ok(bytes) => Ok(bytes),
            Err(error) if error.kind() == ErrorKind::NotFound => {
                // Packed by another engine since this one last looked?
                self.packs
                    .get(digest, true)?
                    .ok_or_else(|| Error::io("reading", file)(error))
            }
            Err(error) => Err(Error::io("reading", file)(error)),
        }
    }

    /// A blob's contents as a stream: a large blob's file, or a packed
    /// blob's bytes (at most `PACKED_MAX`) read whole.
    pub(crate) fn open_blob(&self, digest: &Digest) -> Result<Box<dyn std::io::Read + Send>> {
        // Most blobs are small and packed: look there before trying a file.
        if let Some(bytes) = self.packs.get(digest, false)? {
            return Ok(Box::new(std::io::Cursor::new(bytes)));
        }
        let file = self.entry(Bucket::Blobs, digest);
        match fs::File::open(&file) {
            Ok(opened) => Ok(Box::new(opened)),
            Err(error) if error.kind() == ErrorKind::NotFound => {
                let bytes = self.read_blob(digest)?;
                Ok(Box::new(std::io::Cursor::new(bytes)))
            }
            Err(error) => Err(Error::io("reading", file)(error)),
        }
    }

    /// Every blob's digest: packed ones and files (a blob held both ways
    /// once).
    pub fn blob_digests(&self) -> Result<Vec<Digest>> {
        let mut digests: std::collections::BTreeSet<Digest> =
            self.packs.digests()?.into_iter().collect();
        let bucket = self.bucket(Bucket::Blobs);
        for shard in fs::read_dir(&bucket).map_err(Error::io("reading", &bucket))? {
            let shard = shard.map_err(Error::io("reading", &bucket))?.path();
            if shard.file_name().is_some_and(|name| name == PACKS_DIR) {
                continue;
            }
            for entry in fs::read_dir(&shard).map_err(Error::io("reading", &shard))? {
                let entry = entry.map_err(Error::io("reading", &shard))?;
                if let Some(digest) = entry.file_name().to_str().and_then(Digest::from_hex) {
                    digests.insert(digest);
                }
            }
        }
        Ok(digests.into_iter().collect())
    }

    /// Copies the file at `source` into the blob bucket, hashing it on the
    /// way (64 KiB at a time: memory stays bounded whatever its size), and
    /// returns its digest and size. The copy is a temp file renamed into
    /// place, first writer wins.
    pub(crate) fn write_blob_from(&self, source: &Path) -> Result<(Digest, u64)> {
        use std::io::{Read as _, Write as _};
        let mut input = fs::File::open(source).map_err(Error::io("reading", source))?;
        let len = input.metadata().map_or(u64::MAX, |meta| meta.len());
        if len <= PACKED_MAX {
            return self.write_small_blob(input, source, len);
        }
        let temp = self.bucket(Bucket::Temp);
        fs::create_dir_all(&temp).map_err(Error::io("creating", &temp))?;
        // The target is known only once the bytes are hashed: fill a temp
        // file under a provisional name, then link it into place.
        let staging = temp.join(format!(
            ".gantry-tmp-{}-{:016x}-blob",
            std::process::id(),
            rand::random::<u64>()
        ));
        let outcome = (|| {
            let mut hasher = gantry_core::BlobHasher::default();
            let mut size = 0u64;
            let mut buffer = vec![0u8; 64 * 1024];
            let mut output = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&staging)
                .map_err(Error::io("writing", &staging))?;
            loop {
                let n = match input.read(&mut buffer) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(error) if error.kind() == ErrorKind::Interrupted => continue,
                    Err(source_error) => return Err(Error::io("reading", source)(source_error)),
                };
                hasher.update(&buffer[..n]);
                output
                    .write_all(&buffer[..n])
                    .map_err(Error::io("writing", &staging))?;
                size += n as u64;
            }
            let digest = hasher.finish();
            let target = self.entry(Bucket::Blobs, &digest);
            if !target.exists() {
                let parent = target.parent().expect("blobs have a shard");
                fs::create_dir_all(parent).map_err(Error::io("creating", parent))?;
                match fs::hard_link(&staging, &target) {
                    Ok(()) => {}
                    // Content-addressed: whoever wrote it first wrote the same bytes.
                    Err(error) if error.kind() == ErrorKind::AlreadyExists => {}
                    Err(error) => return Err(Error::io("writing", &target)(error)),
                }
            }
            Ok((digest, size))
        })();
        let _ = fs::remove_file(&staging);
        outcome
    }

    /// `write_blob_from` for a file of (about) `len` bytes, up to
    /// `PACKED_MAX`: read whole and stored by `write_blob` (packed, unless
    /// the file grew meanwhile). Most files of a source tree are small; this
    /// spares each the staging copy, hard link and unlink of the streamed
    /// path, and the inode of a file of its own.
    fn write_small_blob(
        &self,
        mut input: fs::File,
        source: &Path,
        len: u64,
    ) -> Result<(Digest, u64)> {
        use std::io::Read as _;
        let capacity = usize::try_from(len).unwrap_or(0).saturating_add(1);
        let mut bytes = Vec::with_capacity(capacity);
        input
            .read_to_end(&mut bytes)
            .map_err(Error::io("reading", source))?;
        let digest = self.write_blob(&bytes)?;
        Ok((digest, bytes.len() as u64))
    }

    /// The key that MACs secret values in cache keys, created (mode 0600)
    /// on first use and kept so that cache keys survive restarts. It is not
    /// itself a secret value, but keeping it private stops anyone from
    /// testing guesses against cache keys. Engines starting together on a
    /// new state directory all end up with the first one written.
    pub fn secret_key(&self) -> Result<[u8; 32]> {
        let path = self.root.join(SECRET_KEY_FILE);
        let read = || match fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(error) if error.kind() == ErrorKind::NotFound => Ok(None),
            Err(source) => Err(Error::io("reading", &path)(source)),
        };
        let key =
            |bytes: Option<Vec<u8>>| bytes.and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok());
        let found = read()?;
        // Replace only a key that was there and damaged; a missing one is
        // written first-writer-wins, against engines starting together.
        let replace = found.is_some();
        if let Some(key) = key(found) {
            return Ok(key);
        }
        let new: [u8; 32] = rand::random();
        if replace {
            tracing::warn!(path = %path.display(), "the secret MAC key is damaged; replacing it (steps that use secrets run again)");
        }
        if self.write(&path, &new, !replace)? == WriteOutcome::Written {
            return Ok(new);
        }
        key(read()?).ok_or_else(|| {
            Error::io("reading", &path)(std::io::Error::new(
                ErrorKind::InvalidData,
                "not a 32-byte key",
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_directory_gets_every_bucket_and_the_layout() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path().join("state")).unwrap();
        for bucket in Bucket::ALL {
            if bucket != Bucket::Records(RecordKind::Recipe) {
                assert!(state.bucket(bucket).is_dir(), "{bucket:?}");
            }
        }
        let marker = fs::read_to_string(state.root().join(LAYOUT_FILE)).unwrap();
        assert_eq!(marker, "4\n");
        let mode = fs::metadata(state.root()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }

    #[test]
    fn a_newer_layout_is_refused_with_advice() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(LAYOUT_FILE), "5\n").unwrap();
        let error = StateDir::open(dir.path()).unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("has layout 5") && message.contains("--state-dir"),
            "{message}"
        );
    }

    #[test]
    fn the_secret_key_is_private_stable_and_first_writer_wins() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path()).unwrap();
        let key = state.secret_key().unwrap();
        let path = dir.path().join(SECRET_KEY_FILE);
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            StateDir::open(dir.path()).unwrap().secret_key().unwrap(),
            key
        );
        // Many engines starting at once on a new state directory agree.
        fs::remove_file(&path).unwrap();
        let keys: Vec<[u8; 32]> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| scope.spawn(|| state.secret_key().unwrap()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(keys.iter().all(|k| *k == keys[0]));
        assert_eq!(fs::read(&path).unwrap(), keys[0]);
        // A damaged key is replaced.
        fs::write(&path, b"short").unwrap();
        let replaced = state.secret_key().unwrap();
        assert_eq!(fs::read(&path).unwrap(), replaced);
        assert!(fs::read_dir(state.bucket(Bucket::Temp))
            .unwrap()
            .next()
            .is_none());
    }
}
