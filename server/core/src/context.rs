//! The context ops evaluate in: the runtime, the store, the event sink and
//! the secrets, plus the engine-wide tables that make shared work run once
//! (pulls, execs, image builds) and bound it (exec slots, cache volume
//! locks). Ops get this, never the `Engine`. Paths under the state
//! directory come from the `Store`, which owns that directory.

use std::sync::Arc;

use bytes::Bytes;
use dashmap::DashMap;
use tokio::sync::{Mutex, OwnedMutexGuard, Semaphore};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::events::EventSink;
use crate::inflight::InFlight;
use crate::oci::ImageFormat;
use crate::reference::registry_host;
use crate::remote::{GitRefs, NoRemote, Remote};
use crate::runtime::{
    ExecSpec, PulledImage, RegistryAuth, RootfsSpec, Runtime, TarLayer, TerminalHost,
};
use crate::secrets::Secrets;
use crate::services::Services;
use crate::store::{ImageNames, Lock, RecordKind, RemoteCache, Store};
use crate::value::{ContainerState, ExecRecord, MountSource, Rootfs, SecretValue, Sharing, Value};

/// The platform's default `PATH`, filled in at exec time when unset.
pub(crate) const DEFAULT_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

pub struct EngineOptions {
    /// How many containers may run at once.
    pub max_parallel: usize,
    /// Keys secret MACs; persisted so cache keys survive restarts.
    pub secret_key: [u8; 32],
}

pub(crate) struct Context {
    pub(crate) runtime: Arc<dyn Runtime>,
    /// Git and HTTP sources (`NoRemote` unless `Engine::with_remote`).
    pub(crate) remote: Arc<dyn Remote>,
    pub(crate) store: Arc<dyn Store>,
    /// The cache tier shared between machines (`Engine::with_remote_cache`).
    pub(crate) remote_cache: Option<Arc<dyn RemoteCache>>,
    /// How this store's images are named (its own repositories).
    pub(crate) images: ImageNames,
    pub(crate) events: EventSink,
    pub(crate) secrets: Secrets,
    /// Image pulls, by address and credentials.
    pub(crate) pulls: InFlight<String, PulledImage, Error>,
    /// Execs, by cache key.
    pub(crate) execs: InFlight<Digest, Arc<ExecRecord>, Error>,
    /// Git ref listings, by repository content key: one `ls-remote` per
    /// repository and engine, shared by every ref resolved from it.
    pub(crate) git_listings: InFlight<Digest, Arc<GitRefs>, Error>,
    /// Checkouts and downloads, by store key.
    pub(crate) fetches: InFlight<Digest, Value, Error>,
    /// Images built from container states, by content key.
    builds: InFlight<Digest, String, Error>,
    /// Bounds how many containers run at once (services excepted: they
    /// run for as long as their dependents, who hold slots).
    pub(crate) exec_slots: Semaphore,
    cache_locks: DashMap<String, Arc<Mutex<()>>>,
    /// The services running for this engine.
    pub(crate) services: Services,
    /// The user's terminal, when a client lent one (`Engine::attach_terminal`).
    pub(crate) terminal: std::sync::OnceLock<Arc<dyn TerminalHost>>,
    /// Sessions for `experimentalPrivilegedNesting` (`Engine::attach_nesting`).
    pub(crate) nesting: std::sync::OnceLock<Arc<dyn crate::runtime::NestedSessions>>,
    /// Whether a failed step opens a shell in its container first
    /// (`--interactive`).
    pub(crate) debug_failures: std::sync::atomic::AtomicBool,
}

impl Context {
    pub(crate) fn new(
        runtime: Arc<dyn Runtime>,
        store: Arc<dyn Store>,
        options: EngineOptions,
    ) -> Self {
        Self {
            runtime,
            remote: Arc::new(NoRemote),
            images: store.image_names(),
            store,
            remote_cache: None,
            events: EventSink::default(),
            secrets: Secrets::new(options.secret_key),
            pulls: InFlight::default(),
            execs: InFlight::default(),
            git_listings: InFlight::default(),
            fetches: InFlight::default(),
            builds: InFlight::default(),
            exec_slots: Semaphore::new(options.max_parallel.max(1)),
            cache_locks: DashMap::new(),
            services: Services::default(),
            terminal: std::sync::OnceLock::new(),
            nesting: std::sync::OnceLock::new(),
            debug_failures: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// A secret's value, when this engine holds it.
    pub(crate) fn secret(&self, digest: &Digest) -> Result<SecretValue> {
        self.secrets.get(digest)
    }

    /// The credentials `state` holds for the registry of `address`.
    pub(crate) fn registry_auth_for(
        &self,
        state: &ContainerState,
        address: &str,
    ) -> Result<Option<RegistryAuth>> {
        let host = registry_host(address);
        let Some((server, username, secret)) = state
            .registry_auth
            .iter()
            .find(|(server, _, _)| *server == host)
        else {
            return Ok(None);
        };
        Ok(Some(RegistryAuth {
            server: server.clone(),
            username: username.clone(),
            password: self.secret(secret)?.plaintext.to_string(),
        }))
    }

    /// An exec's environment, workdir and user for `state`. Secret
    /// variables go apart from the plain ones (see `ExecSpec::secret_env`).
    pub(crate) fn exec_environment(&self, state: &ContainerState) -> Result<ExecSpec> {
        let mut env: Vec<String> = state
            .config
            .env
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        for (name, value) in &state.volatile_env {
            env.retain(|entry| entry.split_once('=').map(|(n, _)| n) != Some(name));
            env.push(format!("{name}={value}"));
        }
        if !env.iter().any(|entry| entry.starts_with("PATH=")) {
            env.push(format!("PATH={DEFAULT_PATH}"));
        }
        let mut secret_env = Vec::new();
        for (name, secret) in &state.secret_env {
            let value = self.secret(secret)?;
            // A secret variable overrides a plain one of the same name.
            env.retain(|entry| entry.split_once('=').map(|(n, _)| n) != Some(name));
            secret_env.push(format!("{name}={}", value.plaintext));
        }
        Ok(ExecSpec {
            env,
            secret_env,
            workdir: state.workdir(),
            user: state.config.user.clone(),
            ..ExecSpec::default()
        })
    }

    /// The values of every secret an exec of `state` sees (to scrub its
    /// output).
    pub(crate) fn attached_secrets(&self, state: &ContainerState) -> Result<Vec<SecretValue>> {
        let mut out = Vec::new();
        for (_, secret) in &state.secret_env {
            out.push(self.secret(secret)?);
        }
        for mount in &state.mounts {
            if let MountSource::Secret { secret, .. } = &mount.source {
                out.push(self.secret(secret)?);
            }
        }
        Ok(out)
    }

    /// A root filesystem as the runtime takes it: pending layers as tars.
    pub(crate) fn rootfs_spec(&self, rootfs: &Rootfs) -> Result<RootfsSpec> {
        rootfs_spec(self.store.as_ref(), rootfs)
    }

    /// Commits a container's filesystem and config as an image (once per
    /// container state) and returns the image ID.
    pub(crate) async fn build_image(&self, state: &ContainerState) -> Result<String> {
        Self::refuse_annotations(state)?;
        let key = state.key.expect("evaluated containers have keys");
        self.builds
            .run(key, || async {
                let spec = self.rootfs_spec(&state.rootfs)?;
                let mut config = state.config.clone();
                config.exposed_ports = state.ports.iter().map(|port| port.oci()).collect();
                config
                    .labels
                    .entry(crate::reproducible::MANAGED_LABEL.into())
                    .or_insert_with(|| "true".into());
                Ok(self
                    .runtime
                    .build_image(&spec, &config, &self.images.built(&key))
                    .await?)
            })
            .await
    }

    /// Docker's image store (and so `push` and `save`) keeps no manifest
    /// annotations: images of a container that has some are refused
    /// rather than written without them.
    pub(crate) fn refuse_annotations(state: &ContainerState) -> Result<()> {
        if state.annotations.is_empty() {
            return Ok(());
        }
        Err(Error::Unsupported {
            message: "gantry cannot write OCI annotations (withAnnotation) into published or exported images yet; remove them with withoutAnnotation".into(),
        })
    }

    /// A container as an image tarball: an OCI image layout in `format`
    /// that `docker load` accepts too. It is saved under the name
    /// `build_image` tagged it with (an image ID cannot serve as a name),
    /// which `docker load` restores.
    pub(crate) async fn image_tarball(
        &self,
        state: &ContainerState,
        format: ImageFormat,
    ) -> Result<Bytes> {
        let image_id = self.build_image(state).await?;
        let key = state.key.expect("evaluated containers have keys");
        let saved = self
            .runtime
            .save_image(&image_id, &self.images.built(&key))
            .await?;
        Ok(Bytes::from(crate::oci::image_layout(&saved, format)?))
    }

    /// Takes the cross-engine lock of a record (see `Store::lock`) without
    /// blocking the async runtime. If the caller is cancelled while waiting,
    /// the lock is released as soon as it is taken.
    pub(crate) async fn lock_record(&self, kind: RecordKind, key: Digest) -> Result<Lock> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.lock(kind, &key))
            .await
            .map_err(|error| {
                Error::store("waiting for a record lock", std::io::Error::other(error))
            })?
    }

    /// Forgets every memoised pull, exec and build whose image is `image`
    /// (it was removed from the runtime), so that they run again.
    pub(crate) fn forget_image(&self, image: &str) {
        self.pulls.forget_where(|pulled| pulled.image_id == image);
        self.execs.forget_where(|record| record.image_id == image);
        self.builds.forget_where(|built| built == image);
    }

    /// Holds the locks of every LOCKED/PRIVATE cache volume an exec of
    /// `state` mounts, taken in a fixed order so two execs can never
    /// deadlock on each other.
    pub(crate) async fn lock_cache_volumes(
        &self,
        state: &ContainerState,
    ) -> Vec<OwnedMutexGuard<()>> {
        let mut volumes: Vec<&str> = state
            .mounts
            .iter()
            .filter_map(|mount| match &mount.source {
                MountSource::Cache {
                    volume, sharing, ..
                } if *sharing != Sharing::Shared => Some(volume.as_str()),
                _ => None,
            })
            .collect();
        volumes.sort_unstable();
        volumes.dedup();
        let mut guards = Vec::new();
        for volume in volumes {
            let lock = self
                .cache_locks
                .entry(volume.to_owned())
                .or_default()
                .clone();
            guards.push(lock.lock_owned().await);
        }
        guards
    }
}

/// What the runtime is given for `rootfs`: its image and its layers as tars
/// of their trees' contents from `store`.
pub(crate) fn rootfs_spec(store: &dyn Store, rootfs: &Rootfs) -> Result<RootfsSpec> {
    let layers = rootfs
        .layers
        .iter()
        .map(|layer| {
            Ok(TarLayer {
                dest: layer.dest.clone(),
                tar: Bytes::from(layer.tree.to_tar(store)?),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(RootfsSpec {
        image_id: rootfs.image_id.clone(),
        layers,
    })
}
