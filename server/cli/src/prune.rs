//! `gantry prune`: removes cached results and the images they point at.
//! The state directory (`gantry_store::StateDir`) says what it holds, what
//! each record costs and which images the removed records refer to; this
//! module only asks and reports.

use anyhow::{bail, Context as _, Result};
use gantry_store::{Keep, StateDir};

use crate::engine::EngineArgs;
use crate::runtime::RuntimeChoice;

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
    // unreachable by any later prune. Only this state directory's images go;
    // another engine's cache on the same daemon stays intact.
    let images = plan.images();
    if !images.is_empty() {
        crate::runtime::remove_images(choice, &state, &images).await?;
    }
    let pruned = state
        .prune(&plan)
        .context("while removing cached records")?;
    let left = state
        .usage()
        .context("while measuring the state directory")?
        .total();
    eprintln!(
        "gantry: removed {} cached records and {} step images, freeing {} bytes; {} now holds {} bytes",
        pruned.records,
        images.len(),
        pruned.bytes,
        root.display(),
        left.bytes
    );
    Ok(())
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
