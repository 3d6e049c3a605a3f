//! The release version in the SDK manifests that cannot read it from their
//! generated names module: npm's `package.json` and `package-lock.json` hold
//! it as a literal. (The Python package reads it from `_env.py` through
//! hatchling's version source; Composer and Go take it from the release tag.)
//!
//! Only the `version` lines change; the rest of each file is kept byte for
//! byte, so `cargo xtask codegen` rewrites nothing else and `--check` names
//! a manifest whose version is not Cargo.toml's.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};

use super::Generated;

/// A manifest and the `version` lines in it that carry the release version:
/// each is the first line with this exact indentation after the given marker
/// line (or from the top when the marker is empty).
struct Manifest {
    path: &'static str,
    lines: &'static [(&'static str, &'static str)],
}

const MANIFESTS: &[Manifest] = &[
    Manifest {
        path: "sdk-typescript/package.json",
        lines: &[("", "  \"version\": ")],
    },
    Manifest {
        path: "sdk-typescript/package-lock.json",
        // The lock's own version, then the root package's (`packages[""]`).
        lines: &[
            ("", "  \"version\": "),
            ("    \"\": {", "      \"version\": "),
        ],
    },
];

/// Each manifest under `root` as it should be: with `version` on its version lines.
pub(crate) fn manifests(root: &Path, version: &str) -> Result<Vec<Generated>> {
    MANIFESTS
        .iter()
        .map(|manifest| {
            let path = root.join(manifest.path);
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("while reading {}", path.display()))?;
            let contents = with_version(&text, manifest.lines, version)
                .with_context(|| format!("while setting the version in {}", manifest.path))?;
            Ok(Generated {
                path: PathBuf::from(manifest.path),
                contents,
            })
        })
        .collect()
}

/// `text` with each `(marker, prefix)` line's JSON string value set to `version`.
fn with_version(text: &str, lines: &[(&str, &str)], version: &str) -> Result<String> {
    let mut out: Vec<String> = text.split_inclusive('\n').map(str::to_owned).collect();
    for (marker, prefix) in lines {
        let start = if marker.is_empty() {
            0
        } else {
            out.iter()
                .position(|line| line.trim_end() == *marker)
                .with_context(|| format!("no line `{marker}`"))?
        };
        let Some(line) = out[start..]
            .iter_mut()
            .find(|line| line.starts_with(prefix))
        else {
            bail!("no `{}` line after `{marker}`", prefix.trim());
        };
        let rest = &line[prefix.len()..];
        let trailing = if rest.trim_end().ends_with(',') {
            ","
        } else {
            ""
        };
        if !rest.starts_with('"') {
            bail!("`{}` is not a string: {}", prefix.trim(), line.trim());
        }
        let newline = if line.ends_with('\n') { "\n" } else { "" };
        *line = format!("{prefix}\"{version}\"{trailing}{newline}");
    }
    Ok(out.concat())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCK: &str = "{\n  \"name\": \"@gantry/sdk\",\n  \"version\": \"0.0.9\",\n  \"packages\": {\n    \"\": {\n      \"name\": \"@gantry/sdk\",\n      \"version\": \"0.0.9\",\n      \"license\": \"x\"\n    },\n    \"node_modules/a\": {\n      \"version\": \"20.1.0\"\n    }\n  }\n}\n";

    #[test]
    fn sets_only_the_marked_version_lines() {
        let lines = MANIFESTS[1].lines;
        let fresh = with_version(LOCK, lines, "1.2.3").unwrap();
        assert_eq!(
            fresh,
            LOCK.replacen("\"0.0.9\"", "\"1.2.3\"", 2),
            "the dependency's version must stay"
        );
        // Idempotent.
        assert_eq!(with_version(&fresh, lines, "1.2.3").unwrap(), fresh);
    }

    #[test]
    fn a_manifest_without_the_line_is_an_error_naming_it() {
        let error = with_version("{\n  \"name\": \"x\"\n}\n", MANIFESTS[0].lines, "1.0.0")
            .unwrap_err()
            .to_string();
        assert!(error.contains("no `\"version\":` line"), "{error}");
    }

    #[test]
    fn repository_manifests_carry_the_workspace_version() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        for manifest in manifests(&root, gantry_api::VERSION).unwrap() {
            let current = std::fs::read_to_string(root.join(&manifest.path)).unwrap();
            assert_eq!(
                current,
                manifest.contents,
                "{}: run `cargo xtask codegen`",
                manifest.path.display()
            );
        }
    }
}
