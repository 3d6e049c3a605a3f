//! What the API knows about the client making a request: its working
//! directory, against which host paths (`host.directory`, `export`)
//! resolve. `gantry run` and `gantry session` use the command's directory;
//! socket clients send an `X-Gantry-Workdir` header (percent-encoded: the
//! SDKs send their process's working directory). A client without one gets
//! relative host paths refused, never resolved against the engine's own
//! directory (which could be another project's).

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use gantry_core::files::AtomicFile;
use gantry_core::tree::{Entry, Tree};
use gantry_core::{Engine, Error};

#[derive(Debug, Clone)]
pub struct ClientInfo {
    /// `None` when the client did not say (see the module docs).
    pub workdir: Option<PathBuf>,
    /// False for a nested session's clients (`experimentalPrivilegedNesting`):
    /// they run in a container, and the engine's files and environment are
    /// not theirs to read or write.
    has_host: bool,
}

impl ClientInfo {
    /// A client on the engine's host, in `workdir` if it said.
    pub fn new(workdir: Option<PathBuf>) -> Self {
        Self {
            workdir,
            has_host: true,
        }
    }

    /// A nested session's client: no host.
    pub(crate) fn nested() -> Self {
        Self {
            workdir: None,
            has_host: false,
        }
    }

    /// Refuses host access (`what`) to a client without a host.
    pub(crate) fn check_host(&self, what: &str) -> Result<(), Error> {
        if self.has_host {
            return Ok(());
        }
        Err(Error::InvalidArgument {
            message: format!(
                "{what}: a client inside a step (experimentalPrivilegedNesting) has no host: the \
                 engine's files and environment are not its own; pass what it needs into the \
                 step (withDirectory, withFile, withSecretVariable)"
            ),
        })
    }
}

fn host_error(path: &Path, error: std::io::Error) -> Error {
    Error::Host {
        path: path.display().to_string(),
        reason: error.to_string(),
    }
}

impl ClientInfo {
    /// An absolute host path for `path` (relative paths join the workdir; a
    /// leading `~` is the home directory, as in Dagger and shells).
    pub fn resolve(&self, path: &str) -> Result<PathBuf, Error> {
        self.check_host(&format!("host path {}", gantry_core::text::quoted(path)))?;
        let home_relative = match path.strip_prefix('~') {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => Some(rest),
            _ => None,
        };
        if let Some(rest) = home_relative {
            let home = std::env::var_os("HOME").filter(|home| Path::new(home).is_absolute());
            let Some(home) = home else {
                return Err(Error::InvalidArgument {
                    message: format!(
                        "host path {} starts at the home directory, and the engine has no absolute HOME set: pass an absolute path",
                        gantry_core::text::quoted(path)
                    ),
                });
            };
            let home = Path::new(&home).display().to_string();
            return self.resolve(&format!("{home}/{}", rest.trim_start_matches('/')));
        }
        let joined = match &self.workdir {
            Some(workdir) => workdir.join(path),
            None if path.starts_with('/') => PathBuf::from(path),
            None => {
                return Err(Error::InvalidArgument {
                    message: format!(
                        "relative host path {} needs the client's working directory, and this \
                         client sent none: send the {} header (percent-encoded) or pass an \
                         absolute path",
                        gantry_core::text::quoted(path),
                        crate::env::WORKDIR_HEADER
                    ),
                })
            }
        };
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
        Ok(out)
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

    /// Streams `contents` to the host path `target` (atomically, mode `mode`).
    pub(crate) fn copy_to_host(
        &self,
        target: &Path,
        mut contents: Box<dyn std::io::Read + Send>,
        mode: u32,
    ) -> Result<String, Error> {
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).map_err(|error| host_error(parent, error))?;
        }
        AtomicFile::new(target)
            .mode(mode)
            .write_with(|file| std::io::copy(&mut contents, file).map(|_| ()))
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
        let root = self.resolve(path)?;
        if wipe && root.exists() {
            fs::remove_dir_all(&root).map_err(|error| host_error(&root, error))?;
        }
        fs::create_dir_all(&root).map_err(|error| host_error(&root, error))?;
        // Directory modes and times are applied last, deepest first, so that
        // a read-only directory can still be filled and its time is not
        // moved by what goes in it.
        let mut dirs = Vec::new();
        for (rel, entry) in &tree.entries {
            let target = root.join(rel);
            match entry {
                Entry::Dir { mode, mtime, .. } => {
                    if fs::symlink_metadata(&target).is_ok_and(|meta| !meta.is_dir()) {
                        fs::remove_file(&target).map_err(|error| host_error(&target, error))?;
                    }
                    fs::create_dir_all(&target).map_err(|error| host_error(&target, error))?;
                    dirs.push((target, *mode, *mtime));
                }
                Entry::File {
                    blob, mode, mtime, ..
                } => {
                    let bytes = engine.read_blob(blob)?;
                    self.write_host_file_mode(&target, &bytes, *mode)?;
                    set_mtime(&target, *mtime)?;
                }
                Entry::Symlink { target: link, .. } => {
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
        for (target, mode, mtime) in dirs.into_iter().rev() {
            set_mtime(&target, mtime)?;
            fs::set_permissions(&target, fs::Permissions::from_mode(mode))
                .map_err(|error| host_error(&target, error))?;
        }
        Ok(root.display().to_string())
    }

    /// Removes `removed` (relative paths, directories ending with `/`, as
    /// `Changeset.removedPaths` lists them) under the host directory
    /// `path`; missing ones are not an error.
    pub(crate) fn remove_host_paths(&self, path: &str, removed: &[String]) -> Result<(), Error> {
        let root = self.resolve(path)?;
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

/// Gives a written file or directory the modification (and access) time
/// its entry records; 0 means none was recorded, and the write's time stays.
pub(crate) fn set_mtime(path: &Path, mtime: u64) -> Result<(), Error> {
    if mtime == 0 {
        return Ok(());
    }
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime);
    let times = fs::FileTimes::new().set_modified(time).set_accessed(time);
    fs::File::open(path)
        .and_then(|file| file.set_times(times))
        .map_err(|error| host_error(path, error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nested_client_has_no_host() {
        let nested = ClientInfo::nested();
        for path in ["/etc", "relative", "~/x"] {
            let error = nested.resolve(path).unwrap_err().to_string();
            assert!(error.contains("has no host"), "{error}");
        }
        for uri in ["env://HOME", "file:///etc/hostname"] {
            let error = crate::secret_from_uri(uri, &nested)
                .unwrap_err()
                .to_string();
            assert!(error.contains("has no host"), "{uri}: {error}");
        }
        let on_host = ClientInfo::new(None);
        assert_eq!(on_host.resolve("/etc").unwrap(), PathBuf::from("/etc"));
        assert!(crate::secret_from_uri("env://HOME", &on_host).is_ok());
    }
}
