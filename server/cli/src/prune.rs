//! Pruning the local store: `gantry cache prune` and its older spelling
//! `gantry prune`, and the engines' own size limit (`--cache-max-size`).
//! The state directory (`gantry_store::StateDir`) says what it holds, what
//! each record costs, when it was last used, which engines are live and
//! which images the removed records refer to; this module only asks, removes
//! the images and reports.
//!
//! Safe against running engines on the same state directory: a prune that
//! selects records (`--older-than`, `--max-size`) never removes a record a
//! live engine used (one used at or after the oldest live lease began), and
//! removes no image that no record names while an engine lives (a step may
//! have committed it and not written its record yet). A full prune is
//! refused while an engine lives.

use std::collections::HashSet;
use std::path::Path;

use anyhow::{bail, Context as _, Result};
use gantry_core::runtime::Runtime as _;
use gantry_core::store::RecordKind;
use gantry_docker::DockerRuntime;
use gantry_store::{Bucket, Keep, PrunePlan, StateDir};

use crate::engine::EngineArgs;
use crate::runtime::{RuntimeChoice, Settled};

/// `gantry prune`: `gantry cache prune --all`, or `--max-size` as `--keep-storage`.
#[derive(Debug, clap::Args)]
pub(crate) struct PruneArgs {
    /// Keep this much cache (e.g. 10GB, 500MB), least recently used removed
    /// first; remove everything when absent
    #[arg(long, value_name = "SIZE")]
    keep_storage: Option<String>,
    #[command(flatten)]
    engine: EngineArgs,
}

pub(crate) async fn run(args: PruneArgs) -> Result<()> {
    let keep = match &args.keep_storage {
        None => Keep::Nothing,
        Some(size) => Keep::up_to(crate::units::parse_size(size).map_err(anyhow::Error::msg)?),
    };
    let root = args.engine.state_dir();
    let report = prune_local(&root, args.engine.runtime, keep, Options::default()).await?;
    eprintln!("{}", report.summary(&root));
    Ok(())
}

/// How a prune runs.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Options {
    /// Only plan: remove nothing.
    pub(crate) dry_run: bool,
    /// This process's own engine lease does not protect what it used (its
    /// session is over: an engine evicting as it stops).
    pub(crate) own_session_over: bool,
}

/// What a prune removed (or, dry, would remove).
#[derive(Debug)]
pub(crate) struct Report {
    pub(crate) plan: Option<PrunePlan>,
    pub(crate) records: usize,
    pub(crate) bytes: u64,
    pub(crate) images: Vec<String>,
    /// Records and blobs left (what `--max-size` bounds).
    pub(crate) left: u64,
    pub(crate) dry_run: bool,
}

impl Report {
    pub(crate) fn summary(&self, root: &Path) -> String {
        if self.dry_run {
            return format!(
                "gantry: would remove {} cached records and {} images, freeing {} bytes ({}); {} would then hold {} bytes of records and blobs",
                self.records,
                self.images.len(),
                self.bytes,
                crate::units::format_size(self.bytes),
                root.display(),
                self.left
            );
        }
        format!(
            "gantry: removed {} cached records and {} images, freeing {} bytes; {} now holds {} bytes",
            self.records,
            self.images.len(),
            self.bytes,
            root.display(),
            self.left
        )
    }
}

/// Records and blobs: what a size limit bounds.
pub(crate) fn held_bytes(state: &StateDir) -> Result<u64> {
    let usage = state
        .usage()
        .context("while measuring the state directory")?;
    let mut held = usage.of(Bucket::Blobs).bytes;
    for kind in RecordKind::ALL {
        held += usage.of(Bucket::Records(kind)).bytes;
    }
    Ok(held)
}

/// Prunes the state directory at `root` (see the module docs).
pub(crate) async fn prune_local(
    root: &Path,
    runtime: Option<RuntimeChoice>,
    keep: Keep,
    options: Options,
) -> Result<Report> {
    if !root.exists() {
        return Ok(Report {
            plan: None,
            records: 0,
            bytes: 0,
            images: Vec::new(),
            left: 0,
            dry_run: options.dry_run,
        });
    }
    let state = StateDir::open(root)
        .with_context(|| format!("while opening the state directory {}", root.display()))?;
    let mut live = state
        .live_engines()
        .context("while listing the engines using the state directory")?;
    if options.own_session_over {
        live.retain(|engine| engine.pid != std::process::id());
    }
    let keep = match keep {
        Keep::Nothing => {
            if let Some(engine) = live.first() {
                bail!(
                    "an engine (pid {}) is using {}: stop it before removing everything, or prune with --older-than or --max-size, which keep what running engines use",
                    engine.pid,
                    root.display()
                );
            }
            Keep::Nothing
        }
        Keep::Records(mut policy) => {
            policy.used_since_kept = live.first().map(|engine| engine.since);
            Keep::Records(policy)
        }
    };
    let plan = state
        .plan_prune(keep)
        .context("while listing what the state directory holds")?;
    let planned_bytes: u64 = plan.records().iter().map(|record| record.bytes).sum();
    if options.dry_run {
        let held = held_bytes(&state)?;
        return Ok(Report {
            records: plan.records().len(),
            bytes: planned_bytes,
            images: plan.images(),
            left: held.saturating_sub(planned_bytes),
            plan: Some(plan),
            dry_run: true,
        });
    }
    let choice = RuntimeChoice::resolve(runtime)?.settle()?;
    let images = remove_images(&state, &plan, choice, !live.is_empty()).await?;
    let pruned = state
        .prune(&plan)
        .context("while removing cached records")?;
    Ok(Report {
        records: pruned.records,
        bytes: pruned.bytes,
        images,
        left: held_bytes(&state)?,
        plan: Some(plan),
        dry_run: false,
    })
}

/// Removes the images a plan's records name (and, with no engine live, the
/// state directory's images no record names), before the records: a record
/// removed before its image would leave the image unreachable by any later
/// prune. Only this state directory's images go (its own repositories, see
/// `ImageNames`): another state directory's on the same daemon stay intact,
/// even an image both tagged. The native runtime's images are in the state
/// directory's own snapshot bucket.
async fn remove_images(
    state: &StateDir,
    plan: &PrunePlan,
    choice: Settled,
    engines_live: bool,
) -> Result<Vec<String>> {
    let names = state.image_names();
    let repos = [names.step_repo(), names.built_repo()];
    let tagged_if_idle = |tagged: Vec<String>| if engines_live { Vec::new() } else { tagged };
    Ok(match choice {
        Settled::Native => {
            let snapshots = state.bucket(Bucket::Snapshots);
            let tagged = tagged_if_idle(gantry_native::tags_in(&snapshots, &repos));
            let images = images_to_remove(state, plan, &tagged)?;
            if !images.is_empty() {
                gantry_native::remove_images_in(&snapshots, &images)
                    .context("while removing gantry's snapshots")?;
            }
            images
        }
        Settled::Docker => match DockerRuntime::connect().await {
            Ok(runtime) => {
                let tagged = if engines_live {
                    Vec::new()
                } else {
                    runtime
                        .tags_in(&repos)
                        .await
                        .context("while listing this state directory's images")?
                };
                let images = images_to_remove(state, plan, &tagged)?;
                if !images.is_empty() {
                    runtime
                        .remove_images(&images)
                        .await
                        .context("while removing gantry's images")?;
                }
                images
            }
            // Without Docker, only a prune whose records name no image can go on.
            Err(error) if plan.images().is_empty() => {
                eprintln!("gantry: Docker is not answering ({error}); no images were removed");
                Vec::new()
            }
            Err(error) => return Err(error).context("while connecting to Docker"),
        },
    })
}

/// What a prune removes from the runtime's image store: the images of the records it removes,
/// every built image (`publish`/`asTarball` build them again when asked),
/// and every step image no remaining record refers to (failed steps commit
/// an image too, and results pruned by an older gantry left theirs).
fn images_to_remove(state: &StateDir, plan: &PrunePlan, tagged: &[String]) -> Result<Vec<String>> {
    let names = state.image_names();
    let kept: HashSet<String> = if plan.keep() == Keep::Nothing {
        HashSet::new()
    } else {
        let removed: HashSet<String> = plan.images().into_iter().collect();
        state
            .records(RecordKind::Exec)
            .context("while listing cached results")?
            .iter()
            .filter_map(|record| record.image(&names))
            .filter(|image| !removed.contains(image))
            .collect()
    };
    let mut images = plan.images();
    images.extend(tagged.iter().filter(|tag| !kept.contains(*tag)).cloned());
    images.sort();
    images.dedup();
    Ok(images)
}
