//! Reading the client's host filesystem into content-addressed trees.
//!
//! A host directory becomes a `Tree` whose digest covers names, modes,
//! symlink targets and contents. Re-reading an unchanged tree must cost
//! little more than a `stat` per entry, so each read leaves a snapshot
//! (`host_index`): the tree, its digest and the stat of everything the read
//! depended on (directories walked, entries kept, `.gitignore` files and
//! `.git` markers). The next read of the same root and options (the index
//! key) first re-stats those paths relative to the root's descriptor:
//!
//! - all unchanged: the stored digest is the answer; nothing is rebuilt;
//! - only regular files changed (contents, mode): just those are re-read
//!   and their tree entries replaced;
//! - anything else (an entry added, removed or replaced, a rules file
//!   changed): a full walk, which still reuses the blob of every file whose
//!   stat matches, as git's index does.
//!
//! In a running engine, a snapshot's watcher (`host_watch`) narrows the
//! re-stat to the paths inotify events named since the read, plus what
//! events cannot vouch for (`unvouched`).
//!
//! Snapshots live in memory in a running engine (`Indexes`, bounded) and in
//! the store (`RecordKind::HostIndex`, compact binary), so they survive
//! restarts; a damaged or older record means a full read, never an error.
//!
//! As in git, a file modified in the same clock tick as the read that
//! recorded it could keep its recorded stat ("racily clean"), so entries
//! whose mtime or ctime is not safely older than that read are re-read.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustix::fs::{AtFlags, Mode, OFlags};

use crate::checksum::Memo;
use crate::digest::{Digest, Domain, Encoder};
use crate::error::{Error, Result};
use crate::filter::{Gitignores, PathFilter, Verdict};
use crate::host_index::{Check, Role, Snapshot, Stat};
pub use crate::host_memory::{Indexes, MAX_ENTRIES_IN_MEMORY, MAX_INDEXES_IN_MEMORY};
use crate::host_watch::{Changes, Watched, Watcher};
use crate::store::{RecordKind, Store};
use crate::tree::{Entry, Owner, Tree};

/// How far file timestamps may trail the wall clock: kernels stamp files
/// from a clock that ticks every few milliseconds, and some filesystems
/// round further. A recorded path whose mtime or ctime is within this
/// margin of the recording read's start is re-checked (see the module docs).
const RACY_MARGIN_NS: i64 = 1_000_000_000;

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// Whether `now` still vouches for what `recorded` did in a snapshot taken
/// at `started_ns`: the same stat, last changed safely before that read.
fn still_valid(recorded: Option<Stat>, now: Option<Stat>, started_ns: i64) -> bool {
    recorded == now
        && now.is_none_or(|stat| stat.changed_ns() < started_ns.saturating_sub(RACY_MARGIN_NS))
}

/// The key a host tree is stored under (`RecordKind::HostTree`), by content
/// digest.
pub fn tree_key(content: &Digest) -> Digest {
    let mut encoder = Encoder::new(Domain::HostTree);
    encoder.digest(content);
    encoder.finish()
}

/// Whether `bytes` are a tree record in the binary form `read_directory`
/// writes (records of earlier versions are a tree's JSON).
pub fn is_tree_record(bytes: &[u8]) -> bool {
    bytes.starts_with(crate::host_index::TREE_MAGIC)
}

/// A tree read earlier by `read_directory`/`read_file`: the one a snapshot
/// in memory holds when there is one (no copy, nothing parsed), else the
/// stored record.
pub(crate) fn load_tree(store: &dyn Store, content: &Digest) -> Result<Arc<Tree>> {
    let in_memory = store
        .host_indexes()
        .and_then(|indexes| indexes.by_content(content))
        .and_then(|any| any.downcast::<Snapshot>().ok());
    if let Some(snapshot) = in_memory {
        return Ok(snapshot.tree.clone());
    }
    let bytes = store
        .get(RecordKind::HostTree, &tree_key(content))?
        .ok_or_else(|| Error::UnknownId {
            kind: "host directory".into(),
            id: content.to_string(),
        })?;
    if is_tree_record(&bytes) {
        return crate::host_index::decode_tree(&bytes)
            .map(Arc::new)
            .ok_or_else(|| {
                let damaged = std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "the stored tree of host directory {content} is damaged; load the \
                         directory again (or `gantry prune`)"
                    ),
                );
                Error::store("reading a host tree", damaged)
            });
    }
    // Stored by an earlier gantry version.
    serde_json::from_slice(&bytes)
        .map(Arc::new)
        .map_err(|source| Error::store("reading a host tree", source.into()))
}

fn host_error(path: &Path, reason: impl Into<String>) -> Error {
    Error::Host {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

/// The key a directory's index is stored under (`RecordKind::HostIndex`).
fn index_key(root: &Path, options: &ReadOptions<'_>) -> Digest {
    let mut encoder = Encoder::new(Domain::HostIndex);
    encoder
        .str(&root.to_string_lossy())
        .strs(options.include)
        .strs(options.exclude);
    // Written only when set, so indexes stored before it still serve.
    if options.gitignore {
        encoder.str("gitignore");
    }
    encoder.finish()
}

/// How `read_directory` filters what it reads.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadOptions<'a> {
    pub include: &'a [String],
    pub exclude: &'a [String],
    /// Apply the `.gitignore` files of the enclosing git repository (none
    /// when the directory is in no repository, as in Dagger).
    pub gitignore: bool,
    /// Where to record the `File.digest` of each file read whole, computed
    /// while its bytes are at hand (the engine's `checksums`), so a
    /// `digest` of the directory reads no blob back.
    pub checksums: Option<&'a Arc<Memo>>,
}

/// Reads a host directory (filtered) and stores its tree; returns the tree
/// digest, which identifies the content.
pub fn read_directory(store: &dyn Store, root: &Path, options: ReadOptions<'_>) -> Result<Digest> {
    let meta = fs::metadata(root).map_err(|error| host_error(root, error.to_string()))?;
    if !meta.is_dir() {
        return Err(host_error(root, "not a directory"));
    }
    let filter = PathFilter::new(options.include, options.exclude)?;
    let index_key = index_key(root, &options);
    let memory = store.host_indexes();
    let in_memory = memory
        .and_then(|indexes| indexes.get(&index_key))
        .and_then(|any| any.downcast::<Snapshot>().ok());
    // A snapshot in memory without a watcher is one inotify cannot serve;
    // one read from the store gets a watcher armed when it can.
    let arm = memory.is_some() && in_memory.is_none();
    let old = match in_memory {
        Some(old) => Some(old),
        None => store
            .get(RecordKind::HostIndex, &index_key)?
            .and_then(|bytes| crate::host_index::decode(&bytes, options.checksums.map(Arc::as_ref)))
            .map(Arc::new),
    };
    let started_ns = now_ns();
    let watch = memory.is_some();
    let reload = match &old {
        Some(old) => recheck(
            store,
            root,
            old,
            started_ns,
            options.checksums.map(Arc::as_ref),
            arm,
        )?,
        None => Reload::Walk(None),
    };
    let snapshot = match reload {
        Reload::Same(armed) => {
            let old = old.expect("only a snapshot can be unchanged");
            // The tree record may have been pruned since: put it back.
            store_tree_as(store, &old.tree, &old.digest)?;
            if let Some(indexes) = memory {
                let kept = match armed {
                    // Read from the store: from now on its watcher reports.
                    Some(watch) => Arc::new(Snapshot {
                        watch: Some(watch),
                        ..Snapshot::clone(&old)
                    }),
                    None => old.clone(),
                };
                indexes.put(index_key, old.digest, kept, old.checks.len());
            }
            return Ok(old.digest);
        }
        Reload::Patched(snapshot) => snapshot,
        Reload::Walk(watcher) => {
            let dir = open_dir(root)?;
            let watcher = match watcher {
                Some(watcher) => Some(watcher),
                None if watch => Watcher::new(&dir),
                None => None,
            };
            walk_root(
                store,
                root,
                &dir,
                &filter,
                &options,
                old.as_deref(),
                watcher,
            )?
        }
    };
    let snapshot = Arc::new(snapshot);
    store_records(store, &index_key, &snapshot, options.checksums)?;
    if let Some(indexes) = memory {
        let entries = snapshot.checks.len();
        indexes.put(index_key, snapshot.digest, snapshot.clone(), entries);
    }
    Ok(snapshot.digest)
}

/// Above this many recorded paths a snapshot's two records are encoded
/// and sealed on two threads (each hashes its own megabyte or so for a
/// 10,000-file tree); below it a thread costs more than it saves.
const RECORDS_IN_PARALLEL: usize = 2_000;

/// Stores a new snapshot: its tree (`HostTree`, by content, unless stored
/// already) and the index (`HostIndex`, by `index_key`), written behind
/// the answer (`Store::put_behind`): a running engine answers from the
/// snapshot in memory, and a record that never got written is rebuilt by
/// the next read (an index) or put back by it (a tree).
fn store_records(
    store: &dyn Store,
    index_key: &Digest,
    snapshot: &Arc<Snapshot>,
    checksums: Option<&Arc<Memo>>,
) -> Result<()> {
    let tree_key = tree_key(&snapshot.digest);
    let with_tree = !store.has(RecordKind::HostTree, &tree_key)?;
    let mut keys = vec![(RecordKind::HostIndex, *index_key)];
    if with_tree {
        keys.push((RecordKind::HostTree, tree_key));
    }
    let (snapshot, checksums) = (snapshot.clone(), checksums.cloned());
    let encode = move || {
        let index = || crate::host_index::encode(&snapshot, checksums.as_deref());
        if !with_tree {
            return vec![index()];
        }
        let tree = || crate::host_index::encode_tree(&snapshot.tree);
        if snapshot.checks.len() < RECORDS_IN_PARALLEL {
            return vec![index(), tree()];
        }
        std::thread::scope(|scope| {
            let index = scope.spawn(index);
            let tree = tree();
            let index = index
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            vec![index, tree]
        })
    };
    store.put_behind(keys, Box::new(encode))
}

/// A full read of the directory open as `dir` (`root` on the host),
/// reusing the blobs `old` vouches for; with a `watcher`, every directory
/// is watched before it is listed.
fn walk_root(
    store: &dyn Store,
    root: &Path,
    dir: &rustix::fd::OwnedFd,
    filter: &PathFilter,
    options: &ReadOptions<'_>,
    old: Option<&Snapshot>,
    watcher: Option<Arc<Watcher>>,
) -> Result<Snapshot> {
    let started_ns = now_ns();
    let stat = rustix::fs::fstat(dir).map_err(|error| host_error(root, error.to_string()))?;
    let mut walk = Walk {
        store,
        filter,
        git: None,
        owners: false,
        known: old.map(known_blobs).unwrap_or_default(),
        checks: Vec::new(),
        tree: Tree::default(),
        unread: Vec::new(),
        checksums: options.checksums.map(Arc::as_ref),
        watch: watcher.map(|watcher| WalkWatch {
            seq: watcher.now(),
            watcher,
            #[allow(
                clippy::unnecessary_cast,
                reason = "`st_dev`'s type differs between targets"
            )]
            device: stat.st_dev as u64,
            watched: std::collections::HashSet::new(),
            linked: Vec::new(),
        }),
    };
    if options.gitignore {
        walk.git = enclosing_repository(root, &mut walk.checks)?;
    }
    walk.checks.push(Check {
        path: String::new(),
        role: Role::Dir,
        stat: Some(Stat::of_raw(&stat)),
    });
    walk.dir(root, "", &mut Vec::new())?;
    walk.read_files()?;
    let digest = walk.tree.digest();
    Ok(Snapshot {
        started_ns,
        digest,
        tree: Arc::new(walk.tree),
        checks: walk.checks,
        watch: walk
            .watch
            .map(|watch| Watched::new(watch.watcher, watch.seq, watch.linked)),
    })
}

fn open_dir(root: &Path) -> Result<rustix::fd::OwnedFd> {
    rustix::fs::open(
        root,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|error| host_error(root, std::io::Error::from(error).to_string()))
}

/// What re-checking a snapshot against the host found.
enum Reload {
    /// Every recorded path is as recorded. With the watcher armed for a
    /// snapshot read from the store, which the snapshot is to keep.
    Same(Option<Watched>),
    /// Only regular files changed; they were re-read into this snapshot.
    Patched(Snapshot),
    /// Something else changed: walk the directory again (with the
    /// snapshot's watcher, when it had one).
    Walk(Option<Arc<Watcher>>),
}

/// Re-stats the paths `old` recorded, relative to `root`'s descriptor:
/// those its watcher's events named and those events cannot vouch for
/// (`unvouched`), or all of them when it has no watcher. Without one and
/// with `arm` (a running engine's snapshot read from the store), a watcher
/// is armed first, so that the next reload can rely on events.
fn recheck(
    store: &dyn Store,
    root: &Path,
    old: &Snapshot,
    started_ns: i64,
    checksums: Option<&Memo>,
    arm_watcher: bool,
) -> Result<Reload> {
    let Ok(dir) = open_dir(root) else {
        return Ok(Reload::Walk(None));
    };
    let (only, watcher, seq) = match &old.watch {
        Some(watched) => {
            let (changes, seq) = watched.watcher.changes_since(watched.seq());
            let only = match changes {
                Changes::Named(named) => {
                    Some((unvouched(old, &named, &watched.linked), named.contains("")))
                }
                Changes::Unknown => None,
            };
            (only, Some(watched.watcher.clone()), seq)
        }
        None if arm_watcher => match arm(root, &dir, old) {
            Some((watcher, seq)) => (None, Some(watcher), seq),
            None => (None, None, 0),
        },
        None => (None, None, 0),
    };
    let restated = match &only {
        Some((at, root_named)) => restat(&dir, old, at, !root_named),
        None => restat(&dir, old, &(0..old.checks.len()).collect::<Vec<_>>(), false),
    };
    let restated_count = only.as_ref().map_or(old.checks.len(), |(at, _)| at.len());
    #[cfg(test)]
    RESTATED.set(restated_count);
    tracing::debug!(
        root = %root.display(),
        watched = old.watch.is_some(),
        restated = restated_count,
        of = old.checks.len(),
        changed = restated.as_ref().map(|found| found.changed.len()),
        "host directory re-stat'ed"
    );
    let Some(Restat { changed, linked }) = restated else {
        return Ok(Reload::Walk(watcher));
    };
    // Files found linked join those known (a partial re-stat saw only some).
    let linked = match (&only, &old.watch) {
        (Some(_), Some(watched)) => {
            let mut all = watched.linked.clone();
            all.extend(linked);
            all.sort_unstable();
            all.dedup();
            all
        }
        _ => linked,
    };
    let watched = watcher.map(|watcher| Watched::new(watcher, seq, linked));
    if changed.is_empty() {
        return Ok(match (&old.watch, watched) {
            (Some(kept), _) => {
                kept.confirm(seq);
                Reload::Same(None)
            }
            (None, armed) => Reload::Same(armed),
        });
    }
    let mut tree = Tree::clone(&old.tree);
    let mut checks = old.checks.clone();
    let paths: Vec<usize> = changed.iter().map(|(at, _)| *at).collect();
    for (at, stat) in changed {
        let check = &mut checks[at];
        // The stat was taken before the read: a change during the read
        // shows as a newer stat (or a racy one) next time.
        check.stat = Some(stat);
        match tree.entries.get_mut(&check.path) {
            Some(Entry::File {
                blob: old_blob,
                size: old_size,
                mode,
                owner,
                ..
            }) => {
                *mode = stat.mode & 0o7777;
                let read = read_host_file(store, &root.join(&check.path), *mode, *owner)?;
                read.remember(checksums, *mode, *owner);
                *old_blob = read.blob;
                *old_size = read.size;
            }
            // A snapshot whose checks and tree disagree: read it all again.
            _ => return Ok(Reload::Walk(watched.map(|watched| watched.watcher))),
        }
    }
    let digest = tree.digest();
    if let Some(memo) = checksums {
        // The new `Directory.digest` from the old one's: only the
        // directories above the changed files are hashed again.
        let changed = paths.iter().map(|&at| checks[at].path.as_str());
        memo.carry(&old.digest, &tree, &digest, changed);
    }
    Ok(Reload::Patched(Snapshot {
        started_ns,
        digest,
        tree: Arc::new(tree),
        checks,
        watch: watched,
    }))
}

#[cfg(test)]
thread_local! {
    /// How many recorded paths the last `recheck` on this thread re-stat'ed.
    static RESTATED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// A new watcher for a snapshot read from the store, watching each
/// directory it recorded, and the number the re-stat that follows starts
/// at: a change after a watch was added is reported, one before it is seen
/// by that re-stat. `None` when inotify cannot serve (see `host_watch`), or
/// a directory lies on another filesystem or is reached twice (as `Walk`
/// decides for the directories it lists).
fn arm(root: &Path, dir: &rustix::fd::OwnedFd, old: &Snapshot) -> Option<(Arc<Watcher>, u64)> {
    let watcher = Watcher::new(dir)?;
    let seq = watcher.now();
    let device = rustix::fs::fstat(dir).ok()?.st_dev;
    let mut watched = HashSet::new();
    for check in old.checks.iter().filter(|check| check.role == Role::Dir) {
        if check.path.starts_with('/') {
            return None;
        }
        if !check.path.is_empty() {
            let stat = rustix::fs::statat(dir, check.path.as_str(), AtFlags::SYMLINK_NOFOLLOW);
            if stat.ok()?.st_dev != device {
                return None;
            }
        }
        let path = if check.path.is_empty() {
            root.to_owned()
        } else {
            root.join(&check.path)
        };
        if !watched.insert(watcher.add(&path, &check.path)?) {
            return None;
        }
    }
    Some((watcher, seq))
}

/// The checks of `old` to re-stat when its watcher's events named only
/// `named`: those, and what events cannot vouch for: the root itself,
/// what lies above it and the rules files there are (their stat follows
/// symlinks), and files with several links (`linked`). Racy entries need
/// no stat here: the watches were in place before the read that recorded
/// them (a walk adds each before listing its directory; an armed watcher is
/// followed by a full re-stat), so a later change is an event, and a named
/// entry is re-stat'ed under the racy rule.
fn unvouched(old: &Snapshot, named: &HashSet<String>, linked: &[usize]) -> Vec<usize> {
    let mut at: Vec<usize> = old
        .checks
        .iter()
        .enumerate()
        .filter(|(_, check)| {
            check.path.is_empty()
                || check.path.starts_with('/')
                || check.role == Role::Marker
                // A rules file that exists may be a symlink; one that does
                // not would be created in a watched directory.
                || (check.role == Role::Rules && check.stat.is_some())
                || (!named.is_empty() && named.contains(&check.path))
        })
        .map(|(at, _)| at)
        .collect();
    at.extend_from_slice(linked);
    at.sort_unstable();
    at.dedup();
    at
}

/// Snapshots with fewer checks than this are re-stat'ed on one thread.
const PARALLEL_CHECKS: usize = 2_000;

/// What re-stat'ing a snapshot's paths found (all unchanged but `changed`).
struct Restat {
    /// Regular files whose stat changed (by check), with their new stat.
    changed: Vec<(usize, Stat)>,
    /// Regular files with more than one link (by check).
    linked: Vec<usize>,
}

/// Re-stats the paths `old` recorded at the indexes `at`, relative to
/// `dir` (its root), on up to `READERS` threads when they are many (the
/// stats are most of a reload without a watcher). `None` when anything but
/// a regular file's contents or mode changed and the directory must be
/// walked again. With `root_vouched` (its watcher's events did not name
/// the root), the root is only compared with its recorded stat: it is
/// re-stat'ed to see it replaced, and a change in it after its listing
/// would have been an event, so the racy rule (which would walk a root
/// changed in the second before the read, on every reload of that
/// second) does not apply to it.
fn restat(
    dir: &rustix::fd::OwnedFd,
    old: &Snapshot,
    at: &[usize],
    root_vouched: bool,
) -> Option<Restat> {
    let threads = if at.len() < PARALLEL_CHECKS {
        1
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get().min(READERS))
    };
    let chunk = at.len().div_ceil(threads).max(1);
    let walk = std::sync::atomic::AtomicBool::new(false);
    let restat_chunk = |indexes: &[usize]| {
        let mut found = Restat {
            changed: Vec::new(),
            linked: Vec::new(),
        };
        for &at in indexes {
            if walk.load(std::sync::atomic::Ordering::Relaxed) {
                break;
            }
            let check = &old.checks[at];
            let path = if check.path.is_empty() {
                "."
            } else {
                check.path.as_str()
            };
            let flags = match check.role {
                Role::Rules | Role::Marker => AtFlags::empty(),
                _ => AtFlags::SYMLINK_NOFOLLOW,
            };
            let raw = rustix::fs::statat(dir, path, flags).ok();
            let now = raw.as_ref().map(Stat::of_raw);
            if check.role == Role::Entry && raw.as_ref().is_some_and(|raw| raw.st_nlink > 1) {
                found.linked.push(at);
            }
            let unchanged = match check.role {
                Role::Marker => now.is_some() == check.stat.is_some(),
                Role::Dir if root_vouched && check.path.is_empty() => check.stat == now,
                _ => still_valid(check.stat, now, old.started_ns),
            };
            if unchanged {
                continue;
            }
            match (check.role, check.stat, now) {
                (Role::Entry, Some(was), Some(now)) if was.is_file() && now.is_file() => {
                    found.changed.push((at, now));
                }
                _ => {
                    walk.store(true, std::sync::atomic::Ordering::Relaxed);
                    break;
                }
            }
        }
        found
    };
    let found = if threads == 1 {
        restat_chunk(at)
    } else {
        std::thread::scope(|scope| {
            let parts: Vec<_> = at
                .chunks(chunk)
                .map(|indexes| scope.spawn(move || restat_chunk(indexes)))
                .collect();
            let mut all = Restat {
                changed: Vec::new(),
                linked: Vec::new(),
            };
            for part in parts {
                let part = part.join().expect("a stat thread does not panic");
                all.changed.extend(part.changed);
                all.linked.extend(part.linked);
            }
            all
        })
    };
    (!walk.into_inner()).then_some(found)
}

/// The blob of every regular file `snapshot` recorded, by path, with the
/// stat it had, for a full walk to reuse.
fn known_blobs(snapshot: &Snapshot) -> Known {
    let files = snapshot
        .checks
        .iter()
        .filter(|check| check.role == Role::Entry)
        .filter_map(|check| match (check.stat, snapshot.tree.get(&check.path)) {
            (Some(stat), Some(Entry::File { blob, .. })) if stat.is_file() => {
                Some((check.path.clone(), (stat, *blob)))
            }
            _ => None,
        })
        .collect();
    Known {
        files,
        started_ns: snapshot.started_ns,
    }
}

/// Blobs a full walk may reuse (see `known_blobs`).
#[derive(Default)]
struct Known {
    files: HashMap<String, (Stat, Digest)>,
    started_ns: i64,
}

impl Known {
    /// The recorded blob of `rel`, when its stat is unchanged and was
    /// recorded safely after its last modification.
    fn blob(&self, rel: &str, stat: Stat) -> Option<Digest> {
        let (known, blob) = self.files.get(rel)?;
        still_valid(Some(*known), Some(stat), self.started_ns).then_some(*blob)
    }
}

/// The git repository around `root` and the `.gitignore` rules that reach
/// `root` from above; `None` outside any repository. A `root` that those
/// rules ignore reads as missing, as git would not check it out. Each `.git`
/// looked for and each rules file read is recorded in `checks`.
fn enclosing_repository(root: &Path, checks: &mut Vec<Check>) -> Result<Option<Repository>> {
    let mut top = None;
    for dir in root.ancestors() {
        let marker = dir.join(".git");
        let found = fs::metadata(&marker).ok();
        checks.push(Check {
            path: marker.to_string_lossy().into_owned(),
            role: Role::Marker,
            stat: found.as_ref().map(Stat::of),
        });
        if found.is_some() {
            top = Some(dir);
            break;
        }
    }
    let Some(top) = top else {
        return Ok(None);
    };
    let relative = root
        .strip_prefix(top)
        .expect("an ancestor is a prefix")
        .to_string_lossy()
        .into_owned();
    let mut repository = Repository {
        rules: Gitignores::default(),
        prefix: relative.clone(),
    };
    let mut dir = String::new();
    for part in relative.split('/').filter(|part| !part.is_empty()) {
        let host_dir = top.join(&dir);
        let recorded = host_dir.join(".gitignore").to_string_lossy().into_owned();
        repository.add_rules(&host_dir, &dir, recorded, checks)?;
        dir = join(&dir, part);
        if repository.rules.ignores(&dir, true) {
            return Err(host_error(root, "no such file or directory"));
        }
    }
    Ok(Some(repository))
}

/// `.gitignore` rules of a repository, with paths relative to its top.
struct Repository {
    rules: Gitignores,
    /// Where the directory being read sits in the repository.
    prefix: String,
}

impl Repository {
    /// Adds the rules of `host_dir/.gitignore` (`dir` in the repository),
    /// recording its stat, taken before reading it, in `checks` under
    /// `recorded`.
    fn add_rules(
        &mut self,
        host_dir: &Path,
        dir: &str,
        recorded: String,
        checks: &mut Vec<Check>,
    ) -> Result<()> {
        let path = host_dir.join(".gitignore");
        checks.push(Check {
            path: recorded,
            role: Role::Rules,
            stat: fs::metadata(&path).ok().as_ref().map(Stat::of),
        });
        match fs::read_to_string(&path) {
            Ok(text) => self.rules.add(dir, &text),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(host_error(&path, error.to_string())),
        }
    }
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}/{name}")
    }
}

/// Reads a directory the engine itself manages (no filter, no index; owners
/// kept) and stores its tree; returns the tree digest for `load_tree`.
pub(crate) fn read_plain(store: &dyn Store, root: &Path) -> Result<Digest> {
    store_tree(store, &walk_plain(store, root, true)?)
}

/// Reads a directory the engine wrote for a source (a Git checkout: no
/// filter, no index, every entry root's, as Dagger gives them) into a tree;
/// file contents go to the blob store, the tree is not stored.
pub(crate) fn read_tree(store: &dyn Store, root: &Path) -> Result<Tree> {
    walk_plain(store, root, false)
}

/// Reads `root` without filter or index; `owners`: keep files' owners.
fn walk_plain(store: &dyn Store, root: &Path, owners: bool) -> Result<Tree> {
    let filter = PathFilter::default();
    let mut walk = Walk {
        store,
        filter: &filter,
        git: None,
        owners,
        known: Known::default(),
        checks: Vec::new(),
        tree: Tree::default(),
        unread: Vec::new(),
        checksums: None,
        watch: None,
    };
    walk.dir(root, "", &mut Vec::new())?;
    walk.read_files()?;
    Ok(walk.tree)
}

/// Stores a tree (once) under its content digest, which it returns.
fn store_tree(store: &dyn Store, tree: &Tree) -> Result<Digest> {
    let digest = tree.digest();
    store_tree_as(store, tree, &digest)?;
    Ok(digest)
}

/// Stores a tree (once) under `digest`, its content digest.
fn store_tree_as(store: &dyn Store, tree: &Tree, digest: &Digest) -> Result<()> {
    if !store.has(RecordKind::HostTree, &tree_key(digest))? {
        let record = crate::host_index::encode_tree(tree);
        store.put(RecordKind::HostTree, &tree_key(digest), &record)?;
    }
    Ok(())
}

/// The key a host file's snapshot is stored under (`RecordKind::HostIndex`,
/// beside the directories' own, which never end in this marker).
fn file_key(path: &Path) -> Digest {
    let mut encoder = Encoder::new(Domain::HostIndex);
    encoder.str(&path.to_string_lossy()).str("host-file");
    encoder.finish()
}

/// Reads one host file as a one-entry tree named after the file, streamed
/// into the store (a 1 GiB file costs no more memory than a small one).
///
/// Each read leaves a snapshot (the file's stat, under the racy rule) in the
/// store, so reading an unchanged file again, in a new session or after a
/// restart, is a `stat` and a small record: its bytes are neither copied
/// again nor does the copy need room for a second one.
pub fn read_file(store: &dyn Store, path: &Path) -> Result<Digest> {
    let meta = fs::metadata(path).map_err(|error| host_error(path, error.to_string()))?;
    if !meta.is_file() {
        return Err(host_error(path, "not a regular file"));
    }
    let key = file_key(path);
    let stat = Stat::of(&meta);
    let old = store
        .get(RecordKind::HostIndex, &key)?
        .and_then(|bytes| crate::host_index::decode(&bytes, None));
    if let Some(old) = old {
        let recorded = match old.checks.as_slice() {
            [check] => check.stat,
            _ => None,
        };
        if still_valid(recorded, Some(stat), old.started_ns) {
            // The tree record may have been pruned since: put it back.
            store_tree_as(store, &old.tree, &old.digest)?;
            return Ok(old.digest);
        }
    }
    let started_ns = now_ns();
    let (blob, size) = store.put_blob_file(path)?;
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tree = Tree::single(
        &name,
        Entry::File {
            blob,
            size,
            mode: meta.permissions().mode() & 0o7777,
            mtime: 0,
            owner: Owner::ROOT,
        },
    )?;
    let digest = store_tree(store, &tree)?;
    // The stat taken before the copy: a change during it makes the next
    // read copy again (a changed stat, or one too recent to vouch).
    let snapshot = Snapshot {
        started_ns,
        digest,
        tree: Arc::new(tree),
        checks: vec![Check {
            path: path.to_string_lossy().into_owned(),
            role: Role::Entry,
            stat: Some(stat),
        }],
        watch: None,
    };
    store.put(
        RecordKind::HostIndex,
        &key,
        &crate::host_index::encode(&snapshot, None),
    )?;
    Ok(digest)
}

/// One walk of a host directory into a tree.
struct Walk<'a> {
    store: &'a dyn Store,
    filter: &'a PathFilter,
    git: Option<Repository>,
    /// Keep files' owners (the engine's own directories); the client's
    /// files are read as root's.
    owners: bool,
    /// Blobs of the previous read, reused for files whose stat matches.
    known: Known,
    /// What this read depended on (see `Snapshot`).
    checks: Vec<Check>,
    tree: Tree,
    /// Regular files whose contents are still to be read (`read_files`):
    /// their entries hold a placeholder blob until then.
    unread: Vec<Unread>,
    /// See `ReadOptions::checksums`.
    checksums: Option<&'a Memo>,
    /// Watching each directory before it is listed (`host_watch`); dropped
    /// when a directory cannot be watched or lies on another filesystem.
    watch: Option<WalkWatch>,
}

/// What a walk that watches has watched so far.
struct WalkWatch {
    watcher: Arc<Watcher>,
    /// The watcher's number when the walk started.
    seq: u64,
    /// The root's filesystem: a directory on another one (a mount point)
    /// may be one inotify does not serve, so the walk stops watching.
    device: u64,
    /// Watch descriptors added: one seen twice is a directory reached by
    /// two paths (a bind mount), whose events would name only one.
    watched: HashSet<i32>,
    /// Checks of regular files with more than one link.
    linked: Vec<usize>,
}

/// A file `Walk::read_files` is to read: `rel` in the tree, `path` on the
/// host, and the mode and owner its entry has.
struct Unread {
    rel: String,
    path: PathBuf,
    mode: u32,
    owner: Owner,
}

impl Walk<'_> {
    /// Reads `dir` (`prefix` in the tree). `pending` holds the directories
    /// above it that are kept only if something under them is. Entries are
    /// stat'ed relative to the directory (`DirEntry::metadata` is an
    /// `fstatat` on its descriptor); full paths are built only for what is
    /// opened.
    fn dir(&mut self, dir: &Path, prefix: &str, pending: &mut Vec<(String, Entry)>) -> Result<()> {
        if let Some(watch) = &mut self.watch {
            let added = watch.watcher.add(dir, prefix);
            if !added.is_some_and(|wd| watch.watched.insert(wd)) {
                self.watch = None;
            }
        }
        if let Some(git) = &mut self.git {
            let in_repository = join(&git.prefix, prefix);
            let recorded = join(prefix, ".gitignore");
            git.add_rules(dir, &in_repository, recorded, &mut self.checks)?;
        }
        let mut names: Vec<_> = fs::read_dir(dir)
            .map_err(|error| host_error(dir, error.to_string()))?
            .filter_map(|entry| entry.ok())
            .collect();
        names.sort_by_key(|entry| entry.file_name());
        for entry in names {
            let rel = join(prefix, &entry.file_name().to_string_lossy());
            let meta = entry
                .metadata()
                .map_err(|error| host_error(&entry.path(), error.to_string()))?;
            let is_dir = meta.file_type().is_dir();
            let ignored = self
                .git
                .as_ref()
                .is_some_and(|git| git.rules.ignores(&join(&git.prefix, &rel), is_dir));
            let verdict = if ignored {
                Verdict::Skip
            } else {
                self.filter.verdict(&rel, is_dir)
            };
            let owner = match self.owners {
                true => Owner {
                    uid: meta.uid(),
                    gid: meta.gid(),
                },
                false => Owner::ROOT,
            };
            let mode = meta.permissions().mode() & 0o7777;
            match verdict {
                Verdict::Skip => {}
                Verdict::Traverse if is_dir => {
                    pending.push((
                        rel.clone(),
                        Entry::Dir {
                            mode,
                            owner,
                            mtime: 0,
                        },
                    ));
                    self.subdir(&entry.path(), &rel, &meta, pending)?;
                    if pending.last().is_some_and(|(dir, _)| *dir == rel) {
                        pending.pop();
                    }
                }
                Verdict::Traverse | Verdict::Keep => {
                    let Some(found) = self.entry(dir, &entry, &rel, &meta, owner)? else {
                        continue;
                    };
                    for (dir, entry) in pending.drain(..) {
                        self.tree.insert(&dir, entry)?;
                    }
                    self.tree.insert(&rel, found)?;
                    if is_dir {
                        self.subdir(&entry.path(), &rel, &meta, pending)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Walks a directory below the root, recording its stat first: names
    /// added to it after that change its mtime.
    fn subdir(
        &mut self,
        path: &Path,
        rel: &str,
        meta: &fs::Metadata,
        pending: &mut Vec<(String, Entry)>,
    ) -> Result<()> {
        if self
            .watch
            .as_ref()
            .is_some_and(|watch| watch.device != meta.dev())
        {
            self.watch = None;
        }
        self.checks.push(Check {
            path: rel.to_owned(),
            role: Role::Dir,
            stat: Some(Stat::of(meta)),
        });
        self.dir(path, rel, pending)
    }

    /// The entry for `entry` (in `dir`), reading a file's contents unless
    /// the previous read vouches for them. `None` for what trees do not
    /// hold (sockets, FIFOs).
    fn entry(
        &mut self,
        dir: &Path,
        entry: &fs::DirEntry,
        rel: &str,
        meta: &fs::Metadata,
        owner: Owner,
    ) -> Result<Option<Entry>> {
        let file_type = meta.file_type();
        let mode = meta.permissions().mode() & 0o7777;
        if file_type.is_dir() {
            return Ok(Some(Entry::Dir {
                mode,
                owner,
                mtime: 0,
            }));
        }
        let stat = Stat::of(meta);
        if file_type.is_symlink() {
            let path = dir.join(entry.file_name());
            let target =
                fs::read_link(&path).map_err(|error| host_error(&path, error.to_string()))?;
            self.checks.push(Check {
                path: rel.to_owned(),
                role: Role::Entry,
                stat: Some(stat),
            });
            return Ok(Some(Entry::Symlink {
                target: target.to_string_lossy().into_owned(),
                owner,
            }));
        }
        if !file_type.is_file() {
            return Ok(None);
        }
        let blob = match self.known.blob(rel, stat) {
            Some(blob) => blob,
            None => {
                self.unread.push(Unread {
                    rel: rel.to_owned(),
                    path: dir.join(entry.file_name()),
                    mode,
                    owner,
                });
                UNREAD
            }
        };
        let size = stat.size;
        if meta.nlink() > 1 {
            if let Some(watch) = &mut self.watch {
                watch.linked.push(self.checks.len());
            }
        }
        self.checks.push(Check {
            path: rel.to_owned(),
            role: Role::Entry,
            stat: Some(stat),
        });
        Ok(Some(Entry::File {
            blob,
            size,
            mode,
            mtime: 0,
            owner,
        }))
    }
}

/// The blob of a file entry until `Walk::read_files` has read the file.
const UNREAD: Digest = Digest::from_bytes([0; 32]);

/// Threads that read a walk's files at most.
const READERS: usize = 4;

impl Walk<'_> {
    /// Reads the files the walk found new or changed into the store (each
    /// streamed: memory stays bounded whatever a file's size), on up to
    /// `READERS` threads (one per core): reading and hashing, not the walk,
    /// is most of a first load. Their entries get their blobs and sizes.
    fn read_files(&mut self) -> Result<()> {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let unread = std::mem::take(&mut self.unread);
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(READERS)
            .min(unread.len());
        let next = AtomicUsize::new(0);
        let failed = std::sync::Mutex::new(None);
        let read: Vec<std::sync::OnceLock<FileRead>> =
            unread.iter().map(|_| std::sync::OnceLock::new()).collect();
        let store = self.store;
        let checksums = self.checksums;
        let work = || loop {
            let at = next.fetch_add(1, Ordering::Relaxed);
            let Some(file) = unread.get(at) else {
                break;
            };
            match read_host_file(store, &file.path, file.mode, file.owner) {
                Ok(done) => {
                    done.remember(checksums, file.mode, file.owner);
                    let _ = read[at].set(done);
                }
                Err(error) => {
                    // Stop every reader: the load fails with this error.
                    next.fetch_add(unread.len(), Ordering::Relaxed);
                    failed.lock().expect("never poisoned").get_or_insert(error);
                    break;
                }
            }
        };
        std::thread::scope(|scope| {
            for _ in 1..threads {
                scope.spawn(work);
            }
            work();
        });
        if let Some(error) = failed.into_inner().expect("never poisoned") {
            return Err(error);
        }
        for (file, done) in unread.iter().zip(read) {
            let done = done.into_inner().expect("every file was read");
            if let Some(Entry::File { blob, size, .. }) = self.tree.entries.get_mut(&file.rel) {
                *blob = done.blob;
                *size = done.size;
            }
        }
        Ok(())
    }
}

/// Files up to this size are read whole (most of a source tree): one read
/// gives the blob, its digest and its `File.digest`. Larger ones are
/// streamed into the store (`Store::put_blob_file`).
const READ_WHOLE: u64 = 256 * 1024;

/// One host file read into the store.
struct FileRead {
    blob: Digest,
    size: u64,
    /// Its `File.digest` for the mode and owner it was read with, when it
    /// was read whole.
    checksum: Option<Digest>,
}

impl FileRead {
    fn remember(&self, checksums: Option<&Memo>, mode: u32, owner: Owner) {
        if let (Some(memo), Some(checksum)) = (checksums, self.checksum) {
            memo.seed_file(self.blob, self.size, mode, owner, checksum);
        }
    }
}

/// Reads the regular file at `path` into the store. A small file costs an
/// open, an fstat and two reads (`fs::read` would also stat and seek), and
/// is hashed twice while in memory: as a blob, and as `File.digest` hashes
/// it with `mode` and `owner`.
fn read_host_file(store: &dyn Store, path: &Path, mode: u32, owner: Owner) -> Result<FileRead> {
    use std::io::Read as _;
    let failed = |error: std::io::Error| host_error(path, error.to_string());
    let mut file = fs::File::open(path).map_err(failed)?;
    let len = file.metadata().map_err(failed)?.len();
    if len <= READ_WHOLE {
        let mut bytes = Vec::with_capacity(len as usize + 1);
        // Through `take`: the generic read loop, which does not stat again.
        (&mut file)
            .take(READ_WHOLE + 1)
            .read_to_end(&mut bytes)
            .map_err(failed)?;
        if bytes.len() as u64 <= READ_WHOLE {
            let blob = Digest::of_bytes(&bytes);
            store.put_blob_hashed(&blob, &bytes)?;
            return Ok(FileRead {
                blob,
                size: bytes.len() as u64,
                checksum: Some(crate::checksum::of_contents(&bytes, mode, owner)),
            });
        }
        // It grew past the limit meanwhile: stream it.
    }
    drop(file);
    let (blob, size) = store.put_blob_file(path)?;
    Ok(FileRead {
        blob,
        size,
        checksum: None,
    })
}

/// `Host.findUp`: the nearest `name` in `start` or one of its parents, as
/// a path relative to `start` (`name`, `../name`, …); `None` when there is
/// none up to the root.
pub fn find_up(start: &Path, name: &str) -> Result<Option<String>> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(Error::InvalidArgument {
            message: format!("findUp: {name:?} is not the name of a file or directory"),
        });
    }
    let mut dir = Some(start);
    let mut up = String::new();
    while let Some(current) = dir {
        if fs::symlink_metadata(current.join(name)).is_ok() {
            return Ok(Some(format!("{up}{name}")));
        }
        up.push_str("../");
        dir = current.parent();
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::store::{ImageNames, Lock, MemoryStore};

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "gantry-host-test-{name}-{}-{:x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A `MemoryStore` that counts the host files it reads, so a test can
    /// tell a shortcut from a full read.
    #[derive(Default)]
    struct CountingStore {
        inner: MemoryStore,
        files_read: AtomicUsize,
    }

    impl CountingStore {
        fn files_read(&self) -> usize {
            self.files_read.swap(0, Ordering::SeqCst)
        }

        /// As an engine restarted on the same state: nothing in memory.
        fn restart(&self) {
            self.inner.host_indexes().unwrap().clear();
        }
    }

    impl Store for CountingStore {
        fn put_blob(&self, bytes: &[u8]) -> Result<Digest> {
            self.inner.put_blob(bytes)
        }
        fn put_blob_file(&self, path: &Path) -> Result<(Digest, u64)> {
            self.files_read.fetch_add(1, Ordering::SeqCst);
            self.inner.put_blob_file(path)
        }
        // How a small host file is stored once read.
        fn put_blob_hashed(&self, digest: &Digest, bytes: &[u8]) -> Result<()> {
            self.files_read.fetch_add(1, Ordering::SeqCst);
            self.inner.put_blob_hashed(digest, bytes)
        }
        fn get_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
            self.inner.get_blob(digest)
        }
        fn open_blob(&self, digest: &Digest) -> Result<Box<dyn std::io::Read + Send>> {
            self.inner.open_blob(digest)
        }
        fn put(&self, kind: RecordKind, key: &Digest, value: &[u8]) -> Result<()> {
            self.inner.put(kind, key, value)
        }
        fn get(&self, kind: RecordKind, key: &Digest) -> Result<Option<Vec<u8>>> {
            self.inner.get(kind, key)
        }
        fn scratch_dir(&self) -> Result<PathBuf> {
            self.inner.scratch_dir()
        }
        fn cache_volume_dir(&self, name: &str) -> PathBuf {
            self.inner.cache_volume_dir(name)
        }
        fn lock(&self, kind: RecordKind, key: &Digest) -> Result<Lock> {
            self.inner.lock(kind, key)
        }
        fn image_names(&self) -> ImageNames {
            self.inner.image_names()
        }
        fn host_indexes(&self) -> Option<&Indexes> {
            self.inner.host_indexes()
        }
    }

    /// Rewrites `path` in place with `contents` (same length), then puts
    /// its mtime back: only the contents (and the ctime) differ.
    fn rewrite_keeping_mtime(path: &Path, contents: &str) {
        let mtime = fs::metadata(path).unwrap().modified().unwrap();
        fs::write(path, contents).unwrap();
        fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
    }

    /// A small project whose every file and directory is older than the
    /// racy margin by the time it is first read.
    fn project() -> PathBuf {
        let root = unaged_project();
        std::thread::sleep(Duration::from_millis(1100));
        root
    }

    fn unaged_project() -> PathBuf {
        let root = temp_dir("project");
        fs::create_dir_all(root.join("src/deep")).unwrap();
        fs::create_dir_all(root.join("target")).unwrap();
        for (path, text) in [
            ("README.md", "readme"),
            ("src/a.rs", "fn a() {}"),
            ("src/b.rs", "fn b() {}"),
            ("src/deep/c.rs", "fn c() {}"),
            ("target/out.bin", "binary"),
            (".gitignore", "*.log\n"),
            ("keep.log", "log"),
        ] {
            fs::write(root.join(path), text).unwrap();
        }
        root
    }

    fn contents(store: &dyn Store, digest: &Digest, name: &str) -> Option<String> {
        match load_tree(store, digest).unwrap().get(name)? {
            Entry::File { blob, .. } => {
                Some(String::from_utf8(store.get_blob(blob).unwrap()).unwrap())
            }
            other => Some(format!("{other:?}")),
        }
    }

    type Change = fn(&Path);

    /// Every kind of change, each made to a fresh copy of `project()`.
    fn changes() -> Vec<(&'static str, Change)> {
        vec![
            ("same size, same mtime second, other ns", |root| {
                let path = root.join("src/a.rs");
                let mtime = fs::metadata(&path).unwrap().modified().unwrap();
                fs::write(&path, "fn A() {}").unwrap();
                let file = fs::File::options().write(true).open(&path).unwrap();
                file.set_modified(mtime + Duration::from_nanos(1)).unwrap();
            }),
            ("contents rewritten, mtime put back", |root| {
                rewrite_keeping_mtime(&root.join("src/deep/c.rs"), "fn C() {}");
            }),
            ("file replaced by a symlink", |root| {
                fs::remove_file(root.join("src/b.rs")).unwrap();
                symlink("a.rs", root.join("src/b.rs")).unwrap();
            }),
            ("mode changed", |root| {
                let path = root.join("README.md");
                fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
            }),
            ("file deleted", |root| {
                fs::remove_file(root.join("src/deep/c.rs")).unwrap();
            }),
            ("file added", |root| {
                fs::write(root.join("src/deep/new.rs"), "new").unwrap();
            }),
            (".gitignore changed", |root| {
                rewrite_keeping_mtime(&root.join(".gitignore"), "*.rs\n");
            }),
            ("directory mode changed", |root| {
                let path = root.join("src/deep");
                fs::set_permissions(&path, fs::Permissions::from_mode(0o700)).unwrap();
            }),
        ]
    }

    fn options(gitignore: bool) -> ReadOptions<'static> {
        ReadOptions {
            include: &[],
            exclude: &[],
            gitignore,
            checksums: None,
        }
    }

    #[test]
    fn an_unchanged_directory_is_not_read_again_in_memory_or_after_a_restart() {
        let root = project();
        let store = CountingStore::default();
        let first = read_directory(&store, &root, options(false)).unwrap();
        assert_eq!(store.files_read(), 7);
        assert_eq!(
            read_directory(&store, &root, options(false)).unwrap(),
            first
        );
        assert_eq!(store.files_read(), 0, "an in-memory hit reads no file");
        store.restart();
        assert_eq!(
            read_directory(&store, &root, options(false)).unwrap(),
            first
        );
        assert_eq!(store.files_read(), 0, "nor does a restarted engine");
        assert_eq!(store.inner.host_indexes().unwrap().len(), 1);
        // One changed file: that file alone is read again.
        fs::write(root.join("src/a.rs"), "fn a2() {}").unwrap();
        let changed = read_directory(&store, &root, options(false)).unwrap();
        assert_ne!(changed, first);
        assert_eq!(store.files_read(), 1);
        assert_eq!(
            contents(&store, &changed, "src/a.rs").unwrap(),
            "fn a2() {}"
        );
        // The patched tree is the tree a full read gives.
        let fresh = CountingStore::default();
        assert_eq!(
            read_directory(&fresh, &root, options(false)).unwrap(),
            changed
        );
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn a_loaded_tree_is_the_snapshot_s_own_in_memory_and_else_the_stored_one() {
        let root = project();
        let store = CountingStore::default();
        let first = read_directory(&store, &root, options(false)).unwrap();
        let shared = load_tree(&store, &first).unwrap();
        assert_eq!(shared.digest(), first);
        assert!(
            Arc::ptr_eq(&shared, &load_tree(&store, &first).unwrap()),
            "while a snapshot holds the tree, loading it copies nothing"
        );
        store.restart();
        let stored = load_tree(&store, &first).unwrap();
        assert!(!Arc::ptr_eq(&shared, &stored));
        assert_eq!(*stored, *shared);
        // A changed directory: the new tree is shared, the old one still stored.
        fs::write(root.join("src/a.rs"), "fn a3() {}").unwrap();
        let changed = read_directory(&store, &root, options(false)).unwrap();
        assert_ne!(changed, first);
        assert_eq!(load_tree(&store, &changed).unwrap().digest(), changed);
        assert_eq!(*load_tree(&store, &first).unwrap(), *shared);
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn stored_trees_load_in_the_binary_form_and_in_earlier_versions_json() {
        let root = project();
        let store = CountingStore::default();
        let digest = read_directory(&store, &root, options(false)).unwrap();
        let key = tree_key(&digest);
        let stored = store.get(RecordKind::HostTree, &key).unwrap().unwrap();
        assert!(stored.starts_with(crate::host_index::TREE_MAGIC));
        store.restart();
        let tree = load_tree(&store, &digest).unwrap();
        assert_eq!(tree.digest(), digest);
        // As an earlier version stored it.
        let json = serde_json::to_vec(&*tree).unwrap();
        store.put(RecordKind::HostTree, &key, &json).unwrap();
        store.restart();
        assert_eq!(*load_tree(&store, &digest).unwrap(), *tree);
        // Damaged: an error that says so, not a wrong tree.
        let mut damaged = stored.clone();
        let last = damaged.len() - 40;
        damaged[last] ^= 1;
        store.put(RecordKind::HostTree, &key, &damaged).unwrap();
        store.restart();
        let error = load_tree(&store, &digest).unwrap_err().to_string();
        assert!(error.contains("damaged"), "{error}");
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn files_read_give_their_digests_so_the_directory_digest_reads_no_blob() {
        let root = project();
        let store = CountingStore::default();
        let memo = Arc::new(Memo::default());
        let with_memo = |memo| ReadOptions {
            checksums: Some(memo),
            ..options(false)
        };
        let first = read_directory(&store, &root, with_memo(&memo)).unwrap();
        let tree = load_tree(&store, &first).unwrap();
        let open = |blob: &Digest| store.open_blob(blob);
        let expected = crate::checksum::tree(&open, &tree).unwrap();
        let refused = |_: &Digest| -> Result<Box<dyn std::io::Read + Send>> {
            panic!("a file read by the load has its digest already")
        };
        let key = tree.key();
        assert_eq!(memo.tree(&refused, &tree, &key).unwrap(), expected);
        // A restarted engine (nothing in memory) finds them in the index.
        store.restart();
        let memo = Arc::new(Memo::default());
        assert_eq!(
            read_directory(&store, &root, with_memo(&memo)).unwrap(),
            first
        );
        assert_eq!(memo.tree(&refused, &tree, &key).unwrap(), expected);
        // A file changed and re-read alone (the index patched): the same.
        fs::write(root.join("src/a.rs"), "fn changed() {}").unwrap();
        let memo = Arc::new(Memo::default());
        let changed = read_directory(&store, &root, with_memo(&memo)).unwrap();
        assert_ne!(changed, first);
        let tree = load_tree(&store, &changed).unwrap();
        let file = crate::value::FileValue::in_tree(&tree, "src/a.rs", "src/a.rs").unwrap();
        assert_eq!(
            memo.file(&refused, &file).unwrap(),
            crate::checksum::file(&open, &file).unwrap()
        );
        // The directory's digest asked for before a change: the changed
        // directory's is carried from it by the reload, and is the same.
        let before = load_tree(&store, &changed).unwrap();
        memo.tree(&open, &before, &before.key()).unwrap();
        fs::write(root.join("src/a.rs"), "fn changed_again() {}").unwrap();
        let again = read_directory(&store, &root, with_memo(&memo)).unwrap();
        let tree = load_tree(&store, &again).unwrap();
        assert!(memo.knows_tree(&tree.key()), "carried by the reload");
        assert_eq!(
            memo.tree(&refused, &tree, &tree.key()).unwrap(),
            crate::checksum::tree(&open, &tree).unwrap()
        );
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn a_large_directory_is_rechecked_on_several_threads_with_the_same_answers() {
        // More checks than `PARALLEL_CHECKS`: the stats are split between threads.
        let root = temp_dir("large");
        for dir in 0..50 {
            fs::create_dir_all(root.join(format!("d{dir}"))).unwrap();
            for file in 0..50 {
                fs::write(
                    root.join(format!("d{dir}/f{file}")),
                    format!("{dir}/{file}"),
                )
                .unwrap();
            }
        }
        std::thread::sleep(Duration::from_millis(1100));
        let store = CountingStore::default();
        let first = read_directory(&store, &root, options(false)).unwrap();
        assert_eq!(store.files_read(), 2500);
        assert_eq!(
            read_directory(&store, &root, options(false)).unwrap(),
            first
        );
        assert_eq!(store.files_read(), 0);
        // After a restart nothing reports changes: every path is re-stat'ed.
        store.restart();
        // A file in the last thread's share changed: that file alone is read.
        rewrite_keeping_mtime(&root.join("d49/f49"), "49/4X");
        let changed = read_directory(&store, &root, options(false)).unwrap();
        assert_ne!(changed, first);
        assert_eq!(store.files_read(), 1);
        // A file added in the first share: the directory is walked again.
        store.restart();
        fs::write(root.join("d0/new"), "new").unwrap();
        let added = read_directory(&store, &root, options(false)).unwrap();
        assert_ne!(added, changed);
        assert_eq!(contents(&store, &added, "d0/new").unwrap(), "new");
        // The same trees a full read gives.
        let fresh = CountingStore::default();
        assert_eq!(
            read_directory(&fresh, &root, options(false)).unwrap(),
            added
        );
        let _ = fs::remove_dir_all(&root);
    }

    /// Re-stats in the last `recheck` on this thread.
    fn restated() -> usize {
        RESTATED.get()
    }

    #[test]
    fn a_watched_directory_reloads_by_stat_ing_only_what_events_named() {
        let root = unaged_project();
        // Written through a link outside the directory: no event here.
        let outside = temp_dir("outside");
        fs::hard_link(root.join("src/b.rs"), outside.join("b-link")).unwrap();
        std::thread::sleep(Duration::from_millis(1100));
        let store = CountingStore::default();
        let first = read_directory(&store, &root, options(false)).unwrap();
        store.files_read();
        // Unchanged: the root and the linked file, nothing else.
        assert_eq!(
            read_directory(&store, &root, options(false)).unwrap(),
            first
        );
        assert_eq!((restated(), store.files_read()), (2, 0));
        // A file written: its event names it.
        fs::write(root.join("src/a.rs"), "fn a2() {}").unwrap();
        let written = read_directory(&store, &root, options(false)).unwrap();
        assert_eq!(
            contents(&store, &written, "src/a.rs").unwrap(),
            "fn a2() {}"
        );
        assert_eq!((restated(), store.files_read()), (3, 1));
        // Through the outside link.
        fs::write(outside.join("b-link"), "fn b2() {}").unwrap();
        let linked = read_directory(&store, &root, options(false)).unwrap();
        assert_eq!(contents(&store, &linked, "src/b.rs").unwrap(), "fn b2() {}");
        // A new directory is walked and watched: a file written in it later
        // is seen.
        fs::create_dir(root.join("src/new")).unwrap();
        fs::write(root.join("src/new/x"), "x1").unwrap();
        let added = read_directory(&store, &root, options(false)).unwrap();
        assert_eq!(contents(&store, &added, "src/new/x").unwrap(), "x1");
        rewrite_keeping_mtime(&root.join("src/new/x"), "x2");
        let rewritten = read_directory(&store, &root, options(false)).unwrap();
        assert_eq!(contents(&store, &rewritten, "src/new/x").unwrap(), "x2");
        // A removed directory, and a file's mode.
        fs::remove_dir_all(root.join("src/deep")).unwrap();
        fs::set_permissions(root.join("README.md"), fs::Permissions::from_mode(0o600)).unwrap();
        let removed = read_directory(&store, &root, options(false)).unwrap();
        assert!(contents(&store, &removed, "src/deep/c.rs").is_none());
        // Every answer is the one a full read gives.
        let fresh = CountingStore::default();
        assert_eq!(
            read_directory(&fresh, &root, options(false)).unwrap(),
            removed
        );
        let _ = fs::remove_dir_all(&root);
        let _ = fs::remove_dir_all(&outside);
    }

    #[test]
    fn a_watched_root_changed_just_before_its_read_is_not_walked_again_without_events() {
        // Made just now: the root (and every file) changed within the racy
        // margin of the first read.
        let root = unaged_project();
        let store = CountingStore::default();
        let first = read_directory(&store, &root, options(false)).unwrap();
        store.files_read();
        // No event named anything: the root is compared, not walked.
        assert_eq!(
            read_directory(&store, &root, options(false)).unwrap(),
            first
        );
        assert_eq!((restated(), store.files_read()), (1, 0));
        // A name added in the root names it: that change is seen.
        fs::write(root.join("new.txt"), "new").unwrap();
        let added = read_directory(&store, &root, options(false)).unwrap();
        assert_eq!(contents(&store, &added, "new.txt").unwrap(), "new");
        let fresh = CountingStore::default();
        assert_eq!(
            read_directory(&fresh, &root, options(false)).unwrap(),
            added
        );
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn a_restarted_engine_re_stats_once_then_relies_on_events() {
        let root = project();
        let store = CountingStore::default();
        let first = read_directory(&store, &root, options(true)).unwrap();
        store.files_read();
        store.restart();
        assert_eq!(read_directory(&store, &root, options(true)).unwrap(), first);
        let all = restated();
        assert!(all > 8, "the first reload re-stats every path, not {all}");
        assert_eq!(read_directory(&store, &root, options(true)).unwrap(), first);
        assert!(
            restated() < all,
            "the next relies on events: {} of {all}",
            restated()
        );
        fs::write(root.join("src/deep/c.rs"), "fn c2() {}").unwrap();
        let changed = read_directory(&store, &root, options(true)).unwrap();
        assert_eq!(
            contents(&store, &changed, "src/deep/c.rs").unwrap(),
            "fn c2() {}"
        );
        assert_eq!(store.files_read(), 1);
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn every_change_gives_a_new_digest_across_a_memory_hit_and_a_restart() {
        let mut cases = Vec::new();
        for gitignore in [false, true] {
            for restart in [false, true] {
                for (name, change) in changes() {
                    let root = unaged_project();
                    if gitignore {
                        fs::create_dir(root.join(".git")).unwrap();
                    }
                    cases.push((gitignore, restart, name, change, root));
                }
            }
        }
        std::thread::sleep(Duration::from_millis(1100));
        for (gitignore, restart, name, change, root) in cases {
            {
                {
                    let store = CountingStore::default();
                    let before = read_directory(&store, &root, options(gitignore)).unwrap();
                    // An in-memory hit first, so the shortcut is what sees the change.
                    assert_eq!(
                        read_directory(&store, &root, options(gitignore)).unwrap(),
                        before
                    );
                    change(&root);
                    if restart {
                        store.restart();
                    }
                    let after = read_directory(&store, &root, options(gitignore)).unwrap();
                    let fresh = CountingStore::default();
                    let truth = read_directory(&fresh, &root, options(gitignore)).unwrap();
                    let case = format!("{name} (gitignore: {gitignore}, restart: {restart})");
                    assert_eq!(after, truth, "{case}: not what a fresh read gives");
                    assert_ne!(after, before, "{case}: the change was missed");
                    let _ = fs::remove_dir_all(&root);
                }
            }
        }
    }

    #[test]
    fn changing_the_filter_options_reads_under_another_index() {
        let root = project();
        let store = CountingStore::default();
        let all = read_directory(&store, &root, options(false)).unwrap();
        let exclude = ["target".to_owned()];
        let without_target = ReadOptions {
            exclude: &exclude,
            ..options(false)
        };
        let filtered = read_directory(&store, &root, without_target).unwrap();
        assert_ne!(all, filtered);
        assert_eq!(contents(&store, &filtered, "target/out.bin"), None);
        assert_eq!(read_directory(&store, &root, options(false)).unwrap(), all);
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn a_damaged_or_old_stored_index_is_ignored_and_rewritten() {
        let root = project();
        let store = CountingStore::default();
        let first = read_directory(&store, &root, options(false)).unwrap();
        store.files_read();
        let key = index_key(&root, &options(false));
        let stored = store.get(RecordKind::HostIndex, &key).unwrap().unwrap();
        for damaged in [
            stored[..stored.len() / 2].to_vec(),
            b"{\"files\":{}}".to_vec(),
            {
                let mut flipped = stored.clone();
                flipped[stored.len() / 3] ^= 1;
                flipped
            },
        ] {
            store.put(RecordKind::HostIndex, &key, &damaged).unwrap();
            store.restart();
            assert_eq!(
                read_directory(&store, &root, options(false)).unwrap(),
                first
            );
            assert_eq!(store.files_read(), 7, "a damaged index is not trusted");
            let rewritten = store.get(RecordKind::HostIndex, &key).unwrap().unwrap();
            assert!(crate::host_index::decode(&rewritten, None).is_some());
        }
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn racily_clean_files_are_read_again() {
        let root = temp_dir("racy");
        let store = CountingStore::default();
        let fresh = root.join("fresh.txt");
        let old = root.join("old.txt");
        fs::write(&fresh, "new-1").unwrap();
        fs::write(&old, "old-1").unwrap();
        fs::File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(SystemTime::now() - Duration::from_secs(3600))
            .unwrap();
        read_directory(&store, &root, options(false)).unwrap();
        // Modified around the time it was recorded, with its mtime put back:
        // only its ctime could tell, and a fresh ctime is never trusted.
        rewrite_keeping_mtime(&fresh, "new-2");
        let digest = read_directory(&store, &root, options(false)).unwrap();
        assert_eq!(contents(&store, &digest, "fresh.txt").unwrap(), "new-2");
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn an_unchanged_host_file_is_copied_once_and_every_change_is_seen() {
        let root = temp_dir("file");
        let store = CountingStore::default();
        let path = root.join("big.bin");
        let aged = |path: &Path| {
            fs::File::options()
                .write(true)
                .open(path)
                .unwrap()
                .set_modified(SystemTime::now() - Duration::from_secs(3600))
                .unwrap();
        };
        let named = |digest: &Digest| contents(&store, digest, "big.bin").unwrap();
        fs::write(&path, "one").unwrap();
        aged(&path);
        // Its ctime is fresh: the first reload copies again, then relies on
        // the stat.
        std::thread::sleep(Duration::from_millis(1100));
        let first = read_file(&store, &path).unwrap();
        assert_eq!(store.files_read(), 1);
        assert_eq!(read_file(&store, &path).unwrap(), first);
        assert_eq!(store.files_read(), 0, "an unchanged file is not copied");
        store.restart();
        assert_eq!(read_file(&store, &path).unwrap(), first);
        assert_eq!(store.files_read(), 0, "the snapshot is in the store");
        // Rewritten with its size and mtime kept: the ctime tells.
        fs::write(&path, "two").unwrap();
        aged(&path);
        let second = read_file(&store, &path).unwrap();
        assert_eq!(store.files_read(), 1);
        assert_eq!(named(&second), "two");
        // A mode change.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        let third = read_file(&store, &path).unwrap();
        assert_ne!(third, second);
        // Replaced by another file of the same size, renamed over it.
        let other = root.join("other");
        fs::write(&other, "six").unwrap();
        fs::rename(&other, &path).unwrap();
        assert_eq!(named(&read_file(&store, &path).unwrap()), "six");
        // A damaged snapshot means a copy, never an error or a wrong answer.
        store
            .put(RecordKind::HostIndex, &file_key(&path), b"GHIX-damaged")
            .unwrap();
        store.files_read();
        assert_eq!(named(&read_file(&store, &path).unwrap()), "six");
        assert_eq!(store.files_read(), 1);
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn filters_keep_separate_indexes() {
        let root = temp_dir("root");
        let go = ["*.go".to_owned()];
        let options = |include, exclude, gitignore| ReadOptions {
            include,
            exclude,
            gitignore,
            checksums: None,
        };
        let a = index_key(&root, &options(&[], &[], false));
        let b = index_key(&root, &options(&go, &[], false));
        let c = index_key(&root, &options(&[], &go, false));
        let d = index_key(&root, &options(&[], &[], true));
        assert!(a != b && b != c && a != c && d != a);
        let _ = fs::remove_dir_all(&root);
    }
}
