//! Tar archives built and rewritten for the Engine API's `/archive` endpoints.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// An archive with no entries (two zero blocks), for importing an empty image.
pub(crate) fn empty() -> Vec<u8> {
    vec![0; 1024]
}

/// Directory entries `a/`, `a/b/`, … for `components` (mode 0755, root-owned, mtime 0),
/// to be unpacked where the first component is missing.
pub(crate) fn directories(components: &[&str]) -> io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut path = String::new();
    for component in components {
        path.push_str(component);
        path.push('/');
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_size(0);
        header.set_mode(0o755);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        builder.append_data(&mut header, &path, io::empty())?;
    }
    builder.into_inner()
}

/// Rewrites the archive dockerd returns for `GET /containers/{id}/archive?path=P` into the
/// form `Runtime::read_path` promises: dockerd names every entry after the base name of P
/// (`out/`, `out/a`), so for a directory the root becomes `./` and its contents `a`,
/// `sub/b`…; a file (or symlink) stays the one entry named after itself. Modes, owners,
/// times, symlinks and hard links (whose targets are rebased too) are preserved.
pub(crate) fn rebase_read(docker_tar: &[u8]) -> io::Result<Vec<u8>> {
    let mut archive = tar::Archive::new(docker_tar);
    let mut builder = tar::Builder::new(Vec::new());
    // `None` until the first entry; then `Some(root)` when P is a directory.
    let mut root: Option<Option<Vec<u8>>> = None;
    for entry in archive.entries()? {
        let mut entry = entry?;
        let name = entry.path_bytes().into_owned();
        let dir_root = root
            .get_or_insert_with(|| {
                (entry.header().entry_type() == tar::EntryType::Directory)
                    .then(|| trim_end_slashes(&name).to_vec())
            })
            .as_deref();
        let new_name = match dir_root {
            Some(root) => rebase(root, &name)?,
            None => name,
        };
        let mut header = entry.header().clone();
        header.set_size(entry.size());
        let path = Path::new(OsStr::from_bytes(&new_name));
        match header.entry_type() {
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| invalid("link entry without a target"))?
                    .into_owned();
                let target = match (dir_root, header.entry_type()) {
                    // Hard links name another entry of the same archive.
                    (Some(root), tar::EntryType::Link) => rebase(root, &target)?,
                    _ => target,
                };
                builder.append_link(&mut header, path, Path::new(OsStr::from_bytes(&target)))?;
            }
            _ => builder.append_data(&mut header, path, &mut entry)?,
        }
    }
    builder.into_inner()
}

/// `root/rest` → `rest`, and `root` itself → `./`.
fn rebase(root: &[u8], name: &[u8]) -> io::Result<Vec<u8>> {
    let rest = name
        .strip_prefix(root)
        .filter(|rest| rest.is_empty() || rest.starts_with(b"/"))
        .ok_or_else(|| invalid("archive entry outside the requested path"))?;
    let rest = trim_start_slashes(rest);
    Ok(if rest.is_empty() {
        b"./".to_vec()
    } else {
        rest.to_vec()
    })
}

fn trim_end_slashes(mut name: &[u8]) -> &[u8] {
    while let Some(rest) = name.strip_suffix(b"/") {
        name = rest;
    }
    name
}

fn trim_start_slashes(mut name: &[u8]) -> &[u8] {
    while let Some(rest) = name.strip_prefix(b"/") {
        name = rest;
    }
    name
}

fn invalid(message: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(builder: &mut tar::Builder<Vec<u8>>, name: &str, kind: tar::EntryType, data: &[u8]) {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_size(data.len() as u64);
        header.set_mode(if kind == tar::EntryType::Directory {
            0o750
        } else {
            0o640
        });
        builder.append_data(&mut header, name, data).unwrap();
    }

    fn link(builder: &mut tar::Builder<Vec<u8>>, name: &str, kind: tar::EntryType, target: &str) {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_size(0);
        header.set_mode(0o777);
        builder.append_link(&mut header, name, target).unwrap();
    }

    fn listing(tar: &[u8]) -> Vec<(String, Option<String>, u32, Vec<u8>)> {
        let mut archive = tar::Archive::new(tar);
        archive
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let name = String::from_utf8(e.path_bytes().into_owned()).unwrap();
                let link = e
                    .link_name_bytes()
                    .map(|l| String::from_utf8(l.into_owned()).unwrap());
                let mode = e.header().mode().unwrap();
                let mut data = Vec::new();
                io::Read::read_to_end(&mut e, &mut data).unwrap();
                (name, link, mode, data)
            })
            .collect()
    }

    #[test]
    fn directory_entries_become_relative_to_the_directory() {
        let mut b = tar::Builder::new(Vec::new());
        entry(&mut b, "out/", tar::EntryType::Directory, b"");
        entry(&mut b, "out/a", tar::EntryType::Regular, b"hello");
        link(&mut b, "out/l", tar::EntryType::Symlink, "a");
        link(&mut b, "out/h", tar::EntryType::Link, "out/a");
        entry(&mut b, "out/sub/", tar::EntryType::Directory, b"");
        let long = format!("out/sub/{}", "x".repeat(150));
        entry(&mut b, &long, tar::EntryType::Regular, b"\0\xff");
        let rebased = rebase_read(&b.into_inner().unwrap()).unwrap();
        let got = listing(&rebased);
        let names: Vec<_> = got.iter().map(|(n, ..)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "./",
                "a",
                "l",
                "h",
                "sub/",
                &format!("sub/{}", "x".repeat(150))
            ]
        );
        assert_eq!(got[0].2, 0o750);
        assert_eq!(got[1].3, b"hello");
        assert_eq!(got[1].2, 0o640);
        assert_eq!(got[2].1.as_deref(), Some("a"));
        assert_eq!(got[3].1.as_deref(), Some("a"));
        assert_eq!(got[5].3, b"\0\xff");
    }

    #[test]
    fn root_directory_is_rebased() {
        let mut b = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_old();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_size(0);
        header.set_mode(0o755);
        header.as_old_mut().name[..1].copy_from_slice(b"/");
        header.set_cksum();
        b.append(&header, io::empty()).unwrap();
        let mut header = tar::Header::new_old();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(1);
        header.set_mode(0o644);
        header.as_old_mut().name[..2].copy_from_slice(b"/f");
        header.set_cksum();
        b.append(&header, &b"1"[..]).unwrap();
        let got = listing(&rebase_read(&b.into_inner().unwrap()).unwrap());
        let names: Vec<_> = got.iter().map(|(n, ..)| n.as_str()).collect();
        assert_eq!(names, ["./", "f"]);
    }

    #[test]
    fn a_file_stays_one_entry() {
        let mut b = tar::Builder::new(Vec::new());
        entry(&mut b, "server", tar::EntryType::Regular, b"bin");
        let got = listing(&rebase_read(&b.into_inner().unwrap()).unwrap());
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, "server");
        assert_eq!(got[0].3, b"bin");
    }

    #[test]
    fn directories_lists_each_level() {
        let got = listing(&directories(&["a", "b"]).unwrap());
        let names: Vec<_> = got.iter().map(|(n, ..)| n.as_str()).collect();
        assert_eq!(names, ["a/", "a/b/"]);
        assert_eq!(got[0].2, 0o755);
    }
}
