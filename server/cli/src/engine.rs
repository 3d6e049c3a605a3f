//! Building an engine: container runtime (see `runtime`), the state directory's store,
//! secret key, the network client for Git and HTTP sources, and the process's open
//! files limit.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, Result};
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
        .with_context(|| format!("while opening the state directory {}", state_dir.display()))
}

/// `start` on a store already opened (`gantry serve` claims it first): starts the
/// container runtime (which cleans up after engines that died).
pub(crate) async fn start_with(args: &EngineArgs, store: DiskStore) -> Result<Arc<Engine>> {
    let choice = crate::runtime::RuntimeChoice::resolve(args.runtime)?.settle()?;
    let runtime = crate::runtime::start(choice, store.state_dir()).await?;
    let options = EngineOptions {
        secret_key: store
            .state_dir()
            .secret_key()
            .context("while reading the secret MAC key")?,
        max_parallel: args.max_parallel,
    };
    let remote = HostRemote::new();
    Ok(Arc::new(
        Engine::new(runtime, Arc::new(store), options).with_remote(Arc::new(remote)),
    ))
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
