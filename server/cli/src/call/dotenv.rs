//! Defaults from a `.env` file beside the manifest: `FUNCTION_ARG=value`
//! (`PUBLISH_REGISTRY=127.0.0.1:5001/app`, names case-insensitive, `-` as
//! `_`), as Dagger 0.21 reads them. Flags on the command line win.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use super::api::Field;

/// The `KEY=VALUE` pairs of `path`; none when it does not exist.
pub(crate) fn read(path: &Path) -> Result<Vec<(String, String)>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => {
            return Err(error).with_context(|| format!("while reading {}", path.display()))
        }
    };
    Ok(parse(&text))
}

fn parse(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                return None;
            }
            let line = line.strip_prefix("export ").unwrap_or(line);
            let (key, value) = line.split_once('=')?;
            let value = value.trim();
            let value = if value.len() >= 2
                && ((value.starts_with('"') && value.ends_with('"'))
                    || (value.starts_with('\'') && value.ends_with('\'')))
            {
                value[1..value.len() - 1].to_owned()
            } else {
                // An unquoted value ends at a comment.
                value.split(" #").next().unwrap_or("").trim().to_owned()
            };
            Some((key.trim().to_owned(), value))
        })
        .collect()
}

fn env_name(text: &str) -> String {
    text.replace('-', "_").to_ascii_uppercase()
}

/// A value for one argument from `.env`.
pub(crate) struct FlagDefault {
    /// The argument, as declared.
    pub(crate) param: String,
    pub(crate) value: String,
    /// What relative paths in the value resolve against (the manifest's directory).
    pub(crate) base: PathBuf,
}

/// The defaults `.env` sets for the arguments of `field`.
pub(crate) fn defaults_for(
    pairs: &[(String, String)],
    field: &Field,
    root: &Path,
) -> Vec<FlagDefault> {
    let function = env_name(&field.command());
    field
        .params
        .iter()
        .filter_map(|param| {
            let key = format!("{function}_{}", env_name(&param.flag()));
            pairs
                .iter()
                .rev()
                .find(|(name, _)| env_name(name) == key)
                .map(|(_, value)| FlagDefault {
                    param: param.name.clone(),
                    value: value.clone(),
                    base: root.to_path_buf(),
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_quotes_comments_and_export() {
        let pairs =
            parse("# x\nPUBLISH_TAG=v1 # note\nexport publish_registry='r/app'\nBAD\nE=\"a b\"\n");
        assert_eq!(
            pairs,
            vec![
                ("PUBLISH_TAG".into(), "v1".into()),
                ("publish_registry".into(), "r/app".into()),
                ("E".into(), "a b".into()),
            ]
        );
    }
}
