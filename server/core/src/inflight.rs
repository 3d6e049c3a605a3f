//! `InFlight`: single-flight memoisation keyed by digest.
//!
//! The first caller for a key runs the work; callers arriving while it runs
//! wait for the same outcome. Successes stay memoised for the engine's
//! lifetime; failures are handed to everyone already waiting and then
//! forgotten, so the next request retries (a failed step is never cached).
//! If the running caller is cancelled (its client went away), a waiting
//! caller takes over the work.

use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;

use dashmap::DashMap;
use tokio::sync::OnceCell;

pub(crate) struct InFlight<K, V, E> {
    cells: DashMap<K, Arc<OnceCell<Result<V, E>>>>,
}

impl<K, V, E> Default for InFlight<K, V, E>
where
    K: Eq + Hash,
{
    fn default() -> Self {
        Self {
            cells: DashMap::new(),
        }
    }
}

impl<K, V, E> InFlight<K, V, E>
where
    K: Eq + Hash + Clone,
    V: Clone,
    E: Clone,
{
    /// Returns the memoised value for `key`, or runs `work` once for all
    /// concurrent callers.
    pub(crate) async fn run<F, Fut>(&self, key: K, work: F) -> Result<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        // Clone the cell out so no map guard is held across the await.
        let cell = self.cells.entry(key.clone()).or_default().clone();
        let outcome = cell.get_or_init(work).await.clone();
        if outcome.is_err() {
            // Forget the failure, but only if no newer attempt replaced it.
            self.cells
                .remove_if(&key, |_, current| Arc::ptr_eq(current, &cell));
        }
        outcome
    }

    /// Forgets every memoised success `stale` says is no longer true, so
    /// that the next caller runs its work again.
    pub(crate) fn forget_where(&self, stale: impl Fn(&V) -> bool) {
        self.cells
            .retain(|_, cell| !matches!(cell.get(), Some(Ok(value)) if stale(value)));
    }

    /// The memoised success for `key`, if any, without running anything.
    pub(crate) fn get(&self, key: &K) -> Option<V> {
        let cell = self.cells.get(key)?.clone();
        match cell.get() {
            Some(Ok(value)) => Some(value.clone()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn concurrent_callers_share_one_run() {
        let flight: Arc<InFlight<u32, u32, String>> = Arc::default();
        let runs = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let flight = flight.clone();
            let runs = runs.clone();
            tasks.push(tokio::spawn(async move {
                flight
                    .run(1, || async {
                        runs.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok(42)
                    })
                    .await
            }));
        }
        for task in tasks {
            assert_eq!(task.await.unwrap(), Ok(42));
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(flight.get(&1), Some(42));
    }

    #[tokio::test]
    async fn failures_are_shared_then_forgotten() {
        let flight: Arc<InFlight<u32, u32, String>> = Arc::default();
        let runs = Arc::new(AtomicUsize::new(0));
        let first = {
            let flight = flight.clone();
            let runs = runs.clone();
            tokio::spawn(async move {
                flight
                    .run(7, || async {
                        runs.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Err::<u32, _>("boom".to_string())
                    })
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        let waiting = flight.run(7, || async { Ok(1) }).await;
        assert_eq!(waiting, Err("boom".to_string()));
        assert_eq!(first.await.unwrap(), Err("boom".to_string()));
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        // The failure is not memoised: the next call runs again.
        assert_eq!(flight.run(7, || async { Ok(5) }).await, Ok(5));
    }

    #[tokio::test]
    async fn forgotten_values_are_worked_out_again() {
        let flight: InFlight<u32, u32, String> = InFlight::default();
        assert_eq!(flight.run(1, || async { Ok(10) }).await, Ok(10));
        assert_eq!(flight.run(2, || async { Ok(20) }).await, Ok(20));
        flight.forget_where(|value| *value == 10);
        assert_eq!(flight.get(&1), None);
        assert_eq!(flight.get(&2), Some(20));
        assert_eq!(flight.run(1, || async { Ok(11) }).await, Ok(11));
    }

    #[tokio::test]
    async fn a_cancelled_runner_hands_over_to_a_waiter() {
        let flight: Arc<InFlight<u32, u32, String>> = Arc::default();
        let slow = {
            let flight = flight.clone();
            tokio::spawn(async move {
                flight
                    .run(3, || async {
                        tokio::time::sleep(Duration::from_secs(60)).await;
                        Ok(0)
                    })
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        let waiter = {
            let flight = flight.clone();
            tokio::spawn(async move { flight.run(3, || async { Ok(9) }).await })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        slow.abort();
        assert_eq!(waiter.await.unwrap(), Ok(9));
    }
}
