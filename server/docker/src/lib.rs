//! gantry-docker: `DockerRuntime`, gantry's `Runtime` implemented on the Docker Engine API
//! through bollard (the only crate in the workspace that talks to dockerd).
//!
//! It owns the lifecycle of every container it creates (each is labelled with this
//! engine's pid and removed when its operation ends or is cancelled) and the mechanics
//! of moving bytes in and out of them: layers, output capture, commits, archives,
//! registry pulls and pushes. It does not decide what to cache, how to derive image
//! configuration or which images to keep; the solver in gantry-core does.

mod archive;
mod container;
mod error;
mod exec;
mod image;
mod layers;
mod reference;
mod service;
mod terminal;

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use bollard::{ClientVersion, Docker, API_DEFAULT_VERSION};
use bytes::Bytes;
use gantry_core::runtime::{
    CacheImage, ExecOutput, ExecSpec, ImageConfig, PulledImage, RegistryAuth, RootfsSpec, Runtime,
    RuntimeError, StartedContainer, StepNetworkListener, TerminalIo,
};
use tokio::sync::OnceCell;

pub use error::Error;

/// Label on every container and image gantry creates.
pub const LABEL_MANAGED: &str = "dev.gantry.managed";
/// Label on every container: the pid of the engine process that created it, so that a
/// later engine can tell leftovers of a dead engine from containers still in use.
pub const LABEL_ENGINE_PID: &str = "dev.gantry.engine-pid";
/// The labels above: gantry's own, left out of the images it publishes and saves.
const BUILDER_LABELS: &[&str] = &[LABEL_MANAGED, LABEL_ENGINE_PID];
/// Tag of the empty image used as the base of `scratch` root filesystems.
pub const SCRATCH_TAG: &str = "gantry.local/scratch:latest";

const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";
/// Version used only to ask dockerd which API version it speaks. Every daemon still
/// supported answers it (Docker 25 raised the minimum to 1.24), whereas asking at
/// bollard's own default gets "client version is too new" from older daemons.
const PROBE_VERSION: ClientVersion = ClientVersion {
    major_version: 1,
    minor_version: 24,
};
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Per request, until the response headers arrive. Streams (logs, pulls, waits) are not
/// bounded by it, but commits and archive uploads of large trees are, hence generous.
const REQUEST_TIMEOUT_SECS: u64 = 600;

/// `Runtime` on a Docker daemon.
pub struct DockerRuntime {
    docker: Docker,
    engine_pid: u32,
    /// Where `engine_pid` is meaningful; part of every container name (see `pid_scope`).
    pid_scope: String,
    /// The empty base image, created (or found) once per process.
    scratch: OnceCell<String>,
    /// The network of steps and services, created when a service first runs.
    network: OnceCell<service::StepNetwork>,
    /// When the images it publishes and saves are dated (see `with_source_date_epoch`).
    source_date_epoch: u64,
    /// dockerd's root directory (`docker info`), asked once.
    root_dir: OnceCell<String>,
    /// Layer tars packed for the cache (see `with_layer_dir`).
    layer_tars: layers::LayerTars,
}

impl std::fmt::Debug for DockerRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerRuntime")
            .field("engine_pid", &self.engine_pid)
            .field("api_version", &self.docker.client_version())
            .finish_non_exhaustive()
    }
}

impl DockerRuntime {
    /// Connects to `DOCKER_HOST` (default `unix:///var/run/docker.sock`), settles on the
    /// highest API version both sides speak and checks that the daemon answers a ping.
    #[tracing::instrument(skip_all, fields(host))]
    pub async fn connect() -> Result<Self, Error> {
        let host = std::env::var("DOCKER_HOST")
            .ok()
            .filter(|host| !host.is_empty())
            .unwrap_or_else(|| DEFAULT_HOST.to_owned());
        tracing::Span::current().record("host", host.as_str());

        let probe = client(&host, &PROBE_VERSION)?;
        let version = answer(&host, probe.version()).await?;
        let server_version = version
            .api_version
            .as_deref()
            .and_then(parse_api_version)
            .ok_or_else(|| Error::ApiVersion {
                host: host.clone(),
                version: version.api_version.clone().unwrap_or_default(),
            })?;
        let chosen = if (server_version.major_version, server_version.minor_version)
            < (
                API_DEFAULT_VERSION.major_version,
                API_DEFAULT_VERSION.minor_version,
            ) {
            server_version
        } else {
            *API_DEFAULT_VERSION
        };
        // bollard's negotiation only ever lowers the version, and its first request has
        // to be understood by the daemon: start from the version just agreed on.
        let docker = answer(&host, client(&host, &chosen)?.negotiate_version()).await?;
        answer(&host, docker.ping()).await?;
        let api = docker.client_version();
        tracing::info!(
            api_version = %format_args!("{}.{}", api.major_version, api.minor_version),
            daemon_version = version.version.as_deref().unwrap_or("unknown"),
            "connected to dockerd"
        );
        Ok(Self {
            docker,
            engine_pid: std::process::id(),
            pid_scope: container::pid_scope(),
            scratch: OnceCell::new(),
            network: OnceCell::new(),
            source_date_epoch: 0,
            root_dir: OnceCell::new(),
            layer_tars: layers::LayerTars::default(),
        })
    }

    /// Dates the images this runtime publishes and saves at `seconds` since
    /// 1970 (their config's `created`) and clamps their layers' file times to
    /// it (`SOURCE_DATE_EPOCH`; 0 unless set), so that the same pipeline gives
    /// the same image digest on every engine (`gantry_core::reproducible`).
    #[must_use]
    pub fn with_source_date_epoch(mut self, seconds: u64) -> Self {
        self.source_date_epoch = seconds;
        self
    }

    /// Lets the remote cache's OCI layout form take a step image's own layers
    /// from dockerd's overlay2 store, packed into `dir`, instead of saving
    /// the whole image (`Runtime::cache_layers`). `dir` is this runtime's
    /// alone: made when first needed, removed with the runtime.
    #[must_use]
    pub fn with_layer_dir(mut self, dir: std::path::PathBuf) -> Self {
        self.layer_tars.set_dir(dir);
        self
    }

    /// The pid recorded in [`LABEL_ENGINE_PID`] on this engine's containers.
    pub fn engine_pid(&self) -> u32 {
        self.engine_pid
    }

    /// The underlying client, negotiated to the daemon's API version (for tests and
    /// diagnostics; everything gantry does goes through `Runtime`).
    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// The labels every container of this engine carries, over `extra`.
    fn container_labels<'a>(
        &self,
        extra: impl IntoIterator<Item = (&'a String, &'a String)>,
    ) -> HashMap<String, String> {
        let mut labels: HashMap<String, String> = extra
            .into_iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        labels.insert(LABEL_MANAGED.to_owned(), "true".to_owned());
        labels.insert(LABEL_ENGINE_PID.to_owned(), self.engine_pid.to_string());
        labels
    }
}

fn client(host: &str, version: &ClientVersion) -> Result<Docker, Error> {
    let docker = if host.starts_with("unix://") || host.starts_with('/') {
        Docker::connect_with_unix(host, REQUEST_TIMEOUT_SECS, version)
    } else if host.starts_with("tcp://") || host.starts_with("http://") {
        Docker::connect_with_http(host, REQUEST_TIMEOUT_SECS, version)
    } else {
        Err(bollard::errors::Error::UnsupportedURISchemeError {
            uri: host.to_owned(),
        })
    };
    docker.map_err(|source| match source {
        // bollard checks that the socket file exists before any request.
        bollard::errors::Error::SocketNotFoundError(_) => Error::NotAnswering {
            host: host.to_owned(),
            source,
        },
        source => Error::Client {
            host: host.to_owned(),
            source,
        },
    })
}

/// Awaits one request of the connection handshake, bounded by `CONNECT_TIMEOUT`.
async fn answer<T>(
    host: &str,
    request: impl std::future::Future<Output = Result<T, bollard::errors::Error>>,
) -> Result<T, Error> {
    match tokio::time::timeout(CONNECT_TIMEOUT, request).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(source)) => Err(Error::NotAnswering {
            host: host.to_owned(),
            source,
        }),
        Err(_) => Err(Error::Timeout {
            host: host.to_owned(),
            seconds: CONNECT_TIMEOUT.as_secs(),
        }),
    }
}

fn parse_api_version(version: &str) -> Option<ClientVersion> {
    let (major, minor) = version.split_once('.')?;
    Some(ClientVersion {
        major_version: major.parse().ok()?,
        minor_version: minor.parse().ok()?,
    })
}

#[async_trait]
impl Runtime for DockerRuntime {
    #[tracing::instrument(skip_all, fields(reference = %reference, auth = auth.is_some()))]
    async fn pull(
        &self,
        reference: &str,
        auth: Option<&RegistryAuth>,
    ) -> Result<PulledImage, RuntimeError> {
        self.pull_image(reference, auth).await
    }

    #[tracing::instrument(skip_all, fields(
        image = spec.rootfs.image_id.as_deref().unwrap_or("scratch"),
        layers = spec.rootfs.layers.len(),
        commit_tag = %spec.commit_tag,
    ))]
    async fn exec(&self, spec: ExecSpec) -> Result<ExecOutput, RuntimeError> {
        self.run(spec).await
    }

    async fn terminal(&self, spec: ExecSpec, io: TerminalIo) -> Result<i64, RuntimeError> {
        self.run_terminal(spec, io).await
    }

    #[tracing::instrument(skip_all, fields(
        image = rootfs.image_id.as_deref().unwrap_or("scratch"),
        layers = rootfs.layers.len(),
        path = %path,
    ))]
    async fn read_path(&self, rootfs: &RootfsSpec, path: &str) -> Result<Bytes, RuntimeError> {
        self.read(rootfs, path).await
    }

    #[tracing::instrument(skip_all, fields(
        image = rootfs.image_id.as_deref().unwrap_or("scratch"),
        layers = rootfs.layers.len(),
        tag = %tag,
    ))]
    async fn build_image(
        &self,
        rootfs: &RootfsSpec,
        config: &ImageConfig,
        tag: &str,
    ) -> Result<String, RuntimeError> {
        self.build(rootfs, config, tag).await
    }

    #[tracing::instrument(skip_all, fields(image = %image_id, reference = %reference, auth = auth.is_some()))]
    async fn push(
        &self,
        image_id: &str,
        reference: &str,
        auth: Option<&RegistryAuth>,
    ) -> Result<String, RuntimeError> {
        self.push_image(image_id, reference, auth).await
    }

    #[tracing::instrument(skip_all, fields(image = %image_id, reference = %reference, auth = auth.is_some()))]
    async fn push_as_is(
        &self,
        image_id: &str,
        reference: &str,
        auth: Option<&RegistryAuth>,
    ) -> Result<String, RuntimeError> {
        self.push_tagged(image_id, reference, auth).await
    }

    #[tracing::instrument(skip_all, fields(image = %image_id, reference = %reference))]
    async fn save_image(&self, image_id: &str, reference: &str) -> Result<Bytes, RuntimeError> {
        self.save(image_id, reference).await
    }

    #[tracing::instrument(skip_all, fields(image = %image_id, reference = %reference))]
    async fn save_as_is(&self, image_id: &str, reference: &str) -> Result<Bytes, RuntimeError> {
        self.save_raw(image_id, reference).await
    }

    #[tracing::instrument(skip_all, fields(image = %image_id))]
    async fn cache_layers(&self, image_id: &str) -> Result<Option<CacheImage>, RuntimeError> {
        self.layers_for_cache(image_id).await
    }

    fn cache_pushes_as_is(&self) -> bool {
        false
    }

    #[tracing::instrument(skip_all, fields(bytes = tarball.len()))]
    async fn load_image(&self, tarball: Bytes) -> Result<PulledImage, RuntimeError> {
        self.load(tarball).await
    }

    #[tracing::instrument(skip_all, fields(image = %image_id))]
    async fn image_exists(&self, image_id: &str) -> Result<bool, RuntimeError> {
        self.exists(image_id).await
    }

    #[tracing::instrument(skip_all, fields(from = %from, to = %to))]
    async fn rename_image(&self, from: &str, to: &str) -> Result<(), RuntimeError> {
        self.rename(from, to).await
    }

    #[tracing::instrument(skip_all, fields(count = images.len()))]
    async fn remove_images(&self, images: &[String]) -> Result<(), RuntimeError> {
        self.remove(images).await
    }

    #[tracing::instrument(skip_all)]
    async fn remove_orphans(&self) -> Result<usize, RuntimeError> {
        let containers = self.remove_orphan_containers().await?;
        // Their containers first: a network with endpoints cannot go.
        let networks = self.remove_orphan_networks().await;
        Ok(containers + networks)
    }

    fn check_services(&self) -> Result<(), RuntimeError> {
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(
        image = spec.rootfs.image_id.as_deref().unwrap_or("scratch"),
        hostname = %spec.network.hostname,
    ))]
    async fn start_container(&self, spec: ExecSpec) -> Result<StartedContainer, RuntimeError> {
        self.start_service(spec).await
    }

    #[tracing::instrument(skip_all, fields(ports = ?ports))]
    async fn listen_on_step_network(
        &self,
        ports: &[u16],
    ) -> Result<StepNetworkListener, RuntimeError> {
        self.listen_on_network(ports).await
    }

    #[tracing::instrument(skip_all)]
    async fn shutdown(&self) {
        self.remove_step_network().await;
    }

    #[tracing::instrument(skip_all, fields(reference = %reference))]
    async fn local_image(&self, reference: &str) -> Result<PulledImage, RuntimeError> {
        self.local(reference).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_api_versions() {
        let v = parse_api_version("1.41").unwrap();
        assert_eq!((v.major_version, v.minor_version), (1, 41));
        assert!(parse_api_version("1").is_none());
        assert!(parse_api_version("x.y").is_none());
    }
}
