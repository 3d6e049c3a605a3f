//! Unpacking tar archives into a directory, faithfully and without escaping it.
//!
//! Every path is resolved with `openat2(RESOLVE_IN_ROOT)`: a symlink in the tree (say
//! `/var/run -> /run`) is followed as the container would follow it, inside the root,
//! never to the host's `/run`. Entries keep their mode (setuid bits included),
//! numeric owner, modification time and extended attributes (`SCHILY.xattr.*`);
//! hard links, symlinks, devices and FIFOs are recreated as such.
//!
//! Two modes: [`Mode::Layer`] writes an image layer in overlayfs form (OCI whiteouts
//! `.wh.NAME` become 0/0 character devices, `.wh..wh..opq` the opaque xattr on its
//! directory), [`Mode::Apply`] applies an archive to a live filesystem (a whiteout
//! removes what it names).

use std::ffi::OsStr;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt as _;
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode as FileMode, OFlags, ResolveFlags, Timespec, Timestamps};
use rustix::io::Errno;

use crate::error::Error;

pub(crate) use gantry_core::pack::{OPAQUE_MARKER, OPAQUE_XATTR, WHITEOUT_PREFIX};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Layer,
    Apply,
}

/// Unpacks `archive` into `root` (an existing directory). Returns the number of
/// uncompressed bytes read, for logging.
pub(crate) fn unpack(archive: impl Read, root: &Path, mode: Mode) -> Result<(), Error> {
    let mut unpacker = Unpacker::open(root, mode)?;
    let mut archive = tar::Archive::new(archive);
    let entries = archive.entries().map_err(Error::archive)?;
    for entry in entries {
        let entry = entry.map_err(Error::archive)?;
        unpacker.entry(entry)?;
    }
    // Directory times last: adding entries to a directory changes its mtime.
    for (components, mtime) in std::mem::take(&mut unpacker.dir_times).into_iter().rev() {
        let Ok(dir) = unpacker.resolve(&components) else {
            continue;
        };
        let _ = rustix::fs::futimens(&dir, &times(mtime));
    }
    Ok(())
}

/// `mkdir -p` of `components` inside `root` (symlinks resolved inside it); returns
/// the host path of the directory.
pub(crate) fn make_dirs(root: &Path, components: &[Vec<u8>]) -> Result<std::path::PathBuf, Error> {
    let unpacker = Unpacker::open(root, Mode::Apply)?;
    let fd = unpacker.ensure_dir(components)?;
    real_path(&fd).map_err(|source| Error::io("resolving a directory", root, source))
}

/// The host path of the directory at `components` inside `root` (symlinks resolved
/// inside it), if there is one.
pub(crate) fn resolve_dir(root: &Path, components: &[Vec<u8>]) -> Option<std::path::PathBuf> {
    let unpacker = Unpacker::open(root, Mode::Apply).ok()?;
    let fd = unpacker.resolve(components).ok()?;
    real_path(&fd).ok()
}

fn real_path(fd: &OwnedFd) -> std::io::Result<std::path::PathBuf> {
    std::fs::read_link(fd_path(fd))
}

struct Unpacker<'a> {
    root: OwnedFd,
    root_path: &'a Path,
    mode: Mode,
    dir_times: Vec<(Vec<Vec<u8>>, u64)>,
}

/// The components of an archive path; `..` is refused, `.` and empty ones dropped.
pub(crate) fn components(path: &[u8]) -> Result<Vec<Vec<u8>>, Error> {
    let mut out = Vec::new();
    for component in path.split(|b| *b == b'/') {
        match component {
            b"" | b"." => {}
            b".." => {
                return Err(Error::archive(format!(
                    "entry {:?} leaves the archive's root",
                    String::from_utf8_lossy(path)
                )))
            }
            other => out.push(other.to_vec()),
        }
    }
    Ok(out)
}

fn join(components: &[Vec<u8>]) -> Vec<u8> {
    let mut path = Vec::new();
    for component in components {
        if !path.is_empty() {
            path.push(b'/');
        }
        path.extend_from_slice(component);
    }
    if path.is_empty() {
        path.push(b'.');
    }
    path
}

fn times(mtime: u64) -> Timestamps {
    let spec = Timespec {
        tv_sec: i64::try_from(mtime).unwrap_or(i64::MAX),
        tv_nsec: 0,
    };
    Timestamps {
        last_access: spec,
        last_modification: spec,
    }
}

impl<'a> Unpacker<'a> {
    fn open(root: &'a Path, mode: Mode) -> Result<Self, Error> {
        let root_fd = rustix::fs::open(
            root,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            FileMode::empty(),
        )
        .map_err(|errno| Error::io("opening a directory to unpack into", root, errno.into()))?;
        Ok(Self {
            root: root_fd,
            root_path: root,
            mode,
            dir_times: Vec::new(),
        })
    }

    fn fail(&self, action: &'static str, components: &[Vec<u8>], errno: Errno) -> Error {
        let path = self
            .root_path
            .join(Path::new(OsStr::from_bytes(&join(components))));
        Error::io(action, &path, errno.into())
    }

    /// Opens the directory at `components` (resolved inside the root).
    fn resolve(&self, components: &[Vec<u8>]) -> Result<OwnedFd, Errno> {
        rustix::fs::openat2(
            &self.root,
            OsStr::from_bytes(&join(components)),
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            FileMode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        )
    }

    /// Opens the directory at `components`, creating missing ones (mode 0755). A
    /// dangling symlink where a directory is needed is replaced by one, as Docker does
    /// (its archive upload makes the missing directories at the deepest existing
    /// ancestor, and unpacking a directory over a non-directory replaces it).
    fn ensure_dir(&self, components: &[Vec<u8>]) -> Result<OwnedFd, Error> {
        match self.resolve(components) {
            Ok(fd) => return Ok(fd),
            Err(Errno::NOENT) => {}
            Err(errno) => return Err(self.fail("opening a directory", components, errno)),
        }
        let mut current = rustix::io::dup(&self.root)
            .map_err(|errno| self.fail("opening a directory", &[], errno))?;
        for depth in 1..=components.len() {
            match self.resolve(&components[..depth]) {
                Ok(fd) => current = fd,
                Err(Errno::NOENT) => {
                    let name = OsStr::from_bytes(&components[depth - 1]);
                    let make =
                        || rustix::fs::mkdirat(&current, name, FileMode::from_raw_mode(0o755));
                    let made = match make() {
                        // Something is there, yet resolving it found nothing: a
                        // dangling symlink (or one that leads to a dangling one).
                        Err(Errno::EXIST) if is_symlink(&current, name) => {
                            rustix::fs::unlinkat(&current, name, AtFlags::empty())
                                .and_then(|()| make())
                        }
                        other => other,
                    };
                    match made {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(errno) => {
                            return Err(self.fail(
                                "creating a directory",
                                &components[..depth],
                                errno,
                            ))
                        }
                    }
                    current = self.resolve(&components[..depth]).map_err(|errno| {
                        self.fail("opening a directory", &components[..depth], errno)
                    })?;
                }
                Err(errno) => {
                    return Err(self.fail("opening a directory", &components[..depth], errno))
                }
            }
        }
        Ok(current)
    }

    fn entry<R: Read>(&mut self, mut entry: tar::Entry<'_, R>) -> Result<(), Error> {
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader
        ) {
            return Ok(());
        }
        let path = entry.path_bytes().into_owned();
        let mut components = components(&path)?;
        let header = entry.header().clone();
        // Archives written by lax tools leave numeric fields empty: tar reads them as 0.
        let default_mode = if kind.is_dir() { 0o755 } else { 0o644 };
        let mode = header.mode().unwrap_or(default_mode) & 0o7777;
        let uid = header.uid().unwrap_or(0);
        let gid = header.gid().unwrap_or(0);
        let mtime = header.mtime().unwrap_or(0);
        let xattrs = xattrs(&mut entry)?;

        let Some(name) = components.pop() else {
            // The archive's root entry (`./`): its metadata applies to the root.
            if kind.is_dir() {
                let dir = reopen(&self.ensure_dir(&[])?)
                    .map_err(|errno| self.fail("opening a directory", &[], errno))?;
                self.set_owner_mode(&dir, b".", uid, gid, mode, true, &[])?;
                self.dir_times.push((Vec::new(), mtime));
            }
            return Ok(());
        };
        let parent = self.ensure_dir(&components)?;

        if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
            return self.whiteout(&parent, &components, hidden);
        }
        let name_os = OsStr::from_bytes(&name);
        let mut full = components.clone();
        full.push(name.clone());

        // What is there already: a directory stays when a directory comes (tar
        // semantics: its metadata is updated), anything else is replaced.
        match rustix::fs::statat(&parent, name_os, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => {
                let is_dir = FileType::from_raw_mode(stat.st_mode) == FileType::Directory;
                if !(is_dir && kind.is_dir()) {
                    remove_entry(&parent, name_os, is_dir)
                        .map_err(|errno| self.fail("replacing an entry", &full, errno))?;
                }
            }
            Err(Errno::NOENT) => {}
            Err(errno) => return Err(self.fail("inspecting an entry", &full, errno)),
        }

        match kind {
            tar::EntryType::Directory => {
                match rustix::fs::mkdirat(&parent, name_os, FileMode::from_raw_mode(0o700)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(errno) => return Err(self.fail("creating a directory", &full, errno)),
                }
                let dir = self
                    .resolve(&full)
                    .map_err(|errno| self.fail("opening a directory", &full, errno))?;
                let dir =
                    reopen(&dir).map_err(|errno| self.fail("opening a directory", &full, errno))?;
                self.set_owner_mode(&dir, b".", uid, gid, mode, true, &xattrs)?;
                self.dir_times.push((full, mtime));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let fd = rustix::fs::openat(
                    &parent,
                    name_os,
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    FileMode::from_raw_mode(0o600),
                )
                .map_err(|errno| self.fail("creating a file", &full, errno))?;
                let mut file = File::from(fd);
                std::io::copy(&mut entry, &mut file)
                    .map_err(|source| Error::io("writing a file", self.root_path, source))?;
                self.set_owner_mode(&file, b".", uid, gid, mode, true, &xattrs)?;
                rustix::fs::futimens(&file, &times(mtime))
                    .map_err(|errno| self.fail("setting times", &full, errno))?;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| Error::archive("symlink entry without a target"))?;
                rustix::fs::symlinkat(OsStr::from_bytes(&target), &parent, name_os)
                    .map_err(|errno| self.fail("creating a symlink", &full, errno))?;
                rustix::fs::chownat(
                    &parent,
                    name_os,
                    Some(rustix::fs::Uid::from_raw(uid_u32(uid))),
                    Some(rustix::fs::Gid::from_raw(uid_u32(gid))),
                    AtFlags::SYMLINK_NOFOLLOW,
                )
                .map_err(|errno| self.fail("setting an owner", &full, errno))?;
                let _ = rustix::fs::utimensat(
                    &parent,
                    name_os,
                    &times(mtime),
                    AtFlags::SYMLINK_NOFOLLOW,
                );
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| Error::archive("hard link entry without a target"))?;
                let mut target = components_of_link(&target)?;
                let target_name = target
                    .pop()
                    .ok_or_else(|| Error::archive("hard link to the archive's root"))?;
                let target_parent = self
                    .resolve(&target)
                    .map_err(|errno| self.fail("finding a hard link's target", &target, errno))?;
                rustix::fs::linkat(
                    &target_parent,
                    OsStr::from_bytes(&target_name),
                    &parent,
                    name_os,
                    AtFlags::empty(),
                )
                .map_err(|errno| self.fail("creating a hard link", &full, errno))?;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let file_type = match kind {
                    tar::EntryType::Char => FileType::CharacterDevice,
                    tar::EntryType::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                let major = header.device_major().ok().flatten().unwrap_or(0);
                let minor = header.device_minor().ok().flatten().unwrap_or(0);
                rustix::fs::mknodat(
                    &parent,
                    name_os,
                    file_type,
                    FileMode::from_raw_mode(mode),
                    rustix::fs::makedev(major, minor),
                )
                .map_err(|errno| self.fail("creating a device node", &full, errno))?;
                self.set_owner_mode(&parent, &name, uid, gid, mode, false, &[])?;
                let _ = rustix::fs::utimensat(
                    &parent,
                    name_os,
                    &times(mtime),
                    AtFlags::SYMLINK_NOFOLLOW,
                );
            }
            other => {
                tracing::debug!(path = %String::from_utf8_lossy(&path), kind = ?other, "skipping an archive entry of an unsupported type");
            }
        }
        Ok(())
    }

    fn whiteout(
        &self,
        parent: &OwnedFd,
        components: &[Vec<u8>],
        hidden: &[u8],
    ) -> Result<(), Error> {
        let opaque = hidden == &OPAQUE_MARKER.as_bytes()[WHITEOUT_PREFIX.len()..];
        match (self.mode, opaque) {
            (Mode::Layer, true) => {
                let dir = reopen(parent)
                    .map_err(|errno| self.fail("opening a directory", components, errno))?;
                rustix::fs::fsetxattr(&dir, OPAQUE_XATTR, b"y", rustix::fs::XattrFlags::empty())
                    .map_err(|errno| self.fail("marking a directory opaque", components, errno))
            }
            (Mode::Layer, false) => {
                let name = OsStr::from_bytes(hidden);
                if let Ok(stat) = rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
                    let is_dir = FileType::from_raw_mode(stat.st_mode) == FileType::Directory;
                    let _ = remove_entry(parent, name, is_dir);
                }
                rustix::fs::mknodat(
                    parent,
                    name,
                    FileType::CharacterDevice,
                    FileMode::empty(),
                    rustix::fs::makedev(0, 0),
                )
                .map_err(|errno| self.fail("creating a whiteout", components, errno))
            }
            (Mode::Apply, true) => {
                let dir = reopen(parent)
                    .map_err(|errno| self.fail("opening a directory", components, errno))?;
                let listing = std::fs::read_dir(fd_path(&dir))
                    .map_err(|source| Error::io("listing a directory", self.root_path, source))?;
                for child in listing.flatten() {
                    let is_dir = child.file_type().is_ok_and(|t| t.is_dir());
                    let _ = remove_entry(&dir, &child.file_name(), is_dir);
                }
                Ok(())
            }
            (Mode::Apply, false) => {
                let name = OsStr::from_bytes(hidden);
                match rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(stat) => {
                        let is_dir = FileType::from_raw_mode(stat.st_mode) == FileType::Directory;
                        remove_entry(parent, name, is_dir).map_err(|errno| {
                            self.fail("removing a whited-out entry", components, errno)
                        })
                    }
                    Err(_) => Ok(()),
                }
            }
        }
    }

    /// Owner first (changing it clears setuid bits), then mode, then xattrs (a
    /// `security.capability` would be cleared by a later chown).
    fn set_owner_mode(
        &self,
        dir: &impl AsFd,
        name: &[u8],
        uid: u64,
        gid: u64,
        mode: u32,
        is_self: bool,
        xattrs: &[(String, Vec<u8>)],
    ) -> Result<(), Error> {
        let owner = Some(rustix::fs::Uid::from_raw(uid_u32(uid)));
        let group = Some(rustix::fs::Gid::from_raw(uid_u32(gid)));
        let name_os = OsStr::from_bytes(name);
        let result = if is_self {
            rustix::fs::fchown(dir, owner, group)
                .and_then(|()| rustix::fs::fchmod(dir, FileMode::from_raw_mode(mode)))
        } else {
            rustix::fs::chownat(dir, name_os, owner, group, AtFlags::SYMLINK_NOFOLLOW).and_then(
                |()| {
                    rustix::fs::chmodat(
                        dir,
                        name_os,
                        FileMode::from_raw_mode(mode),
                        AtFlags::empty(),
                    )
                },
            )
        };
        result.map_err(|errno| self.fail("setting an owner and mode", &[name.to_vec()], errno))?;
        if is_self {
            for (key, value) in xattrs {
                if let Err(errno) =
                    rustix::fs::fsetxattr(dir, key.as_str(), value, rustix::fs::XattrFlags::empty())
                {
                    tracing::debug!(xattr = %key, %errno, "cannot set an extended attribute");
                }
            }
        }
        Ok(())
    }
}

fn uid_u32(id: u64) -> u32 {
    u32::try_from(id).unwrap_or(u32::MAX - 1)
}

/// Hard link targets name another entry of the archive, relative to its root.
fn components_of_link(target: &[u8]) -> Result<Vec<Vec<u8>>, Error> {
    components(target)
}

/// An `O_PATH` descriptor reopened for real I/O (fchown, fchmod, xattrs need one).
fn reopen(fd: &OwnedFd) -> Result<OwnedFd, Errno> {
    rustix::fs::openat(
        fd,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        FileMode::empty(),
    )
}

/// `/proc/self/fd/N`: the directory an open descriptor names, for std's path APIs.
fn fd_path(fd: &OwnedFd) -> std::path::PathBuf {
    use std::os::fd::AsRawFd as _;
    std::path::PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Removes `name` under `parent`: a directory with all it holds.
/// Whether `name` in `parent` is a symlink (not followed).
fn is_symlink(parent: &impl AsFd, name: &OsStr) -> bool {
    rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW)
        .is_ok_and(|stat| FileType::from_raw_mode(stat.st_mode) == FileType::Symlink)
}

fn remove_entry(parent: &impl AsFd, name: &OsStr, is_dir: bool) -> Result<(), Errno> {
    if is_dir {
        let parent_fd: BorrowedFd<'_> = parent.as_fd();
        let owned = rustix::io::dup(parent_fd)?;
        let path = fd_path(&owned).join(name);
        std::fs::remove_dir_all(path)
            .map_err(|error| Errno::from_io_error(&error).unwrap_or(Errno::IO))
    } else {
        rustix::fs::unlinkat(parent, name, AtFlags::empty())
    }
}

/// The `SCHILY.xattr.*` PAX records of an entry, minus overlayfs's own.
fn xattrs<R: Read>(entry: &mut tar::Entry<'_, R>) -> Result<Vec<(String, Vec<u8>)>, Error> {
    let Some(extensions) = entry.pax_extensions().map_err(Error::archive)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for extension in extensions {
        let extension = extension.map_err(Error::archive)?;
        let Ok(key) = extension.key() else { continue };
        if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
            if !name.starts_with("trusted.overlay.") {
                out.push((name.to_owned(), extension.value_bytes().to_vec()));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_refuse_parent_references() {
        assert_eq!(
            components(b"./a//b/").unwrap(),
            vec![b"a".to_vec(), b"b".to_vec()]
        );
        assert!(components(b"a/../../etc").is_err());
        assert!(components(b"./").unwrap().is_empty());
    }

    #[test]
    fn destinations_follow_symlinks_inside_the_root_and_replace_dangling_ones() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("real")).unwrap();
        std::os::unix::fs::symlink("/real", root.join("link")).unwrap();
        std::os::unix::fs::symlink("/nowhere/data", root.join("dangling")).unwrap();
        let path = |text: &str| components(text.as_bytes()).unwrap();

        // A symlink to a directory is followed, inside the root.
        let made = make_dirs(root, &path("link/sub")).unwrap();
        assert_eq!(made, root.join("real/sub").canonicalize().unwrap());
        assert!(root.join("link").is_symlink());

        // A dangling one becomes a directory; its target is never created.
        let made = make_dirs(root, &path("dangling/sub")).unwrap();
        assert_eq!(made, root.join("dangling/sub").canonicalize().unwrap());
        assert!(root.join("dangling").is_dir() && !root.join("dangling").is_symlink());
        assert!(!root.join("nowhere").exists());
    }
}
