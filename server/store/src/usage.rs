//! What the state directory holds, what each part costs, and pruning it.
//!
//! `gantry prune` asks these questions and never walks the directory
//! itself: `StateDir::usage` sizes every bucket, `StateDir::records` lists
//! one kind's records with their sizes and ages, `RecordInfo::image` names
//! the Docker image a record keeps alive, and a `PrunePlan` says what goes,
//! so the caller can remove the images before the records that name them.
//! Sizes are apparent sizes (file lengths), not allocated blocks.

use std::fs;
use std::io::ErrorKind;
use std::path::Path;
use std::time::SystemTime;

use gantry_core::store::{ImageNames, RecordKind};
use gantry_core::Digest;

use crate::error::{Error, Result};
use crate::layout::{Bucket, StateDir};
use crate::packs::PACKS_DIR;

/// One stored record, as prune sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordInfo {
    pub kind: RecordKind,
    pub key: Digest,
    pub bytes: u64,
    /// When it was last used: written, or read by an engine
    /// (`DiskStore::for_engine` marks what it reads; recipes with a use mark
    /// in their log).
    pub modified: SystemTime,
}

impl RecordInfo {
    /// The step image this record refers to, named as `names` (its state
    /// directory's) name it: an exec result's committed filesystem (a Docker
    /// image, or a tag in the native runtime's snapshots). Removing the record
    /// without it leaks the image.
    pub fn image(&self, names: &ImageNames) -> Option<String> {
        (self.kind == RecordKind::Exec).then(|| names.step(&self.key))
    }
}

/// How much one bucket holds: entries (files, or directories for cache
/// volumes and scratch space) and bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Size {
    pub entries: u64,
    pub bytes: u64,
}

impl std::ops::AddAssign for Size {
    fn add_assign(&mut self, other: Size) {
        self.entries += other.entries;
        self.bytes += other.bytes;
    }
}

/// The size of every bucket of a state directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    buckets: Vec<(Bucket, Size)>,
}

impl Usage {
    pub fn of(&self, bucket: Bucket) -> Size {
        self.buckets
            .iter()
            .find(|(b, _)| *b == bucket)
            .map(|(_, size)| *size)
            .unwrap_or_default()
    }

    pub fn buckets(&self) -> &[(Bucket, Size)] {
        &self.buckets
    }

    pub fn total(&self) -> Size {
        let mut total = Size::default();
        for (_, size) in &self.buckets {
            total += *size;
        }
        total
    }
}

/// How much a prune keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Remove everything but the secret key.
    Nothing,
    /// Remove the records `Policy` selects. Blobs, cache volumes and the
    /// native runtime's snapshot store are kept.
    Records(Policy),
}

impl Keep {
    /// Records that fit in `bytes`, least recently used removed first
    /// (`gantry prune --keep-storage`).
    pub fn up_to(bytes: u64) -> Self {
        Keep::Records(Policy {
            max_bytes: Some(bytes),
            ..Policy::default()
        })
    }
}

/// Which records a `Keep::Records` prune removes: those not used since
/// `unused_before`, then the least recently used until blobs and records fit in
/// `max_bytes`; never one used at or after `used_since_kept` (a live
/// engine's start, see `StateDir::live_engines`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Policy {
    pub unused_before: Option<SystemTime>,
    pub max_bytes: Option<u64>,
    pub used_since_kept: Option<SystemTime>,
}

/// Whether `Keep::Records` may remove records of this kind: all of them,
/// oldest first. A recipe goes with the results of its time: an ID whose
/// recipe was evicted no longer loads (its error says the state was pruned).
/// A command line's step runs go when it has not run for longest: its next
/// miss is then explained as a new step.
fn evictable(_kind: RecordKind) -> bool {
    true
}

/// What a prune will remove (see `StateDir::plan_prune`).
#[derive(Debug, Clone)]
pub struct PrunePlan {
    keep: Keep,
    records: Vec<RecordInfo>,
    names: ImageNames,
}

impl PrunePlan {
    pub fn records(&self) -> &[RecordInfo] {
        &self.records
    }

    /// The Docker images the removed records refer to: remove these first.
    pub fn images(&self) -> Vec<String> {
        self.records
            .iter()
            .filter_map(|record| record.image(&self.names))
            .collect()
    }

    pub fn keep(&self) -> Keep {
        self.keep
    }
}

/// What a prune removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    pub records: usize,
    pub bytes: u64,
}

impl StateDir {
    /// Every record of `kind`, with its size and age.
    pub fn records(&self, kind: RecordKind) -> Result<Vec<RecordInfo>> {
        if kind == RecordKind::Recipe {
            return Ok(self
                .recipes()
                .list()?
                .into_iter()
                .map(|recipe| RecordInfo {
                    kind,
                    key: recipe.key,
                    bytes: recipe.bytes,
                    modified: recipe.used,
                })
                .collect());
        }
        let bucket = self.bucket(Bucket::Records(kind));
        let mut out = Vec::new();
        for shard in read_dir(&bucket)? {
            for entry in read_dir(&shard.path())? {
                let name = entry.file_name();
                let Some(key) = name.to_str().and_then(Digest::from_hex) else {
                    continue;
                };
                let meta = match entry.metadata() {
                    Ok(meta) => meta,
                    // Removed since the listing (a concurrent prune).
                    Err(error) if error.kind() == ErrorKind::NotFound => continue,
                    Err(error) => return Err(Error::io("reading", entry.path())(error)),
                };
                out.push(RecordInfo {
                    kind,
                    key,
                    bytes: meta.len(),
                    modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                });
            }
        }
        Ok(out)
    }

    pub fn usage(&self) -> Result<Usage> {
        let buckets = Bucket::ALL
            .into_iter()
            .map(|bucket| {
                let dir = self.bucket(bucket);
                let size = match bucket {
                    Bucket::Records(RecordKind::Recipe) => Size {
                        entries: self.recipes().list()?.len() as u64,
                        bytes: self.recipes().size()?,
                    },
                    Bucket::Blobs | Bucket::Records(_) => {
                        let mut size = Size::default();
                        for shard in read_dir(&dir)? {
                            let path = shard.path();
                            if bucket == Bucket::Blobs && shard.file_name() == PACKS_DIR {
                                // Blobs, not files, are the entries.
                                let (entries, bytes) = crate::packs::count(&path)?;
                                size += Size { entries, bytes };
                                continue;
                            }
                            size += tree_size(&path)?;
                        }
                        size
                    }
                    Bucket::Temp | Bucket::Locks | Bucket::Snapshots => tree_size(&dir)?,
                    Bucket::CacheVolumes | Bucket::Scratch | Bucket::Modules => {
                        let mut size = Size::default();
                        for entry in read_dir(&dir)? {
                            size += Size {
                                entries: 1,
                                bytes: tree_size(&entry.path())?.bytes,
                            };
                        }
                        size
                    }
                };
                Ok((bucket, size))
            })
            .collect::<Result<_>>()?;
        Ok(Usage { buckets })
    }

    /// Decides what a prune removes. With `Keep::Nothing`, everything; with
    /// `Keep::Records`, what its `Policy` selects, least recently used first.
    pub fn plan_prune(&self, keep: Keep) -> Result<PrunePlan> {
        let records = match keep {
            Keep::Nothing => {
                let mut all = Vec::new();
                for kind in RecordKind::ALL {
                    all.extend(self.records(kind)?);
                }
                all
            }
            Keep::Records(policy) => {
                let mut candidates = Vec::new();
                for kind in RecordKind::ALL.into_iter().filter(|kind| evictable(*kind)) {
                    candidates.extend(self.records(kind)?);
                }
                candidates.sort_by_key(|record| (record.modified, record.kind, record.key));
                candidates.retain(|record| {
                    policy
                        .used_since_kept
                        .is_none_or(|since| record.modified < since)
                });
                let (mut plan, rest): (Vec<_>, Vec<_>) =
                    candidates.into_iter().partition(|record| {
                        policy
                            .unused_before
                            .is_some_and(|before| record.modified < before)
                    });
                if let Some(budget) = policy.max_bytes {
                    let usage = self.usage()?;
                    let mut held = usage.of(Bucket::Blobs).bytes;
                    for kind in RecordKind::ALL {
                        held += usage.of(Bucket::Records(kind)).bytes;
                    }
                    held = held.saturating_sub(plan.iter().map(|record| record.bytes).sum());
                    for record in rest {
                        if held <= budget {
                            break;
                        }
                        held = held.saturating_sub(record.bytes);
                        plan.push(record);
                    }
                }
                plan
            }
        };
        Ok(PrunePlan {
            keep,
            records,
            names: self.image_names(),
        })
    }

    /// Carries out a plan. With `Keep::Nothing` every bucket goes (blobs,
    /// records, cache volumes, scratch and temp files, the native runtime's
    /// snapshots); the secret key stays,
    /// so cache keys of secret steps stay stable for the next run.
    pub fn prune(&self, plan: &PrunePlan) -> Result<Pruned> {
        match plan.keep {
            Keep::Nothing => {
                let bytes = self.usage()?.total().bytes;
                for bucket in Bucket::ALL {
                    let dir = self.bucket(bucket);
                    let removed = if bucket == Bucket::Records(RecordKind::Recipe) {
                        fs::remove_file(&dir)
                    } else {
                        fs::remove_dir_all(&dir)
                    };
                    match removed {
                        Err(error) if error.kind() != ErrorKind::NotFound => {
                            return Err(Error::io("removing", dir)(error));
                        }
                        _ => {}
                    }
                }
                // Empty now, unless something else was put there.
                let _ = fs::remove_dir(self.root().join("store"));
                Ok(Pruned {
                    records: plan.records.len(),
                    bytes,
                })
            }
            Keep::Records(_) => {
                let mut pruned = Pruned {
                    records: 0,
                    bytes: 0,
                };
                let recipes: std::collections::HashSet<Digest> = plan
                    .records
                    .iter()
                    .filter(|record| record.kind == RecordKind::Recipe)
                    .map(|record| record.key)
                    .collect();
                if !recipes.is_empty() {
                    let (dropped, freed) = self.recipes().retain(|key| !recipes.contains(key))?;
                    pruned.records += dropped.min(recipes.len());
                    pruned.bytes += freed;
                }
                for record in plan.records.iter().filter(|r| r.kind != RecordKind::Recipe) {
                    let path = self.entry(Bucket::Records(record.kind), &record.key);
                    match fs::remove_file(&path) {
                        Ok(()) => {
                            pruned.records += 1;
                            pruned.bytes += record.bytes;
                        }
                        Err(error) if error.kind() == ErrorKind::NotFound => {}
                        Err(error) => return Err(Error::io("removing", path)(error)),
                    }
                }
                Ok(pruned)
            }
        }
    }
}

/// The entries of `dir`; none when it does not exist.
fn read_dir(dir: &Path) -> Result<Vec<fs::DirEntry>> {
    match fs::read_dir(dir) {
        Ok(entries) => Ok(entries.flatten().collect()),
        Err(error) if error.kind() == ErrorKind::NotFound => Ok(Vec::new()),
        Err(error) => Err(Error::io("reading", dir)(error)),
    }
}

/// Files under `path` (itself, when a file) and their bytes. Symlinks are
/// counted, never followed.
fn tree_size(path: &Path) -> Result<Size> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(error) if error.kind() == ErrorKind::NotFound => return Ok(Size::default()),
        Err(error) => return Err(Error::io("reading", path)(error)),
    };
    if !meta.is_dir() {
        return Ok(Size {
            entries: 1,
            bytes: meta.len(),
        });
    }
    let mut size = Size::default();
    for entry in read_dir(path)? {
        size += tree_size(&entry.path())?;
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use gantry_core::store::Store as _;

    use super::*;
    use crate::DiskStore;

    /// The step image tag, pinned: changing its format would leave every
    /// image tagged before the change out of reach of prune.
    fn tag(state: &StateDir, key: &Digest) -> String {
        let id = fs::read_to_string(state.root().join("id")).unwrap();
        format!("gantry.local/{}/cache:{}", id.trim(), key.hex())
    }

    /// What a recipe's line adds to its JSON: digest, time (13 digits of milliseconds), spaces, newline.
    const LINE: u64 = 64 + 1 + 13 + 1 + 1;
    /// A packed blob's index entry.
    const PACKED: u64 = crate::packs::ENTRY as u64;

    /// Backdates a record (recipes carry their time in the log: written now).
    fn age(state: &StateDir, kind: RecordKind, key: &Digest, seconds_ago: u64) {
        if kind == RecordKind::Recipe {
            return;
        }
        let path = state.entry(Bucket::Records(kind), key);
        fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(SystemTime::now() - Duration::from_secs(seconds_ago))
            .unwrap();
    }

    /// A store with one record of every kind (100 bytes each, the exec the
    /// oldest), a 1000-byte blob (packed: and its index entry), a cache
    /// volume and a 20-byte snapshot.
    fn filled() -> (tempfile::TempDir, DiskStore, Vec<Digest>) {
        let dir = tempfile::tempdir().unwrap();
        let store = DiskStore::open(dir.path()).unwrap();
        let keys: Vec<Digest> = RecordKind::ALL
            .iter()
            .enumerate()
            .map(|(n, kind)| {
                let key = Digest::of_bytes(&[n as u8]);
                // 100 bytes of JSON (recipes must parse).
                let value = format!("\"{}\"", "x".repeat(98));
                store.put(*kind, &key, value.as_bytes()).unwrap();
                age(store.state_dir(), *kind, &key, 1000 - 100 * n as u64);
                key
            })
            .collect();
        store.put_blob(&[b'b'; 1000]).unwrap();
        let volume = store.cache_volume_dir("go-mod");
        fs::create_dir_all(volume.join("pkg")).unwrap();
        fs::write(volume.join("pkg/a"), [0; 30]).unwrap();
        let layer = store
            .state_dir()
            .bucket(Bucket::Snapshots)
            .join("layers/l1");
        fs::create_dir_all(&layer).unwrap();
        fs::write(layer.join("f"), [0; 20]).unwrap();
        (dir, store, keys)
    }

    #[test]
    fn usage_sizes_every_bucket() {
        let (_dir, store, _) = filled();
        let usage = store.state_dir().usage().unwrap();
        for kind in RecordKind::ALL {
            let overhead = if kind == RecordKind::Recipe { LINE } else { 0 };
            assert_eq!(
                usage.of(Bucket::Records(kind)),
                Size {
                    entries: 1,
                    bytes: 100 + overhead
                },
                "{kind:?}"
            );
        }
        assert_eq!(
            usage.of(Bucket::Blobs),
            Size {
                entries: 1,
                bytes: 1000 + PACKED
            }
        );
        assert_eq!(
            usage.of(Bucket::CacheVolumes),
            Size {
                entries: 1,
                bytes: 30
            }
        );
        assert_eq!(
            usage.of(Bucket::Snapshots),
            Size {
                entries: 1,
                bytes: 20
            }
        );
        assert_eq!(usage.of(Bucket::Temp), Size::default());
        assert_eq!(usage.total().bytes, 1750 + LINE + PACKED);
    }

    #[test]
    fn records_know_their_kind_size_and_image() {
        let (_dir, store, keys) = filled();
        let state = store.state_dir();
        let exec = state.records(RecordKind::Exec).unwrap();
        assert_eq!(exec.len(), 1);
        assert_eq!((exec[0].key, exec[0].bytes), (keys[0], 100));
        assert_eq!(
            exec[0].image(&state.image_names()),
            Some(tag(state, &keys[0]))
        );
        for kind in &RecordKind::ALL[1..] {
            let records = state.records(*kind).unwrap();
            assert_eq!(records.len(), 1);
            assert_eq!(
                records[0].image(&state.image_names()),
                None,
                "{kind:?} refers to no image"
            );
        }
    }

    #[test]
    fn keep_up_to_removes_the_oldest_evictable_records_first() {
        let (_dir, store, keys) = filled();
        let state = store.state_dir();
        // Blobs and records hold 1700 bytes (and a recipe line's and a pack
        // index entry's overhead); keeping 200 less must drop two records:
        // the exec (oldest) and the path read (next).
        let plan = state.plan_prune(Keep::up_to(1500 + LINE + PACKED)).unwrap();
        let planned: Vec<_> = plan.records().iter().map(|r| (r.kind, r.key)).collect();
        assert_eq!(
            planned,
            [(RecordKind::Exec, keys[0]), (RecordKind::PathRead, keys[1])]
        );
        assert_eq!(plan.images(), [tag(state, &keys[0])]);
        let pruned = state.prune(&plan).unwrap();
        assert_eq!((pruned.records, pruned.bytes), (2, 200));
        assert_eq!(state.records(RecordKind::Exec).unwrap(), Vec::new());
        assert_eq!(state.records(RecordKind::HostTree).unwrap().len(), 1);
        // However small the budget, blobs and volumes stay; the recipe goes
        // with the results of its time (the log is rewritten without it).
        let plan = state.plan_prune(Keep::up_to(0)).unwrap();
        assert!(plan.records().iter().any(|r| r.kind == RecordKind::Recipe));
        state.prune(&plan).unwrap();
        let usage = state.usage().unwrap();
        assert_eq!(
            usage.of(Bucket::Records(RecordKind::Recipe)),
            Size::default()
        );
        assert_eq!(
            usage.of(Bucket::Records(RecordKind::StepRuns)),
            Size::default()
        );
        assert_eq!(usage.of(Bucket::Blobs).entries, 1);
        assert_eq!(usage.of(Bucket::CacheVolumes).entries, 1);
        assert_eq!(usage.of(Bucket::Snapshots).bytes, 20);
        assert_eq!(usage.total().bytes, 1050 + PACKED);
    }

    #[test]
    fn unused_before_and_live_engines_select_records() {
        let (_dir, store, keys) = filled();
        let state = store.state_dir();
        // Exec 1000 s old, path read 900 s, host tree 800 s, ...
        let now = SystemTime::now();
        let policy = Policy {
            unused_before: Some(now - Duration::from_secs(850)),
            ..Policy::default()
        };
        let plan = state.plan_prune(Keep::Records(policy)).unwrap();
        let planned: Vec<_> = plan.records().iter().map(|r| (r.kind, r.key)).collect();
        assert_eq!(
            planned,
            [(RecordKind::Exec, keys[0]), (RecordKind::PathRead, keys[1])]
        );
        // A live engine that started 950 s ago used the path read: it stays,
        // even when the size budget asks for everything.
        let policy = Policy {
            unused_before: Some(now - Duration::from_secs(850)),
            max_bytes: Some(0),
            used_since_kept: Some(now - Duration::from_secs(950)),
        };
        let plan = state.plan_prune(Keep::Records(policy)).unwrap();
        let planned: Vec<_> = plan.records().iter().map(|r| (r.kind, r.key)).collect();
        assert_eq!(planned, [(RecordKind::Exec, keys[0])]);
    }

    #[test]
    fn an_engine_marks_what_it_reads_and_its_lease_is_live() {
        let (dir, store, keys) = filled();
        let state = store.state_dir();
        let before = state.records(RecordKind::Exec).unwrap()[0].modified;
        // Inspecting does not mark.
        store.get(RecordKind::Exec, &keys[0]).unwrap().unwrap();
        assert_eq!(state.records(RecordKind::Exec).unwrap()[0].modified, before);
        assert_eq!(state.live_engines().unwrap(), []);
        let engine = DiskStore::open(dir.path()).unwrap().for_engine().unwrap();
        let live = state.live_engines().unwrap();
        assert_eq!(live.len(), 1);
        assert_eq!(live[0].pid, std::process::id());
        engine.get(RecordKind::Exec, &keys[0]).unwrap().unwrap();
        let used = state.records(RecordKind::Exec).unwrap()[0].modified;
        assert!(used >= live[0].since && used > before);
        drop(engine);
        assert_eq!(state.live_engines().unwrap(), []);
    }

    #[test]
    fn keep_nothing_removes_everything_but_the_secret_key() {
        let (dir, store, keys) = filled();
        let state = store.state_dir();
        let key = state.secret_key().unwrap();
        let plan = state.plan_prune(Keep::Nothing).unwrap();
        assert_eq!(plan.records().len(), RecordKind::ALL.len());
        assert_eq!(plan.images(), [tag(state, &keys[0])]);
        let pruned = state.prune(&plan).unwrap();
        assert_eq!((pruned.records, pruned.bytes), (7, 1750 + LINE + PACKED));
        assert_eq!(state.usage().unwrap().total(), Size::default());
        assert!(!dir.path().join("store").exists());
        assert!(!dir.path().join("cache-volumes").exists());
        assert!(!dir.path().join("snapshots").exists());
        assert_eq!(
            StateDir::open(dir.path()).unwrap().secret_key().unwrap(),
            key
        );
    }
}
