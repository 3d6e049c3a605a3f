//! Engines sharing one state directory.
//!
//! Every `gantry run` is an engine of its own, and parallel CI jobs on one
//! runner share the default state directory, so identical work must run once
//! across processes, not only within one. Two locks, both `flock`s (released
//! by the kernel when their holder dies, so a SIGKILL never leaves one held):
//!
//! - **Record locks** (`StateDir::lock_record`): an engine that misses a
//!   record it is about to produce (an exec result) takes the record's lock,
//!   looks for the record again, and only then does the work and writes it.
//!   The others wait on the lock and then find the record: one execution,
//!   one answer for everyone. The lock file is removed once the record
//!   exists (by whoever holds the lock), so they do not accumulate; a lock
//!   taken on a file removed meanwhile is taken again on the file at the
//!   path, so removal never lets two engines in at once.
//! - **The serving claim** (`StateDir::claim_serving`): one `gantry serve`
//!   per state directory. A second one is refused with an error naming the
//!   first one's socket, and `gantry query` finds that socket through
//!   `StateDir::serving_socket` when its own socket has no engine.
//! - **Engine leases** (`StateDir::lease_engine`): every engine (`serve`,
//!   `run`, `query`, `call`) holds one for its life, a locked file named by
//!   its pid whose modification time is when it started. An engine marks
//!   each record it uses (`DiskStore::for_engine`), so whatever a live
//!   engine used has a last-use time at or after its lease's: a prune keeps
//!   those (`StateDir::live_engines`), and a full prune is refused while one
//!   lives.

use std::fs;
use std::io::{ErrorKind, Read as _, Seek as _, Write as _};
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use gantry_core::store::RecordKind;
use gantry_core::Digest;

use crate::error::{Error, Result};
use crate::layout::{Bucket, StateDir};

/// Holds the serving claim file of a running `gantry serve`.
const SERVING_FILE: &str = "engine.lock";

/// Engine leases live in the locks bucket, under this directory.
const LEASES_DIR: &str = "engines";

/// Held while one engine produces a record; dropping it releases the lock
/// (and removes the lock file when the record now exists).
#[derive(Debug)]
pub struct RecordLock {
    file: fs::File,
    lock: PathBuf,
    record: PathBuf,
}

impl Drop for RecordLock {
    fn drop(&mut self) {
        // Removed while still held, so nobody can lock this file and then
        // miss the record. A waiter already blocked on it finds the record.
        if self.record.exists() {
            let _ = fs::remove_file(&self.lock);
        }
        let _ = self.file.unlock();
    }
}

/// A running `gantry serve`'s claim on the state directory, held for its
/// lifetime.
#[derive(Debug)]
pub struct ServingClaim {
    _file: fs::File,
}

/// A live engine's lease on the state directory; dropping it ends the lease.
#[derive(Debug)]
pub struct EngineLease {
    file: fs::File,
    path: PathBuf,
}

impl Drop for EngineLease {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

/// An engine that holds a lease on the state directory (another process, or
/// this one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveEngine {
    pub pid: u32,
    /// When it started: every record it used was used at or after this.
    pub since: SystemTime,
}

impl StateDir {
    /// Takes a lease for an engine starting now (see the module docs).
    pub fn lease_engine(&self) -> Result<EngineLease> {
        let dir = self.bucket(Bucket::Locks).join(LEASES_DIR);
        fs::create_dir_all(&dir).map_err(Error::io("creating", &dir))?;
        loop {
            let path = dir.join(format!("{}-{:016x}", std::process::id(), rand_suffix(&dir)));
            let file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(Error::io("creating", &path))?;
            // Another engine's sweep may have removed the file between its
            // creation and the lock (it was unheld then): take a new one.
            if lock_at_path(&file, &path)? {
                return Ok(EngineLease { file, path });
            }
        }
    }

    /// The engines that hold a lease now, oldest first. A lease file nobody
    /// holds (its engine died) is skipped; the next sweep removes it.
    pub fn live_engines(&self) -> Result<Vec<LiveEngine>> {
        let dir = self.bucket(Bucket::Locks).join(LEASES_DIR);
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(Error::io("reading", &dir)(error)),
        };
        let mut live = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name
                .to_str()
                .and_then(|name| name.split('-').next())
                .and_then(|pid| pid.parse().ok())
            else {
                continue;
            };
            // Ours are held by this process: flock would let us lock them
            // again through a new descriptor, so they count as live as is.
            let held = pid == std::process::id()
                || match fs::File::open(entry.path()) {
                    Ok(file) => file.try_lock().is_err(),
                    Err(_) => false,
                };
            if !held {
                continue;
            }
            let Ok(since) = entry.metadata().and_then(|meta| meta.modified()) else {
                continue;
            };
            live.push(LiveEngine { pid, since });
        }
        live.sort_by_key(|engine| engine.since);
        Ok(live)
    }

    /// Takes the lock of record `key` of `kind`, waiting for another engine
    /// (process) that holds it. Blocking: call it off the async runtime.
    pub fn lock_record(&self, kind: RecordKind, key: &Digest) -> Result<RecordLock> {
        let hex = key.hex();
        let records = self.bucket(Bucket::Records(kind));
        let kind_dir = records.file_name().expect("buckets have names");
        let lock = self
            .bucket(Bucket::Locks)
            .join(kind_dir)
            .join(&hex[..2])
            .join(&hex);
        let parent = lock.parent().expect("lock files have a parent");
        fs::create_dir_all(parent).map_err(Error::io("creating", parent))?;
        // The lock file may be removed while we wait for it (by its holder
        // once the record exists, or by a sweep): a lock on a removed file
        // excludes nobody, so lock again until the file locked is the one
        // at the path.
        let file = loop {
            let file = fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(&lock)
                .map_err(Error::io("opening", &lock))?;
            if lock_at_path(&file, &lock)? {
                break file;
            }
        };
        Ok(RecordLock {
            file,
            lock,
            record: self.entry(Bucket::Records(kind), key),
        })
    }

    /// Claims the state directory for a `gantry serve` listening on
    /// `socket`, or names the engine that already serves it.
    pub fn claim_serving(&self, socket: &Path) -> Result<ServingClaim> {
        let path = self.root().join(SERVING_FILE);
        let mut file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(Error::io("opening", &path))?;
        if file.try_lock().is_err() {
            let (pid, owner) = read_claim(&mut file);
            return Err(Error::Served {
                path: self.root().to_path_buf(),
                socket: owner,
                pid,
            });
        }
        let claim = format!("{}\n{}\n", std::process::id(), socket.display());
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(claim.as_bytes()))
            .map_err(Error::io("writing", &path))?;
        Ok(ServingClaim { _file: file })
    }

    /// The socket of the `gantry serve` serving this state directory, if one
    /// runs.
    pub fn serving_socket(&self) -> Option<PathBuf> {
        let mut file = fs::File::open(self.root().join(SERVING_FILE)).ok()?;
        match file.try_lock() {
            // Nobody holds it: no engine serves the directory.
            Ok(()) => None,
            Err(_) => Some(read_claim(&mut file).1),
        }
    }
}

/// Locks `file` (opened at `path`), waiting for its holder, and says whether
/// it is still the file at `path`: one removed meanwhile excludes nobody.
fn lock_at_path(file: &fs::File, path: &Path) -> Result<bool> {
    file.lock().map_err(Error::io("locking", path))?;
    let held = file.metadata().map_err(Error::io("reading", path))?.ino();
    Ok(fs::metadata(path).is_ok_and(|at_path| at_path.ino() == held))
}

/// A number that makes a lease's name unique among this process's leases.
fn rand_suffix(dir: &Path) -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write(dir.as_os_str().as_encoded_bytes());
    hasher.write_u128(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    hasher.finish()
}

/// The pid and socket a claim file names.
fn read_claim(file: &mut fs::File) -> (u32, PathBuf) {
    let mut text = String::new();
    match file.rewind().and_then(|()| file.read_to_string(&mut text)) {
        Ok(_) => {}
        Err(error) if error.kind() == ErrorKind::Interrupted => {}
        Err(_) => return (0, PathBuf::new()),
    }
    let mut lines = text.lines();
    let pid = lines.next().and_then(|pid| pid.parse().ok()).unwrap_or(0);
    let socket = lines.next().map(PathBuf::from).unwrap_or_default();
    (pid, socket)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use gantry_core::store::Store as _;

    use super::*;
    use crate::DiskStore;

    #[test]
    fn one_producer_per_record_and_the_rest_find_it() {
        let dir = tempfile::tempdir().unwrap();
        let key = Digest::of_bytes(b"step");
        let runs = Arc::new(AtomicUsize::new(0));
        // Separate stores stand for separate engines: each has its own
        // file handles, as separate processes would.
        let answers: Vec<Vec<u8>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|n| {
                    let runs = runs.clone();
                    let root = dir.path().to_path_buf();
                    scope.spawn(move || {
                        let store = DiskStore::open(root).unwrap();
                        if let Some(found) = store.get(RecordKind::Exec, &key).unwrap() {
                            return found;
                        }
                        let _lock = store
                            .state_dir()
                            .lock_record(RecordKind::Exec, &key)
                            .unwrap();
                        if let Some(found) = store.get(RecordKind::Exec, &key).unwrap() {
                            return found;
                        }
                        runs.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(50));
                        let answer = format!("run by {n}").into_bytes();
                        store.put(RecordKind::Exec, &key, &answer).unwrap();
                        answer
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert!(answers.iter().all(|a| *a == answers[0]));
        // The lock file went with the lock, once the record existed.
        let state = StateDir::open(dir.path()).unwrap();
        let hex = key.hex();
        assert!(!state
            .bucket(Bucket::Locks)
            .join("exec")
            .join(&hex[..2])
            .join(&hex)
            .exists());
    }

    #[test]
    fn a_second_server_is_refused_naming_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path()).unwrap();
        assert_eq!(state.serving_socket(), None);
        let claim = state.claim_serving(Path::new("/run/first.sock")).unwrap();
        let other = StateDir::open(dir.path()).unwrap();
        let error = other
            .claim_serving(Path::new("/run/second.sock"))
            .unwrap_err();
        let message = error.to_string();
        assert!(message.contains("/run/first.sock"), "{message}");
        assert_eq!(
            other.serving_socket(),
            Some(PathBuf::from("/run/first.sock"))
        );
        drop(claim);
        assert_eq!(other.serving_socket(), None);
        other.claim_serving(Path::new("/run/second.sock")).unwrap();
    }
}
