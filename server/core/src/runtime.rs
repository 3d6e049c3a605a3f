//! The boundary between the solver and whatever runs containers.
//!
//! `Runtime` is deliberately small and speaks only in image IDs, tar streams and
//! plain byte buffers: the solver owns every decision about caching, file trees
//! and configuration; a runtime only moves bytes in and out of containers.
//! `gantry-docker` implements it with bollard; `FakeRuntime` (tests) in memory.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Image configuration as gantry tracks it (a subset of the OCI image config).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    /// `NAME=value` pairs, in order.
    pub env: Vec<(String, String)>,
    /// Empty when unset.
    pub workdir: String,
    /// Empty when unset.
    pub user: String,
    pub entrypoint: Vec<String>,
    /// The image's `CMD`.
    pub cmd: Vec<String>,
    pub labels: BTreeMap<String, String>,
}

/// The platform containers run as on this machine (`linux/amd64`, …), in
/// Docker's and OCI's spelling.
pub fn host_platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm/v7",
        "x86" => "386",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        other => other,
    };
    format!("linux/{arch}")
}

/// Whether `platform` (`os/arch[/variant]`) is this machine's own.
pub fn is_host_platform(platform: &str) -> bool {
    let host = host_platform();
    let normalize = |platform: &str| -> String {
        match platform.trim() {
            "linux/arm64/v8" => "linux/arm64".to_owned(),
            "linux/x86_64" => "linux/amd64".to_owned(),
            other => other.to_owned(),
        }
    };
    normalize(platform) == normalize(&host)
}

/// What `Runtime::pull` learned about an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PulledImage {
    /// The local image ID (`sha256:…`), usable as a base for `exec`.
    pub image_id: String,
    /// The normalised, digest-qualified reference, e.g.
    /// `127.0.0.1:5000/busybox:latest@sha256:…`. Falls back to the image ID
    /// for images that have no repository digest.
    pub resolved_ref: String,
    pub config: ImageConfig,
}

/// Credentials for one registry; `password` is a secret value held in memory only.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistryAuth {
    pub server: String,
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryAuth")
            .field("server", &self.server)
            .field("username", &self.username)
            .field("password", &"***")
            .finish()
    }
}

/// A tar archive to be unpacked at `dest` (an absolute directory path) in a
/// container's filesystem before it starts. Layers are applied in order.
#[derive(Debug, Clone)]
pub struct TarLayer {
    pub dest: String,
    pub tar: Bytes,
}

/// A bind mount of a host path into the container, used for cache volumes,
/// mounted directories and secrets (which live on tmpfs on the host side).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMount {
    pub host_path: String,
    pub container_path: String,
    pub read_only: bool,
}

/// A tmpfs mounted at `path` (absolute), of `size` bytes (the runtime's
/// default when `None`). Programs on it may be executed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tmpfs {
    pub path: String,
    pub size: Option<u64>,
}

/// A root filesystem: a base image (or empty) plus layers not yet committed.
#[derive(Debug, Clone, Default)]
pub struct RootfsSpec {
    /// `None` means an empty filesystem (`scratch`).
    pub image_id: Option<String>,
    pub layers: Vec<TarLayer>,
}

/// One command to run to completion.
#[derive(Debug, Clone, Default)]
pub struct ExecSpec {
    pub rootfs: RootfsSpec,
    /// The full command line (entrypoint already prepended when asked for).
    pub args: Vec<String>,
    /// `NAME=value` pairs with plain values; secrets go in `secret_env`.
    pub env: Vec<String>,
    /// `NAME=value` pairs whose values are secrets. The runtime hands them to
    /// the process only: never to a container or image configuration (Docker
    /// records a container's config in the images committed from it), a file
    /// on disk or a log.
    pub secret_env: Vec<String>,
    /// Absolute; `/` when the container has no workdir.
    pub workdir: String,
    /// Empty means the image default (root).
    pub user: String,
    /// Written to the process's stdin, which is then closed. `None`: no stdin.
    pub stdin: Option<Bytes>,
    /// Receives the command's output as it is produced (raw, unscrubbed:
    /// the solver scrubs it), besides `ExecOutput` collecting all of it.
    pub output: OutputSink,
    pub mounts: Vec<BindMount>,
    /// `tmpfs` mounts.
    pub tmpfs: Vec<Tmpfs>,
    /// Labels put on the container (the runtime adds its own ownership labels).
    pub labels: BTreeMap<String, String>,
    /// Tag given to the committed image, e.g. `gantry.local/<state>/cache:<hex>`.
    pub commit_tag: String,
    /// Host files (secret values on tmpfs) that only need to exist until the
    /// container has started: the runtime removes them right after the
    /// start (a bind mount keeps the file for the container), so no secret
    /// value outlives the start on the host, whatever happens next.
    pub remove_after_start: Vec<String>,
}

/// The most of each output stream (stdout, stderr) of a command a runtime
/// keeps: results live in memory and in the cache. Beyond it output is
/// dropped, and `stdout`/`stderr` refuse to answer rather than return part
/// of it (redirect the stream to a file and export that instead).
pub const OUTPUT_CAP: usize = 64 << 20;
/// Which output stream of a command bytes came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputStream {
    Stdout,
    Stderr,
}

/// Where a runtime sends a command's output while it runs: a callback the
/// solver installs, called with each piece as it arrives (pieces split
/// anywhere, even inside a line or a character). It must be cheap and
/// must not block; the default sends nowhere.
#[derive(Clone, Default)]
pub struct OutputSink(Option<Arc<OutputWrite>>);

/// The callback behind an `OutputSink`.
type OutputWrite = dyn Fn(OutputStream, &[u8]) + Send + Sync;

impl OutputSink {
    pub fn new(write: impl Fn(OutputStream, &[u8]) + Send + Sync + 'static) -> Self {
        Self(Some(Arc::new(write)))
    }

    /// Hands one piece of output on.
    pub fn write(&self, stream: OutputStream, bytes: &[u8]) {
        if let Some(write) = &self.0 {
            if !bytes.is_empty() {
                write(stream, bytes);
            }
        }
    }
}

impl std::fmt::Debug for OutputSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "OutputSink(..)"
        } else {
            "OutputSink(none)"
        })
    }
}

/// The outcome of a command that ran (any exit code).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecOutput {
    /// The container's filesystem after the command, committed as an image.
    pub image_id: String,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub exit_code: i64,
}

/// Errors a runtime reports. Kept as data (not a boxed source) so the solver
/// can share one failure between every waiter of a deduplicated operation.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum RuntimeError {
    #[error("image {reference} not found or not reachable: {reason}")]
    ImageNotFound { reference: String, reason: String },
    #[error("registry refused credentials for {reference}: {reason}")]
    Unauthorized { reference: String, reason: String },
    #[error("path {path} not found in container filesystem")]
    PathNotFound { path: String },
    #[error("container runtime unavailable: {reason}")]
    Unavailable { reason: String },
    /// An image gantry made or pulled earlier is no longer on the daemon
    /// (`docker rmi`, `docker image prune`, a prune by another process): the
    /// solver runs the steps that made it again.
    #[error("image {image} is no longer on the container runtime")]
    ImageMissing { image: String },
    #[error("container runtime failed while {action}: {reason}")]
    Failed { action: String, reason: String },
}

/// Everything the solver needs from a container runtime.
///
/// Implementations must be cancel-safe: when a returned future is dropped
/// mid-way (the client went away), every container it created is removed.
#[async_trait]
pub trait Runtime: Send + Sync + 'static {
    /// Pulls `reference` (with `auth` when given) and returns its local ID,
    /// its digest-qualified reference and its configuration.
    async fn pull(
        &self,
        reference: &str,
        auth: Option<&RegistryAuth>,
    ) -> Result<PulledImage, RuntimeError>;

    /// Runs one command in a fresh container built from `spec.rootfs`, waits
    /// for it (sending its output to `spec.output` as it comes), commits its
    /// filesystem under `spec.commit_tag` and removes the container. A
    /// non-zero exit code is a successful `ExecOutput`.
    async fn exec(&self, spec: ExecSpec) -> Result<ExecOutput, RuntimeError>;

    /// Reads `path` (absolute) from a root filesystem as a tar archive. A
    /// directory yields a `./` root entry first, then its contents relative
    /// to `path`; a file (or symlink) yields one entry named after it.
    /// Missing paths give `PathNotFound`.
    async fn read_path(&self, rootfs: &RootfsSpec, path: &str) -> Result<Bytes, RuntimeError>;

    /// Commits `rootfs` with `config` applied as a new image tagged `tag` and
    /// returns its image ID. Used for publishing and exporting.
    async fn build_image(
        &self,
        rootfs: &RootfsSpec,
        config: &ImageConfig,
        tag: &str,
    ) -> Result<String, RuntimeError>;

    /// Tags `image_id` as `reference`, pushes it and returns the pushed
    /// manifest digest (`sha256:…`).
    async fn push(
        &self,
        image_id: &str,
        reference: &str,
        auth: Option<&RegistryAuth>,
    ) -> Result<String, RuntimeError>;

    /// Writes `image_id` as a `docker save` tarball (loadable by `docker load`).
    async fn save_image(&self, image_id: &str, reference: &str) -> Result<Bytes, RuntimeError>;

    /// Loads a `docker save`/OCI tarball and returns the image ID it holds.
    async fn load_image(&self, tarball: Bytes) -> Result<PulledImage, RuntimeError>;

    /// Whether a local image still exists (a cached result may point at an
    /// image that was removed behind gantry's back).
    async fn image_exists(&self, image_id: &str) -> Result<bool, RuntimeError>;

    /// Removes images (by ID or tag); missing ones are not an error.
    async fn remove_images(&self, images: &[String]) -> Result<(), RuntimeError>;

    /// Removes containers left behind by engines that are no longer running.
    /// Returns how many were removed.
    async fn remove_orphans(&self) -> Result<usize, RuntimeError>;
}
