//! Choosing and starting the container runtime: `--runtime=auto|native|docker`
//! (`GANTRY_RUNTIME`). `auto` takes the native runtime (crun/runc on overlayfs
//! snapshots, no daemon) when this process can run it (Linux, root, overlayfs, cgroups,
//! crun or runc installed), else Docker, which stays fully supported (macOS, Docker
//! Desktop, a remote `DOCKER_HOST`).

use std::sync::Arc;

use anyhow::{bail, Context as _, Result};
use gantry_core::runtime::Runtime;
use gantry_store::{Bucket, StateDir};

/// The runtime asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub(crate) enum RuntimeChoice {
    #[default]
    Auto,
    Native,
    Docker,
}

impl RuntimeChoice {
    /// `--runtime` when given, else `GANTRY_RUNTIME`, else `auto`.
    pub(crate) fn resolve(flag: Option<Self>) -> Result<Self> {
        if let Some(choice) = flag {
            return Ok(choice);
        }
        match std::env::var(crate::env::RUNTIME)
            .ok()
            .filter(|v| !v.is_empty())
        {
            None => Ok(Self::Auto),
            Some(value) => <Self as clap::ValueEnum>::from_str(&value, true).map_err(|_| {
                anyhow::anyhow!(
                    "{}={value:?} is not a runtime: use auto, native or docker",
                    crate::env::RUNTIME
                )
            }),
        }
    }

    /// `auto` settled: native when it can run here.
    pub(crate) fn settle(self) -> Result<Settled> {
        match self {
            Self::Docker => Ok(Settled::Docker),
            Self::Native => match gantry_native::unavailable_reason() {
                None => Ok(Settled::Native),
                Some(reason) => {
                    bail!("the native runtime cannot run here: {reason}; use --runtime=docker")
                }
            },
            Self::Auto => match gantry_native::unavailable_reason() {
                None => Ok(Settled::Native),
                Some(reason) => {
                    tracing::info!(%reason, "using Docker: the native runtime cannot run here");
                    Ok(Settled::Docker)
                }
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Settled {
    Native,
    Docker,
}

impl Settled {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Native => "native",
            Self::Docker => "docker",
        }
    }
}

/// The native runtime's options from the environment; its snapshots go in the state
/// directory's snapshot bucket.
fn native_options(state: &StateDir) -> Result<gantry_native::NativeOptions> {
    let mut options = gantry_native::NativeOptions::new(state.bucket(Bucket::Snapshots));
    options.oci_runtime = std::env::var(crate::env::OCI_RUNTIME)
        .ok()
        .filter(|v| !v.is_empty());
    options.network = match std::env::var(crate::env::NATIVE_NETWORK).ok().as_deref() {
        None | Some("" | "bridge") => gantry_native::NetworkMode::Bridge,
        Some("host") => gantry_native::NetworkMode::Host,
        Some(other) => bail!(
            "{}={other:?} is not a network mode: use bridge or host",
            crate::env::NATIVE_NETWORK
        ),
    };
    options.source_date_epoch = source_date_epoch()?;
    Ok(options)
}

/// `SOURCE_DATE_EPOCH`: when both runtimes date the images they publish and
/// export, and the latest file time in their layers (0 when unset).
fn source_date_epoch() -> Result<u64> {
    match std::env::var(crate::env::SOURCE_DATE_EPOCH)
        .ok()
        .filter(|v| !v.is_empty())
    {
        None => Ok(0),
        Some(value) => value.trim().parse().with_context(|| {
            format!(
                "{}={value:?} is not a number of seconds",
                crate::env::SOURCE_DATE_EPOCH
            )
        }),
    }
}

/// Starts the chosen runtime and cleans up after engines that died.
pub(crate) async fn start(choice: Settled, state: &StateDir) -> Result<Arc<dyn Runtime>> {
    let runtime: Arc<dyn Runtime> = match choice {
        Settled::Native => Arc::new(
            gantry_native::NativeRuntime::start(native_options(state)?)
                .await
                .context("while starting the native runtime")?,
        ),
        Settled::Docker => Arc::new(
            gantry_docker::DockerRuntime::connect()
                .await
                .context("while connecting to Docker")?
                .with_source_date_epoch(source_date_epoch()?)
                // Made when first needed; named like every scratch entry
                // (`<pid>-…`), so a dead engine's goes with the rest of its scratch.
                .with_layer_dir(state.bucket(Bucket::Scratch).join(format!(
                    "{}-{:016x}-docker-layers",
                    std::process::id(),
                    rand::random::<u64>()
                ))),
        ),
    };
    match runtime.remove_orphans().await {
        Ok(0) => {}
        Ok(count) => tracing::info!(count, "removed containers left by a stopped engine"),
        Err(error) => tracing::warn!(%error, "could not clean up orphaned containers"),
    }
    Ok(runtime)
}
