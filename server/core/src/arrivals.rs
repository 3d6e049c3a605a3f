//! Blobs a store does not hold yet but knows how to get: the contents of a
//! path read found in the remote cache (`ops::read`), fetched only when
//! something reads them. A leaf that needs a file's size or digest costs
//! no download; one that needs its bytes waits for them here.
//!
//! A store keeps an `Arrivals` table (`Store::arrivals`) and asks it before
//! it reads a blob (`Arrivals::wait`): a blob that is expected is fetched
//! then (once, whoever asks first), and every reader waits for it. Store
//! reads are blocking calls made from async code too, so a reader on a
//! runtime worker hands its worker over while it waits
//! (`tokio::task::block_in_place`): the fetch itself runs as a task of the
//! runtime that expected the blob. That runtime must be a multi-threaded
//! one (the engine's is); on a current-thread runtime a reader on the
//! runtime's thread would wait for a task that never runs.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex};

use dashmap::DashMap;

use crate::digest::Digest;
use crate::error::{Error, Result};

/// Gets an expected blob into the store; `Err`: why it could not (for the
/// reader's error message). Called again by the next read after a failure.
pub type Fetch = Arc<
    dyn Fn() -> Pin<Box<dyn Future<Output = std::result::Result<(), String>> + Send>> + Send + Sync,
>;

/// The blobs a store expects, by digest.
#[derive(Default)]
pub struct Arrivals {
    expected: Arc<DashMap<Digest, Arc<Arrival>>>,
}

impl std::fmt::Debug for Arrivals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Arrivals")
            .field("expected", &self.expected.len())
            .finish()
    }
}

struct Arrival {
    fetch: Fetch,
    /// The runtime the fetch runs on.
    runtime: tokio::runtime::Handle,
    state: Mutex<State>,
    changed: Condvar,
}

enum State {
    /// Not asked for yet.
    Idle,
    Fetching,
    /// Stored (and gone from the table).
    Arrived,
    /// The last fetch failed, and why: the readers that waited for it get
    /// the reason; the next read tries again.
    Failed(String),
}

impl Arrivals {
    /// Expects `blob`, to be fetched by `fetch` when first read. Called
    /// from within a Tokio runtime (the fetch runs there). A blob expected
    /// already keeps its first fetch.
    pub fn expect(&self, blob: Digest, fetch: Fetch) {
        let runtime = tokio::runtime::Handle::current();
        self.expected.entry(blob).or_insert_with(|| {
            Arc::new(Arrival {
                fetch,
                runtime,
                state: Mutex::new(State::Idle),
                changed: Condvar::new(),
            })
        });
    }

    /// Whether `blob` is expected and not stored yet.
    pub fn expects(&self, blob: &Digest) -> bool {
        self.expected.contains_key(blob)
    }

    /// Returns once `blob` is in the store, when it is expected: starts its
    /// fetch unless one is under way (a failed one is tried again), and
    /// blocks until it ends. `Ok` at once for a blob not expected. `Err`:
    /// the fetch failed, and why.
    pub fn wait(&self, blob: &Digest) -> std::result::Result<(), String> {
        let Some(arrival) = self
            .expected
            .get(blob)
            .map(|found| Arc::clone(found.value()))
        else {
            return Ok(());
        };
        let mut state = arrival.state.lock().expect("never poisoned");
        if matches!(*state, State::Idle | State::Failed(_)) {
            *state = State::Fetching;
            let fetch = (arrival.fetch)();
            let (expected, blob, done) = (self.expected.clone(), *blob, arrival.clone());
            arrival.runtime.spawn(async move {
                let outcome = fetch.await;
                let mut state = done.state.lock().expect("never poisoned");
                *state = match outcome {
                    Ok(()) => {
                        expected.remove(&blob);
                        State::Arrived
                    }
                    Err(why) => State::Failed(why),
                };
                done.changed.notify_all();
            });
        }
        let until_done = |state| {
            arrival
                .changed
                .wait_while(state, |state| matches!(state, State::Fetching))
                .expect("never poisoned")
        };
        let state = match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => {
                tokio::task::block_in_place(|| until_done(state))
            }
            _ => until_done(state),
        };
        match &*state {
            State::Failed(why) => Err(why.clone()),
            _ => Ok(()),
        }
    }

    /// `read` of `blob` once it is in the store (see `wait`): at once when
    /// it is not expected or `read` finds it. When its fetch failed, `read`
    /// is tried again (the blob may have come another way since); if that
    /// fails too, the error is the fetch's reason.
    pub fn read<T>(&self, blob: &Digest, read: impl Fn() -> Result<T>) -> Result<T> {
        if !self.expects(blob) {
            return read();
        }
        if let Ok(here) = read() {
            // It came another way (another engine on the store, an exec).
            return Ok(here);
        }
        match self.wait(blob) {
            Ok(()) => read(),
            Err(reason) => read().map_err(|_| Error::BlobUnavailable {
                blob: blob.to_string(),
                reason,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn counted(fetches: &Arc<AtomicUsize>, outcome: std::result::Result<(), String>) -> Fetch {
        let fetches = fetches.clone();
        Arc::new(move || {
            let (fetches, outcome) = (fetches.clone(), outcome.clone());
            Box::pin(async move {
                fetches.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                outcome
            })
        })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_expected_blob_is_fetched_once_when_first_read_and_readers_wait_for_it() {
        let arrivals = Arc::new(Arrivals::default());
        let blob = Digest::of_bytes(b"contents");
        let fetches = Arc::new(AtomicUsize::new(0));
        arrivals.expect(blob, counted(&fetches, Ok(())));
        // Expecting it again keeps the first fetch.
        arrivals.expect(blob, counted(&fetches, Err("second".into())));
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        assert_eq!(fetches.load(Ordering::SeqCst), 0, "fetched before a read");
        assert!(arrivals.expects(&blob));

        // Readers on runtime workers (both of them) and on a blocking thread.
        let readers: Vec<_> = (0..3)
            .map(|_| {
                let arrivals = arrivals.clone();
                tokio::spawn(async move { arrivals.wait(&blob) })
            })
            .chain(std::iter::once({
                let arrivals = arrivals.clone();
                tokio::task::spawn_blocking(move || arrivals.wait(&blob))
            }))
            .collect();
        for reader in readers {
            assert_eq!(reader.await.unwrap(), Ok(()));
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        assert!(!arrivals.expects(&blob));
        // Not expected any more: nothing to wait for.
        assert_eq!(arrivals.wait(&blob), Ok(()));
        assert_eq!(arrivals.wait(&Digest::of_bytes(b"other")), Ok(()));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_fetch_gives_its_readers_the_reason_and_the_next_read_tries_again() {
        let arrivals = Arc::new(Arrivals::default());
        let blob = Digest::of_bytes(b"contents");
        let fetches = Arc::new(AtomicUsize::new(0));
        let reason = || Err("the registry went away".to_owned());
        arrivals.expect(blob, counted(&fetches, reason()));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let arrivals = arrivals.clone();
                tokio::task::spawn_blocking(move || arrivals.wait(&blob))
            })
            .collect();
        for reader in readers {
            assert_eq!(reader.await.unwrap(), reason());
        }
        let first = fetches.load(Ordering::SeqCst);
        assert!((1..=2).contains(&first), "{first} fetches for two readers");
        assert_eq!(arrivals.wait(&blob), reason());
        assert_eq!(fetches.load(Ordering::SeqCst), first + 1);
        assert!(arrivals.expects(&blob));
    }
}
