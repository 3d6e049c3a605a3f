//! What the API knows about the client making a request: its working
//! directory, against which host paths (`host.directory`, `export`)
//! resolve. `gantry run` and `gantry session` use the command's directory;
//! socket clients send an `X-Gantry-Workdir` header (the SDKs send their
//! process's working directory), else the server's own directory is used.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use gantry_core::files::AtomicFile;
use gantry_core::tree::{Entry, Tree};
use gantry_core::{Engine, Error};

#[derive(Debug, Clone)]
pub struct ClientInfo {
    pub workdir: PathBuf,
}

fn host_error(path: &Path, error: std::io::Error) -> Error {
    Error::Host {
        path: path.display().to_string(),
        reason: error.to_string(),
    }
}

impl ClientInfo {
    /// An absolute host path for `path` (relative paths join the workdir).
    pub fn resolve(&self, path: &str) -> PathBuf {
        let joined = self.workdir.join(path);
        // Lexically normalise `.` and `..` so returned paths are clean.
        let mut out = PathBuf::from("/");
        for part in joined.components() {
            match part {
                std::path::Component::ParentDir => {
                    out.pop();
                }
                std::path::Component::Normal(name) => out.push(name),
                _ => {}
            }
        }
        out
    }

    /// Writes `bytes` to the host path `path` (mode 0644).
    pub(crate) fn write_host_file(&self, path: &str, bytes: &[u8]) -> Result<String, Error> {
        self.write_host_file_mode(&self.resolve(path), bytes, 0o644)
    }

    pub(crate) fn write_host_file_mode(
        &self,
        target: &Path,
        bytes: &[u8],
        mode: u32,
    ) -> Result<String, Error> {
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).map_err(|error| host_error(parent, error))?;
        }
        AtomicFile::new(target)
            .mode(mode)
            .write(bytes)
            .map_err(|error| host_error(target, error.source))?;
        Ok(target.display().to_string())
    }

    pub(crate) fn export_tree(
        &self,
        engine: &Engine,
        tree: &Tree,
        path: &str,
        wipe: bool,
    ) -> Result<String, Error> {
        let root = self.resolve(path);
        if wipe && root.exists() {
            fs::remove_dir_all(&root).map_err(|error| host_error(&root, error))?;
        }
        fs::create_dir_all(&root).map_err(|error| host_error(&root, error))?;
        // Directory modes are applied last, deepest first, so that a
        // read-only directory can still be filled.
        let mut dir_modes = Vec::new();
        for (rel, entry) in &tree.entries {
            let target = root.join(rel);
            match entry {
                Entry::Dir { mode } => {
                    if fs::symlink_metadata(&target).is_ok_and(|meta| !meta.is_dir()) {
                        fs::remove_file(&target).map_err(|error| host_error(&target, error))?;
                    }
                    fs::create_dir_all(&target).map_err(|error| host_error(&target, error))?;
                    dir_modes.push((target, *mode));
                }
                Entry::File { blob, mode, .. } => {
                    let bytes = engine.read_blob(blob)?;
                    self.write_host_file_mode(&target, &bytes, *mode)?;
                }
                Entry::Symlink { target: link } => {
                    if fs::symlink_metadata(&target).is_ok_and(|meta| meta.is_dir()) {
                        fs::remove_dir_all(&target).map_err(|error| host_error(&target, error))?;
                    } else {
                        let _ = fs::remove_file(&target);
                    }
                    std::os::unix::fs::symlink(link, &target)
                        .map_err(|error| host_error(&target, error))?;
                }
            }
        }
        for (target, mode) in dir_modes.into_iter().rev() {
            fs::set_permissions(&target, fs::Permissions::from_mode(mode))
                .map_err(|error| host_error(&target, error))?;
        }
        Ok(root.display().to_string())
    }

    /// Removes `removed` (relative paths, directories ending with `/`, as
    /// `Changeset.removedPaths` lists them) under the host directory
    /// `path`; missing ones are not an error.
    pub(crate) fn remove_host_paths(&self, path: &str, removed: &[String]) -> Result<(), Error> {
        let root = self.resolve(path);
        for rel in removed {
            let rel = gantry_core::tree::normalize(rel)?;
            if rel.is_empty() {
                continue;
            }
            let target = root.join(&rel);
            let outcome = match fs::symlink_metadata(&target) {
                Ok(meta) if meta.is_dir() => fs::remove_dir_all(&target),
                Ok(_) => fs::remove_file(&target),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(error) => Err(error),
            };
            outcome.map_err(|error| host_error(&target, error))?;
        }
        Ok(())
    }
}
