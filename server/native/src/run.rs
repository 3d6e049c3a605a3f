//! The engine's run directory (on a tmpfs) and the cleanup of dead engines' leftovers.
//!
//! ```text
//! RUN_ROOT/starting/<name>/          an engine's run directory while it is made
//! RUN_ROOT/engines/<name>/lock       flock-held for the engine's lifetime: a lock
//!                                    anyone can take means the engine is gone
//! RUN_ROOT/engines/<name>/store       the snapshot store root it used
//! RUN_ROOT/engines/<name>/oci/        the OCI runtime's container state (--root)
//! RUN_ROOT/engines/<name>/steps/<id>/ a running step: config.json, hosts, resolv.conf,
//!                                    hostname, log.json, rootfs/ (the overlay mount)
//! RUN_ROOT/engines/<name>/created     a line per container created (read by tests and
//!                                    the benchmarks as the engine's container count)
//! RUN_ROOT/net/                      see `network`
//! ```
//!
//! An engine's name is `<pid>-<n>`: its process ID and a counter, as one process may
//! host several runtimes (the tests do).
//!
//! A step's spec (which holds its secret variables) therefore never reaches a disk.
//! At start, [`orphans`] cleans up after every engine whose lock is free: it kills
//! and deletes its containers, kills whatever is left in its cgroups and removes them,
//! unmounts its overlays, deletes its network namespaces and its unfinished layers.

use std::fs;
use std::io::Write as _;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::Error;
use crate::oci::{Cgroups, OciRuntime};
use crate::overlay;
use crate::store::remove_tree;

/// Where an engine's run directory is made before it moves into `engines/`.
const STARTING: &str = "starting";

/// The default run root: a tmpfs every Linux machine has.
pub const DEFAULT_RUN_ROOT: &str = "/dev/shm/gantry-native";

/// This engine's run directory.
static INSTANCES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

#[derive(Debug)]
pub(crate) struct EngineRun {
    /// `<pid>-<n>`.
    pub(crate) name: String,
    pub(crate) dir: PathBuf,
    _lock: OwnedFd,
    created: Mutex<fs::File>,
    timings: Mutex<fs::File>,
}

fn try_lock(path: &Path) -> Result<Option<OwnedFd>, Error> {
    let fd = rustix::fs::open(
        path,
        rustix::fs::OFlags::CREATE | rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::from_raw_mode(0o600),
    )
    .map_err(|errno| Error::io("opening a lock file", path, errno.into()))?;
    match rustix::fs::flock(&fd, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Some(fd)),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
        Err(errno) => Err(Error::io("locking", path, errno.into())),
    }
}

impl EngineRun {
    pub(crate) fn create(run_root: &Path, store_root: &Path) -> Result<Self, Error> {
        let statfs = rustix::fs::statfs(run_root)
            .map_err(|errno| Error::io("inspecting the run directory", run_root, errno.into()))?;
        const TMPFS_MAGIC: i64 = 0x0102_1994;
        #[expect(
            clippy::useless_conversion,
            reason = "f_type's width differs between targets"
        )]
        if i64::from(statfs.f_type) != TMPFS_MAGIC {
            return Err(Error::Unsupported {
                reason: format!(
                    "{} is not on a tmpfs: step specs hold secret values, which must never reach a disk",
                    run_root.display()
                ),
            });
        }
        let instance = INSTANCES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("{}-{instance}", std::process::id());
        // The directory is made and locked under `starting/`, then renamed into
        // `engines/`: another engine's orphan cleanup, which takes any lock it can
        // in `engines/`, never sees it unlocked (the lock is on the inode, which the
        // rename keeps).
        let staging = run_root.join(STARTING).join(&name);
        if staging.exists() {
            // A previous process with our pid died while starting.
            remove_tree(&staging);
        }
        for sub in ["oci", "steps"] {
            let path = staging.join(sub);
            fs::create_dir_all(&path)
                .map_err(|source| Error::io("creating the run directory", &path, source))?;
        }
        use std::os::unix::fs::PermissionsExt as _;
        let _ = fs::set_permissions(run_root, fs::Permissions::from_mode(0o700));
        let lock = try_lock(&staging.join("lock"))?
            .ok_or_else(|| Error::other("locking the run directory", "another process holds it"))?;
        fs::write(
            staging.join("store"),
            store_root.as_os_str().as_encoded_bytes(),
        )
        .map_err(|source| Error::io("writing the run directory", &staging, source))?;
        let engines = run_root.join("engines");
        fs::create_dir_all(&engines)
            .map_err(|source| Error::io("creating the run directory", &engines, source))?;
        let dir = engines.join(&name);
        if dir.exists() {
            // A previous process with our pid died without cleaning up.
            remove_tree(&dir);
        }
        fs::rename(&staging, &dir)
            .map_err(|source| Error::io("creating the run directory", &dir, source))?;
        let created = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("created"))
            .map_err(|source| Error::io("writing the run directory", &dir, source))?;
        let timings = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("timings"))
            .map_err(|source| Error::io("writing the run directory", &dir, source))?;
        Ok(Self {
            name,
            dir,
            _lock: lock,
            created: Mutex::new(created),
            timings: Mutex::new(timings),
        })
    }

    pub(crate) fn oci_root(&self) -> PathBuf {
        self.dir.join("oci")
    }

    pub(crate) fn step_dir(&self, id: &str) -> PathBuf {
        self.dir.join("steps").join(id)
    }

    /// Records a container creation (see the module documentation).
    pub(crate) fn count_created(&self, id: &str) {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let mut file = self
            .created
            .lock()
            .expect("the counter file is never poisoned");
        let _ = writeln!(file, "{nanos} {id}");
    }
}

impl EngineRun {
    /// Appends one step's phase timings (a JSON line) to `timings`.
    pub(crate) fn record_timings(&self, line: &str) {
        let mut file = self
            .timings
            .lock()
            .expect("the timings file is never poisoned");
        let _ = writeln!(file, "{line}");
    }
}

impl Drop for EngineRun {
    fn drop(&mut self) {
        remove_tree(&self.dir);
    }
}

/// Cleans up after engines that are gone; returns how many containers it removed.
pub(crate) async fn orphans(run_root: &Path, oci: &OciRuntime, cgroups: &Cgroups) -> usize {
    // Run directories of processes that died while starting an engine.
    for entry in fs::read_dir(run_root.join(STARTING))
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name.split('-').next().unwrap_or_default();
        if !Path::new("/proc").join(pid).exists() {
            remove_tree(&entry.path());
        }
    }
    let engines = run_root.join("engines");
    let mut removed = 0;
    let mut dead: Vec<String> = Vec::new();
    for entry in fs::read_dir(&engines).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let dir = entry.path();
        match try_lock(&dir.join("lock")) {
            Ok(Some(_free)) => {}
            _ => continue,
        }
        dead.push(name.clone());
        let oci_root = dir.join("oci");
        for container in fs::read_dir(&oci_root).into_iter().flatten().flatten() {
            let id = container.file_name().to_string_lossy().into_owned();
            oci.destroy(&oci_root, &id);
            removed += 1;
        }
        for mount in overlay::mounts_under(&dir) {
            if let Err(error) = overlay::unmount(&mount) {
                tracing::warn!(%error, "cannot unmount a dead engine's overlay");
            }
        }
        if let Ok(store) = fs::read_to_string(dir.join("store")) {
            remove_stale_scratch(&PathBuf::from(store).join("tmp"), run_root);
        }
        remove_tree(&dir);
    }
    // Cgroups and namespaces of engines that left no run directory (a reboot clears
    // the tmpfs but not a long-lived cgroup; a killed engine leaves both).
    for (name, cgroup) in cgroups.engine_dirs() {
        if !engine_alive(run_root, &name) {
            let cgroups = cgroups.clone();
            let _ = tokio::task::spawn_blocking(move || cgroups.kill_and_remove(&cgroup)).await;
            if !dead.contains(&name) {
                dead.push(name);
            }
        }
    }
    for name in dead {
        crate::network::remove_namespaces_of(&name).await;
    }
    if removed > 0 {
        tracing::info!(removed, "removed containers of engines no longer running");
    }
    removed
}

/// Whether the engine `name` still holds its run directory's lock.
fn engine_alive(run_root: &Path, name: &str) -> bool {
    let lock = run_root.join("engines").join(name).join("lock");
    lock.exists() && matches!(try_lock(&lock), Ok(None))
}

/// Whether any engine of process `pid` is running.
fn process_has_engine(run_root: &Path, pid: &str) -> bool {
    let prefix = format!("{pid}-");
    fs::read_dir(run_root.join("engines"))
        .into_iter()
        .flatten()
        .flatten()
        .any(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            name.starts_with(&prefix) && engine_alive(run_root, &name)
        })
}

/// Scratch directories (named `<pid>-…`) in a store's `tmp` whose process runs no
/// engine: unfinished layers and steps of engines that died (after a reboot their run
/// directories are gone too).
pub(crate) fn remove_stale_scratch(tmp: &Path, run_root: &Path) {
    let own = std::process::id().to_string();
    for entry in fs::read_dir(tmp).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.split('-').next().filter(|p| p.parse::<u32>().is_ok()) else {
            continue;
        };
        if pid != own && !process_has_engine(run_root, pid) {
            remove_tree(&entry.path());
        }
    }
}
