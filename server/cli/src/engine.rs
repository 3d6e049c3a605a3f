//! Building an engine: Docker runtime, the state directory's store, secret key,
//! the network client for Git and HTTP sources.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use gantry_core::runtime::Runtime as _;
use gantry_core::{Engine, EngineOptions};
use gantry_docker::DockerRuntime;
use gantry_remote::HostRemote;
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

/// Connects to Docker, cleans up after engines that died, opens the store.
pub(crate) async fn start(args: &EngineArgs) -> Result<Arc<Engine>> {
    let state_dir = args.state_dir();
    let runtime = DockerRuntime::connect()
        .await
        .context("while connecting to Docker")?;
    match runtime.remove_orphans().await {
        Ok(0) => {}
        Ok(count) => tracing::info!(count, "removed containers left by a stopped engine"),
        Err(error) => tracing::warn!(%error, "could not clean up orphaned containers"),
    }
    let store = DiskStore::open(&state_dir)
        .with_context(|| format!("while opening the state directory {}", state_dir.display()))?;
    let options = EngineOptions {
        secret_key: store
            .state_dir()
            .secret_key()
            .context("while reading the secret MAC key")?,
        max_parallel: args.max_parallel,
    };
    let remote = HostRemote::new().context("while setting up Git and HTTP sources")?;
    Ok(Arc::new(
        Engine::new(Arc::new(runtime), Arc::new(store), options).with_remote(Arc::new(remote)),
    ))
}
