//! Records written behind the caller (`Store::put_behind`): a host
//! directory's snapshot is answered from memory, and its two records (a
//! megabyte or so each for a 10,000-file tree, encoded, sealed and
//! written) are the store's business afterwards, on one writer thread.
//!
//! Jobs are written in the order they came, so the last snapshot of a
//! directory is the one left on disk. Until a job's records are written,
//! reading one of its keys waits for them (`wait_for`): a reader never
//! sees an older record than the engine gave out; asking whether one is
//! there (`pending`) does not wait. `flush` waits for every
//! job (an engine that stops calls it, and so does dropping the store); a
//! killed engine loses the records it had not written yet, which only
//! costs the next engine a full read of that directory.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use gantry_core::store::{Encode, RecordKind};
use gantry_core::Digest;

use crate::layout::{Bucket, StateDir};

/// One `put_behind`: the keys it writes and how to encode their values.
struct Job {
    keys: Vec<(RecordKind, Digest)>,
    encode: Encode,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    /// Keys queued or being written, with how many jobs write each.
    pending: HashMap<(RecordKind, Digest), usize>,
    /// The writer holds a job it took off `jobs`.
    busy: bool,
    closed: bool,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    fn wait<'a>(&self, queue: MutexGuard<'a, Queue>) -> MutexGuard<'a, Queue> {
        self.changed
            .wait(queue)
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

/// The writer of one store; its thread starts with the first job.
#[derive(Default)]
pub(crate) struct Behind {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Behind {
    /// Queues `encode` (the values of `keys`, in order) to be written to
    /// `dir` by the writer thread.
    pub(crate) fn put(&self, dir: &StateDir, keys: Vec<(RecordKind, Digest)>, encode: Encode) {
        {
            let mut queue = self.shared.lock();
            for key in &keys {
                *queue.pending.entry(*key).or_default() += 1;
            }
            queue.jobs.push_back(Job { keys, encode });
        }
        self.shared.changed.notify_all();
        let mut thread = self
            .thread
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if thread.is_none() {
            let (shared, writer_dir) = (self.shared.clone(), dir.clone());
            let spawned = std::thread::Builder::new()
                .name("gantry-records".into())
                .spawn(move || write_jobs(&shared, &writer_dir));
            match spawned {
                Ok(handle) => *thread = Some(handle),
                // No thread to be had: write here, now.
                Err(error) => {
                    tracing::debug!(%error, "no record writer thread; writing at once");
                    write_jobs_now(&self.shared, dir);
                }
            }
        }
    }

    /// Waits until no queued job writes `key` of `kind`.
    pub(crate) fn wait_for(&self, kind: RecordKind, key: &Digest) {
        let mut queue = self.shared.lock();
        while queue.pending.contains_key(&(kind, *key)) {
            queue = self.shared.wait(queue);
        }
    }

    /// Whether a queued job writes `key` of `kind`.
    pub(crate) fn pending(&self, kind: RecordKind, key: &Digest) -> bool {
        self.shared.lock().pending.contains_key(&(kind, *key))
    }

    /// Waits until every queued job is written.
    pub(crate) fn flush(&self) {
        let mut queue = self.shared.lock();
        while queue.busy || !queue.jobs.is_empty() {
            queue = self.shared.wait(queue);
        }
    }
}

impl Drop for Behind {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.changed.notify_all();
        let thread = self
            .thread
            .get_mut()
            .unwrap_or_else(|poison| poison.into_inner());
        if let Some(handle) = thread.take() {
            // The writer empties the queue before it ends.
            let _ = handle.join();
        }
    }
}

/// The writer thread: every job, in order, until the store is dropped.
fn write_jobs(shared: &Shared, dir: &StateDir) {
    loop {
        let job = {
            let mut queue = shared.lock();
            loop {
                if let Some(job) = queue.jobs.pop_front() {
                    queue.busy = true;
                    break job;
                }
                if queue.closed {
                    return;
                }
                queue = shared.wait(queue);
            }
        };
        write_job(shared, dir, job);
    }
}

/// Every queued job, on the calling thread.
fn write_jobs_now(shared: &Shared, dir: &StateDir) {
    loop {
        let job = {
            let mut queue = shared.lock();
            let Some(job) = queue.jobs.pop_front() else {
                return;
            };
            queue.busy = true;
            job
        };
        write_job(shared, dir, job);
    }
}

fn write_job(shared: &Shared, dir: &StateDir, job: Job) {
    let Job { keys, encode } = job;
    // A panic would leave the keys pending and their readers waiting.
    let values =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(encode)).unwrap_or_else(|_| {
            tracing::error!("encoding records to write panicked; they will be rebuilt when needed");
            Vec::new()
        });
    for ((kind, key), value) in keys.iter().zip(&values) {
        let path = dir.entry(Bucket::Records(*kind), key);
        if let Err(error) = dir.write(&path, value, false) {
            // Records written behind are ones an engine rebuilds when missing.
            tracing::warn!(%error, kind = ?kind, "cannot write a record; it will be rebuilt when needed");
        }
    }
    let mut queue = shared.lock();
    for key in &keys {
        if let Some(count) = queue.pending.get_mut(key) {
            *count -= 1;
            if *count == 0 {
                queue.pending.remove(key);
            }
        }
    }
    queue.busy = false;
    drop(queue);
    shared.changed.notify_all();
}
