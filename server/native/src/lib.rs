//! gantry-native: `NativeRuntime`, gantry's `Runtime` on an OCI runtime (`crun`, else
//! `runc`) and overlayfs snapshots, with no daemon in the way.
//!
//! It owns everything below the solver on Linux hosts where it runs as root: pulling
//! images into a content-addressed snapshot store (`store`), a root filesystem per step
//! as an overlay of its image's layers and a fresh upper directory (`overlay`), the OCI
//! spec (`spec`), the runtime process and its cgroup (`oci`), the step's network
//! namespace (`network`), the step's upper directory becoming its snapshot (`exec`),
//! services (long-running steps, named in every step's `/etc/hosts`) and the engine's
//! own listeners on the bridge (`service`), images built, pushed, saved and loaded from
//! snapshots (`image`), and the cleanup of engines that died (`run`). It does not decide what to cache or how images are
//! configured; the solver does, exactly as with the Docker runtime.

mod error;
mod exec;
mod image;
mod network;
mod oci;
mod overlay;
pub mod preamble;
mod pty;
mod registry;
mod run;
mod service;
mod spec;
mod store;
mod unpack;
mod user;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use gantry_core::runtime::{
    CacheImage, ExecOutput, ExecSpec, ImageConfig, PulledImage, RegistryAuth, RootfsSpec, Runtime,
    RuntimeError, StartedContainer, StepNetworkListener, TerminalIo,
};

pub use error::Error;
pub use network::NetworkMode;
pub use oci::Flavor;
pub use overlay::MAX_LOWER_LAYERS;
pub use run::DEFAULT_RUN_ROOT;

/// The registry plumbing of image pulls and pushes, for the binary's remote cache
/// tier (one registry client in the engine: `oci-client` with Docker's credentials).
pub mod registry_client {
    pub use crate::registry::{
        client_for, credentials, is_loopback, mount_or_copy, push, registry_error, tokenless, Blob,
    };
}

/// How to set up a native runtime.
#[derive(Debug, Clone)]
pub struct NativeOptions {
    /// The snapshot store: the state directory's snapshot bucket
    /// (`gantry_store::Bucket::Snapshots`).
    pub store_root: PathBuf,
    /// Per-engine run directories; must be on a tmpfs ([`DEFAULT_RUN_ROOT`]).
    pub run_root: PathBuf,
    /// `crun`, `runc` or a path to either; `None` picks crun when it can run here.
    pub oci_runtime: Option<String>,
    pub network: NetworkMode,
    /// Exported layers' modification times are clamped to this (`SOURCE_DATE_EPOCH`;
    /// 0 when unset), so that a pipeline publishes the same digest every time.
    pub source_date_epoch: u64,
    /// The program that runs a step's runtime process through [`preamble`]
    /// (joins its cgroups, and on a hybrid cgroup layout hides the v2 half from
    /// crun): by default the running binary ([`preamble::SELF_EXE`]), whose
    /// `main` must then hand [`preamble::ARG`] to [`preamble::main`] before
    /// anything else, as `gantry`'s does; or the `gantry-oci-start` program.
    pub preamble: PathBuf,
}

impl NativeOptions {
    pub fn new(store_root: PathBuf) -> Self {
        Self {
            store_root,
            run_root: PathBuf::from(DEFAULT_RUN_ROOT),
            oci_runtime: None,
            network: NetworkMode::Bridge,
            source_date_epoch: 0,
            preamble: PathBuf::from(preamble::SELF_EXE),
        }
    }
}

/// Why the native runtime cannot run on this machine, if it cannot: it needs Linux,
/// root, overlayfs, cgroups and crun or runc. `auto` runtime selection asks this.
pub fn unavailable_reason() -> Option<String> {
    if !cfg!(target_os = "linux") {
        return Some("it needs Linux".to_owned());
    }
    if !rustix::process::geteuid().is_root() {
        return Some("it needs root (rootless user namespaces are not supported yet)".to_owned());
    }
    let filesystems = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
    if !filesystems
        .lines()
        .any(|line| line.split_whitespace().last() == Some("overlay"))
    {
        return Some("the kernel has no overlayfs (modprobe overlay)".to_owned());
    }
    let cgroups = match oci::Cgroups::detect() {
        Ok(cgroups) => cgroups,
        Err(error) => return Some(error.to_string()),
    };
    if let Err(error) = oci::OciRuntime::detect(None, &cgroups, Path::new(preamble::SELF_EXE)) {
        return Some(error.to_string());
    }
    None
}

/// Removes images by ID or name from the snapshot store at `store_root` (with the
/// layers nothing else uses), without starting a runtime: `gantry prune`.
pub fn remove_images_in(store_root: &Path, names: &[String]) -> Result<usize, Error> {
    match store::Store::open_existing(store_root) {
        Some(store) => store.remove(names),
        None => Ok(0),
    }
}

/// Every name in the snapshot store at `store_root` in one of `repos` (exact
/// repository names, as `repo:tag`), without starting a runtime: what `gantry prune`
/// finds of a state directory's own repositories (`gantry_core::store::ImageNames`).
pub fn tags_in(store_root: &Path, repos: &[String]) -> Vec<String> {
    match store::Store::open_existing(store_root) {
        Some(store) => store.tags_in(repos),
        None => Vec::new(),
    }
}

/// Every name in the snapshot store at `store_root`, sorted, without starting a
/// runtime.
pub fn names_in(store_root: &Path) -> Vec<String> {
    store::Store::open_existing(store_root).map_or_else(Vec::new, |store| store.names())
}

/// Whether the snapshot store at `store_root` holds the image `name` (an image ID or a
/// tag such as `gantry.local/cache:<key>`) with all its layers.
pub fn image_exists_in(store_root: &Path, name: &str) -> bool {
    let Some(store) = store::Store::open_existing(store_root) else {
        return false;
    };
    let id = store.resolve_tag(name).unwrap_or_else(|| name.to_owned());
    store.image_complete(&id)
}

/// The layer directories of image `id` in the snapshot store at `store_root`, bottom
/// first: what a test scans to see what an image holds.
pub fn image_layer_dirs_in(store_root: &Path, id: &str) -> Option<Vec<PathBuf>> {
    let store = store::Store::open_existing(store_root)?;
    let record = store.image(id)?;
    Some(
        record
            .layers
            .iter()
            .map(|layer| store.layer_dir(layer))
            .collect(),
    )
}

/// `Runtime` on crun/runc and overlayfs snapshots.
#[derive(Clone)]
pub struct NativeRuntime {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) store: store::Store,
    pub(crate) run: run::EngineRun,
    pub(crate) oci: oci::OciRuntime,
    pub(crate) cgroups: oci::Cgroups,
    pub(crate) network: Option<Arc<network::Network>>,
    pub(crate) options: NativeOptions,
    pub(crate) sequence: AtomicU64,
    /// The services running, by name: every step's `/etc/hosts` lists them.
    pub(crate) services: service::Names,
    /// One export of a layer at a time (`image::export_layer`), by layer ID.
    pub(crate) exports: image::Turns,
    /// Pulls whose layers are fetched when first needed, by image ID.
    pub(crate) deferred: std::sync::Mutex<std::collections::HashMap<String, Arc<image::Deferred>>>,
    /// Registry clients shared by anonymous pulls.
    pub(crate) clients: registry::Clients,
}

impl std::fmt::Debug for NativeRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NativeRuntime")
            .field("oci_runtime", &self.inner.oci.flavor)
            .field("cgroup_version", &self.inner.cgroups.version())
            .field("store", &self.inner.store.root())
            .finish_non_exhaustive()
    }
}

impl NativeRuntime {
    /// Opens the snapshot store, claims a run directory and sets up the step network.
    #[tracing::instrument(skip_all, fields(store = %options.store_root.display()))]
    pub async fn start(options: NativeOptions) -> Result<Self, Error> {
        if let Some(reason) = unavailable_reason() {
            return Err(Error::Unsupported { reason });
        }
        let cgroups = oci::Cgroups::detect()?;
        let oci =
            oci::OciRuntime::detect(options.oci_runtime.as_deref(), &cgroups, &options.preamble)?;
        std::fs::create_dir_all(&options.run_root)
            .map_err(|source| Error::io("creating the run directory", &options.run_root, source))?;
        let store = store::Store::open(&options.store_root)?;
        let run = run::EngineRun::create(&options.run_root, store.root())?;
        let network = match options.network {
            NetworkMode::Bridge => {
                // Namespaces are made ahead once the orphans are gone (`remove_orphans`)
                // or when the first step takes one.
                Some(Arc::new(
                    network::Network::start(&options.run_root, &run.name).await?,
                ))
            }
            NetworkMode::Host => None,
        };
        tracing::info!(
            oci_runtime = oci.flavor.name(),
            cgroup_version = cgroups.version(),
            network = ?options.network,
            "native runtime ready"
        );
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                run,
                oci,
                cgroups,
                network,
                options,
                sequence: AtomicU64::new(0),
                services: service::Names::default(),
                exports: image::Turns::default(),
                deferred: Default::default(),
                clients: Default::default(),
            }),
        })
    }

    /// The OCI runtime in use.
    pub fn flavor(&self) -> Flavor {
        self.inner.oci.flavor
    }

    /// The address block this engine holds on the step network (its steps get
    /// `10.87.<block>.<host>`), or `None` with host networking.
    pub fn network_block(&self) -> Option<u8> {
        self.inner.network.as_ref().map(|network| network.block())
    }

    /// This engine's run directory (its `created` file counts containers).
    pub fn run_dir(&self) -> &Path {
        &self.inner.run.dir
    }

    /// Every image ID in the store (for `gantry prune`).
    pub fn image_ids(&self) -> Vec<String> {
        self.inner.store.image_ids()
    }
}

impl Drop for Inner {
    /// The engine is going: its cgroups, then (fields drop after this) its share of the
    /// step network (the last engine removes the bridge and its rules) and its run
    /// directory.
    fn drop(&mut self) {
        self.cgroups
            .kill_and_remove(&format!("gantry/{}", self.run.name));
    }
}

impl Inner {
    pub(crate) fn next_id(&self) -> String {
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed);
        format!("g{}-{sequence}", self.run.name)
    }
}

#[async_trait]
impl Runtime for NativeRuntime {
    #[tracing::instrument(skip_all, fields(reference = %reference, auth = auth.is_some()))]
    async fn pull(
        &self,
        reference: &str,
        auth: Option<&RegistryAuth>,
    ) -> Result<PulledImage, RuntimeError> {
        self.inner.pull(reference, auth).await
    }

    #[tracing::instrument(skip_all, fields(
        image = spec.rootfs.image_id.as_deref().unwrap_or("scratch"),
        layers = spec.rootfs.layers.len(),
    ))]
    async fn exec(&self, spec: ExecSpec) -> Result<ExecOutput, RuntimeError> {
        self.inner.ensure(spec.rootfs.image_id.as_deref()).await?;
        exec::run(self.inner.clone(), spec).await
    }

    async fn terminal(&self, spec: ExecSpec, io: TerminalIo) -> Result<i64, RuntimeError> {
        self.inner.ensure(spec.rootfs.image_id.as_deref()).await?;
        exec::terminal(self.inner.clone(), spec, io).await
    }

    #[tracing::instrument(skip_all, fields(path = %path))]
    async fn read_path(&self, rootfs: &RootfsSpec, path: &str) -> Result<Bytes, RuntimeError> {
        self.inner.ensure(rootfs.image_id.as_deref()).await?;
        image::read_path(self.inner.clone(), rootfs.clone(), path.to_owned()).await
    }

    #[tracing::instrument(skip_all, fields(tag = %tag))]
    async fn build_image(
        &self,
        rootfs: &RootfsSpec,
        config: &ImageConfig,
        tag: &str,
    ) -> Result<String, RuntimeError> {
        self.inner.ensure(rootfs.image_id.as_deref()).await?;
        image::build(
            self.inner.clone(),
            rootfs.clone(),
            config.clone(),
            tag.to_owned(),
        )
        .await
    }

    #[tracing::instrument(skip_all, fields(image = %image_id, reference = %reference))]
    async fn push(
        &self,
        image_id: &str,
        reference: &str,
        auth: Option<&RegistryAuth>,
    ) -> Result<String, RuntimeError> {
        self.inner.ensure(Some(image_id)).await?;
        image::push(self.inner.clone(), image_id, reference, auth, false).await
    }

    #[tracing::instrument(skip_all, fields(image = %image_id, reference = %reference))]
    async fn push_as_is(
        &self,
        image_id: &str,
        reference: &str,
        auth: Option<&RegistryAuth>,
    ) -> Result<String, RuntimeError> {
        self.inner.ensure(Some(image_id)).await?;
        image::push(self.inner.clone(), image_id, reference, auth, true).await
    }

    #[tracing::instrument(skip_all, fields(image = %image_id))]
    async fn save_image(&self, image_id: &str, reference: &str) -> Result<Bytes, RuntimeError> {
        self.inner.ensure(Some(image_id)).await?;
        image::save(
            self.inner.clone(),
            image_id.to_owned(),
            reference.to_owned(),
        )
        .await
    }

    #[tracing::instrument(skip_all, fields(image = %image_id))]
    async fn cache_layers(&self, image_id: &str) -> Result<Option<CacheImage>, RuntimeError> {
        self.inner.ensure(Some(image_id)).await?;
        image::cache_layers(self.inner.clone(), image_id.to_owned())
            .await
            .map(Some)
    }

    #[tracing::instrument(skip_all, fields(bytes = tarball.len()))]
    async fn load_image(&self, tarball: Bytes) -> Result<PulledImage, RuntimeError> {
        image::load(self.inner.clone(), tarball).await
    }

    async fn local_image(&self, reference: &str) -> Result<PulledImage, RuntimeError> {
        self.inner.local(reference)
    }

    async fn image_exists(&self, image_id: &str) -> Result<bool, RuntimeError> {
        Ok(self.inner.deferred(image_id).is_some() || self.inner.store.image_complete(image_id))
    }

    #[tracing::instrument(skip_all, fields(from = %from, to = %to))]
    async fn rename_image(&self, from: &str, to: &str) -> Result<(), RuntimeError> {
        // A name a deferred pull has not recorded yet: its layers now (a
        // registry service that served it may not stay up).
        if let Ok((_, image)) = registry::parse(from) {
            self.inner.ensure_named(&image.whole()).await?;
        }
        self.inner.rename(from, to)
    }

    async fn remove_images(&self, images: &[String]) -> Result<(), RuntimeError> {
        let inner = self.inner.clone();
        let images = images.to_vec();
        tokio::task::spawn_blocking(move || inner.store.remove(&images))
            .await
            .map_err(|error| RuntimeError::Failed {
                action: "removing images".to_owned(),
                reason: error.to_string(),
            })?
            .map(drop)
            .map_err(error::failed("removing images"))
    }

    async fn remove_orphans(&self) -> Result<usize, RuntimeError> {
        let inner = &self.inner;
        let removed = run::orphans(&inner.options.run_root, &inner.oci, &inner.cgroups).await;
        let tmp = inner.store.tmp_dir();
        let run_root = inner.options.run_root.clone();
        let _ =
            tokio::task::spawn_blocking(move || run::remove_stale_scratch(&tmp, &run_root)).await;
        // Host service addresses of engines that are gone.
        if let Some(network) = &inner.network {
            let run_root = inner.options.run_root.clone();
            let block = network.block();
            let _ = tokio::task::spawn_blocking(move || {
                network::remove_stale_addresses(&run_root, block)
            })
            .await;
        }
        // The first steps' namespaces, made while the engine waits for them.
        if let Some(network) = &inner.network {
            network.refill();
        }
        Ok(removed)
    }

    async fn shutdown(&self) {
        // Stopped services are removed on threads of their own (`exec::Step`'s drop):
        // the engine waits for them (each removes its step directory last), so that
        // none outlives it.
        let steps = self.inner.run.dir.join("steps");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        while std::fs::read_dir(&steps).is_ok_and(|mut dir| dir.next().is_some())
            && std::time::Instant::now() < deadline
        {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        if let Some(network) = &self.inner.network {
            network.shutdown().await;
        }
    }

    // Services: long-running steps on the step network, named in every step's
    // `/etc/hosts` (`service`).

    fn check_services(&self) -> Result<(), RuntimeError> {
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(hostname = %spec.network.hostname))]
    async fn start_container(&self, spec: ExecSpec) -> Result<StartedContainer, RuntimeError> {
        self.inner.ensure(spec.rootfs.image_id.as_deref()).await?;
        service::start(self.inner.clone(), spec).await
    }

    async fn listen_on_step_network(
        &self,
        ports: &[u16],
    ) -> Result<StepNetworkListener, RuntimeError> {
        let inner = self.inner.clone();
        let ports = ports.to_vec();
        tokio::task::spawn_blocking(move || service::listen(&inner, &ports))
            .await
            .map_err(|error| RuntimeError::Failed {
                action: "listening for a host service".to_owned(),
                reason: error.to_string(),
            })?
    }
}
