//! Building an engine: Docker runtime, on-disk store, secret key.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, Result};
use gantry_core::runtime::Runtime as _;
use gantry_core::{Engine, EngineOptions};
use gantry_docker::DockerRuntime;
use gantry_store::DiskStore;

/// Options every engine-hosting command shares.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct EngineArgs {
    /// Directory for the persistent cache [env: GANTRY_STATE_DIR] [default: ~/.cache/gantry]
    #[arg(long, value_name = "DIR")]
    pub(crate) state_dir: Option<PathBuf>,
    /// How many containers may run at once
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub(crate) max_parallel: usize,
}

impl EngineArgs {
    pub(crate) fn state_dir(&self) -> PathBuf {
        self.state_dir
            .clone()
            .or_else(|| {
                std::env::var_os(crate::env::STATE_DIR)
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from)
            })
            .unwrap_or_else(crate::env::default_state_dir)
    }
}

/// Reads the key that MACs secret values in cache keys, creating it (mode
/// 0600) on first use. It is not itself a secret value, but keeping it
/// private stops anyone from testing guesses against cache keys.
fn secret_key(state_dir: &Path) -> Result<[u8; 32]> {
    let path = state_dir.join("secret-mac.key");
    if let Ok(bytes) = fs::read(&path) {
        if let Ok(key) = <[u8; 32]>::try_from(bytes.as_slice()) {
            return Ok(key);
        }
    }
    let key: [u8; 32] = rand::random();
    let tmp = state_dir.join(format!(".secret-mac.key.{}", std::process::id()));
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("while creating {}", tmp.display()))?;
    file.write_all(&key)?;
    fs::rename(&tmp, &path).with_context(|| format!("while writing {}", path.display()))?;
    Ok(key)
}

/// Connects to Docker, cleans up after engines that died, opens the store.
pub(crate) async fn start(args: &EngineArgs) -> Result<Arc<Engine>> {
    let state_dir = args.state_dir();
    fs::create_dir_all(&state_dir)
        .with_context(|| format!("while creating the state directory {}", state_dir.display()))?;
    fs::set_permissions(&state_dir, fs::Permissions::from_mode(0o700)).ok();
    let runtime = DockerRuntime::connect()
        .await
        .context("while connecting to Docker")?;
    match runtime.remove_orphans().await {
        Ok(0) => {}
        Ok(count) => tracing::info!(count, "removed containers left by a stopped engine"),
        Err(error) => tracing::warn!(%error, "could not clean up orphaned containers"),
    }
    let store = DiskStore::open(state_dir.join("store"))
        .with_context(|| format!("while opening the cache in {}", state_dir.display()))?;
    let options = EngineOptions {
        secret_key: secret_key(&state_dir)?,
        state_dir,
        max_parallel: args.max_parallel,
    };
    Ok(Arc::new(Engine::new(
        Arc::new(runtime),
        Arc::new(store),
        options,
    )))
}
