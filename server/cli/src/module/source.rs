//! A module's source digest (what its cached description and Go dispatcher
//! are keyed by) and where module caches live in the state directory.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use sha2::{Digest as _, Sha256};

use super::manifest::{Module, Sdk};

/// Where gantry keeps module caches: function descriptions, runtime files and
/// built Go dispatchers, in the state directory's `Modules` bucket (so the
/// layout owns the path, `gantry prune` removes it, and usage counts it).
pub(crate) fn cache_dir(state_dir: &Path) -> PathBuf {
    state_dir.join(gantry_store::Bucket::Modules.dir())
}

/// Directories never read as module source: dependencies, virtualenvs,
/// build output and VCS data.
const SKIPPED_DIRS: [&str; 9] = [
    "node_modules",
    ".venv",
    "venv",
    "__pycache__",
    ".git",
    "vendor",
    "target",
    "dist",
    ".mypy_cache",
];

/// The files that make up a module's code, by SDK.
fn is_source(sdk: Sdk, name: &str) -> bool {
    let ext = |exts: &[&str]| exts.iter().any(|ext| name.ends_with(ext));
    match sdk {
        Sdk::Python => ext(&[".py"]) || name == "pyproject.toml",
        Sdk::Typescript => {
            ext(&[".ts", ".mts", ".cts", ".js", ".mjs", ".cjs"])
                || name == "package.json"
                || name == "tsconfig.json"
        }
        Sdk::Go => ext(&[".go"]) || name == "go.mod" || name == "go.sum",
        Sdk::Php => ext(&[".php"]) || name == "composer.json",
    }
}

/// A sha256 over the runtime that reads the module, the manifest and every
/// source file (path and bytes, in sorted order).
pub(crate) fn digest(module: &Module, runtime: &str) -> Result<String> {
    let mut files = Vec::new();
    collect(module.sdk, &module.source, &module.source, &mut files).with_context(|| {
        format!(
            "while reading the module source in {}",
            module.source.display()
        )
    })?;
    files.sort();
    let mut hasher = Sha256::new();
    hasher.update(b"gantry-module-source-v1\0");
    hasher.update(runtime.as_bytes());
    hasher.update(b"\0");
    for part in [module.sdk.name(), module.format.name(), &module.object] {
        hasher.update(part.as_bytes());
        hasher.update(b"\0");
    }
    let manifest = std::fs::read(&module.manifest)
        .with_context(|| format!("while reading {}", module.manifest.display()))?;
    hasher.update(&manifest);
    hasher.update(b"\0");
    for (relative, path) in files {
        let bytes =
            std::fs::read(&path).with_context(|| format!("while reading {}", path.display()))?;
        hasher.update(relative.as_bytes());
        hasher.update(b"\0");
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
    }
    Ok(hex::encode(hasher.finalize()))
}

fn collect(
    sdk: Sdk,
    root: &Path,
    dir: &Path,
    out: &mut Vec<(String, PathBuf)>,
) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            if !SKIPPED_DIRS.contains(&name.as_ref()) && !name.starts_with('.') {
                collect(sdk, root, &entry.path(), out)?;
            }
        } else if is_source(sdk, &name) {
            let path = entry.path();
            let relative = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            out.push((relative, path));
        }
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically (gantry's one atomic write), so a
/// concurrent reader sees the old file or the new one, never half of one.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .context("a cache file has a parent directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("while creating {}", dir.display()))?;
    gantry_core::files::AtomicFile::new(path).write(bytes)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::module::manifest;

    #[test]
    fn digest_changes_with_source_and_ignores_dependencies() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("gantry.toml"),
            "name = \"ci\"\nsdk = \"python\"\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("main.py"), "class Ci: pass\n").unwrap();
        let module = manifest::find(Some(dir.path()), dir.path()).unwrap();
        let first = digest(&module, "r1").unwrap();
        std::fs::create_dir(dir.path().join(".venv")).unwrap();
        std::fs::write(dir.path().join(".venv/x.py"), "").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "").unwrap();
        assert_eq!(digest(&module, "r1").unwrap(), first);
        assert_ne!(digest(&module, "r2").unwrap(), first);
        std::fs::write(dir.path().join("main.py"), "class Ci:\n    pass\n").unwrap();
        assert_ne!(digest(&module, "r1").unwrap(), first);
    }
}
