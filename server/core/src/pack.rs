//! Packing directories into tar archives: image layers (deterministic) and reads.
//!
//! Entries come depth first, each directory's children sorted by name bytes, with
//! numeric owners only (no user or group names), modes, symlink targets, hard links
//! (the first path of an inode in that order carries the data; later ones link to it),
//! device nodes and extended attributes as sorted `SCHILY.xattr.*` PAX records. With a
//! clamp, every modification time later than it becomes it: a layer built from the same
//! files is the same bytes every time, whatever the clock said when they were written.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};

/// The xattr overlayfs marks an opaque directory with.
pub const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// OCI's whiteout: `.wh.NAME` hides `NAME` of the layers below.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// OCI's opaque directory marker: hides everything below the directory.
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// Why packing failed: what was being done, and where.
#[derive(Debug, thiserror::Error)]
#[error("{action} failed at {path}")]
pub struct Error {
    pub action: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

impl Error {
    fn io(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        Self {
            action,
            path: path.to_owned(),
            source,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct PackOptions {
    /// Translate overlayfs whiteouts and opaque directories to OCI's `.wh.` entries.
    pub overlay_whiteouts: bool,
    /// Modification times later than this (seconds since the epoch) are set to it.
    pub clamp_mtime: Option<u64>,
}

/// Packs the whole of `dir` as an image layer: entries named relative to it (no `./`).
pub fn pack_layer(dir: &Path, out: impl Write, options: PackOptions) -> Result<(), Error> {
    let mut packer = Packer::new(out, options);
    packer.children(dir, b"")?;
    packer.finish()
}

/// Packs `path` (inside an unpacked root filesystem, already resolved on the host) the
/// way `Runtime::read_path` promises: a directory as a `./` entry and its contents
/// relative to it, anything else as one entry named `name`.
pub fn pack_path(path: &Path, name: &[u8], out: impl Write) -> Result<(), Error> {
    let meta =
        fs::symlink_metadata(path).map_err(|source| Error::io("reading a path", path, source))?;
    let mut packer = Packer::new(
        out,
        PackOptions {
            overlay_whiteouts: false,
            clamp_mtime: None,
        },
    );
    if meta.is_dir() {
        packer.entry(path, b"./", &meta)?;
        packer.children(path, b"")?;
    } else {
        packer.entry(path, name, &meta)?;
    }
    packer.finish()
}

struct Packer<W: Write> {
    builder: tar::Builder<W>,
    options: PackOptions,
    /// (device, inode) → the first archive name of a file with several links.
    links: HashMap<(u64, u64), Vec<u8>>,
}

impl<W: Write> Packer<W> {
    fn new(out: W, options: PackOptions) -> Self {
        let mut builder = tar::Builder::new(out);
        builder.mode(tar::HeaderMode::Complete);
        builder.follow_symlinks(false);
        Self {
            builder,
            options,
            links: HashMap::new(),
        }
    }

    fn finish(self) -> Result<(), Error> {
        self.builder
            .into_inner()
            .map(drop)
            .map_err(|source| Error::io("writing an archive", Path::new("-"), source))
    }

    fn children(&mut self, dir: &Path, prefix: &[u8]) -> Result<(), Error> {
        let mut names: Vec<PathBuf> = fs::read_dir(dir)
            .map_err(|source| Error::io("listing a directory", dir, source))?
            .map(|entry| entry.map(|entry| entry.path()))
            .collect::<Result<_, _>>()
            .map_err(|source| Error::io("listing a directory", dir, source))?;
        names.sort_by(|a, b| {
            a.file_name()
                .map(OsStr::as_bytes)
                .cmp(&b.file_name().map(OsStr::as_bytes))
        });
        for path in names {
            let file_name = path
                .file_name()
                .expect("listed entries have names")
                .as_bytes();
            let mut name = prefix.to_vec();
            name.extend_from_slice(file_name);
            let meta = fs::symlink_metadata(&path)
                .map_err(|source| Error::io("reading an entry", &path, source))?;
            let file_type = meta.file_type();
            if self.options.overlay_whiteouts && file_type.is_char_device() && meta.rdev() == 0 {
                let mut whiteout = prefix.to_vec();
                whiteout.extend_from_slice(WHITEOUT_PREFIX.as_bytes());
                whiteout.extend_from_slice(file_name);
                self.marker(&whiteout)?;
                continue;
            }
            if meta.is_dir() {
                let mut dir_name = name.clone();
                dir_name.push(b'/');
                self.entry(&path, &dir_name, &meta)?;
                if self.options.overlay_whiteouts && is_opaque(&path) {
                    let mut marker = dir_name.clone();
                    marker.extend_from_slice(OPAQUE_MARKER.as_bytes());
                    self.marker(&marker)?;
                }
                self.children(&path, &dir_name)?;
            } else {
                self.entry(&path, &name, &meta)?;
            }
        }
        Ok(())
    }

    fn mtime(&self, meta: &fs::Metadata) -> u64 {
        let mtime = u64::try_from(meta.mtime()).unwrap_or(0);
        match self.options.clamp_mtime {
            Some(clamp) => mtime.min(clamp),
            None => mtime,
        }
    }

    /// An empty regular file entry (a whiteout or an opaque marker).
    fn marker(&mut self, name: &[u8]) -> Result<(), Error> {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(0);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(self.options.clamp_mtime.unwrap_or(0));
        self.builder
            .append_data(
                &mut header,
                Path::new(OsStr::from_bytes(name)),
                std::io::empty(),
            )
            .map_err(|source| {
                Error::io(
                    "writing an archive",
                    Path::new(OsStr::from_bytes(name)),
                    source,
                )
            })
    }

    fn entry(&mut self, path: &Path, name: &[u8], meta: &fs::Metadata) -> Result<(), Error> {
        let write_error = |source| Error::io("writing an archive", path, source);
        let xattrs = read_xattrs(path);
        if !xattrs.is_empty() {
            let records: Vec<(String, Vec<u8>)> = xattrs
                .into_iter()
                .map(|(key, value)| (format!("SCHILY.xattr.{key}"), value))
                .collect();
            self.builder
                .append_pax_extensions(records.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
                .map_err(write_error)?;
        }
        let mut header = tar::Header::new_gnu();
        header.set_mode(meta.mode() & 0o7777);
        header.set_uid(u64::from(meta.uid()));
        header.set_gid(u64::from(meta.gid()));
        header.set_mtime(self.mtime(meta));
        let name_path = Path::new(OsStr::from_bytes(name));
        let file_type = meta.file_type();
        if file_type.is_symlink() {
            let target = fs::read_link(path)
                .map_err(|source| Error::io("reading a symlink", path, source))?;
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_size(0);
            return self
                .builder
                .append_link(&mut header, name_path, &target)
                .map_err(write_error);
        }
        if file_type.is_dir() {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_size(0);
            return self
                .builder
                .append_data(&mut header, name_path, std::io::empty())
                .map_err(write_error);
        }
        if file_type.is_file() {
            if meta.nlink() > 1 {
                let key = (meta.dev(), meta.ino());
                if let Some(first) = self.links.get(&key) {
                    header.set_entry_type(tar::EntryType::Link);
                    header.set_size(0);
                    let first = first.clone();
                    return self
                        .builder
                        .append_link(&mut header, name_path, Path::new(OsStr::from_bytes(&first)))
                        .map_err(write_error);
                }
                self.links.insert(key, name.to_vec());
            }
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(meta.len());
            let file =
                fs::File::open(path).map_err(|source| Error::io("reading a file", path, source))?;
            // A file that shrinks while being read would corrupt the archive: read
            // exactly the size announced, padding with zeros if it came up short.
            let reader = std::io::Read::take(
                std::io::Read::chain(std::io::Read::take(file, meta.len()), std::io::repeat(0)),
                meta.len(),
            );
            return self
                .builder
                .append_data(&mut header, name_path, reader)
                .map_err(write_error);
        }
        let (kind, major, minor) = if file_type.is_char_device() {
            (tar::EntryType::Char, major(meta.rdev()), minor(meta.rdev()))
        } else if file_type.is_block_device() {
            (
                tar::EntryType::Block,
                major(meta.rdev()),
                minor(meta.rdev()),
            )
        } else if file_type.is_fifo() {
            (tar::EntryType::Fifo, 0, 0)
        } else {
            // Sockets cannot be archived; tar skips them too.
            return Ok(());
        };
        header.set_entry_type(kind);
        header.set_size(0);
        header.set_device_major(major).map_err(write_error)?;
        header.set_device_minor(minor).map_err(write_error)?;
        self.builder
            .append_data(&mut header, name_path, std::io::empty())
            .map_err(write_error)
    }
}

fn major(dev: u64) -> u32 {
    rustix::fs::major(dev)
}

fn minor(dev: u64) -> u32 {
    rustix::fs::minor(dev)
}

fn is_opaque(path: &Path) -> bool {
    let mut value = [0u8; 4];
    matches!(rustix::fs::lgetxattr(path, OPAQUE_XATTR, &mut value[..]), Ok(1) if value[0] == b'y')
}

/// Extended attributes of `path` (not following a symlink), sorted, without
/// overlayfs's own; empty where the filesystem has none or refuses to list them.
pub fn read_xattrs(path: &Path) -> Vec<(String, Vec<u8>)> {
    let Ok(size) = rustix::fs::llistxattr_query(path) else {
        return Vec::new();
    };
    if size == 0 {
        return Vec::new();
    }
    let mut names = vec![0u8; size];
    let Ok(len) = rustix::fs::llistxattr(path, &mut names[..]) else {
        return Vec::new();
    };
    names.truncate(len);
    let mut out = Vec::new();
    for name in names.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let Ok(name) = std::str::from_utf8(name) else {
            continue;
        };
        if name.starts_with("trusted.overlay.") {
            continue;
        }
        let Ok(size) = rustix::fs::lgetxattr_query(path, name) else {
            continue;
        };
        let mut value = vec![0u8; size];
        if let Ok(len) = rustix::fs::lgetxattr(path, name, &mut value[..]) {
            value.truncate(len);
            out.push((name.to_owned(), value));
        }
    }
    out.sort();
    out
}
