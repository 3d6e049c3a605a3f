//! `gantry prune`: removes cached results and the images they point at.

use std::fs;
use std::path::{Path, PathBuf};

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

/// The image tag a cached exec result keeps its filesystem under (see the
/// solver's `commit_tag`).
fn exec_image_tag(key_hex: &str) -> String {
    format!("gantry.local/cache:{key_hex}")
}

/// Result records of this state directory that are exec results, with the
/// path of each record and its image tag.
fn exec_records(results: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for shard in fs::read_dir(results).into_iter().flatten().flatten() {
        for entry in fs::read_dir(shard.path()).into_iter().flatten().flatten() {
            let path = entry.path();
            let is_exec = fs::read(&path)
                .ok()
                .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
                .is_some_and(|record| {
                    record.get("image_id").is_some() && record.get("exit_code").is_some()
                });
            if is_exec {
                if let Some(name) = path.file_name().and_then(|name| name.to_str()) {
                    let tag = exec_image_tag(name);
                    out.push((path, tag));
                }
            }
        }
    }
    out
}

pub(crate) async fn run(args: PruneArgs) -> Result<()> {
    let state_dir = args.engine.state_dir();
    if !state_dir.exists() {
        eprintln!("gantry: nothing to prune in {}", state_dir.display());
        return Ok(());
    }
    let runtime = DockerRuntime::connect()
        .await
        .context("while connecting to Docker")?;
    let results = state_dir.join("store").join("results");
    let before = dir_size(&state_dir);
    match &args.keep_storage {
        None => {
            // Only this state directory's images: another engine's cache on
            // the same daemon stays intact.
            let tags: Vec<String> = exec_records(&results)
                .into_iter()
                .map(|(_, tag)| tag)
                .collect();
            runtime
                .remove_images(&tags)
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
                "gantry: removed {} step images and {before} bytes of cache from {}",
                tags.len(),
                state_dir.display()
            );
        }
        Some(size) => {
            let keep = parse_size(size)?;
            let blobs = dir_size(&state_dir.join("store").join("blobs"));
            let removed = prune_results_to(&results, keep.saturating_sub(blobs))?;
            let tags: Vec<String> = removed
                .iter()
                .filter_map(|path| path.file_name().and_then(|name| name.to_str()))
                .map(exec_image_tag)
                .collect();
            runtime
                .remove_images(&tags)
                .await
                .context("while removing gantry's images")?;
            eprintln!(
                "gantry: removed {} cached results; {} now holds {} bytes",
                removed.len(),
                state_dir.display(),
                dir_size(&state_dir)
            );
        }
    }
    Ok(())
}

/// Removes the oldest result records until the rest fit in `budget` bytes;
/// returns the removed records' paths.
fn prune_results_to(results: &Path, budget: u64) -> Result<Vec<PathBuf>> {
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
    let mut removed = Vec::new();
    for (_, len, path) in files {
        if total <= budget {
            break;
        }
        fs::remove_file(&path).with_context(|| format!("while removing {}", path.display()))?;
        total -= len;
        removed.push(path);
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
