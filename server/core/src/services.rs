//! The services running in an engine: one instance per service key, shared
//! by every dependent, counted, and stopped once the last one has been gone
//! for a grace period (so a service used by consecutive steps is not
//! restarted between them). How an instance starts is `launch.rs`'s
//! business; this table only decides when one starts and stops.
//!
//! A `Lease` is one dependent's hold on an instance. Dropping it releases
//! the hold after the grace period; the instance stops when no hold is left.
//! `Service.start` keeps a lease until `Service.stop`, which stops the
//! instance whoever still holds it (their next step starts a fresh one).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::{BoxFuture, FutureExt as _, Shared};
use tokio::sync::OnceCell;

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::runtime::ContainerControl;
use crate::value::PortSpec;

/// How long a service outlives its last dependent, as in Dagger.
pub(crate) const DEFAULT_GRACE: Duration = Duration::from_secs(10);

/// How long a service has to accept connections on its exposed ports.
pub(crate) const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(300);

/// How long a stopping service has between SIGTERM and SIGKILL.
const TERMINATE_GRACE: Duration = Duration::from_secs(10);

/// A running service.
pub(crate) struct Instance {
    pub(crate) hostname: String,
    /// Where dependents reach it.
    pub(crate) address: IpAddr,
    /// Its ports as dependents reach them (a tunnel's chosen frontends).
    pub(crate) ports: Vec<PortSpec>,
    /// Whether other steps resolve `hostname` to `address` (not tunnels,
    /// whose address is the engine host's loopback).
    pub(crate) resolvable: bool,
    /// Resolves, with the reason, when the service stops on its own (its
    /// process exited, or a service it depends on did). `None` for
    /// services that only stop when told to.
    pub(crate) exited: Option<Shared<BoxFuture<'static, Error>>>,
    /// Its container: signalled when it is stopped, then dropped (which
    /// removes the container and what its step holds), however long others
    /// keep the instance (a dependent's lease in its grace period).
    control: Mutex<Option<Box<dyn ContainerControl>>>,
    /// What the instance keeps alive: its container's mounts and locks,
    /// its own dependencies' leases, listening tasks. Dropped when it stops.
    resources: Mutex<Option<Box<dyn Send + Sync>>>,
}

impl Instance {
    pub(crate) fn new(
        hostname: String,
        address: IpAddr,
        ports: Vec<PortSpec>,
        resolvable: bool,
    ) -> Self {
        Self {
            hostname,
            address,
            ports,
            resolvable,
            exited: None,
            control: Mutex::new(None),
            resources: Mutex::new(None),
        }
    }

    /// Notes that the instance stops on its own when `exited` resolves.
    pub(crate) fn watching(mut self, exited: Shared<BoxFuture<'static, Error>>) -> Self {
        self.exited = Some(exited);
        self
    }

    /// A container service's process, signalled when it is stopped.
    pub(crate) fn controlling(self, control: Box<dyn ContainerControl>) -> Self {
        *self.control.lock().expect("not poisoned") = Some(control);
        self
    }

    /// Keeps `resources` alive until the instance stops.
    pub(crate) fn holding(self, resources: Box<dyn Send + Sync>) -> Self {
        *self.resources.lock().expect("not poisoned") = Some(resources);
        self
    }

    /// Whether it has already stopped on its own.
    pub(crate) fn has_exited(&self) -> bool {
        self.exited
            .as_ref()
            .is_some_and(|exited| exited.peek().is_some())
    }

    /// Stops the process (SIGTERM, SIGKILL after a grace period or at once
    /// with `kill`) and releases everything it holds.
    async fn stop(&self, kill: bool) {
        let control = self.control.lock().expect("not poisoned").take();
        if let (Some(control), Some(exited)) = (&control, &self.exited) {
            if !self.has_exited() {
                if let Err(error) = control.signal(kill).await {
                    tracing::debug!(%error, hostname = %self.hostname, "cannot signal a service");
                }
                if tokio::time::timeout(TERMINATE_GRACE, exited.clone())
                    .await
                    .is_err()
                {
                    tracing::info!(hostname = %self.hostname, "service ignored SIGTERM; killing it");
                    let _ = control.signal(true).await;
                    let _ = tokio::time::timeout(TERMINATE_GRACE, exited.clone()).await;
                }
            }
        }
        // The container first: it may use what the resources hold.
        drop(control);
        let resources = self.resources.lock().expect("not poisoned").take();
        drop(resources);
        tracing::debug!(hostname = %self.hostname, "service stopped");
    }
}

enum Entry {
    /// Being started: every acquirer waits for the same attempt.
    Starting(Arc<OnceCell<Result<Arc<Instance>>>>),
    Running {
        instance: Arc<Instance>,
        refs: usize,
    },
}

struct Table {
    entries: Mutex<HashMap<Digest, Entry>>,
    /// Leases of `Service.start`, until `Service.stop`.
    started: Mutex<HashMap<Digest, Lease>>,
    grace: Duration,
}

/// The engine's table of services.
pub(crate) struct Services {
    table: Arc<Table>,
    /// How long a starting service may take to accept connections.
    pub(crate) ready_timeout: Duration,
}

impl Default for Services {
    fn default() -> Self {
        Self::new(DEFAULT_GRACE, DEFAULT_READY_TIMEOUT)
    }
}

/// One dependent's hold on a running service.
pub(crate) struct Lease {
    table: Arc<Table>,
    key: Digest,
    pub(crate) instance: Arc<Instance>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let table = self.table.clone();
        let key = self.key;
        let instance = self.instance.clone();
        let release = async move {
            if !table.grace.is_zero() {
                tokio::time::sleep(table.grace).await;
            }
            if let Some(instance) = table.release(key, &instance) {
                instance.stop(false).await;
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(release);
            }
            Err(_) => tracing::warn!("a service lease was dropped outside the async runtime"),
        }
    }
}

impl Table {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Digest, Entry>> {
        self.entries.lock().expect("not poisoned")
    }

    /// Drops one hold on `instance`; returns it when that was the last one
    /// (it is then out of the table, for the caller to stop).
    fn release(&self, key: Digest, instance: &Arc<Instance>) -> Option<Arc<Instance>> {
        let mut entries = self.lock();
        let Some(Entry::Running {
            instance: current,
            refs,
        }) = entries.get_mut(&key)
        else {
            return None;
        };
        if !Arc::ptr_eq(current, instance) {
            return None;
        }
        *refs = refs.saturating_sub(1);
        if *refs > 0 {
            return None;
        }
        match entries.remove(&key) {
            Some(Entry::Running { instance, .. }) => Some(instance),
            _ => None,
        }
    }
}

impl Services {
    pub(crate) fn new(grace: Duration, ready_timeout: Duration) -> Self {
        Self {
            table: Arc::new(Table {
                entries: Mutex::new(HashMap::new()),
                started: Mutex::new(HashMap::new()),
                grace,
            }),
            ready_timeout,
        }
    }

    /// A hold on the running instance of service `key`, starting it with
    /// `start` when none runs. Concurrent acquirers share one start (if the
    /// one starting it goes away, a waiting one takes over); a failed start
    /// is handed to all of them and forgotten.
    pub(crate) async fn acquire<F, Fut>(&self, key: Digest, start: F) -> Result<Lease>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Instance>>,
    {
        let cell = {
            let mut entries = self.table.lock();
            match entries.get_mut(&key) {
                Some(Entry::Running { instance, refs }) if !instance.has_exited() => {
                    *refs += 1;
                    return Ok(self.lease(key, instance.clone()));
                }
                Some(Entry::Starting(cell)) => cell.clone(),
                _ => {
                    // None, or an instance that stopped on its own: its
                    // holders find it gone when they release it.
                    let cell = Arc::new(OnceCell::new());
                    entries.insert(key, Entry::Starting(cell.clone()));
                    cell
                }
            }
        };
        let outcome = cell
            .get_or_init(|| async { start().await.map(Arc::new) })
            .await
            .clone();
        let mut entries = self.table.lock();
        match (outcome, entries.get_mut(&key)) {
            (Err(error), Some(Entry::Starting(current))) if Arc::ptr_eq(current, &cell) => {
                entries.remove(&key);
                Err(error)
            }
            (Err(error), _) => Err(error),
            (Ok(instance), Some(Entry::Starting(current))) if Arc::ptr_eq(current, &cell) => {
                entries.insert(
                    key,
                    Entry::Running {
                        instance: instance.clone(),
                        refs: 1,
                    },
                );
                Ok(self.lease(key, instance))
            }
            (
                Ok(instance),
                Some(Entry::Running {
                    instance: current,
                    refs,
                }),
            ) if Arc::ptr_eq(current, &instance) => {
                *refs += 1;
                Ok(self.lease(key, instance))
            }
            // `Service.stop` came between its start and this hold.
            (Ok(instance), _) => Err(Error::InvalidArgument {
                message: format!(
                    "service {} was stopped while it was starting",
                    instance.hostname
                ),
            }),
        }
    }

    fn lease(&self, key: Digest, instance: Arc<Instance>) -> Lease {
        Lease {
            table: self.table.clone(),
            key,
            instance,
        }
    }

    /// The running instance of `key`, if any.
    pub(crate) fn running(&self, key: &Digest) -> Option<Arc<Instance>> {
        match self.table.lock().get(key) {
            Some(Entry::Running { instance, .. }) if !instance.has_exited() => {
                Some(instance.clone())
            }
            _ => None,
        }
    }

    /// Keeps `lease` until `stop(key)` (`Service.start`).
    pub(crate) fn keep_started(&self, key: Digest, lease: Lease) {
        let previous = self
            .table
            .started
            .lock()
            .expect("not poisoned")
            .insert(key, lease);
        drop(previous);
    }

    /// Stops the instance of `key` now, whoever holds it (`Service.stop`).
    pub(crate) async fn stop(&self, key: &Digest, kill: bool) {
        let started = self.table.started.lock().expect("not poisoned").remove(key);
        let instance = {
            let mut entries = self.table.lock();
            match entries.get(key) {
                // One being started is not ours to cancel: its starters'
                // leases stop it like any other.
                Some(Entry::Running { .. }) => match entries.remove(key) {
                    Some(Entry::Running { instance, .. }) => Some(instance),
                    _ => None,
                },
                _ => None,
            }
        };
        if let Some(instance) = instance {
            instance.stop(kill).await;
        }
        drop(started);
    }

    /// Hostnames and addresses of the running services other steps may
    /// resolve (their `/etc/hosts`).
    pub(crate) fn resolvable_hosts(&self) -> Vec<(String, IpAddr)> {
        let entries = self.table.lock();
        let mut hosts: Vec<(String, IpAddr)> = entries
            .values()
            .filter_map(|entry| match entry {
                Entry::Running { instance, .. } if instance.resolvable => {
                    Some((instance.hostname.clone(), instance.address))
                }
                _ => None,
            })
            .collect();
        hosts.sort();
        hosts
    }

    /// Stops every service (SIGKILL): the engine is going away.
    pub(crate) async fn shutdown(&self) {
        let started: Vec<Lease> = self
            .table
            .started
            .lock()
            .expect("not poisoned")
            .drain()
            .map(|(_, lease)| lease)
            .collect();
        let instances: Vec<Arc<Instance>> = self
            .table
            .lock()
            .drain()
            .filter_map(|(_, entry)| match entry {
                Entry::Running { instance, .. } => Some(instance),
                Entry::Starting(_) => None,
            })
            .collect();
        futures::future::join_all(instances.iter().map(|instance| instance.stop(true))).await;
        drop(started);
    }

    /// How many services run (tests).
    #[cfg(test)]
    pub(crate) fn running_count(&self) -> usize {
        self.table
            .lock()
            .values()
            .filter(|entry| matches!(entry, Entry::Running { .. }))
            .count()
    }
}

/// The first of `exits` to resolve (never, when there are none).
pub(crate) fn first_exit(exits: Vec<BoxFuture<'static, Error>>) -> BoxFuture<'static, Error> {
    if exits.is_empty() {
        return futures::future::pending().boxed();
    }
    futures::future::select_all(exits)
        .map(|(error, _, _)| error)
        .boxed()
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn instance() -> Instance {
        Instance::new(
            "svc".into(),
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            Vec::new(),
            true,
        )
    }

    #[tokio::test]
    async fn concurrent_acquirers_share_one_start() {
        let services = Arc::new(Services::new(Duration::ZERO, DEFAULT_READY_TIMEOUT));
        let starts = Arc::new(AtomicUsize::new(0));
        let key = Digest::of_bytes(b"svc");
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let services = services.clone();
            let starts = starts.clone();
            tasks.push(tokio::spawn(async move {
                services
                    .acquire(key, || async {
                        starts.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(30)).await;
                        Ok(instance())
                    })
                    .await
                    .map(|lease| lease.instance.clone())
            }));
        }
        let mut instances = Vec::new();
        for task in tasks {
            instances.push(task.await.unwrap().unwrap());
        }
        assert_eq!(starts.load(Ordering::SeqCst), 1);
        assert!(instances.iter().all(|i| Arc::ptr_eq(i, &instances[0])));
    }

    #[tokio::test]
    async fn the_last_release_stops_it_after_the_grace_period() {
        let services = Services::new(Duration::from_millis(50), DEFAULT_READY_TIMEOUT);
        let key = Digest::of_bytes(b"svc");
        let a = services
            .acquire(key, || async { Ok(instance()) })
            .await
            .unwrap();
        let b = services
            .acquire(key, || async { panic!("already running") })
            .await
            .unwrap();
        drop(a);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(services.running_count(), 1, "b still holds it");
        drop(b);
        // Re-acquired within the grace period: the same instance goes on.
        let c = services
            .acquire(key, || async { panic!("still running") })
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(services.running_count(), 1);
        drop(c);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(services.running_count(), 0);
    }

    #[tokio::test]
    async fn a_failed_start_is_shared_then_forgotten() {
        let services = Services::new(Duration::ZERO, DEFAULT_READY_TIMEOUT);
        let key = Digest::of_bytes(b"svc");
        let error = services
            .acquire(key, || async {
                Err::<Instance, _>(Error::Unsupported {
                    message: "boom".into(),
                })
            })
            .await
            .err()
            .unwrap();
        assert!(error.to_string().contains("boom"));
        let lease = services.acquire(key, || async { Ok(instance()) }).await;
        assert!(lease.is_ok(), "the next acquirer starts it again");
    }

    /// A control that counts its signals and its drop (the container's removal).
    struct Counted {
        signals: Arc<AtomicUsize>,
        removed: Arc<AtomicUsize>,
    }

    #[async_trait::async_trait]
    impl ContainerControl for Counted {
        async fn signal(
            &self,
            _kill: bool,
        ) -> std::result::Result<(), crate::runtime::RuntimeError> {
            self.signals.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    impl Drop for Counted {
        fn drop(&mut self) {
            self.removed.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn a_stopped_service_s_container_goes_while_a_lease_is_in_its_grace_period() {
        // A grace period no test waits for: the container must not wait for it.
        let services = Services::new(Duration::from_secs(3600), DEFAULT_READY_TIMEOUT);
        let key = Digest::of_bytes(b"svc");
        let (signals, removed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let control = Counted {
            signals: signals.clone(),
            removed: removed.clone(),
        };
        // It exits as soon as it is told to.
        let exited = futures::future::ready(Error::Unsupported {
            message: "exited".into(),
        })
        .boxed()
        .shared();
        let lease = services
            .acquire(key, || async {
                Ok(instance().controlling(Box::new(control)).watching(exited))
            })
            .await
            .unwrap();
        // A dependent is done: its lease waits out the grace period, holding the instance.
        drop(lease);
        tokio::task::yield_now().await;
        services.stop(&key, false).await;
        assert_eq!(
            signals.load(Ordering::SeqCst),
            1,
            "SIGTERM, and no SIGKILL: it exited"
        );
        assert_eq!(
            removed.load(Ordering::SeqCst),
            1,
            "the container is removed at stop"
        );
        assert_eq!(services.running_count(), 0);
    }
}
