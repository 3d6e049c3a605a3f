//! Change notification for the host directories a running engine keeps
//! snapshots of, so that reloading an unchanged directory stats nothing.
//!
//! A `Watcher` is one inotify instance for one index key (a directory and
//! its filters), shared by the successive snapshots of that key. A walk adds
//! a watch to each directory before listing it, so every change after the
//! listing is reported. Events are drained only when a reload asks, and
//! numbered as they are drained; a snapshot remembers the number at which
//! the read that made it started (`Watched::seq`), and the next reload
//! re-stats only the recorded paths that events named since then:
//!
//! - a name added, removed or renamed in a directory names the directory
//!   (its own stat changes too, which sends the reload to a full walk);
//! - a child's contents or attributes changing names the child.
//!
//! What inotify does not vouch for is re-stat'ed on every reload (see
//! `host::recheck`): the root itself and what lies above it (`.git`
//! markers, outer `.gitignore` files), files with several hard links (a
//! write through a link outside the directory is reported there, not
//! here; a link made there after the read is not reported either).
//! A queue overflow, an unmounted directory or an event of a watch no
//! longer known sends the next reload to a full re-stat. Only local
//! filesystems are watched: on network and FUSE mounts, changes made
//! elsewhere are not reported. Writes through a shared memory map are not
//! reported either (nor by git's fsmonitor); `GANTRY_HOST_WATCH=0` turns
//! watching off, leaving the full re-stat on every reload.

use std::collections::{HashMap, HashSet};
use std::mem::MaybeUninit;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::inotify::{self, CreateFlags, ReadFlags, WatchFlags};

/// Filesystems whose changes all pass through this kernel (`statfs`'s
/// `f_type`): ext2/3/4, XFS, Btrfs, tmpfs, F2FS, ZFS, bcachefs, overlayfs.
const LOCAL_FILESYSTEMS: [u64; 8] = [
    0xEF53,
    0x5846_5342,
    0x9123_683E,
    0x0102_1994,
    0xF2F5_2010,
    0x2FC1_2FC1,
    0xCA45_1A4E,
    0x794C_7630,
];

/// How many distinct paths named by events a watcher remembers; past it,
/// it forgets them all and the next reload of each snapshot re-stats
/// everything once (a directory where excluded files churn, such as build
/// outputs beside sources, would otherwise grow it without end).
const MAX_NAMED: usize = 100_000;

/// One inotify instance and what its events named (see the module docs).
pub(crate) struct Watcher {
    state: Mutex<State>,
}

struct State {
    fd: OwnedFd,
    /// Watch descriptor → the directory's path in the tree (`""`: the root).
    dirs: HashMap<i32, String>,
    /// Events drained so far.
    seq: u64,
    /// Path in the tree → the number of the last event naming it.
    named: HashMap<String, u64>,
    /// The number of the last event after which any path may have changed
    /// unnamed (an overflow, an unmount, a forgotten `named`).
    lost: u64,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher").finish_non_exhaustive()
    }
}

/// What changed since a snapshot's number, by `Watcher::changes_since`.
#[derive(Debug)]
pub(crate) enum Changes {
    /// Only these recorded paths may have (none: nothing did).
    Named(HashSet<String>),
    /// Anything may have: re-stat every path.
    Unknown,
}

impl Watcher {
    /// A watcher for the directory `root` is open as, or `None` where
    /// inotify cannot vouch for its changes (not a local filesystem, no
    /// inotify instance left, watching turned off).
    pub(crate) fn new(root: impl AsFd) -> Option<Arc<Self>> {
        if std::env::var_os("GANTRY_HOST_WATCH").is_some_and(|value| value == "0") {
            return None;
        }
        #[allow(
            clippy::unnecessary_cast,
            reason = "`f_type`'s type differs between targets"
        )]
        let kind = rustix::fs::fstatfs(root).ok()?.f_type as u64;
        if !LOCAL_FILESYSTEMS.contains(&kind) {
            return None;
        }
        let fd = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK).ok()?;
        Some(Arc::new(Self {
            state: Mutex::new(State {
                fd,
                dirs: HashMap::new(),
                seq: 0,
                named: HashMap::new(),
                lost: 0,
            }),
        }))
    }

    /// Watches the directory at `dir`, `rel` in the tree: its watch
    /// descriptor, or `None` when it cannot be watched (the limit of
    /// watches reached, say) and the snapshot must not rely on events.
    pub(crate) fn add(&self, dir: &Path, rel: &str) -> Option<i32> {
        let mut state = self.lock();
        let mask = WatchFlags::MODIFY
            | WatchFlags::ATTRIB
            | WatchFlags::CLOSE_WRITE
            | WatchFlags::CREATE
            | WatchFlags::DELETE
            | WatchFlags::MOVED_FROM
            | WatchFlags::MOVED_TO
            | WatchFlags::DELETE_SELF
            | WatchFlags::MOVE_SELF
            | WatchFlags::ONLYDIR
            | WatchFlags::DONT_FOLLOW
            | WatchFlags::EXCL_UNLINK;
        let wd = inotify::add_watch(&state.fd, dir, mask).ok()?;
        state.dirs.insert(wd, rel.to_owned());
        Some(wd)
    }

    /// Drains the pending events; the number a read starting now records.
    pub(crate) fn now(&self) -> u64 {
        let mut state = self.lock();
        state.drain();
        state.seq
    }

    /// Drains the pending events: what may have changed since `seq`, and
    /// the number now.
    pub(crate) fn changes_since(&self, seq: u64) -> (Changes, u64) {
        let mut state = self.lock();
        state.drain();
        if state.lost > seq {
            return (Changes::Unknown, state.seq);
        }
        let named = state
            .named
            .iter()
            .filter(|(_, at)| **at > seq)
            .map(|(path, _)| path.clone())
            .collect();
        (Changes::Named(named), state.seq)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl State {
    /// Reads every pending event (a read that finds none costs one
    /// syscall), numbering each batch.
    fn drain(&mut self) {
        let mut buf = [MaybeUninit::<u8>::uninit(); 8192];
        let mut events = Vec::new();
        {
            let mut reader = inotify::Reader::new(&self.fd, &mut buf);
            loop {
                match reader.next() {
                    Ok(event) => events.push((
                        event.wd(),
                        event.events(),
                        event
                            .file_name()
                            .map(|name| name.to_string_lossy().into_owned()),
                    )),
                    Err(rustix::io::Errno::INTR) => {}
                    // WOULDBLOCK: drained. Anything else: the instance
                    // cannot be trusted any more.
                    Err(rustix::io::Errno::WOULDBLOCK) => break,
                    Err(_) => {
                        self.seq += 1;
                        self.lost = self.seq;
                        break;
                    }
                }
            }
        }
        if events.is_empty() {
            return;
        }
        self.seq += 1;
        for (wd, flags, name) in events {
            self.note(wd, flags, name);
        }
        if self.named.len() > MAX_NAMED {
            self.named.clear();
            self.lost = self.seq;
        }
    }

    /// Records what one event names.
    fn note(&mut self, wd: i32, flags: ReadFlags, name: Option<String>) {
        if flags.intersects(ReadFlags::QUEUE_OVERFLOW | ReadFlags::UNMOUNT) {
            self.lost = self.seq;
            return;
        }
        let Some(dir) = self.dirs.get(&wd) else {
            // A watch this watcher does not know of.
            self.lost = self.seq;
            return;
        };
        let names_entry =
            flags.intersects(ReadFlags::MODIFY | ReadFlags::ATTRIB | ReadFlags::CLOSE_WRITE);
        let path = match name {
            // A child's contents or attributes: the child.
            Some(name) if names_entry => join(dir, &name),
            // Names added or removed, or the directory itself.
            _ => dir.clone(),
        };
        let seq = self.seq;
        if flags.contains(ReadFlags::IGNORED) {
            // The directory is gone (deleted or unmounted): its parent's
            // event sends the reload to a walk.
            self.dirs.remove(&wd);
        }
        self.named.insert(path, seq);
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

/// A snapshot's watcher and how far its events are reflected in it.
#[derive(Debug)]
pub(crate) struct Watched {
    pub(crate) watcher: Arc<Watcher>,
    /// Every event drained up to this number is reflected in the snapshot
    /// (raised when a reload finds it still true).
    seq: AtomicU64,
    /// Recorded checks (by index) events do not vouch for: files with more
    /// than one link.
    pub(crate) linked: Vec<usize>,
}

impl Watched {
    pub(crate) fn new(watcher: Arc<Watcher>, seq: u64, linked: Vec<usize>) -> Self {
        Self {
            watcher,
            seq: AtomicU64::new(seq),
            linked,
        }
    }

    pub(crate) fn seq(&self) -> u64 {
        self.seq.load(Ordering::Acquire)
    }

    /// The snapshot was found true after the events up to `seq`.
    pub(crate) fn confirm(&self, seq: u64) {
        self.seq.fetch_max(seq, Ordering::AcqRel);
    }
}

impl Clone for Watched {
    fn clone(&self) -> Self {
        Self::new(self.watcher.clone(), self.seq(), self.linked.clone())
    }
}

/// Snapshots compare by what they recorded; two sharing a watcher at the
/// same number are alike.
impl PartialEq for Watched {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.watcher, &other.watcher) && self.seq() == other.seq()
    }
}

impl Eq for Watched {}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(changes: Changes) -> Vec<String> {
        match changes {
            Changes::Named(named) => {
                let mut named: Vec<_> = named.into_iter().collect();
                named.sort();
                named
            }
            Changes::Unknown => panic!("every change should be named"),
        }
    }

    #[test]
    fn events_name_the_changed_child_or_the_directory_whose_names_changed() {
        let root = std::env::temp_dir().join(format!(
            "gantry-watch-test-{}-{:x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/file"), "one").unwrap();
        let dir = std::fs::File::open(&root).unwrap();
        let Some(watcher) = Watcher::new(&dir) else {
            // Not a local filesystem here (or inotify is unavailable).
            return;
        };
        let start = watcher.now();
        watcher.add(&root, "").unwrap();
        watcher.add(&root.join("sub"), "sub").unwrap();
        let (changes, after_nothing) = watcher.changes_since(start);
        assert!(named(changes).is_empty());
        std::fs::write(root.join("sub/file"), "two").unwrap();
        std::fs::write(root.join("new"), "").unwrap();
        let (changes, seq) = watcher.changes_since(after_nothing);
        // The root's names changed; "new" was written after it was made.
        assert_eq!(named(changes), ["", "new", "sub/file"]);
        assert!(seq > after_nothing);
        // Seen from that number on, nothing changed.
        assert!(named(watcher.changes_since(seq).0).is_empty());
        // An overflow loses what changed: everything must be looked at.
        watcher.lock().note(-1, ReadFlags::QUEUE_OVERFLOW, None);
        assert!(matches!(watcher.changes_since(seq - 1).0, Changes::Unknown));
        let _ = std::fs::remove_dir_all(&root);
    }
}
