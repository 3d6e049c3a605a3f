//! Building an engine: container runtime (see `runtime`), the state directory's store,
//! secret key, the network client for Git and HTTP sources, and the process's open
//! files limit.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context as _, Result};
use gantry_core::{Engine, EngineOptions};
use gantry_remote::HostRemote;
use gantry_store::DiskStore;
use rustix::process::{getrlimit, setrlimit, Resource};

/// Options every engine-hosting command shares.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct EngineArgs {
    /// Directory for the persistent cache [env: GANTRY_STATE_DIR] [default: ~/.cache/gantry]
    #[arg(long, value_name = "DIR")]
    pub(crate) state_dir: Option<PathBuf>,
    /// How many containers may run at once
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub(crate) max_parallel: usize,
    /// Container runtime: auto (native when it can run here, else Docker), native or docker [env: GANTRY_RUNTIME]
    #[arg(long, value_enum)]
    pub(crate) runtime: Option<crate::runtime::RuntimeChoice>,
    #[command(flatten)]
    pub(crate) cache: crate::cache::CacheArgs,
    /// Keep the local cache's records and blobs under SIZE (e.g. 10GB), evicting the
    /// least recently used when a session ends (and every 5 minutes while serving) [env: GANTRY_CACHE_MAX_SIZE]
    #[arg(long, value_name = "SIZE")]
    pub(crate) cache_max_size: Option<String>,
}

impl EngineArgs {
    pub(crate) fn state_dir(&self) -> PathBuf {
        resolve_state_dir(self.state_dir.as_ref())
    }

    /// `--cache-max-size`, else `GANTRY_CACHE_MAX_SIZE`, in bytes; `None`: no limit.
    pub(crate) fn cache_max_size(&self) -> Result<Option<u64>> {
        let text = self.cache_max_size.clone().or_else(|| {
            std::env::var(crate::env::CACHE_MAX_SIZE)
                .ok()
                .filter(|v| !v.is_empty())
        });
        text.map(|text| {
            crate::units::parse_size(&text)
                .map_err(anyhow::Error::msg)
                .with_context(|| format!("while reading the cache size limit {text:?}"))
        })
        .transpose()
    }
}

/// `--state-dir` when given, else `GANTRY_STATE_DIR`, else the default.
pub(crate) fn resolve_state_dir(flag: Option<&PathBuf>) -> PathBuf {
    flag.cloned()
        .or_else(|| {
            std::env::var_os(crate::env::STATE_DIR)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(crate::env::default_state_dir)
}

/// The local cache's size limit of this process's engine (one per process),
/// set when it starts, applied by `finish` and `gantry serve`'s timer.
#[derive(Debug, Clone)]
pub(crate) struct SizeLimit {
    root: PathBuf,
    max_bytes: u64,
    runtime: Option<crate::runtime::RuntimeChoice>,
}

static SIZE_LIMIT: std::sync::OnceLock<SizeLimit> = std::sync::OnceLock::new();

/// Evicts the least recently used records (and their images) until the local
/// cache fits in the engine's `--cache-max-size`; nothing without one. With
/// `session_over`, what this engine used is no longer protected (it is
/// stopping); records other live engines used always are. Failures only warn.
pub(crate) async fn enforce_size_limit(session_over: bool) {
    let Some(limit) = SIZE_LIMIT.get() else {
        return;
    };
    let keep = gantry_store::Keep::up_to(limit.max_bytes);
    let options = crate::prune::Options {
        dry_run: false,
        own_session_over: session_over,
    };
    match crate::prune::prune_local(&limit.root, limit.runtime, keep, options).await {
        Ok(report) if report.records > 0 => tracing::info!(
            records = report.records,
            bytes = report.bytes,
            images = report.images.len(),
            left = report.left,
            max = limit.max_bytes,
            "evicted least recently used cache entries"
        ),
        Ok(report) => tracing::debug!(
            left = report.left,
            max = limit.max_bytes,
            "cache within its size limit"
        ),
        Err(error) => {
            tracing::warn!(error = %format!("{error:#}"), "cannot keep the cache under its size limit")
        }
    }
}

/// What every engine command does as its session ends: waits for remote
/// cache pushes, then applies the size limit.
pub(crate) async fn finish(engine: &Engine) {
    engine.flush_remote_cache().await;
    enforce_size_limit(true).await;
}

/// Opens the store, starts the container runtime (which cleans up after engines
/// that died).
pub(crate) async fn start(args: &EngineArgs) -> Result<Arc<Engine>> {
    let store = open_store(args)?;
    start_with(args, store).await
}

/// Opens (creating, migrating, sweeping) the state directory.
pub(crate) fn open_store(args: &EngineArgs) -> Result<DiskStore> {
    let state_dir = args.state_dir();
    DiskStore::open(&state_dir)
        .and_then(DiskStore::for_engine)
        .with_context(|| format!("while opening the state directory {}", state_dir.display()))
}

/// `start` on a store already opened (`gantry serve` claims it first): starts the
/// container runtime (which cleans up after engines that died).
pub(crate) async fn start_with(args: &EngineArgs, store: DiskStore) -> Result<Arc<Engine>> {
    start_serving(args, store).await.map(|(engine, _)| engine)
}

/// `start_with`, also saying which runtime `auto` settled on (for `GET /engine`).
pub(crate) async fn start_serving(
    args: &EngineArgs,
    store: DiskStore,
) -> Result<(Arc<Engine>, crate::runtime::Settled)> {
    let shared_key = shared_secret_key()?;
    let cache = args.cache.config(shared_key.is_some())?;
    if let Some(max_bytes) = args.cache_max_size()? {
        let _ = SIZE_LIMIT.set(SizeLimit {
            root: args.state_dir(),
            max_bytes,
            runtime: args.runtime,
        });
    }
    let choice = crate::runtime::RuntimeChoice::resolve(args.runtime)?.settle()?;
    let mut runtime = crate::runtime::start(choice, store.state_dir()).await?;
    let secret_key = match shared_key {
        Some(key) => key,
        None => store
            .state_dir()
            .secret_key()
            .context("while reading the secret MAC key")?,
    };
    let options = EngineOptions {
        secret_key,
        max_parallel: args.max_parallel,
    };
    let remote = HostRemote::new();
    let mut remote_cache = None;
    if let Some(config) = cache {
        let (cache, wrapped) = crate::cache::open(config, runtime).await?;
        runtime = wrapped;
        remote_cache = Some(cache);
    }
    let mut engine = Engine::new(runtime, Arc::new(store), options).with_remote(Arc::new(remote));
    if let Some(cache) = remote_cache {
        engine = engine.with_remote_cache(cache);
    }
    Ok((Arc::new(engine), choice))
}

/// The secret MAC key machines share to share the cached steps that use secrets:
/// `GANTRY_CACHE_KEY` (the key text) or `GANTRY_CACHE_KEY_FILE` (a file holding it),
/// at least 32 characters (e.g. `openssl rand -hex 32`). `None`: each state directory
/// keeps its own (`secret-mac.key`), and steps with secrets stay out of the remote cache.
fn shared_secret_key() -> Result<Option<[u8; 32]>> {
    use sha2::Digest as _;
    let text = match std::env::var(crate::env::CACHE_KEY)
        .ok()
        .filter(|v| !v.is_empty())
    {
        Some(text) => text,
        None => match std::env::var_os(crate::env::CACHE_KEY_FILE).filter(|v| !v.is_empty()) {
            None => return Ok(None),
            Some(path) => std::fs::read_to_string(&path)
                .with_context(|| {
                    format!(
                        "while reading {}={}",
                        crate::env::CACHE_KEY_FILE,
                        PathBuf::from(&path).display()
                    )
                })?
                .trim()
                .to_owned(),
        },
    };
    if text.chars().count() < 32 {
        bail!(
            "the shared cache key ({} or {}) has {} characters; it needs at least 32 (e.g. `openssl rand -hex 32`): anyone who can guess it can test guesses of secret values against cache keys",
            crate::env::CACHE_KEY,
            crate::env::CACHE_KEY_FILE,
            text.chars().count()
        );
    }
    let mut hasher = sha2::Sha256::new();
    hasher.update(b"gantry shared secret MAC key v1\0");
    hasher.update(text.as_bytes());
    Ok(Some(hasher.finalize().into()))
}

/// Stops the engine's services and removes what its runtime set up (the step
/// network), bounded so that a stuck daemon cannot hold the exit forever.
pub(crate) async fn stop(engine: &Engine) {
    if tokio::time::timeout(std::time::Duration::from_secs(30), engine.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "services were still stopping after 30s; leaving them to the next engine's cleanup"
        );
    }
}

/// Raises the soft limit on open files to the hard limit. Every client
/// connection holds a descriptor, and the common soft limit (1024) is low
/// for an engine many jobs talk to at once; the hard limit is what the
/// administrator allows. Best effort: a failure only logs.
pub(crate) fn raise_fd_limit() {
    let limit = getrlimit(Resource::Nofile);
    if limit.current == limit.maximum {
        return;
    }
    let raised = rustix::process::Rlimit {
        current: limit.maximum,
        maximum: limit.maximum,
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => {
            tracing::debug!(from = ?limit.current, to = ?limit.maximum, "raised the open files limit")
        }
        Err(error) => tracing::warn!(%error, "cannot raise the open files limit"),
    }
}
