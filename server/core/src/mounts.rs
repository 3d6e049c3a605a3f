//! Materialising a container's mounts on the host for one exec.
//!
//! Directory and file mounts are written to a scratch directory under the
//! state directory; cache volumes are long-lived directories there too.
//! Secret files go to a tmpfs (`/dev/shm`) so their values never reach disk;
//! when no tmpfs is available the exec fails rather than writing them to
//! disk. Everything temporary is removed when `PreparedMounts` is dropped,
//! which also happens when the exec is cancelled.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::runtime::BindMount;
use crate::solver::Engine;
use crate::tree::{Entry, Tree};
use crate::value::{ContainerState, MountSource, SecretValue};

const SECRET_TMPFS: &str = "/dev/shm";

pub(crate) struct PreparedMounts {
    pub(crate) binds: Vec<BindMount>,
    pub(crate) tmpfs: Vec<String>,
    scratch: Vec<PathBuf>,
    /// Writable directory mounts: container path and the host copy.
    writable: Vec<(String, PathBuf)>,
}

impl Drop for PreparedMounts {
    fn drop(&mut self) {
        for dir in &self.scratch {
            // Best effort: a leftover scratch dir holds no secrets (those
            // live in tmpfs dirs, also listed here) and is swept by prune.
            let _ = fs::remove_dir_all(dir);
        }
    }
}

fn io(action: &str) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::store(action, source)
}

/// Writes `tree` under `dir` (which exists).
pub(crate) fn write_tree(engine: &Engine, tree: &Tree, dir: &Path) -> Result<()> {
    for (path, entry) in &tree.entries {
        let target = dir.join(path);
        match entry {
            Entry::Dir { mode } => {
                fs::create_dir_all(&target).map_err(io("writing a directory"))?;
                fs::set_permissions(&target, fs::Permissions::from_mode(*mode))
                    .map_err(io("setting permissions"))?;
            }
            Entry::File { blob, mode, .. } => {
                if let Some(parent) = target.parent() {
                    fs::create_dir_all(parent).map_err(io("writing a directory"))?;
                }
                let data = engine.read_blob(blob)?;
                fs::write(&target, data).map_err(io("writing a file"))?;
                fs::set_permissions(&target, fs::Permissions::from_mode(*mode))
                    .map_err(io("setting permissions"))?;
            }
            Entry::Symlink { target: link } => {
                if let Some(parent) = target.parent() {
                    fs::create_dir_all(parent).map_err(io("writing a directory"))?;
                }
                let _ = fs::remove_file(&target);
                std::os::unix::fs::symlink(link, &target).map_err(io("writing a symlink"))?;
            }
        }
    }
    Ok(())
}

impl PreparedMounts {
    pub(crate) fn prepare(
        engine: &Engine,
        state: &ContainerState,
        secrets: &[SecretValue],
    ) -> Result<Self> {
        let mut prepared = PreparedMounts {
            binds: Vec::new(),
            tmpfs: Vec::new(),
            scratch: Vec::new(),
            writable: Vec::new(),
        };
        let _ = secrets;
        for mount in &state.mounts {
            match &mount.source {
                MountSource::Directory { tree, read_only } => {
                    let dir = engine.store().scratch_dir()?;
                    prepared.scratch.push(dir.clone());
                    write_tree(engine, tree, &dir)?;
                    if !read_only {
                        prepared.writable.push((mount.path.clone(), dir.clone()));
                    }
                    prepared.binds.push(BindMount {
                        host_path: dir.to_string_lossy().into_owned(),
                        container_path: mount.path.clone(),
                        read_only: *read_only,
                    });
                }
                MountSource::File(file) => {
                    let dir = engine.store().scratch_dir()?;
                    prepared.scratch.push(dir.clone());
                    let target = dir.join("file");
                    fs::write(&target, engine.read_blob(&file.blob)?)
                        .map_err(io("writing a mounted file"))?;
                    fs::set_permissions(&target, fs::Permissions::from_mode(file.mode))
                        .map_err(io("setting permissions"))?;
                    prepared.binds.push(BindMount {
                        host_path: target.to_string_lossy().into_owned(),
                        container_path: mount.path.clone(),
                        read_only: false,
                    });
                }
                MountSource::Cache {
                    volume,
                    source,
                    owner,
                    ..
                } => {
                    let dir = engine.store().cache_volume_dir(volume);
                    if !dir.exists() {
                        // First use: seed from `source`, then make it visible
                        // atomically so a concurrent first use sees all or none.
                        let staging = engine.store().scratch_dir()?;
                        if let Some(tree) = source {
                            write_tree(engine, tree, &staging)?;
                        }
                        if let Some(owner) = owner {
                            std::os::unix::fs::chown(&staging, Some(owner.uid), Some(owner.gid))
                                .map_err(io("setting a cache volume's owner"))?;
                        }
                        fs::set_permissions(&staging, fs::Permissions::from_mode(0o755))
                            .map_err(io("setting permissions"))?;
                        if let Some(parent) = dir.parent() {
                            fs::create_dir_all(parent).map_err(io("creating cache volumes"))?;
                        }
                        if fs::rename(&staging, &dir).is_err() {
                            // Someone else created it first: theirs wins.
                            let _ = fs::remove_dir_all(&staging);
                        }
                    }
                    prepared.binds.push(BindMount {
                        host_path: dir.to_string_lossy().into_owned(),
                        container_path: mount.path.clone(),
                        read_only: false,
                    });
                }
                MountSource::Temp { .. } => prepared.tmpfs.push(mount.path.clone()),
                MountSource::Secret { secret, mode } => {
                    let value = engine.secret(secret)?;
                    let shm = Path::new(SECRET_TMPFS);
                    if !shm.is_dir() {
                        return Err(Error::Unsupported {
                            message: "mounting a secret needs a tmpfs at /dev/shm, so its value never reaches disk".into(),
                        });
                    }
                    let parent = shm.join("gantry-secrets");
                    let dir = crate::files::create_unique_dir(&parent)
                        .map_err(io("creating a secret directory"))?;
                    prepared.scratch.push(dir.clone());
                    // Only root on the host may look in (the container reaches
                    // the file through its bind mount, whatever these modes).
                    for private in [&parent, &dir] {
                        fs::set_permissions(private, fs::Permissions::from_mode(0o700))
                            .map_err(io("setting permissions"))?;
                    }
                    let target = dir.join("secret");
                    let mut file = fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(*mode)
                        .open(&target)
                        .map_err(io("writing a secret to tmpfs"))?;
                    file.write_all(value.plaintext.as_bytes())
                        .map_err(io("writing a secret to tmpfs"))?;
                    fs::set_permissions(&target, fs::Permissions::from_mode(*mode))
                        .map_err(io("setting permissions"))?;
                    prepared.binds.push(BindMount {
                        host_path: target.to_string_lossy().into_owned(),
                        container_path: mount.path.clone(),
                        read_only: true,
                    });
                }
            }
        }
        Ok(prepared)
    }
}

impl PreparedMounts {
    /// Reads each writable directory mount back as a stored tree: a later
    /// `directory(path)` under it sees what the command left there.
    pub(crate) fn read_back(&self, engine: &Engine) -> Result<Vec<(String, crate::Digest)>> {
        self.writable
            .iter()
            .map(|(path, dir)| {
                let content = crate::host::read_plain(engine.store().as_ref(), dir)?;
                Ok((path.clone(), content))
            })
            .collect()
    }
}
