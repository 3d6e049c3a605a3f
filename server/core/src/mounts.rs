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
use std::sync::OnceLock;

use tracing::warn;

use crate::context::Context;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::runtime::{BindMount, Tmpfs};
use crate::tree::{Entry, Owner, Tree};
use crate::value::{ContainerState, MountSource};

pub(crate) struct PreparedMounts {
    pub(crate) binds: Vec<BindMount>,
    pub(crate) tmpfs: Vec<Tmpfs>,
    /// Secret files: the runtime unlinks them once the container started.
    pub(crate) secret_files: Vec<String>,
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

/// Whether this process may give files away (it runs as root). Checked
/// once: `/proc/self` belongs to the process's effective user.
fn may_chown() -> bool {
    static ROOT: OnceLock<bool> = OnceLock::new();
    *ROOT.get_or_init(|| {
        use std::os::unix::fs::MetadataExt as _;
        let root = fs::metadata("/proc/self").is_ok_and(|meta| meta.uid() == 0);
        if !root {
            warn!("the engine does not run as root: files in mounts keep the engine's user instead of their owners");
        }
        root
    })
}

/// Gives `path` (not following a symlink) to `owner`. Files are written by
/// the engine as root, so root needs no change; an engine that is not root
/// cannot give files away and leaves them its own (see `may_chown`).
fn give(path: &Path, owner: Owner) -> Result<()> {
    if owner.is_root() || !may_chown() {
        return Ok(());
    }
    std::os::unix::fs::lchown(path, Some(owner.uid), Some(owner.gid))
        .map_err(io("giving a mounted file its owner"))
}

/// Gives `path` the modification and access time `mtime` (0: leave it).
fn set_mtime(path: &Path, mtime: u64) -> Result<()> {
    if mtime == 0 {
        return Ok(());
    }
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime);
    let times = fs::FileTimes::new().set_modified(time).set_accessed(time);
    fs::File::open(path)
        .and_then(|file| file.set_times(times))
        .map_err(io("setting a mounted file's time"))
}

/// Writes `tree` under `dir` (which exists), with each entry's mode, owner
/// and time (directories' times last, deepest first, so that writing into
/// them does not move them).
pub(crate) fn write_tree(cx: &Context, tree: &Tree, dir: &Path) -> Result<()> {
    write_entries(cx, tree, dir)?;
    for (path, entry) in tree.entries.iter().rev() {
        if let Entry::Dir { mtime, .. } = entry {
            set_mtime(&dir.join(path), *mtime)?;
        }
    }
    Ok(())
}

fn write_entries(cx: &Context, tree: &Tree, dir: &Path) -> Result<()> {
    for (path, entry) in &tree.entries {
        let target = dir.join(path);
        match entry {
            Entry::Dir { mode, .. } => {
                fs::create_dir_all(&target).map_err(io("writing a directory"))?;
                fs::set_permissions(&target, fs::Permissions::from_mode(*mode))
                    .map_err(io("setting permissions"))?;
            }
            Entry::File {
                blob, mode, mtime, ..
            } => {
                if let Some(parent) = target.parent() {
                    fs::create_dir_all(parent).map_err(io("writing a directory"))?;
                }
                let data = cx.store.get_blob(blob)?;
                fs::write(&target, data).map_err(io("writing a file"))?;
                fs::set_permissions(&target, fs::Permissions::from_mode(*mode))
                    .map_err(io("setting permissions"))?;
                set_mtime(&target, *mtime)?;
            }
            Entry::Symlink { target: link, .. } => {
                if let Some(parent) = target.parent() {
                    fs::create_dir_all(parent).map_err(io("writing a directory"))?;
                }
                let _ = fs::remove_file(&target);
                std::os::unix::fs::symlink(link, &target).map_err(io("writing a symlink"))?;
            }
        }
        give(&target, entry.owner())?;
    }
    Ok(())
}

impl PreparedMounts {
    /// Puts every mount of `state` in place on the host.
    pub(crate) fn prepare(cx: &Context, state: &ContainerState) -> Result<Self> {
        let mut prepared = PreparedMounts {
            binds: Vec::new(),
            tmpfs: Vec::new(),
            secret_files: Vec::new(),
            scratch: Vec::new(),
            writable: Vec::new(),
        };
        for mount in &state.mounts {
            let path = &mount.path;
            match &mount.source {
                MountSource::Directory { tree, read_only } => {
                    let dir = prepared.scratch_dir(cx)?;
                    write_tree(cx, tree, &dir)?;
                    if !read_only {
                        prepared.writable.push((path.clone(), dir.clone()));
                    }
                    prepared.bind(&dir, path, *read_only);
                }
                MountSource::File(file) => {
                    let dir = prepared.scratch_dir(cx)?;
                    let target = dir.join("file");
                    fs::write(&target, cx.store.get_blob(&file.blob)?)
                        .map_err(io("writing a mounted file"))?;
                    fs::set_permissions(&target, fs::Permissions::from_mode(file.mode))
                        .map_err(io("setting permissions"))?;
                    give(&target, file.owner)?;
                    set_mtime(&target, file.mtime)?;
                    prepared.bind(&target, path, false);
                }
                MountSource::Cache {
                    volume,
                    source,
                    owner,
                    ..
                } => {
                    let dir = cache_volume(cx, volume, source.as_deref(), *owner)?;
                    prepared.bind(&dir, path, false);
                }
                MountSource::Temp { size } => prepared.tmpfs.push(Tmpfs {
                    path: path.clone(),
                    size: *size,
                }),
                MountSource::Secret {
                    secret,
                    mode,
                    owner,
                } => {
                    let file = prepared.secret_file(cx, secret, *mode)?;
                    give(&file, *owner)?;
                    prepared.bind(&file, path, true);
                    prepared
                        .secret_files
                        .push(file.to_string_lossy().into_owned());
                }
                MountSource::Socket { host_path } => {
                    let socket = Path::new(host_path);
                    if !socket.exists() {
                        return Err(Error::Host {
                            path: host_path.clone(),
                            reason: "the Unix socket is gone (withUnixSocket mounts it as it is \
                                     when the step runs)"
                                .into(),
                        });
                    }
                    prepared.bind(socket, path, false);
                }
            }
        }
        Ok(prepared)
    }

    fn bind(&mut self, host: &Path, container_path: &str, read_only: bool) {
        self.binds.push(BindMount {
            host_path: host.to_string_lossy().into_owned(),
            container_path: container_path.to_owned(),
            read_only,
        });
    }

    /// A fresh scratch directory from the store, removed on drop.
    fn scratch_dir(&mut self, cx: &Context) -> Result<PathBuf> {
        let dir = cx.store.scratch_dir()?;
        self.scratch.push(dir.clone());
        Ok(dir)
    }

    /// Writes a secret's value to a file on tmpfs (`files::SECRET_FILES_DIR`),
    /// removed on drop if the runtime has not unlinked it already.
    fn secret_file(&mut self, cx: &Context, secret: &Digest, mode: u32) -> Result<PathBuf> {
        let value = cx.secret(secret)?;
        let dir = crate::files::create_secret_dir().map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                Error::Unsupported {
                    message: format!("mounting a secret needs a tmpfs: {source}"),
                }
            } else {
                Error::store("creating a secret directory", source)
            }
        })?;
        self.scratch.push(dir.clone());
        let target = dir.join("secret");
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&target)
            .map_err(io("writing a secret to tmpfs"))?;
        file.write_all(value.plaintext.as_bytes())
            .map_err(io("writing a secret to tmpfs"))?;
        fs::set_permissions(&target, fs::Permissions::from_mode(mode))
            .map_err(io("setting permissions"))?;
        Ok(target)
    }

    /// Writes redirected output to `path` (absolute) when a mount holds it,
    /// as the command itself would have: into a writable directory mount
    /// or a cache volume; a temporary directory keeps nothing. Paths outside
    /// mounts are left to the caller (they go into the root filesystem).
    pub(crate) fn write_output(
        &self,
        cx: &Context,
        state: &ContainerState,
        path: &str,
        bytes: &[u8],
    ) -> Result<()> {
        let Some((index, inner)) = state.mount_at(path) else {
            return Ok(());
        };
        let mount = &state.mounts[index];
        let refuse = |why: &str| Error::InvalidArgument {
            message: format!("cannot redirect output to {path}: {why}"),
        };
        let host_dir = match &mount.source {
            MountSource::Temp { .. } => return Ok(()),
            MountSource::Directory {
                read_only: false, ..
            } => self
                .writable
                .iter()
                .find(|(mounted, _)| *mounted == mount.path)
                .map(|(_, dir)| dir.clone())
                .expect("every writable directory mount is prepared"),
            MountSource::Cache { volume, .. } => cx.store.cache_volume_dir(volume),
            other => {
                return Err(refuse(&format!(
                    "the {} mounted at {} is read-only",
                    other.describe(),
                    mount.path
                )))
            }
        };
        if inner.is_empty() {
            return Err(refuse("a directory is mounted there"));
        }
        let target = host_dir.join(&inner);
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).map_err(io("writing redirected output"))?;
        }
        fs::write(&target, bytes).map_err(io("writing redirected output"))
    }

    /// Reads each writable directory mount back as a stored tree: a later
    /// `directory(path)` under it sees what the command left there.
    pub(crate) fn read_back(&self, cx: &Context) -> Result<Vec<(String, Digest)>> {
        self.writable
            .iter()
            .map(|(path, dir)| {
                let content = crate::host::read_plain(cx.store.as_ref(), dir)?;
                Ok((path.clone(), content))
            })
            .collect()
    }
}

/// What `redirectStdin` reads from a mount only the engine can see into:
/// a secret's value or a file in a cache volume. `None` for paths whose
/// contents the container's trees hold (the root filesystem, directory and
/// file mounts).
pub(crate) fn read_input(
    cx: &Context,
    state: &ContainerState,
    path: &str,
) -> Result<Option<Vec<u8>>> {
    let Some((index, inner)) = state.mount_at(path) else {
        return Ok(None);
    };
    match &state.mounts[index].source {
        MountSource::Secret { secret, .. } => {
            Ok(Some(cx.secret(secret)?.plaintext.as_bytes().to_vec()))
        }
        MountSource::Cache { volume, .. } => {
            let file = cx.store.cache_volume_dir(volume).join(&inner);
            match fs::read(&file) {
                Ok(bytes) => Ok(Some(bytes)),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                    Err(Error::NotFound { path: path.into() })
                }
                Err(error) => Err(io("reading redirected input")(error)),
            }
        }
        MountSource::Temp { .. } => Err(Error::NotFound { path: path.into() }),
        MountSource::Socket { .. } => Err(Error::InvalidArgument {
            message: format!(
                "{path} is a Unix socket (withUnixSocket): stdin cannot read from one"
            ),
        }),
        MountSource::Directory { .. } | MountSource::File(_) => Ok(None),
    }
}

/// A cache volume's host directory. On first use it is seeded from
/// `source` and given to `owner`, then made visible atomically, so a
/// concurrent first use sees all of it or none.
fn cache_volume(
    cx: &Context,
    volume: &str,
    source: Option<&Tree>,
    owner: Option<Owner>,
) -> Result<PathBuf> {
    let dir = cx.store.cache_volume_dir(volume);
    if dir.exists() {
        return Ok(dir);
    }
    let staging = cx.store.scratch_dir()?;
    let seeded = (|| {
        if let Some(tree) = source {
            write_tree(cx, tree, &staging)?;
        }
        if let Some(owner) = owner {
            std::os::unix::fs::chown(&staging, Some(owner.uid), Some(owner.gid))
                .map_err(io("setting a cache volume's owner"))?;
        }
        fs::set_permissions(&staging, fs::Permissions::from_mode(0o755))
            .map_err(io("setting permissions"))
    })();
    if let Err(error) = seeded {
        // A full disk, say: nothing half-seeded stays behind.
        let _ = fs::remove_dir_all(&staging);
        return Err(error);
    }
    if let Some(parent) = dir.parent() {
        fs::create_dir_all(parent).map_err(io("creating cache volumes"))?;
    }
    if fs::rename(&staging, &dir).is_err() {
        // Someone else created it first: theirs wins.
        let _ = fs::remove_dir_all(&staging);
    }
    Ok(dir)
}
