//! The boundary between the solver and whatever runs containers.
//!
//! `Runtime` is deliberately small and speaks only in image IDs, tar streams and
//! plain byte buffers: the solver owns every decision about caching, file trees
//! and configuration; a runtime only moves bytes in and out of containers.
//! `gantry-docker` implements it with bollard; `FakeRuntime` (tests) in memory.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::future::{BoxFuture, Shared};
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
    /// `EXPOSE`d ports as OCI writes them (`8080/tcp`), in order.
    #[serde(default)]
    pub exposed_ports: Vec<String>,
    /// The image's health check (`HEALTHCHECK`, `withDockerHealthcheck`).
    #[serde(default)]
    pub healthcheck: Option<Healthcheck>,
}

/// A health check as Docker's image config holds it, with durations as Go
/// writes them (`30s`, `1m30s`; empty for Docker's default).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Healthcheck {
    /// The command; with `shell`, one string run by the image's shell.
    pub args: Vec<String>,
    pub shell: bool,
    pub interval: String,
    pub timeout: String,
    pub start_period: String,
    pub start_interval: String,
    /// Failures before unhealthy; 0 for Docker's default.
    pub retries: i64,
}

impl Healthcheck {
    /// Each duration in nanoseconds (0 when empty), or the first that is
    /// not a Go duration (`1m30s`, `500ms`, `2h`).
    pub fn durations(&self) -> Result<[i64; 4], String> {
        let mut out = [0; 4];
        let fields = [
            &self.interval,
            &self.timeout,
            &self.start_period,
            &self.start_interval,
        ];
        for (slot, text) in out.iter_mut().zip(fields) {
            *slot = go_duration(text).ok_or_else(|| text.clone())?;
        }
        Ok(out)
    }
}

/// Parses a Go duration (`1h2m3.5s`, `300ms`; empty is 0) to nanoseconds.
pub fn go_duration(text: &str) -> Option<i64> {
    if text.is_empty() || text == "0" {
        return Some(0);
    }
    let mut total = 0f64;
    let mut rest = text;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .filter(|end| *end > 0)?;
        let number: f64 = rest[..number_end].parse().ok()?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += number * scale;
        rest = &rest[unit_end..];
    }
    Some(total.round() as i64)
}

/// Formats nanoseconds as Go does (`1m30s`, `1.5s`, `250ms`, `0s`).
pub fn format_go_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".into();
    }
    if nanos % 1_000_000_000 != 0 && nanos < 1_000_000_000 {
        return if nanos % 1_000_000 == 0 {
            format!("{}ms", nanos / 1_000_000)
        } else {
            format!("{nanos}ns")
        };
    }
    let seconds = nanos / 1_000_000_000;
    let fraction = nanos % 1_000_000_000;
    let (hours, minutes, secs) = (seconds / 3600, seconds % 3600 / 60, seconds % 60);
    let mut out = String::new();
    if hours > 0 {
        out.push_str(&format!("{hours}h"));
    }
    if hours > 0 || minutes > 0 {
        out.push_str(&format!("{minutes}m"));
    }
    if fraction == 0 {
        out.push_str(&format!("{secs}s"));
    } else {
        let digits = format!("{fraction:09}");
        out.push_str(&format!("{secs}.{}s", digits.trim_end_matches('0')));
    }
    out
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

/// A step's filesystem as the remote cache's OCI layout form stores it
/// (`Runtime::cache_layers`): its config and its layers, bottom first.
#[derive(Debug, Clone)]
pub struct CacheImage {
    /// The image config, as `Runtime::save_as_is` would write it, with the
    /// `Tar` layers' digests as their diff IDs.
    pub config: Vec<u8>,
    pub layers: Vec<CacheLayer>,
    /// The image's ID in the runtime, when that is not the config's digest
    /// (the Docker runtime packs its own tars of the image's layers, which
    /// dockerd's diff IDs do not name): a reader on the same runtime finds
    /// the image by it and loads nothing.
    pub runtime_id: Option<String>,
}

/// One layer of a `CacheImage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheLayer {
    /// An uncompressed layer tar on disk, named by its digest (`sha256:…`),
    /// which is also its diff ID. The file is the runtime's and stays put.
    Tar {
        path: std::path::PathBuf,
        digest: String,
    },
    /// A layer that came unchanged from a registry blob: stored as where to
    /// fetch it again, not as bytes (as a registry push mounts it).
    Pulled(PulledLayer),
    /// Layer `index` (bottom first) of the image pulled as `reference`
    /// (`host/repository@sha256:…`), whose config digest is `config`: a
    /// registry blob like `Pulled`, whose descriptor the caller reads from
    /// that manifest (the Docker runtime keeps no registry descriptors).
    OfImage {
        reference: String,
        config: String,
        index: usize,
    },
}

/// A registry blob a layer was pulled from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PulledLayer {
    /// `host/repository` the blob was pulled from.
    pub repository: String,
    /// The blob: digest, size and media type as its manifest listed them.
    pub digest: String,
    pub size: u64,
    pub media_type: String,
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

/// Linux's capabilities by number (`/proc/sys/kernel/cap_last_cap` is 40 on
/// kernels since 5.9).
pub const CAPABILITIES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The capabilities of a privileged step (`ExecSpec::privileged`): every
/// one the engine's own bounding set holds. A process cannot pass on one it
/// lacks: asking for it fails the container's start (as Docker 20.10's
/// `--privileged` does where dockerd itself runs without
/// `CAP_SYS_RESOURCE`). The native runtime asks for this set; the Docker
/// runtime for `ALL` less the capabilities missing from it.
pub fn privileged_capabilities() -> Vec<&'static str> {
    let bounding = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                let hex = line.strip_prefix("CapBnd:")?.trim();
                u64::from_str_radix(hex, 16).ok()
            })
        })
        .unwrap_or(u64::MAX);
    CAPABILITIES
        .into_iter()
        .enumerate()
        .filter(|(bit, _)| bounding & (1 << bit) != 0)
        .map(|(_, name)| name)
        .collect()
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
    /// Names and addresses on the step network.
    pub network: NetworkSpec,
    /// `insecureRootCapabilities`: every capability the engine holds
    /// (`privileged_capabilities`), nothing of `/proc` masked or read-only,
    /// no seccomp or AppArmor confinement, every device allowed by the
    /// device cgroup: Docker's `--privileged` without the host's device
    /// nodes.
    pub privileged: bool,
    /// In the host's network namespace instead of on the step network
    /// (`experimentalPrivilegedNesting`: the command reaches its nested
    /// session on the host's loopback). `network.hosts` still names the
    /// bound services, whose step-network addresses the host routes to.
    pub host_network: bool,
}

/// How a container sees the step network: every container of an engine
/// (execs and services) is on one network, where they reach each other by
/// address. Names come from the solver, which decides what each step may
/// resolve.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkSpec {
    /// The container's own hostname; empty for the runtime's default.
    pub hostname: String,
    /// Names every container of the engine resolves to this one through
    /// DNS (a service's hostname, bare and in the search domain).
    pub aliases: Vec<String>,
    /// Extra `/etc/hosts` lines: the services a step is bound to, by alias
    /// and by hostname.
    pub hosts: Vec<(String, IpAddr)>,
    /// DNS search domains, so that bare service hostnames resolve.
    pub search: Vec<String>,
}

/// A container started by `Runtime::start_container`, whose process keeps
/// running until it exits or is signalled.
pub struct StartedContainer {
    /// Its address on the step network: every step and the engine's host
    /// reach it there. Unspecified (`0.0.0.0`) when the process exited before
    /// it had one (then `exited` says why).
    pub address: IpAddr,
    /// Resolves once the process has exited (any number of waiters).
    pub exited: Shared<BoxFuture<'static, ContainerExit>>,
    /// Signals the process; dropping it removes the container (and kills
    /// the process if it still runs).
    pub control: Box<dyn ContainerControl>,
}

impl std::fmt::Debug for StartedContainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StartedContainer")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

/// How a started container's process ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerExit {
    /// `None` when the runtime lost track of it (`error` says why).
    pub exit_code: Option<i64>,
    /// What it wrote, up to a cap (the runtime keeps the first part).
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub error: Option<String>,
}

/// What the solver can do to a running container.
#[async_trait]
pub trait ContainerControl: Send + Sync {
    /// Sends SIGTERM, or SIGKILL with `kill`, and returns once sent (a
    /// process that already exited is not an error).
    async fn signal(&self, kill: bool) -> Result<(), RuntimeError>;
}

/// Listening sockets the engine itself serves on the step network, at an
/// address of their own (`Host.service`: containers reach a port of the
/// engine's host there). Dropping it releases the address.
pub struct StepNetworkListener {
    pub address: IpAddr,
    /// One per requested port, in order, bound to `address`'s port space.
    pub listeners: Vec<std::net::TcpListener>,
    /// Releases the address when dropped.
    pub guard: Box<dyn Send + Sync>,
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
    /// Both streams interleaved as the command wrote them, when the runtime
    /// can tell (`None`: stdout then stderr stands in).
    #[serde(default)]
    pub combined: Option<Vec<u8>>,
    pub exit_code: i64,
}

/// What a user's terminal sends to an interactive process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TerminalInput {
    /// Keystrokes (raw bytes, as the terminal produced them).
    Data(Bytes),
    /// The terminal's new size.
    Resize(TerminalSize),
}

/// A terminal's size in character cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TerminalSize {
    pub cols: u16,
    pub rows: u16,
}

impl Default for TerminalSize {
    fn default() -> Self {
        Self { cols: 80, rows: 24 }
    }
}

/// The two directions of an attached terminal, as a runtime sees them:
/// `input` ends when the user's side detaches; the runtime drops `output`
/// when the process has exited, which tells the user's side it is over.
#[derive(Debug)]
pub struct TerminalIo {
    pub input: tokio::sync::mpsc::Receiver<TerminalInput>,
    pub output: tokio::sync::mpsc::Sender<Bytes>,
    /// The terminal's size when it was attached.
    pub size: TerminalSize,
}

/// The user's terminal, lent to the engine by the client that owns it
/// (`gantry run` and `gantry call` on a terminal). An engine without one
/// refuses `terminal` and `--interactive` with an error naming the fix.
#[async_trait]
pub trait TerminalHost: Send + Sync {
    /// Takes over the user's terminal (raw mode, progress output paused)
    /// until the returned `TerminalIo`'s `output` is dropped. `title` says
    /// what the shell runs in. One terminal at a time: a second request
    /// waits for the first to end.
    async fn attach(&self, title: &str) -> Result<TerminalIo, RuntimeError>;
}

/// Opens the API to a command that runs with `experimentalPrivilegedNesting`
/// (the API crate's, lent with `Engine::attach_nesting`): a session of its
/// own on the host's loopback, with a token, whose clients have no host (the
/// engine's files and environment are not theirs).
#[async_trait]
pub trait NestedSessions: Send + Sync {
    async fn open(&self) -> Result<NestedSession, String>;
}

/// A session open for one command, closed when dropped.
pub struct NestedSession {
    pub port: u16,
    pub token: String,
    /// Serves the session until dropped.
    pub serving: Box<dyn std::any::Any + Send + Sync>,
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
    /// Something this runtime does not do; `reason` says what and what to
    /// do instead (another runtime).
    #[error("{reason}")]
    Unsupported { reason: String },
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

    /// `push` of the image as the runtime holds it, not made reproducible:
    /// for gantry's own copies that no user pulls by digest (the remote
    /// cache's step filesystems), where the rewrite would only cost time. A
    /// runtime whose `push` costs no more keeps this default.
    async fn push_as_is(
        &self,
        image_id: &str,
        reference: &str,
        auth: Option<&RegistryAuth>,
    ) -> Result<String, RuntimeError> {
        self.push(image_id, reference, auth).await
    }

    /// Writes `image_id` as a `docker save` tarball (loadable by `docker load`).
    async fn save_image(&self, image_id: &str, reference: &str) -> Result<Bytes, RuntimeError>;

    /// `save_image` of the image as the runtime holds it, not made
    /// reproducible (for the remote cache's step filesystems, as
    /// `push_as_is`).
    async fn save_as_is(&self, image_id: &str, reference: &str) -> Result<Bytes, RuntimeError> {
        self.save_image(image_id, reference).await
    }

    /// `image_id` as the remote cache's layout form stores it, its pulled
    /// layers named by where they came from; `None` when the runtime can only
    /// `save_as_is` the whole image (the Docker runtime where it cannot read
    /// dockerd's layer store: dockerd saves every layer).
    async fn cache_layers(&self, _image_id: &str) -> Result<Option<CacheImage>, RuntimeError> {
        Ok(None)
    }

    /// Whether the remote cache pushes a filesystem to a registry through
    /// `push_as_is` (the default) or from `cache_layers` with its own client:
    /// the Docker runtime's `push_as_is` is `docker push`, which compresses
    /// every new layer with Go's gzip at its default level.
    fn cache_pushes_as_is(&self) -> bool {
        true
    }

    /// Loads a `docker save`/OCI tarball and returns the image ID it holds.
    async fn load_image(&self, tarball: Bytes) -> Result<PulledImage, RuntimeError>;

    /// Whether a local image still exists (a cached result may point at an
    /// image that was removed behind gantry's back).
    async fn image_exists(&self, image_id: &str) -> Result<bool, RuntimeError>;

    /// Gives the image a pull or push left under the name `from` the name
    /// `to` instead: a transfer through a registry service's loopback
    /// forward (`registry_service.rs`) names a port that is gone once it
    /// ends. A name by digest, or one this runtime never recorded (a
    /// runtime that keeps no names keeps this default), is left as it is.
    async fn rename_image(&self, from: &str, to: &str) -> Result<(), RuntimeError> {
        let _ = (from, to);
        Ok(())
    }

    /// Removes images (by ID or tag); missing ones are not an error.
    async fn remove_images(&self, images: &[String]) -> Result<(), RuntimeError>;

    /// Removes containers left behind by engines that are no longer running.
    /// Returns how many were removed.
    async fn remove_orphans(&self) -> Result<usize, RuntimeError>;

    /// Runs `spec.args` interactively on a terminal (a TTY in the
    /// container wired to `io`, resized as it is) in a fresh container
    /// built from `spec.rootfs`; returns its exit code once it has exited.
    /// Nothing is committed (`spec.commit_tag`, `spec.stdin` and
    /// `spec.output` are ignored) and the container is removed.
    async fn terminal(&self, spec: ExecSpec, io: TerminalIo) -> Result<i64, RuntimeError> {
        let _ = (spec, io);
        Err(RuntimeError::Unsupported {
            reason: "this container runtime does not run interactive terminals yet: use the \
                     Docker runtime (GANTRY_RUNTIME=docker) to open one"
                .into(),
        })
    }

    // ---- Services. The defaults refuse, so a runtime can run pipelines
    // before it runs services.

    /// Whether this runtime runs services (containers, host forwards,
    /// tunnels): `Err` (`Unsupported`) says why not and what to use instead.
    /// The solver asks before it starts anything for a service, so whatever
    /// needs one fails at once with that reason. A runtime that implements
    /// `start_container` and `listen_on_step_network` answers `Ok`.
    fn check_services(&self) -> Result<(), RuntimeError> {
        Err(RuntimeError::Unsupported {
            reason: "this container runtime does not run services (asService, \
                     withServiceBinding, up, Host.service, Host.tunnel)"
                .into(),
        })
    }

    /// Starts `spec` as a long-running container (a service) and returns once
    /// its process runs. Nothing is committed; `spec.commit_tag` and
    /// `spec.stdin` are ignored. Its output is kept for errors (capped).
    async fn start_container(&self, spec: ExecSpec) -> Result<StartedContainer, RuntimeError> {
        let _ = spec;
        Err(RuntimeError::Unsupported {
            reason: "this container runtime does not run services (asService, up, Host.tunnel)"
                .into(),
        })
    }

    /// Binds `ports` (TCP) at an address of their own on the step network,
    /// for the engine to serve (`Host.service`).
    async fn listen_on_step_network(
        &self,
        ports: &[u16],
    ) -> Result<StepNetworkListener, RuntimeError> {
        let _ = ports;
        Err(RuntimeError::Unsupported {
            reason: "this container runtime does not forward host ports to containers \
                     (Host.service)"
                .into(),
        })
    }

    /// Releases what the runtime set up for this engine (the step network).
    /// Called once, when the engine stops, after every container is gone.
    async fn shutdown(&self) {}

    /// An image already in the store of the machine the runtime runs on,
    /// by name or ID, without contacting a registry (`Host.containerImage`).
    /// Runtimes without such a store keep this default.
    async fn local_image(&self, reference: &str) -> Result<PulledImage, RuntimeError> {
        Err(RuntimeError::ImageNotFound {
            reference: reference.to_owned(),
            reason: "this container runtime has no host image store to load from".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_parse_and_format() {
        assert_eq!(go_duration("1m30s"), Some(90_000_000_000));
        assert_eq!(go_duration("1.5s"), Some(1_500_000_000));
        assert_eq!(go_duration("250ms"), Some(250_000_000));
        assert_eq!(go_duration(""), Some(0));
        assert_eq!(go_duration("5"), None);
        assert_eq!(go_duration("3x"), None);
        for text in ["1m30s", "1.5s", "250ms", "2h0m0s", "30s"] {
            assert_eq!(format_go_duration(go_duration(text).unwrap()), text);
        }
    }
}
