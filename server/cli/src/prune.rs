//! `gantry prune`: removes cached results and the images they point at.

use std::fs;
use std::path::Path;

use anyhow::{bail, Context as _, Result};
use gantry_core::runtime::Runtime as _;
use gantry_docker::DockerRuntime;

use crate::engine::EngineArgs;

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

fn dir_size(path: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => dir_size(&entry.path()),
            Ok(meta) => meta.len(),
            Err(_) => 0,
        })
        .sum()
}

pub(crate) async fn run(args: PruneArgs) -> Result<()> {
    let state_dir = args.engine.state_dir();
    let runtime = DockerRuntime::connect()
        .await
        .context("while connecting to Docker")?;
    let before = dir_size(&state_dir);
    match &args.keep_storage {
        None => {
            let images = runtime
                .managed_images()
                .await
                .context("while listing gantry's images")?;
            runtime
                .remove_images(&images)
                .await
                .context("while removing gantry's images")?;
            for sub in ["store", "cache-volumes", "host-index", "tmp"] {
                let path = state_dir.join(sub);
                if path.exists() {
                    fs::remove_dir_all(&path)
                        .with_context(|| format!("while removing {}", path.display()))?;
                }
            }
            eprintln!(
                "gantry: pruned {} images and {} bytes of cache in {}",
                images.len(),
                before,
                state_dir.display()
            );
        }
        Some(size) => {
            let keep = parse_size(size)?;
            let removed = prune_results_to(
                &state_dir.join("store").join("results"),
                keep.saturating_sub(dir_size(&state_dir.join("store").join("blobs"))),
            )?;
            eprintln!(
                "gantry: removed {removed} cached results; the state directory now holds {} bytes",
                dir_size(&state_dir)
            );
        }
    }
    Ok(())
}

/// Removes the oldest result records until the rest fit in `budget` bytes.
fn prune_results_to(results: &Path, budget: u64) -> Result<usize> {
    let mut files = Vec::new();
    for shard in fs::read_dir(results).into_iter().flatten().flatten() {
        for entry in fs::read_dir(shard.path()).into_iter().flatten().flatten() {
            if let Ok(meta) = entry.metadata() {
                files.push((meta.modified().ok(), meta.len(), entry.path()));
            }
        }
    }
    files.sort_by_key(|(modified, _, _)| *modified);
    let mut total: u64 = files.iter().map(|(_, len, _)| len).sum();
    let mut removed = 0;
    for (_, len, path) in files {
        if total <= budget {
            break;
        }
        fs::remove_file(&path).with_context(|| format!("while removing {}", path.display()))?;
        total -= len;
        removed += 1;
    }
    Ok(removed)
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
