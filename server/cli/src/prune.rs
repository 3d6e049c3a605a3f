//! `gantry prune`: removes cached results and the images they point at.
//! The state directory (`gantry_store::StateDir`) says what it holds, what
//! each record costs and which images the removed records refer to; this
//! module only asks and reports.

use std::collections::HashSet;

use anyhow::{bail, Context as _, Result};
use gantry_core::runtime::Runtime as _;
use gantry_core::store::RecordKind;
use gantry_docker::DockerRuntime;
use gantry_store::{Bucket, Keep, PrunePlan, StateDir};

use crate::engine::EngineArgs;
use crate::runtime::{RuntimeChoice, Settled};

#[derive(Debug, clap::Args)]
pub(crate) struct PruneArgs {
    /// Keep this much cache (e.g. 10GB, 500MB); remove everything when absent
    #[arg(long, value_name = "SIZE")]
    keep_storage: Option<String>,
    #[command(flatten)]
    engine: EngineArgs,
}

pub(crate) fn parse_size(text: &str) -> Result<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .with_context(|| format!("{text:?} is not a size like 500MB or 2GB"))?;
    let multiplier: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" | "tib" => 1024.0_f64.powi(4),
        other => bail!("unknown size unit {other:?}: use B, KB, MB, GB or TB"),
    };
    Ok((number * multiplier) as u64)
}

pub(crate) async fn run(args: PruneArgs) -> Result<()> {
    let root = args.engine.state_dir();
    if !root.exists() {
        eprintln!("gantry: nothing to prune in {}", root.display());
        return Ok(());
    }
    let choice = RuntimeChoice::resolve(args.engine.runtime)?.settle()?;
    let keep = match &args.keep_storage {
        None => Keep::Nothing,
        Some(size) => Keep::UpTo(parse_size(size)?),
    };
    let state = StateDir::open(&root)
        .with_context(|| format!("while opening the state directory {}", root.display()))?;
    let plan = state
        .plan_prune(keep)
        .context("while listing what the state directory holds")?;
    // Images first: a record removed before its image would leave the image
    // unreachable by any later prune. Only this state directory's images go
    // (its own repositories, see `ImageNames`): another state directory's on
    // the same daemon stay intact, even an image both tagged. The native
    // runtime's images are in the state directory's own snapshot bucket.
    let names = state.image_names();
    let repos = [names.step_repo(), names.built_repo()];
    let images = match choice {
        Settled::Native => {
            let snapshots = state.bucket(Bucket::Snapshots);
            let tagged = gantry_native::tags_in(&snapshots, &repos);
            let images = images_to_remove(&state, &plan, &tagged)?;
            if !images.is_empty() {
                gantry_native::remove_images_in(&snapshots, &images)
                    .context("while removing gantry's snapshots")?;
            }
            images
        }
        Settled::Docker => match DockerRuntime::connect().await {
            Ok(runtime) => {
                let tagged = runtime
                    .tags_in(&repos)
                    .await
                    .context("while listing this state directory's images")?;
                let images = images_to_remove(&state, &plan, &tagged)?;
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
    };
    let pruned = state
        .prune(&plan)
        .context("while removing cached records")?;
    let left = state
        .usage()
        .context("while measuring the state directory")?
        .total();
    eprintln!(
        "gantry: removed {} cached records and {} images, freeing {} bytes; {} now holds {} bytes",
        pruned.records,
        images.len(),
        pruned.bytes,
        root.display(),
        left.bytes
    );
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("10").unwrap(), 10);
        assert_eq!(parse_size("2KB").unwrap(), 2048);
        assert_eq!(parse_size("1.5GB").unwrap(), 1_610_612_736);
        assert!(parse_size("lots").is_err());
        assert!(parse_size("5XB").is_err());
    }
}
