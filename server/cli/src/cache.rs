//! The remote cache tier (`--cache REF`): exec results shared between machines
//! through an OCI registry repository, or a local OCI image layout directory
//! (`oci-layout:DIR`, whose format `cache_layout` owns) (docs/cache.md).
//!
//! An entry per cache key: the tag `<key hex>` is a small OCI manifest whose
//! config blob (`ENTRY_MEDIA_TYPE`) holds the step's record (stdout, stderr,
//! exit code) and the key it belongs to; the step's filesystem is the image
//! Docker pushed beside it (`<key hex>.fs.<image>.<push>`), named by manifest digest
//! in the entry. A lookup costs one manifest and one small blob; the
//! filesystem is pulled only when a later step or an export needs it
//! (`CachedRuntime`, which stands between the solver and the runtime and
//! resolves the placeholder image IDs that remote records carry).
//!
//! Faults never fail a pipeline: an unreachable or slow registry is one
//! warning and the engine stops asking it; a corrupt entry (digest or key
//! mismatch) is ignored with a warning and replaced by the local run's entry.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use async_trait::async_trait;
use bytes::Bytes;
use dashmap::{DashMap, DashSet};
use gantry_core::runtime::{
    CacheImage, CacheLayer, ExecOutput, ExecSpec, ImageConfig, PulledImage, PulledLayer,
    RegistryAuth, RootfsSpec, Runtime, RuntimeError, StartedContainer, StepNetworkListener,
    TerminalIo,
};
use gantry_core::store::{FoundRead, RemoteCache, SharedRead};
use gantry_core::Digest;
use gantry_native::registry_client::{self as registry, Blob};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth as OciAuth;
use oci_client::{Client, Reference};
use sha2::{Digest as _, Sha256};
use tokio::sync::OnceCell;
use tokio::task::JoinSet;

use crate::cache_layout::{
    fault_text, sha256_digest, Fault, Filesystem, Layout, RUNTIME_ID_ANNOTATION,
};

/// The media type of an entry's config blob (the step's record).
pub(crate) const ENTRY_MEDIA_TYPE: &str = "application/vnd.gantry.cache.entry.v1+json";
/// The artifact type of an entry's manifest.
const ARTIFACT_TYPE: &str = "application/vnd.gantry.cache.entry.v1";
/// The media type of a path-read entry's config blob (`ReadEntry`). A kind of
/// its own, not a new version of `ENTRY_MEDIA_TYPE`: an engine that knows only
/// exec entries takes it for no gantry entry at all, never for an exec result.
pub(crate) const READ_MEDIA_TYPE: &str = "application/vnd.gantry.cache.read.v1+json";
/// The artifact type of a path-read entry's manifest.
const READ_ARTIFACT_TYPE: &str = "application/vnd.gantry.cache.read.v1";
/// A layer of a path-read entry: one file's contents, as they are.
pub(crate) const FILE_MEDIA_TYPE: &str = "application/vnd.gantry.cache.file.v1";
/// The most file bytes a path-read entry may carry (the engine shares reads
/// of at most 64 MiB; anything larger is not an entry it wrote).
const MAX_READ_FILE_BYTES: i64 = 64 << 20;
pub(crate) const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// A step filesystem's config, and its layers as this engine pushes them.
const IMAGE_CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
const GZIP_LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// Image IDs of filesystems still in the remote cache start with this:
/// `gantry-remote-cache:<key hex>/<where>@<digest>`, where `<where>` is the
/// repository or `oci-layout:DIR` and `<digest>` the filesystem's manifest.
/// Records keep it in the local store too, so a later engine finds the
/// filesystem without looking the entry up again.
const PLACEHOLDER: &str = "gantry-remote-cache:";
/// The name a filesystem loaded from a layout keeps in the runtime (so a
/// later engine finds it loaded).
const LOADED_NAME: &str = "gantry-remote-cache.local/filesystem";
/// The largest entry blob read (three streams of at most 64 MiB each, as JSON).
const MAX_ENTRY_BYTES: i64 = 256 << 20;
/// How long one lookup may take before the registry counts as unreachable.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(15);
/// How long an engine that is stopping waits for its pushes.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(300);

/// Whether the engine may push to the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub(crate) enum CacheMode {
    /// Look results up and push new ones.
    #[default]
    Readwrite,
    /// Look results up only (for untrusted builds: pull requests).
    Read,
}

/// The remote cache options of every engine-hosting command.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct CacheArgs {
    /// Remote cache shared between machines: a registry repository (e.g. 127.0.0.1:5000/team/cache) or oci-layout:DIR [env: GANTRY_CACHE]
    #[arg(long = "cache", value_name = "REF")]
    pub(crate) cache: Option<String>,
    /// readwrite (look up and push) or read (look up only, for untrusted builds) [env: GANTRY_CACHE_MODE]
    #[arg(long, value_enum, value_name = "MODE")]
    pub(crate) cache_mode: Option<CacheMode>,
    /// Speak plain HTTP to a cache registry that is not on a loopback address
    #[arg(long)]
    pub(crate) cache_insecure: bool,
    /// Credentials for the cache registry, the password read from an environment
    /// variable: USER:env:VAR (default: the Docker configuration, as `docker login` writes it) [env: GANTRY_CACHE_AUTH]
    #[arg(long, value_name = "USER:env:VAR")]
    pub(crate) cache_auth: Option<String>,
}

/// A checked `--cache` setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CacheConfig {
    pub(crate) location: Location,
    pub(crate) mode: CacheMode,
    /// Steps with secrets attached are shared too (the secret MAC key is
    /// shared: `GANTRY_CACHE_KEY`).
    pub(crate) share_secret_steps: bool,
}

impl CacheArgs {
    /// The remote cache asked for by flags or environment, checked; `None` without one.
    pub(crate) fn config(&self, share_secret_steps: bool) -> Result<Option<CacheConfig>> {
        let reference = self.cache.clone().or_else(|| {
            std::env::var(crate::env::CACHE)
                .ok()
                .filter(|v| !v.is_empty())
        });
        let Some(reference) = reference else {
            return Ok(None);
        };
        let mode = match self.cache_mode {
            Some(mode) => mode,
            None => match std::env::var(crate::env::CACHE_MODE)
                .ok()
                .filter(|v| !v.is_empty())
            {
                None => CacheMode::Readwrite,
                Some(value) => {
                    <CacheMode as clap::ValueEnum>::from_str(&value, true).map_err(|_| {
                        anyhow::anyhow!(
                            "{}={value:?} is not a cache mode: use readwrite or read",
                            crate::env::CACHE_MODE
                        )
                    })?
                }
            },
        };
        let location =
            Location::parse(&reference, self.cache_insecure, self.cache_auth.as_deref())?;
        Ok(Some(CacheConfig {
            location,
            mode,
            share_secret_steps,
        }))
    }
}

/// Where the remote cache lives: what `--cache REF` and `gantry cache --remote
/// REF` name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Location {
    /// A registry repository.
    Registry(Endpoint),
    /// `oci-layout:DIR`, the directory made absolute.
    Layout(PathBuf),
}

impl Location {
    /// `reference` checked: `oci-layout:DIR`, else a registry repository (see
    /// `Endpoint::parse`).
    pub(crate) fn parse(reference: &str, insecure: bool, auth: Option<&str>) -> Result<Self> {
        let Some(dir) = reference.trim().strip_prefix("oci-layout:") else {
            return Endpoint::parse(reference, insecure, auth).map(Self::Registry);
        };
        let usage = "expected oci-layout:DIR, a directory for an OCI image layout (e.g. oci-layout:.gantry-cache)";
        if dir.is_empty() {
            bail!("--cache {reference:?}: no directory; {usage}");
        }
        if insecure || auth.is_some() {
            bail!("--cache {reference:?}: --cache-insecure and --cache-auth are for registries; an OCI layout directory is read and written as files");
        }
        let dir = std::path::absolute(dir)
            .with_context(|| format!("while resolving the cache directory {dir:?}"))?;
        if dir.exists() && !dir.is_dir() {
            bail!(
                "--cache {reference:?}: {} is not a directory; {usage}",
                dir.display()
            );
        }
        Ok(Self::Layout(dir))
    }

    /// How logs and errors name it.
    pub(crate) fn name(&self) -> String {
        match self {
            Self::Registry(endpoint) => endpoint.repository.clone(),
            Self::Layout(dir) => format!("oci-layout:{}", dir.display()),
        }
    }
}

/// A registry repository and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// `host[:port]/path`, no tag.
    pub(crate) repository: String,
    pub(crate) registry: String,
    pub(crate) plain_http: bool,
    /// `--cache-auth` (else `GANTRY_CACHE_AUTH`); `None`: the Docker configuration's.
    pub(crate) auth: Option<RegistryAuth>,
}

impl Endpoint {
    /// `reference` checked; plain HTTP for loopback registries or when `insecure`;
    /// credentials from `auth` (`USER:env:VAR`), else `GANTRY_CACHE_AUTH`.
    pub(crate) fn parse(reference: &str, insecure: bool, auth: Option<&str>) -> Result<Self> {
        let (repository, registry) = parse_repository(reference)?;
        let plain_http = registry::is_loopback(&registry) || insecure;
        let spec = auth.map(str::to_owned).or_else(|| {
            std::env::var(crate::env::CACHE_AUTH)
                .ok()
                .filter(|v| !v.is_empty())
        });
        let auth = match spec {
            Some(spec) => Some(parse_auth(&spec, &registry)?),
            None => None,
        };
        Ok(Self {
            repository,
            registry,
            plain_http,
            auth,
        })
    }
}

/// `USER:env:VAR`: the user, and the password from the environment variable `VAR`
/// (never on the command line, where other users of the machine can read it).
pub(crate) fn parse_auth(spec: &str, registry: &str) -> Result<RegistryAuth> {
    let usage = "expected USER:env:VAR, the password in the environment variable VAR (e.g. --cache-auth ci:env:CACHE_PASSWORD)";
    let Some((username, source)) = spec.split_once(':') else {
        bail!("--cache-auth {spec:?}: {usage}");
    };
    let Some(var) = source.strip_prefix("env:").filter(|v| !v.is_empty()) else {
        bail!("--cache-auth for user {username:?}: {usage}");
    };
    if username.is_empty() {
        bail!("--cache-auth: no user name; {usage}");
    }
    let password = std::env::var(var).ok().filter(|v| !v.is_empty());
    let Some(password) = password else {
        bail!("--cache-auth: the environment variable {var} (the password of {username:?}) is not set or empty");
    };
    Ok(RegistryAuth {
        server: registry.to_owned(),
        username: username.to_owned(),
        password,
    })
}

/// `host[:port]/path` checked: a registry host is required (no Docker Hub
/// default), no scheme, tag or digest. Returns the repository and its registry.
pub(crate) fn parse_repository(text: &str) -> Result<(String, String)> {
    let usage = "expected a registry repository HOST[:PORT]/PATH, e.g. 127.0.0.1:5000/team/cache or ghcr.io/org/cache, or oci-layout:DIR";
    let text = text.trim();
    if let Some((scheme, _)) = text.split_once("://") {
        bail!("--cache {text:?}: leave out the scheme ({scheme}://); {usage} (plain HTTP is used for loopback registries, or with --cache-insecure)");
    }
    let Some((registry, path)) = text.split_once('/') else {
        bail!("--cache {text:?}: no repository path; {usage}");
    };
    let is_host = registry.contains('.') || registry.contains(':') || registry == "localhost";
    if !is_host {
        bail!("--cache {text:?}: {registry:?} is not a registry host; {usage}");
    }
    if path.contains('@')
        || path
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains(':'))
    {
        bail!("--cache {text:?}: give a repository without a tag or digest (entries are tagged by cache key); {usage}");
    }
    let valid_path = !path.is_empty()
        && path.split('/').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        });
    if !valid_path {
        bail!("--cache {text:?}: {path:?} is not a repository path (lowercase letters, digits, '.', '_', '-', separated by '/'); {usage}");
    }
    if format!("{text}:x").parse::<Reference>().is_err() {
        bail!("--cache {text:?}: not a valid image repository; {usage}");
    }
    Ok((text.to_owned(), registry.to_owned()))
}

/// What an entry's config blob holds.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct Entry {
    /// The cache key (hex) the entry was pushed for, checked on every lookup.
    pub(crate) key: String,
    /// The manifest digest of the step's filesystem image in the repository.
    pub(crate) image: String,
    /// The exec record as the store keeps it, its image ID blanked.
    pub(crate) record: serde_json::Value,
    /// When it was pushed (seconds since the Unix epoch).
    #[serde(default)]
    pub(crate) created: u64,
    /// Makes every entry blob new: a corrupt blob on the registry is replaced
    /// by one of another digest (registries keep the first upload of a digest).
    #[serde(default)]
    nonce: u64,
}

/// What a path-read entry's config blob holds; its manifest's layers are the
/// contents of the files the tree names (`FILE_MEDIA_TYPE`), by digest.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct ReadEntry {
    /// The read's cache key (hex), checked on every lookup.
    pub(crate) key: String,
    /// The path read, for listings.
    #[serde(default)]
    pub(crate) path: String,
    /// The tree read, as the store keeps it.
    pub(crate) tree: serde_json::Value,
    /// When it was pushed (seconds since the Unix epoch).
    #[serde(default)]
    pub(crate) created: u64,
    /// As `Entry::nonce`.
    #[serde(default)]
    nonce: u64,
}

/// Counters the engine logs when it stops and tests read. Exec entries
/// count in the first four, path reads in the `reads_` ones.
#[derive(Debug, Default)]
struct Counters {
    lookups: AtomicUsize,
    hits: AtomicUsize,
    filesystems_fetched: AtomicUsize,
    pushed: AtomicUsize,
    reads_asked: AtomicUsize,
    reads_found: AtomicUsize,
    /// Files of found path reads fetched because something read them.
    read_files_fetched: AtomicUsize,
    reads_shared: AtomicUsize,
}

/// State the cache and the runtime wrapper share.
#[derive(Debug, Default)]
struct Shared {
    /// Placeholder image ID → the local image ID, once pulled.
    resolved: DashMap<String, Arc<OnceCell<String>>>,
    /// Keys (hex) whose entries failed: they are looked up no more and, once
    /// run locally, replaced.
    broken: DashSet<String>,
    counters: Counters,
}

/// The remote cache tier on one registry repository or OCI layout directory.
pub(crate) struct SharedCache {
    inner: Arc<Inner>,
    /// Pushes under way, awaited by `flush`.
    pushes: Mutex<JoinSet<()>>,
}

struct Inner {
    /// The repository or `oci-layout:DIR`, for logs.
    name: String,
    mode: CacheMode,
    share_secret_steps: bool,
    backend: Backend,
    runtime: Arc<dyn Runtime>,
    shared: Arc<Shared>,
    /// Records already found, by key.
    found: DashMap<Digest, Vec<u8>>,
    /// Set once the cache failed to answer: no more lookups or pushes.
    unreachable: AtomicBool,
    push_warned: AtomicBool,
}

/// Where entries are read and written.
enum Backend {
    Registry(Box<RegistryBackend>),
    Layout(Layout),
}

struct RegistryBackend {
    repository: String,
    connection: Arc<Connection>,
    /// The same credentials for dockerd's pushes and pulls of filesystems.
    docker_auth: Option<RegistryAuth>,
    /// One push at a time per filesystem image: steps that change no file
    /// share their parent's filesystem, and the second push of it then finds
    /// every layer in the repository instead of uploading the same layers
    /// at the same time.
    pushing: DashMap<String, Arc<tokio::sync::Mutex<()>>>,
    /// A runtime's layer tars gzipped and pushed so far: tar digest → the
    /// blob's digest and size (a step image shares its parent's layers).
    gzipped: DashMap<String, (String, u64)>,
}

/// The cache registry's client and the credentials it sends, shared by the
/// backend and the runtime's filesystem fetches.
struct Connection {
    registry: String,
    plain_http: bool,
    /// As configured: `--cache-auth`, else the Docker configuration's.
    configured: OciAuth,
    /// Made at the first request (`registry::tokenless`).
    client: OnceCell<(Client, OciAuth)>,
    /// A reference in the repository, to ask the registry with.
    probe: Reference,
}

impl Connection {
    /// The client and what it sends: the configured credentials, or for a
    /// registry that asks for none, an empty bearer token (`tokenless`).
    /// The client that asked keeps serving unless that changes what it
    /// must send (a client keeps the first credentials it is given for a
    /// registry); only then is another one made.
    async fn get(&self) -> (&Client, &OciAuth) {
        let (client, auth) = self
            .client
            .get_or_init(|| async {
                let asked = registry::client_for(&self.registry, self.plain_http);
                let auth = registry::tokenless(&asked, &self.probe, self.configured.clone()).await;
                if matches!(auth, OciAuth::Bearer(ref token) if token.is_empty()) {
                    (registry::client_for(&self.registry, self.plain_http), auth)
                } else {
                    (asked, auth)
                }
            })
            .await;
        (client, auth)
    }
}

impl std::fmt::Debug for SharedCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedCache")
            .field("name", &self.inner.name)
            .field("mode", &self.inner.mode)
            .finish_non_exhaustive()
    }
}

/// Wraps `runtime` for the remote cache `config`: returns the cache for the
/// engine and the runtime it must use (which fetches cached filesystems when
/// they are needed).
pub(crate) async fn open(
    config: CacheConfig,
    runtime: Arc<dyn Runtime>,
) -> Result<(Arc<SharedCache>, Arc<dyn Runtime>)> {
    let name = config.location.name();
    let (backend, auth) = match config.location {
        Location::Registry(endpoint) => {
            let auth = registry::credentials(&endpoint.registry, endpoint.auth.as_ref()).await;
            let docker_auth = match &auth {
                OciAuth::Basic(username, password) => Some(RegistryAuth {
                    server: endpoint.registry.clone(),
                    username: username.clone(),
                    password: password.clone(),
                }),
                _ => None,
            };
            let connection = Arc::new(Connection {
                probe: format!("{}:latest", endpoint.repository)
                    .parse()
                    .context("the cache repository is not an image reference")?,
                registry: endpoint.registry.clone(),
                plain_http: endpoint.plain_http,
                configured: auth,
                client: OnceCell::new(),
            });
            let backend = RegistryBackend {
                repository: endpoint.repository,
                connection,
                docker_auth: docker_auth.clone(),
                pushing: DashMap::new(),
                gzipped: DashMap::new(),
            };
            (Backend::Registry(Box::new(backend)), docker_auth)
        }
        Location::Layout(dir) => {
            let layout = Layout::open(&dir, config.mode == CacheMode::Readwrite)
                .with_context(|| format!("while opening the cache directory {}", dir.display()))?;
            (Backend::Layout(layout), None)
        }
    };
    let shared = Arc::new(Shared::default());
    let inner = Arc::new(Inner {
        name,
        mode: config.mode,
        share_secret_steps: config.share_secret_steps,
        backend,
        runtime: runtime.clone(),
        shared: shared.clone(),
        found: DashMap::new(),
        unreachable: AtomicBool::new(false),
        push_warned: AtomicBool::new(false),
    });
    tracing::info!(repository = %inner.name, mode = ?inner.mode, "remote cache enabled");
    if let Backend::Registry(_) = &inner.backend {
        // The registry's version check now, in the background: the first
        // lookup then finds the credentials decided, a connection open (and
        // a token, where the registry wants one) instead of paying for them.
        // A failure here is the first lookup's to report.
        let inner = inner.clone();
        tokio::spawn(async move {
            if let Backend::Registry(registry) = &inner.backend {
                let probe = registry.reference("latest");
                let (client, auth) = registry.connection.get().await;
                let checked = client
                    .auth(&probe, auth, oci_client::RegistryOperation::Pull)
                    .await;
                tracing::debug!(ok = checked.is_ok(), "remote cache registry checked");
            }
        });
    }
    let cache = Arc::new(SharedCache {
        inner,
        pushes: Mutex::new(JoinSet::new()),
    });
    let registry = match &cache.inner.backend {
        Backend::Registry(registry) => Some(registry.connection.clone()),
        Backend::Layout(_) => None,
    };
    let wrapped = Arc::new(CachedRuntime {
        inner: runtime,
        shared,
        auth,
        registry,
    });
    Ok((cache, wrapped))
}

/// Whether a registry error means "no such entry" (a miss, not a fault).
pub(crate) fn is_not_found(error: &OciDistributionError) -> bool {
    match error {
        OciDistributionError::ImageManifestNotFoundError(_) => true,
        OciDistributionError::RegistryError { envelope, .. } => envelope.errors.iter().any(|e| {
            matches!(
                e.code,
                OciErrorCode::ManifestUnknown | OciErrorCode::NameUnknown
            )
        }),
        OciDistributionError::ServerError { code, .. } => *code == 404,
        _ => false,
    }
}

/// What a backend found for a key.
enum Found {
    /// The entry's record blob, checked against its digest, and when asked
    /// for, its layers (a path read's files) as digests and sizes, not
    /// fetched.
    Blob(Vec<u8>, Vec<(Digest, u64)>),
    Missing,
    Corrupt(String),
}

impl RegistryBackend {
    fn reference(&self, tag: &str) -> Reference {
        format!("{}:{tag}", self.repository)
            .parse()
            .expect("the repository was checked when the cache was configured")
    }

    fn password(&self) -> Option<&str> {
        self.docker_auth.as_ref().map(|a| a.password.as_str())
    }

    /// The entry blob tagged `hex`, of `media_type`, with its layers when
    /// `layers`; `Err`: the registry failed to answer.
    async fn entry_blob(&self, hex: &str, media_type: &str, layers: bool) -> Result<Found, String> {
        let image = self.reference(hex);
        let redact = |error: &OciDistributionError| {
            registry::registry_error(&image.whole(), error, self.password()).to_string()
        };
        let (client, auth) = self.connection.get().await;
        client
            .store_auth_if_needed(image.resolve_registry(), auth)
            .await;
        let manifest = client
            .pull_manifest_raw(&image, auth, &[MANIFEST_MEDIA_TYPE])
            .await;
        let (manifest, _) = match manifest {
            Ok(found) => found,
            Err(error) if is_not_found(&error) => return Ok(Found::Missing),
            Err(error) => return Err(redact(&error)),
        };
        let manifest = serde_json::from_slice::<serde_json::Value>(&manifest).ok();
        let Some(config) = manifest
            .as_ref()
            .and_then(|m| serde_json::from_value::<OciDescriptor>(m["config"].clone()).ok())
            .filter(|c| c.media_type == media_type)
        else {
            return Ok(Found::Corrupt(
                "its manifest is not a gantry cache entry".into(),
            ));
        };
        if !(0..=MAX_ENTRY_BYTES).contains(&config.size) {
            return Ok(Found::Corrupt(
                "its record is larger than any record".into(),
            ));
        }
        let descriptors: Vec<OciDescriptor> = match layers {
            true => manifest
                .and_then(|m| serde_json::from_value(m["layers"].clone()).ok())
                .unwrap_or_default(),
            false => Vec::new(),
        };
        let files = match read_files(&descriptors) {
            Ok(files) => files,
            Err(why) => return Ok(Found::Corrupt(why.into())),
        };
        let blob = match self.checked_blob(&image, &config).await? {
            Ok((_, blob)) => blob,
            Err(why) => return Ok(Found::Corrupt(format!("its record blob {why}"))),
        };
        Ok(Found::Blob(blob, files))
    }

    /// The file `blob` (of `size` bytes) of the path read entry tagged
    /// `hex`, checked; `Ok(Err(why))`: missing or corrupt.
    async fn read_file(
        &self,
        hex: &str,
        blob: &Digest,
        size: u64,
    ) -> Result<Result<Vec<u8>, String>, String> {
        let descriptor = OciDescriptor {
            media_type: FILE_MEDIA_TYPE.to_owned(),
            digest: blob.to_string(),
            size: size as i64,
            ..Default::default()
        };
        let found = self.checked_blob(&self.reference(hex), &descriptor).await?;
        Ok(found
            .map(|(_, file)| file)
            .map_err(|why| format!("the file {blob} {why}")))
    }

    /// The blob `descriptor` of `image`, with its digest, checked against its
    /// digest (by the client, as it downloads) and size; `Ok(Err(why))`:
    /// missing or corrupt; `Err`: the registry failed to answer.
    async fn checked_blob(
        &self,
        image: &Reference,
        descriptor: &OciDescriptor,
    ) -> Result<Result<(Digest, Vec<u8>), &'static str>, String> {
        let Some(digest) = sha256_digest(&descriptor.digest) else {
            return Ok(Err("is not named by a sha256 digest"));
        };
        let (client, _) = self.connection.get().await;
        let blob = pull_checked(client, image, descriptor, self.password()).await?;
        Ok(blob.map(|blob| (digest, blob)))
    }

    /// Whether `hex` has an entry; `Err`: the registry's error, as text.
    async fn has_entry(&self, hex: &str) -> Result<bool, String> {
        let image = self.reference(hex);
        let (client, auth) = self.connection.get().await;
        match client.fetch_manifest_digest(&image, auth).await {
            Ok(_) => Ok(true),
            Err(error) if is_not_found(&error) => Ok(false),
            Err(error) => {
                Err(registry::registry_error(&image.whole(), &error, self.password()).to_string())
            }
        }
    }

    /// Pushes the filesystem `image_id` (through the runtime) and then the
    /// entry `entry_of(filesystem manifest digest)`.
    async fn push(
        &self,
        runtime: &dyn Runtime,
        hex: &str,
        image_id: &str,
        entry_of: impl FnOnce(&str) -> Vec<u8>,
    ) -> Result<bool, String> {
        let turn = self.pushing.entry(image_id.to_owned()).or_default().clone();
        let _turn = turn.lock().await;
        let short = image_id.trim_start_matches("sha256:");
        let fs_tag = format!(
            "{}:{hex}.fs.{}.{}",
            self.repository,
            &short[..short.len().min(16)],
            own_name_suffix()
        );
        let fs_digest = match self.push_layers(runtime, image_id, &fs_tag).await? {
            Some(digest) => digest,
            None => {
                // As the runtime holds it: a step filesystem needs no reproducible
                // copy (its entry names it by digest, and the key, not the digest,
                // finds it), and on Docker the copy costs a save, a rewrite and a
                // load of every layer, the base image's included, on every push.
                let pushed = runtime
                    .push_as_is(image_id, &fs_tag, self.docker_auth.as_ref())
                    .await;
                // The tag was only for the push (Docker tags before pushing; the native
                // runtime pushes without one): the image keeps its step tag.
                if runtime.image_exists(&fs_tag).await == Ok(true) {
                    let _ = runtime.remove_images(std::slice::from_ref(&fs_tag)).await;
                }
                pushed.map_err(|error| error.to_string())?
            }
        };
        let blob = entry_of(&fs_digest);
        self.push_entry(
            hex,
            ARTIFACT_TYPE,
            blob_of(ENTRY_MEDIA_TYPE, blob),
            Vec::new(),
        )
        .await
    }

    /// Pushes the filesystem `image_id` as `fs_tag` from the runtime's own
    /// layers (`Runtime::cache_layers`), where the runtime's push would not
    /// push it as well (`Runtime::cache_pushes_as_is`: dockerd compresses
    /// every new layer with Go's gzip at its default level, 1.7-2.3 s of a
    /// cold seed run). The step's layers are gzipped here at the fastest
    /// level, once per engine; the pulled ones are mounted from their
    /// repository. `None`: not so (the native runtime's push does the same
    /// already, the runtime has no layers to give, or a layer cannot be
    /// mounted here); the caller pushes through the runtime.
    async fn push_layers(
        &self,
        runtime: &dyn Runtime,
        image_id: &str,
        fs_tag: &str,
    ) -> Result<Option<String>, String> {
        if runtime.cache_pushes_as_is() {
            return Ok(None);
        }
        let Some(image) = named_layers(runtime, image_id).await? else {
            return Ok(None);
        };
        let target: Reference = fs_tag
            .parse()
            .map_err(|_| format!("{fs_tag:?} is not an image reference"))?;
        let fail = |error: OciDistributionError| {
            registry::registry_error(fs_tag, &error, self.password()).to_string()
        };
        let (client, auth) = self.connection.get().await;
        client
            .auth(&target, auth, oci_client::RegistryOperation::Push)
            .await
            .map_err(fail)?;
        let mut descriptors = Vec::with_capacity(image.layers.len());
        let mut blobs = Vec::new();
        for layer in &image.layers {
            match layer {
                CacheLayer::Pulled(pulled) => {
                    if !self.mount(&target, pulled).await {
                        return Ok(None);
                    }
                    descriptors.push(serde_json::json!({
                        "mediaType": pulled.media_type,
                        "digest": pulled.digest,
                        "size": pulled.size,
                    }));
                }
                CacheLayer::Tar { path, digest } => {
                    let known = self.gzipped.get(digest).map(|known| known.clone());
                    let (blob_digest, size) = match known {
                        Some((blob, size))
                            if client.blob_exists(&target, &blob).await.unwrap_or(false) =>
                        {
                            (blob, size)
                        }
                        _ => {
                            let blob = gzip_file(path.clone()).await?;
                            let named = (blob.digest.clone(), blob.data.len() as u64);
                            self.gzipped.insert(digest.clone(), named.clone());
                            blobs.push(blob);
                            named
                        }
                    };
                    descriptors.push(serde_json::json!({
                        "mediaType": GZIP_LAYER_MEDIA_TYPE,
                        "digest": blob_digest,
                        "size": size,
                    }));
                }
                CacheLayer::OfImage { .. } => unreachable!("named by name_image_layers"),
            }
        }
        let config = blob_of(IMAGE_CONFIG_MEDIA_TYPE, image.config);
        let mut manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "config": {
                "mediaType": IMAGE_CONFIG_MEDIA_TYPE,
                "digest": config.digest,
                "size": config.data.len(),
            },
            "layers": descriptors,
        });
        if let Some(id) = image.runtime_id.filter(|id| *id != config.digest) {
            manifest["annotations"] = serde_json::json!({ RUNTIME_ID_ANNOTATION: id });
        }
        let manifest = Bytes::from(serde_json::to_vec(&manifest).expect("manifests serialise"));
        registry::push(
            client,
            &target,
            auth,
            self.password(),
            blobs,
            config,
            manifest,
            MANIFEST_MEDIA_TYPE,
        )
        .await
        .map(Some)
        .map_err(|error| error.to_string())
    }

    /// Makes the pulled blob `layer` part of `target`'s repository without
    /// exporting it: there already, mounted from its own repository on the
    /// same registry, or copied from its registry
    /// (`registry::mount_or_copy`). False: none of these.
    async fn mount(&self, target: &Reference, layer: &PulledLayer) -> bool {
        let Ok(source) = layer.repository.parse::<Reference>() else {
            return false;
        };
        let blob = OciDescriptor {
            media_type: layer.media_type.clone(),
            digest: layer.digest.clone(),
            size: layer.size as i64,
            ..Default::default()
        };
        let (client, _) = self.connection.get().await;
        registry::mount_or_copy(client, target, &source, &blob).await
    }

    /// Pushes the entry manifest tagged `hex`: `config` (the record) and
    /// `layers` (none for an exec entry, whose filesystem is an image of its own).
    async fn push_entry(
        &self,
        hex: &str,
        artifact_type: &str,
        config: Blob,
        layers: Vec<Blob>,
    ) -> Result<bool, String> {
        let descriptor = |blob: &Blob| {
            serde_json::json!({
                "mediaType": blob.media_type,
                "digest": blob.digest,
                "size": blob.data.len(),
            })
        };
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "artifactType": artifact_type,
            "config": descriptor(&config),
            "layers": layers.iter().map(descriptor).collect::<Vec<_>>(),
            "annotations": BTreeMap::from([("dev.gantry.cache.key", hex)]),
        });
        let manifest = Bytes::from(serde_json::to_vec(&manifest).expect("manifests serialise"));
        let (client, auth) = self.connection.get().await;
        registry::push(
            client,
            &self.reference(hex),
            auth,
            self.password(),
            layers,
            config,
            manifest,
            MANIFEST_MEDIA_TYPE,
        )
        .await
        .map(|_| true)
        .map_err(|error| error.to_string())
    }
}

/// The layer tar at `path` gzipped at the fastest level, as a blob: on one
/// core while steps run, on every core once none does.
async fn gzip_file(path: PathBuf) -> Result<Blob, String> {
    tokio::task::spawn_blocking(move || {
        let mut file = std::fs::File::open(&path)
            .map_err(|error| format!("reading {}: {error}", path.display()))?;
        let mut encoder = gantry_core::gzip::ParallelGzip::beside_steps(Vec::new())
            .map_err(|error| format!("compressing {}: {error}", path.display()))?;
        std::io::copy(&mut file, &mut encoder)
            .and_then(|_| encoder.finish())
            .map(|data| blob_of(GZIP_LAYER_MEDIA_TYPE, data))
            .map_err(|error| format!("compressing {}: {error}", path.display()))
    })
    .await
    .map_err(|error| error.to_string())?
}

/// `data` as a blob of `media_type`, named by its digest.
fn blob_of(media_type: &str, data: Vec<u8>) -> Blob {
    Blob {
        digest: format!("sha256:{}", hex::encode(Sha256::digest(&data))),
        media_type: media_type.to_owned(),
        data: Bytes::from(data),
    }
}

/// A path read entry's files (its layers) as digests and sizes; `Err`: why
/// the entry is not sound.
fn read_files(descriptors: &[OciDescriptor]) -> Result<Vec<(Digest, u64)>, &'static str> {
    let total: i64 = descriptors.iter().map(|d| d.size.max(0)).sum();
    if total > MAX_READ_FILE_BYTES {
        return Err("its files are larger than any read");
    }
    descriptors
        .iter()
        .map(|descriptor| {
            let digest = sha256_digest(&descriptor.digest)
                .ok_or("a file's blob is not named by a sha256 digest")?;
            let size = u64::try_from(descriptor.size).map_err(|_| "a file's size is negative")?;
            Ok((digest, size))
        })
        .collect()
}

/// The layout's entry blob for `hex`, of `media_type`, with its layers when
/// `layers`; `Err`: the directory cannot be read.
async fn layout_entry_blob(
    layout: &Layout,
    hex: &str,
    media_type: &'static str,
    layers: bool,
) -> Result<Found, String> {
    let (layout, hex) = (layout.clone(), hex.to_owned());
    let found = tokio::task::spawn_blocking(move || {
        let Some(manifest) = layout.manifest_of(&hex)? else {
            return Ok(None);
        };
        let blob = layout.entry_blob(&manifest, media_type)?;
        let files = match layers {
            true => layout.entry_layers(&manifest, MAX_READ_FILE_BYTES)?,
            false => Vec::new(),
        };
        Ok(Some((blob, files)))
    })
    .await
    .map_err(|error| error.to_string())?;
    match found {
        Ok(Some((blob, files))) => Ok(Found::Blob(blob, files)),
        Ok(None) => Ok(Found::Missing),
        Err(Fault::Corrupt(why)) => Ok(Found::Corrupt(why)),
        Err(Fault::Unreadable(why)) => Err(why),
    }
}

impl Inner {
    /// A fault of the cache itself: one warning for the engine's life, then
    /// the cache is left alone (the pipeline goes on locally).
    /// What a lookup found within `LOOKUP_TIMEOUT`; a failure or no answer
    /// in time makes the cache unreachable for the rest of the session.
    async fn answer<T>(
        &self,
        lookup: impl std::future::Future<Output = Result<Option<T>, String>>,
    ) -> Option<T> {
        match tokio::time::timeout(LOOKUP_TIMEOUT, lookup).await {
            Ok(Ok(found)) => found,
            Ok(Err(reason)) => {
                self.unreachable(&reason);
                None
            }
            Err(_) => {
                self.unreachable("no answer within 15 s");
                None
            }
        }
    }

    fn unreachable(&self, reason: &str) {
        if !self.unreachable.swap(true, Ordering::SeqCst) {
            tracing::warn!(repository = %self.name, %reason, "the remote cache is unavailable (unreachable, too slow or refusing access); running without it");
        }
    }

    /// The entry of `key` of `media_type` (with its layers when `layers`),
    /// checked; a corrupt one is reported and is a miss.
    async fn found(
        &self,
        key: &Digest,
        media_type: &'static str,
        layers: bool,
    ) -> Result<Option<(Vec<u8>, Vec<(Digest, u64)>)>, String> {
        let hex = key.hex();
        let found = match &self.backend {
            Backend::Registry(registry) => registry.entry_blob(&hex, media_type, layers).await?,
            Backend::Layout(layout) => layout_entry_blob(layout, &hex, media_type, layers).await?,
        };
        match found {
            Found::Blob(blob, files) => Ok(Some((blob, files))),
            Found::Missing => Ok(None),
            Found::Corrupt(why) => {
                self.corrupt(key, &why);
                Ok(None)
            }
        }
    }

    async fn fetch(&self, key: &Digest) -> Result<Option<Vec<u8>>, String> {
        let hex = key.hex();
        let Some((blob, _)) = self.found(key, ENTRY_MEDIA_TYPE, false).await? else {
            return Ok(None);
        };
        let entry = match serde_json::from_slice::<Entry>(&blob) {
            Ok(entry) if entry.key == hex => entry,
            Ok(_) => {
                self.corrupt(key, "it was pushed for another cache key");
                return Ok(None);
            }
            Err(_) => {
                self.corrupt(key, "its record is not valid");
                return Ok(None);
            }
        };
        if Digest::from_hex(entry.image.trim_start_matches("sha256:")).is_none() {
            self.corrupt(key, "its filesystem is not named by a sha256 digest");
            return Ok(None);
        }
        let mut record = entry.record;
        record["image_id"] =
            serde_json::Value::String(format!("{PLACEHOLDER}{hex}/{}@{}", self.name, entry.image));
        Ok(Some(
            serde_json::to_vec(&record).expect("JSON values always serialise"),
        ))
    }

    /// The path read shared under `key`: its tree, checked, and its files
    /// (digests and sizes).
    async fn fetch_read(&self, key: &Digest) -> Result<Option<FoundRead>, String> {
        let Some((blob, files)) = self.found(key, READ_MEDIA_TYPE, true).await? else {
            return Ok(None);
        };
        let entry = match serde_json::from_slice::<ReadEntry>(&blob) {
            Ok(entry) if entry.key == key.hex() => entry,
            Ok(_) => {
                self.corrupt(key, "it was pushed for another cache key");
                return Ok(None);
            }
            Err(_) => {
                self.corrupt(key, "its record is not valid");
                return Ok(None);
            }
        };
        Ok(Some(FoundRead {
            tree: serde_json::to_vec(&entry.tree).expect("JSON values always serialise"),
            files,
        }))
    }

    /// The file `blob` of the path read entry of `key`, checked: `Ok(Err)`
    /// when missing or corrupt.
    async fn fetch_read_file(
        &self,
        key: &Digest,
        blob: &Digest,
        size: u64,
    ) -> Result<Result<Vec<u8>, String>, String> {
        match &self.backend {
            Backend::Registry(registry) => registry.read_file(&key.hex(), blob, size).await,
            Backend::Layout(layout) => {
                let (layout, blob) = (layout.clone(), *blob);
                let file = tokio::task::spawn_blocking(move || layout.file(&blob, size))
                    .await
                    .map_err(|error| error.to_string())?;
                match file {
                    Ok(file) => Ok(Ok(file)),
                    Err(Fault::Corrupt(why)) => Ok(Err(why)),
                    Err(Fault::Unreadable(why)) => Err(why),
                }
            }
        }
    }

    fn corrupt(&self, key: &Digest, why: &str) {
        tracing::warn!(%key, %why, "ignoring a corrupt remote cache entry; the step runs here and its entry is replaced");
        self.shared.broken.insert(key.hex());
    }

    /// Whether `key` needs an entry pushed: none is there (first writer
    /// wins), or the one there is broken. `None`: the cache failed to answer
    /// (reported).
    async fn wanted(&self, key: &Digest) -> Option<bool> {
        let hex = key.hex();
        if self.shared.broken.contains(&hex) {
            return Some(true);
        }
        let there = match &self.backend {
            Backend::Registry(registry) => registry.has_entry(&hex).await,
            Backend::Layout(layout) => layout
                .manifest_of(&hex)
                .map(|found| found.is_some())
                .map_err(|fault| fault_text(&fault).to_owned()),
        };
        match there {
            Ok(true) => {
                tracing::debug!(%key, "remote cache entry already there");
                Some(false)
            }
            Ok(false) => Some(true),
            Err(reason) => {
                self.push_failed(key, &reason);
                None
            }
        }
    }

    /// Pushes the step's filesystem and then its entry.
    async fn push(self: Arc<Self>, key: Digest, record: serde_json::Value) {
        let hex = key.hex();
        let replace = self.shared.broken.contains(&hex);
        if self.wanted(&key).await != Some(true) {
            return;
        }
        let Some(image_id) = record["image_id"].as_str().map(str::to_owned) else {
            return;
        };
        let mut record = record;
        record["image_id"] = serde_json::Value::String(String::new());
        let entry_key = hex.clone();
        let entry_of = move |image: &str| {
            let entry = Entry {
                key: entry_key,
                image: image.to_owned(),
                record,
                created: now_unix(),
                nonce: rand::random(),
            };
            serde_json::to_vec(&entry).expect("entries always serialise")
        };
        let outcome = match &self.backend {
            Backend::Registry(registry) => {
                registry
                    .push(&*self.runtime, &hex, &image_id, entry_of)
                    .await
            }
            Backend::Layout(layout) => {
                push_to_layout(&*self.runtime, layout, &hex, &image_id, replace, entry_of).await
            }
        };
        match outcome {
            Ok(false) => tracing::debug!(%key, "remote cache entry already there"),
            Ok(true) => {
                self.shared.counters.pushed.fetch_add(1, Ordering::Relaxed);
                self.shared.broken.remove(&hex);
                tracing::info!(%key, "remote cache entry pushed");
            }
            Err(reason) => self.push_failed(&key, &reason),
        }
    }

    /// Pushes a path read's entry: its files as layers, its tree in the record.
    async fn push_read(self: Arc<Self>, key: Digest, read: SharedRead) {
        let hex = key.hex();
        let replace = self.shared.broken.contains(&hex);
        if self.wanted(&key).await != Some(true) {
            return;
        }
        let Ok(tree) = serde_json::from_slice::<serde_json::Value>(&read.tree) else {
            return;
        };
        let entry = ReadEntry {
            key: hex.clone(),
            path: read.path,
            tree,
            created: now_unix(),
            nonce: rand::random(),
        };
        let config = serde_json::to_vec(&entry).expect("entries always serialise");
        let outcome = match &self.backend {
            Backend::Registry(registry) => {
                let layers = read
                    .files
                    .into_iter()
                    .map(|(digest, file)| Blob {
                        digest: digest.to_string(),
                        media_type: FILE_MEDIA_TYPE.to_owned(),
                        data: Bytes::from(file),
                    })
                    .collect();
                let config = blob_of(READ_MEDIA_TYPE, config);
                registry
                    .push_entry(&hex, READ_ARTIFACT_TYPE, config, layers)
                    .await
            }
            Backend::Layout(layout) => {
                let layout = layout.clone();
                let hex = hex.clone();
                let files: Vec<Vec<u8>> = read.files.into_iter().map(|(_, file)| file).collect();
                tokio::task::spawn_blocking(move || {
                    layout.put_artifact(
                        &hex,
                        READ_MEDIA_TYPE,
                        READ_ARTIFACT_TYPE,
                        &config,
                        &files,
                        FILE_MEDIA_TYPE,
                        replace,
                    )
                })
                .await
                .map_err(|error| error.to_string())
                .and_then(|written| written.map_err(|error| format!("{error:#}")))
            }
        };
        match outcome {
            Ok(false) => tracing::debug!(%key, "remote cache entry already there"),
            Ok(true) => {
                self.shared
                    .counters
                    .reads_shared
                    .fetch_add(1, Ordering::Relaxed);
                self.shared.broken.remove(&hex);
                tracing::info!(%key, "remote cache path read pushed");
            }
            Err(reason) => self.push_failed(&key, &reason),
        }
    }

    /// One warning for the engine's life; later pushes are still tried.
    fn push_failed(&self, key: &Digest, reason: &str) {
        if !self.push_warned.swap(true, Ordering::SeqCst) {
            tracing::warn!(%key, %reason, "pushing to the remote cache failed; the pipeline is not affected (further push failures are logged at debug level)");
        } else {
            tracing::debug!(%key, %reason, "pushing to the remote cache failed");
        }
    }
}

/// Seconds since the Unix epoch, as entries say when they were pushed.
fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// A suffix no other push uses, for the names an engine gives an image only
/// to save or push it and removes after: engines that share a Docker daemon
/// push the same step's image at the same time, and one engine's removal of a
/// shared name would take it from under the other's save or push.
fn own_name_suffix() -> String {
    static PUSHES: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        PUSHES.fetch_add(1, Ordering::Relaxed)
    )
}

/// Saves the filesystem `image_id` through the runtime and writes it and
/// the entry into the layout; false when another writer got there first
/// (and not `replace`).
async fn push_to_layout(
    runtime: &dyn Runtime,
    layout: &Layout,
    hex: &str,
    image_id: &str,
    replace: bool,
    entry_of: impl FnOnce(&str) -> Vec<u8> + Send + 'static,
) -> Result<bool, String> {
    // A runtime that can name its pulled layers' sources writes only the
    // step's own layers (the Go toolchain image's 350 MB were copied into
    // the directory by every cold run's first push).
    let filesystem = match named_layers(runtime, image_id).await? {
        Some(image) => Filesystem::Layers(image),
        None => {
            // Saved under a name of its own (dockerd saves by name), dropped
            // after; as the runtime holds it (see `RegistryBackend::push`), so
            // that the config, and with Docker the image ID, stay those of the
            // step's image.
            let name = format!("gantry-cache.local/filesystem:{hex}.{}", own_name_suffix());
            let saved = runtime.save_as_is(image_id, &name).await;
            if runtime.image_exists(&name).await == Ok(true) {
                let _ = runtime.remove_images(std::slice::from_ref(&name)).await;
            }
            Filesystem::Saved(saved.map_err(|error| error.to_string())?)
        }
    };
    let (layout, hex) = (layout.clone(), hex.to_owned());
    let written = tokio::task::spawn_blocking(move || {
        layout.put(
            &hex,
            &filesystem,
            ENTRY_MEDIA_TYPE,
            ARTIFACT_TYPE,
            replace,
            entry_of,
        )
    })
    .await
    .map_err(|error| error.to_string())?;
    written.map_err(|error| format!("{error:#}"))
}

/// The runtime's `cache_layers` of `image_id` with every layer named
/// (`name_image_layers`); `None`: the runtime gives none, or a base layer
/// cannot be named, and the caller takes the whole image through the runtime.
async fn named_layers(runtime: &dyn Runtime, image_id: &str) -> Result<Option<CacheImage>, String> {
    let Some(image) = runtime
        .cache_layers(image_id)
        .await
        .map_err(|error| error.to_string())?
    else {
        return Ok(None);
    };
    match name_image_layers(image).await {
        Ok(image) => Ok(Some(image)),
        Err(why) => {
            tracing::debug!(image = %image_id, %why, "taking the whole image through the runtime");
            Ok(None)
        }
    }
}

/// `reference` parsed, with a client for its registry (plain HTTP to a
/// loopback one only) and the Docker configuration's credentials there;
/// `None`: not an image reference.
async fn reader_of(reference: &str) -> Option<(Reference, Client, OciAuth)> {
    let image: Reference = reference.parse().ok()?;
    let host = image.resolve_registry().to_owned();
    let client = registry::client_for(&host, registry::is_loopback(&host));
    let auth = registry::credentials(&host, None).await;
    Some((image, client, auth))
}

/// `image` with its `OfImage` layers as the registry blobs that their
/// image's manifest lists (one manifest read per image); `Err`: why they
/// cannot be named, and the caller saves the whole image instead.
async fn name_image_layers(mut image: CacheImage) -> Result<CacheImage, String> {
    let mut manifests: HashMap<String, (Reference, Vec<OciDescriptor>)> = HashMap::new();
    for layer in &image.layers {
        let CacheLayer::OfImage {
            reference, config, ..
        } = layer
        else {
            continue;
        };
        if manifests.contains_key(reference) {
            continue;
        }
        let (parsed, client, auth) = reader_of(reference)
            .await
            .ok_or_else(|| format!("{reference:?} is not an image reference"))?;
        let (manifest, _) = client
            .pull_image_manifest(&parsed, &auth)
            .await
            .map_err(|error| registry::registry_error(reference, &error, None).to_string())?;
        if manifest.config.digest != *config {
            return Err(format!(
                "{reference} is now another image than the one pulled"
            ));
        }
        manifests.insert(reference.clone(), (parsed, manifest.layers));
    }
    for layer in &mut image.layers {
        let CacheLayer::OfImage {
            reference, index, ..
        } = layer
        else {
            continue;
        };
        let (parsed, layers) = &manifests[reference.as_str()];
        let blob = layers
            .get(*index)
            .ok_or_else(|| format!("{reference} has no layer {index}"))?;
        *layer = CacheLayer::Pulled(PulledLayer {
            repository: format!("{}/{}", parsed.registry(), parsed.repository()),
            digest: blob.digest.clone(),
            size: blob.size.max(0) as u64,
            media_type: blob.media_type.clone(),
        });
    }
    Ok(image)
}

/// The blob `descriptor` of `image`, checked against its digest (by the
/// client, as it downloads) and its size; `Ok(Err(why))`: missing or
/// corrupt; `Err`: the registry failed to answer.
async fn pull_checked(
    client: &Client,
    image: &Reference,
    descriptor: &OciDescriptor,
    password: Option<&str>,
) -> Result<Result<Vec<u8>, &'static str>, String> {
    // The size is the descriptor's word until the bytes are counted.
    let mut blob = Vec::with_capacity(descriptor.size.clamp(0, 64 << 20) as usize);
    if let Err(error) = client.pull_blob(image, descriptor, &mut blob).await {
        if matches!(error, OciDistributionError::DigestError(_)) || is_not_found(&error) {
            return Ok(Err("is missing or does not match its digest"));
        }
        return Err(registry::registry_error(&image.whole(), &error, password).to_string());
    }
    // `pull_blob` refuses bytes that do not hash to the descriptor's digest
    // (a `DigestError`, above): only the size is left to check.
    if blob.len() as i64 != descriptor.size {
        return Ok(Err("does not match its digest"));
    }
    Ok(Ok(blob))
}

/// The blobs of `layers` from the repositories they name, at once, each
/// checked against its digest and size; one client and one authentication
/// per repository, credentials from the Docker configuration, plain HTTP
/// for loopback registries only (as pulls).
async fn fetch_foreign_layers(layers: &[PulledLayer]) -> Result<HashMap<String, Vec<u8>>, String> {
    let mut by_repository: BTreeMap<&str, Vec<&PulledLayer>> = BTreeMap::new();
    for layer in layers {
        by_repository
            .entry(&layer.repository)
            .or_default()
            .push(layer);
    }
    let fetches = by_repository
        .into_iter()
        .map(|(repository, layers)| async move {
            let (image, client, auth) = reader_of(repository)
                .await
                .ok_or_else(|| format!("the cache names {repository:?} as a layer's repository"))?;
            client
                .auth(&image, &auth, oci_client::RegistryOperation::Pull)
                .await
                .map_err(|error| {
                    registry::registry_error(&image.whole(), &error, None).to_string()
                })?;
            let pulls = layers.into_iter().map(|layer| {
                let (client, image) = (&client, &image);
                async move {
                    let descriptor = OciDescriptor {
                        media_type: layer.media_type.clone(),
                        digest: layer.digest.clone(),
                        size: layer.size as i64,
                        ..Default::default()
                    };
                    match pull_checked(client, image, &descriptor, None).await {
                        Ok(Ok(blob)) => Ok((layer.digest.clone(), blob)),
                        Ok(Err(why)) => {
                            Err(format!("layer {} from {repository} {why}", layer.digest))
                        }
                        Err(error) => {
                            Err(format!("layer {} from {repository}: {error}", layer.digest))
                        }
                    }
                }
            });
            futures::future::try_join_all(pulls).await
        });
    let blobs = futures::future::try_join_all(fetches).await?;
    Ok(blobs.into_iter().flatten().collect())
}

#[async_trait]
impl RemoteCache for SharedCache {
    async fn lookup(&self, key: &Digest) -> Option<Vec<u8>> {
        self.inner.lookup(key).await
    }

    fn offer(&self, key: &Digest, record: &[u8], secrets: bool) {
        let Some(record) = self.inner.pushable(key, record, secrets) else {
            return;
        };
        let mut pushes = self
            .pushes
            .lock()
            .expect("the push set's lock is never poisoned");
        // Finished pushes are reaped as new ones start (a long-lived `serve`).
        while pushes.try_join_next().is_some() {}
        pushes.spawn(self.inner.clone().push(*key, record));
    }

    async fn lookup_read(&self, key: &Digest) -> Option<FoundRead> {
        self.inner.lookup_read(key).await
    }

    async fn read_file(&self, key: &Digest, blob: &Digest, size: u64) -> Option<Vec<u8>> {
        self.inner.read_file(key, blob, size).await
    }

    fn offer_read(&self, key: &Digest, read: SharedRead, secrets: bool) {
        if !self.inner.may_push(key, secrets) {
            return;
        }
        let mut pushes = self
            .pushes
            .lock()
            .expect("the push set's lock is never poisoned");
        while pushes.try_join_next().is_some() {}
        pushes.spawn(self.inner.clone().push_read(*key, read));
    }

    async fn flush(&self) {
        let mut pushes = std::mem::take(
            &mut *self
                .pushes
                .lock()
                .expect("the push set's lock is never poisoned"),
        );
        let pending = pushes.len();
        let drained = tokio::time::timeout(FLUSH_TIMEOUT, async {
            while pushes.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                pending,
                left = pushes.len(),
                "gave up waiting for pushes to the remote cache after 5 minutes; their steps stay local"
            );
            pushes.abort_all();
        }
        let counters = &self.inner.shared.counters;
        tracing::info!(
            lookups = counters.lookups.load(Ordering::Relaxed),
            hits = counters.hits.load(Ordering::Relaxed),
            filesystems_fetched = counters.filesystems_fetched.load(Ordering::Relaxed),
            pushed = counters.pushed.load(Ordering::Relaxed),
            reads_asked = counters.reads_asked.load(Ordering::Relaxed),
            reads_found = counters.reads_found.load(Ordering::Relaxed),
            read_files_fetched = counters.read_files_fetched.load(Ordering::Relaxed),
            reads_shared = counters.reads_shared.load(Ordering::Relaxed),
            "remote cache flushed"
        );
    }
}

impl Inner {
    async fn lookup(&self, key: &Digest) -> Option<Vec<u8>> {
        if self.unreachable.load(Ordering::SeqCst) || self.shared.broken.contains(&key.hex()) {
            return None;
        }
        if let Some(found) = self.found.get(key) {
            return Some(found.clone());
        }
        self.shared.counters.lookups.fetch_add(1, Ordering::Relaxed);
        let record = self.answer(self.fetch(key)).await?;
        self.shared.counters.hits.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(%key, "remote cache hit");
        self.found.insert(*key, record.clone());
        Some(record)
    }

    /// The path read shared under `key`, if any (see `lookup`).
    async fn lookup_read(&self, key: &Digest) -> Option<FoundRead> {
        if self.unreachable.load(Ordering::SeqCst) || self.shared.broken.contains(&key.hex()) {
            return None;
        }
        let counters = &self.shared.counters;
        counters.reads_asked.fetch_add(1, Ordering::Relaxed);
        let read = self.answer(self.fetch_read(key)).await?;
        counters.reads_found.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(%key, "remote cache hit (path read)");
        Some(read)
    }

    /// A file of the path read found under `key` (see `lookup_read`); a
    /// missing or corrupt one is reported (and its entry replaced by the
    /// next push), a failing cache is given up on.
    async fn read_file(&self, key: &Digest, blob: &Digest, size: u64) -> Option<Vec<u8>> {
        if self.unreachable.load(Ordering::SeqCst) {
            return None;
        }
        let fetched = self
            .answer(async {
                match self.fetch_read_file(key, blob, size).await? {
                    Ok(file) => Ok(Some(file)),
                    Err(why) => {
                        self.corrupt(key, &why);
                        Ok(None)
                    }
                }
            })
            .await?;
        self.shared
            .counters
            .read_files_fetched
            .fetch_add(1, Ordering::Relaxed);
        tracing::debug!(%key, %blob, "remote cache: a path read's file fetched");
        Some(fetched)
    }

    /// Whether this engine pushes what it made under `key`: not in read
    /// mode, not once the cache failed, and not with secrets attached unless
    /// the MAC key is shared.
    fn may_push(&self, key: &Digest, secrets: bool) -> bool {
        if self.mode == CacheMode::Read || self.unreachable.load(Ordering::SeqCst) {
            return false;
        }
        if secrets && !self.share_secret_steps {
            tracing::debug!(%key, "a step with secrets stays local (the secret MAC key is not shared: GANTRY_CACHE_KEY)");
            return false;
        }
        true
    }

    /// The record to push for `key`, unless this step stays local.
    fn pushable(&self, key: &Digest, record: &[u8], secrets: bool) -> Option<serde_json::Value> {
        if !self.may_push(key, secrets) {
            return None;
        }
        let record = serde_json::from_slice::<serde_json::Value>(record).ok()?;
        if record["mounts"].as_array().is_some_and(|m| !m.is_empty()) {
            tracing::debug!(%key, "a step that wrote to mounted directories stays local");
            return None;
        }
        Some(record)
    }
}

/// The runtime the engine uses with a remote cache: image IDs of filesystems
/// still in the registry are pulled the first time a runtime operation needs
/// them; everything else goes straight through.
struct CachedRuntime {
    inner: Arc<dyn Runtime>,
    shared: Arc<Shared>,
    /// The cache registry's credentials, for pulls of filesystems.
    auth: Option<RegistryAuth>,
    /// The cache registry's client and credentials, for filesystem manifests.
    registry: Option<Arc<Connection>>,
}

/// A placeholder image ID taken apart: the key (hex), where the filesystem
/// is (a repository or `oci-layout:DIR`) and its manifest digest.
fn placeholder_parts(image: &str) -> Option<(&str, &str, &str)> {
    let (key, rest) = image.strip_prefix(PLACEHOLDER)?.split_once('/')?;
    let (place, digest) = rest.rsplit_once('@')?;
    Some((key, place, digest))
}

impl CachedRuntime {
    async fn resolve(&self, image: &str) -> Result<String, RuntimeError> {
        if !image.starts_with(PLACEHOLDER) {
            return Ok(image.to_owned());
        }
        let cell = self
            .shared
            .resolved
            .entry(image.to_owned())
            .or_default()
            .clone();
        let missing = || RuntimeError::ImageMissing {
            image: image.to_owned(),
        };
        let Some((key, place, digest)) = placeholder_parts(image) else {
            return Err(missing());
        };
        let resolved = cell
            .get_or_try_init(|| async {
                // Fetched by an earlier engine: no round trip.
                let local = match place.strip_prefix("oci-layout:") {
                    Some(_) => format!("{LOADED_NAME}:{}", digest.trim_start_matches("sha256:")),
                    None => format!("{place}@{digest}"),
                };
                if let Ok(found) = self.inner.local_image(&local).await {
                    tracing::debug!(%key, image = %found.image_id, "remote cache: step filesystem already here");
                    return Ok(found.image_id);
                }
                let here = match place.strip_prefix("oci-layout:") {
                    Some(dir) => self.loaded_before(Path::new(dir), digest).await,
                    None => self.pushed_from_here(&local, digest).await,
                };
                if let Some(found) = here {
                    tracing::debug!(%key, image = %found, "remote cache: step filesystem already here");
                    return Ok(found);
                }
                let fetched = match place.strip_prefix("oci-layout:") {
                    Some(dir) => self.load(Path::new(dir), digest, &local).await,
                    None => self.inner.pull(&local, self.auth.as_ref()).await,
                };
                match fetched {
                    Ok(pulled) => {
                        self.shared
                            .counters
                            .filesystems_fetched
                            .fetch_add(1, Ordering::Relaxed);
                        tracing::info!(%key, image = %pulled.image_id, "remote cache: step filesystem fetched");
                        Ok(pulled.image_id)
                    }
                    Err(error) => {
                        tracing::warn!(%key, %error, "a remote cache entry's filesystem cannot be fetched; running the step here");
                        self.shared.broken.insert(key.to_owned());
                        Err(missing())
                    }
                }
            })
            .await;
        match resolved {
            Ok(id) => Ok(id.clone()),
            Err(error) => {
                // Forgotten, so that the placeholder is never tried again.
                self.shared.resolved.remove(image);
                Err(error)
            }
        }
    }

    /// The filesystem image `manifest` of the layout in `dir`, when the
    /// runtime has its config already (Docker: an image of that ID, the step
    /// image of the engine that pushed it on this daemon, or a load by an
    /// earlier engine): loading it again would copy every layer for nothing.
    async fn loaded_before(&self, dir: &Path, manifest: &str) -> Option<String> {
        let layout = Layout::open(dir, false).ok()?;
        let manifest = manifest.to_owned();
        let ids = tokio::task::spawn_blocking(move || layout.image_ids_of(&manifest))
            .await
            .ok()?
            .ok()?;
        for id in ids {
            if let Ok(found) = self.inner.local_image(&id).await {
                if found.image_id == id {
                    return Some(found.image_id);
                }
            }
        }
        None
    }

    /// The image the registry's filesystem manifest `reference` (with
    /// `digest`) names by its runtime ID, when this runtime holds it: pushed
    /// from this daemon by `push_layers`, whose tars dockerd would not know.
    async fn pushed_from_here(&self, reference: &str, digest: &str) -> Option<String> {
        let (client, auth) = self.registry.as_ref()?.get().await;
        let image: Reference = reference.parse().ok()?;
        let (manifest, _) = client
            .pull_manifest_raw(&image, auth, &[MANIFEST_MEDIA_TYPE])
            .await
            .ok()?;
        if format!("sha256:{}", hex::encode(Sha256::digest(&manifest))) != digest {
            return None;
        }
        let manifest: serde_json::Value = serde_json::from_slice(&manifest).ok()?;
        let id = manifest["annotations"][RUNTIME_ID_ANNOTATION].as_str()?;
        sha256_digest(id)?;
        let found = self.inner.local_image(id).await.ok()?;
        (found.image_id == id).then_some(found.image_id)
    }

    /// Loads the filesystem image `manifest` of the layout in `dir` into the
    /// runtime, named `name`.
    async fn load(
        &self,
        dir: &Path,
        manifest: &str,
        name: &str,
    ) -> Result<PulledImage, RuntimeError> {
        let failed = |reason: String| RuntimeError::Failed {
            action: "reading a cached filesystem".to_owned(),
            reason,
        };
        let layout = Layout::open(dir, false).map_err(|error| failed(format!("{error:#}")))?;
        let foreign = {
            let (layout, manifest) = (layout.clone(), manifest.to_owned());
            tokio::task::spawn_blocking(move || layout.foreign_layers(&manifest))
                .await
                .map_err(|error| failed(error.to_string()))?
                .map_err(|fault| failed(fault_text(&fault).to_owned()))?
        };
        let fetched = fetch_foreign_layers(&foreign).await.map_err(failed)?;
        let (manifest, name) = (manifest.to_owned(), name.to_owned());
        let tarball =
            tokio::task::spawn_blocking(move || layout.image_tarball(&manifest, &name, &fetched))
                .await
                .map_err(|error| failed(error.to_string()))?
                .map_err(|fault| failed(fault_text(&fault).to_owned()))?;
        self.inner.load_image(Bytes::from(tarball)).await
    }

    async fn rootfs(&self, rootfs: &RootfsSpec) -> Result<RootfsSpec, RuntimeError> {
        let mut rootfs = rootfs.clone();
        if let Some(image) = &rootfs.image_id {
            rootfs.image_id = Some(self.resolve(image).await?);
        }
        Ok(rootfs)
    }
}

/// Every method of `Runtime` is forwarded, those with a default too (a
/// default here would refuse services and terminals behind `--cache`).
#[async_trait]
impl Runtime for CachedRuntime {
    async fn pull(
        &self,
        reference: &str,
        auth: Option<&RegistryAuth>,
    ) -> Result<PulledImage, RuntimeError> {
        self.inner.pull(reference, auth).await
    }

    async fn exec(&self, mut spec: ExecSpec) -> Result<ExecOutput, RuntimeError> {
        spec.rootfs = self.rootfs(&spec.rootfs).await?;
        self.inner.exec(spec).await
    }

    async fn read_path(&self, rootfs: &RootfsSpec, path: &str) -> Result<Bytes, RuntimeError> {
        let rootfs = self.rootfs(rootfs).await?;
        self.inner.read_path(&rootfs, path).await
    }

    async fn build_image(
        &self,
        rootfs: &RootfsSpec,
        config: &ImageConfig,
        tag: &str,
    ) -> Result<String, RuntimeError> {
        let rootfs = self.rootfs(rootfs).await?;
        self.inner.build_image(&rootfs, config, tag).await
    }

    async fn push(
        &self,
        image_id: &str,
        reference: &str,
        auth: Option<&RegistryAuth>,
    ) -> Result<String, RuntimeError> {
        let image_id = self.resolve(image_id).await?;
        self.inner.push(&image_id, reference, auth).await
    }

    async fn push_as_is(
        &self,
        image_id: &str,
        reference: &str,
        auth: Option<&RegistryAuth>,
    ) -> Result<String, RuntimeError> {
        let image_id = self.resolve(image_id).await?;
        self.inner.push_as_is(&image_id, reference, auth).await
    }

    async fn save_image(&self, image_id: &str, reference: &str) -> Result<Bytes, RuntimeError> {
        let image_id = self.resolve(image_id).await?;
        self.inner.save_image(&image_id, reference).await
    }

    async fn save_as_is(&self, image_id: &str, reference: &str) -> Result<Bytes, RuntimeError> {
        let image_id = self.resolve(image_id).await?;
        self.inner.save_as_is(&image_id, reference).await
    }

    async fn cache_layers(&self, image_id: &str) -> Result<Option<CacheImage>, RuntimeError> {
        let image_id = self.resolve(image_id).await?;
        self.inner.cache_layers(&image_id).await
    }

    fn cache_pushes_as_is(&self) -> bool {
        self.inner.cache_pushes_as_is()
    }

    async fn load_image(&self, tarball: Bytes) -> Result<PulledImage, RuntimeError> {
        self.inner.load_image(tarball).await
    }

    async fn rename_image(&self, from: &str, to: &str) -> Result<(), RuntimeError> {
        self.inner.rename_image(from, to).await
    }

    async fn terminal(&self, mut spec: ExecSpec, io: TerminalIo) -> Result<i64, RuntimeError> {
        spec.rootfs = self.rootfs(&spec.rootfs).await?;
        self.inner.terminal(spec, io).await
    }

    fn check_services(&self) -> Result<(), RuntimeError> {
        self.inner.check_services()
    }

    async fn start_container(&self, mut spec: ExecSpec) -> Result<StartedContainer, RuntimeError> {
        spec.rootfs = self.rootfs(&spec.rootfs).await?;
        self.inner.start_container(spec).await
    }

    async fn listen_on_step_network(
        &self,
        ports: &[u16],
    ) -> Result<StepNetworkListener, RuntimeError> {
        self.inner.listen_on_step_network(ports).await
    }

    async fn shutdown(&self) {
        self.inner.shutdown().await;
    }

    async fn image_exists(&self, image_id: &str) -> Result<bool, RuntimeError> {
        if image_id.starts_with(PLACEHOLDER) {
            return Ok(placeholder_parts(image_id)
                .is_some_and(|(key, _, _)| !self.shared.broken.contains(key)));
        }
        self.inner.image_exists(image_id).await
    }

    async fn remove_images(&self, images: &[String]) -> Result<(), RuntimeError> {
        let images: Vec<String> = images
            .iter()
            .filter(|image| !image.starts_with(PLACEHOLDER))
            .cloned()
            .collect();
        self.inner.remove_images(&images).await
    }

    async fn remove_orphans(&self) -> Result<usize, RuntimeError> {
        self.inner.remove_orphans().await
    }

    async fn local_image(&self, reference: &str) -> Result<PulledImage, RuntimeError> {
        self.inner.local_image(reference).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_auth_takes_the_password_from_the_environment_only() {
        std::env::set_var("GANTRY_TEST_CACHE_AUTH_PASSWORD", "pw-from-env");
        let auth = parse_auth("ci:env:GANTRY_TEST_CACHE_AUTH_PASSWORD", "r.example").unwrap();
        assert_eq!(
            (auth.username.as_str(), auth.password.as_str()),
            ("ci", "pw-from-env")
        );
        assert!(!format!("{auth:?}").contains("pw-from-env"));
        for (bad, says) in [
            ("ci", "expected USER:env:VAR"),
            ("ci:hunter2", "expected USER:env:VAR"),
            (":env:X", "no user name"),
            ("ci:env:GANTRY_TEST_CACHE_AUTH_UNSET", "is not set or empty"),
        ] {
            let message = parse_auth(bad, "r.example").unwrap_err().to_string();
            assert!(message.contains(says), "{bad}: {message}");
            assert!(!message.contains("hunter2"), "{message}");
        }
    }

    #[test]
    fn repositories_parse_and_bad_ones_are_named() {
        assert_eq!(
            parse_repository("127.0.0.1:5000/team/cache").unwrap(),
            ("127.0.0.1:5000/team/cache".into(), "127.0.0.1:5000".into())
        );
        assert_eq!(parse_repository("ghcr.io/org/cache").unwrap().1, "ghcr.io");
        for (bad, says) in [
            ("cache", "no repository path"),
            ("team/cache", "not a registry host"),
            ("http://127.0.0.1:5000/cache", "leave out the scheme"),
            ("127.0.0.1:5000/cache:v1", "without a tag"),
            ("127.0.0.1:5000/cache@sha256:00", "without a tag"),
            ("127.0.0.1:5000/Team", "not a repository path"),
        ] {
            let message = parse_repository(bad).unwrap_err().to_string();
            assert!(message.contains(says), "{bad}: {message}");
        }
    }

    #[test]
    fn layout_directories_are_made_absolute_and_take_no_registry_flags() {
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            Location::parse("oci-layout:.gantry-cache", false, None).unwrap(),
            Location::Layout(cwd.join(".gantry-cache"))
        );
        assert!(matches!(
            Location::parse("127.0.0.1:5000/team/cache", false, None).unwrap(),
            Location::Registry(_)
        ));
        let file = tempfile::NamedTempFile::new().unwrap();
        for (bad, insecure, auth, says) in [
            ("oci-layout:".to_owned(), false, None, "no directory"),
            (
                "oci-layout:dir".to_owned(),
                true,
                None,
                "are for registries",
            ),
            (
                "oci-layout:dir".to_owned(),
                false,
                Some("u:env:X"),
                "are for registries",
            ),
            (
                format!("oci-layout:{}", file.path().display()),
                false,
                None,
                "is not a directory",
            ),
        ] {
            let message = Location::parse(&bad, insecure, auth)
                .unwrap_err()
                .to_string();
            assert!(message.contains(says), "{bad}: {message}");
        }
    }
}
