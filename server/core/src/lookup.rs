//! Looking paths up in trees as a filesystem would: symlinks are followed
//! inside the tree (an absolute target starts again at the tree's root and
//! `..` never climbs above it, as Dagger resolves paths in a snapshot), and
//! `stat`, `exists` and `findUp` answer from the entries.

use crate::error::{Error, Result};
use crate::tree::{self, Entry, Tree, DIR_MODE};

/// How many symlinks one lookup follows before giving up (Linux's limit).
const MAX_SYMLINKS: usize = 40;

/// The size `stat` reports for a directory (what ext4 and overlayfs report).
pub const DIRECTORY_SIZE: u64 = 4096;

/// The kind of entry a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileType {
    Regular,
    Directory,
    Symlink,
}

/// What `stat` reports about one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    pub file_type: FileType,
    /// The last component of the path asked for.
    pub name: String,
    pub permissions: u32,
    pub size: u64,
}

impl Stat {
    pub(crate) fn of(name: &str, entry: &Entry) -> Stat {
        let (file_type, permissions, size) = match entry {
            Entry::File { mode, size, .. } => (FileType::Regular, *mode, *size),
            Entry::Dir { mode, .. } => (FileType::Directory, *mode, DIRECTORY_SIZE),
            Entry::Symlink { target, .. } => (FileType::Symlink, 0o777, target.len() as u64),
        };
        Stat {
            file_type,
            name: name.to_owned(),
            permissions: permissions & 0o7777,
            size,
        }
    }
}

/// A path found in a tree: where it resolved to and its entry (the root
/// directory has no entry of its own and comes back as a plain directory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Normalised, symlinks resolved; empty for the root.
    pub path: String,
    pub entry: Entry,
}

/// Resolves `path` in `tree`. Symlinks in the middle of the path are always
/// followed; the last component is followed only when `follow` is set.
/// `Ok(None)` when nothing is there (or a component is not a directory).
pub fn resolve(tree: &Tree, path: &str, follow: bool) -> Result<Option<Found>> {
    let mut pending: Vec<String> = components(path);
    pending.reverse();
    let mut resolved: Vec<String> = Vec::new();
    let mut hops = 0;
    while let Some(part) = pending.pop() {
        match part.as_str() {
            "" | "." => continue,
            ".." => {
                resolved.pop();
                continue;
            }
            _ => {}
        }
        resolved.push(part);
        let current = resolved.join("/");
        let last = pending.iter().all(|p| p.is_empty() || p == ".");
        match tree.get(&current) {
            None => return Ok(None),
            Some(Entry::Symlink { target, .. }) if follow || !last => {
                hops += 1;
                if hops > MAX_SYMLINKS {
                    return Err(Error::InvalidArgument {
                        message: format!("{path}: too many levels of symbolic links"),
                    });
                }
                resolved.pop();
                if target.starts_with('/') {
                    resolved.clear();
                }
                pending.extend(components(target).into_iter().rev());
            }
            Some(Entry::File { .. }) if !last => return Ok(None),
            Some(_) => {}
        }
    }
    let path = resolved.join("/");
    if path.is_empty() {
        return Ok(Some(Found {
            path,
            entry: Entry::dir(DIR_MODE),
        }));
    }
    let entry = tree
        .get(&path)
        .cloned()
        .expect("every resolved component exists");
    Ok(Some(Found { path, entry }))
}

fn components(path: &str) -> Vec<String> {
    path.split('/').map(str::to_owned).collect()
}

/// `stat` of `path` (empty names nothing: Dagger's "no such file").
pub fn stat(tree: &Tree, path: &str, follow: bool) -> Result<Stat> {
    let missing = || Error::NotFound { path: path.into() };
    if path.is_empty() {
        return Err(missing());
    }
    let found = resolve(tree, path, follow)?.ok_or_else(missing)?;
    let name = Tree::name_of(tree::normalize(path)?.as_str()).to_owned();
    let name = if name.is_empty() { "/".into() } else { name };
    Ok(Stat::of(&name, &found.entry))
}

/// Whether `path` exists (as `expected` when given). Like `test -f`, a
/// symlink counts as what it points to unless `follow` is off.
/// Asking for a symlink looks at the path itself (an `lstat`), whatever
/// `follow` says: a followed link is never a symlink (Dagger does the same).
pub fn exists(tree: &Tree, path: &str, expected: Option<FileType>, follow: bool) -> Result<bool> {
    let follow = follow && expected != Some(FileType::Symlink);
    let Some(found) = resolve(tree, path, follow)? else {
        return Ok(false);
    };
    Ok(match expected {
        None => true,
        Some(kind) => Stat::of("", &found.entry).file_type == kind,
    })
}

/// The path of the nearest `name` in `start` or one of its parents, as
/// Dagger's `Directory.findUp` returns it (relative to the tree's root).
pub fn find_up(tree: &Tree, start: &str, name: &str) -> Result<Option<String>> {
    let name = tree::normalize(name)?;
    if name.is_empty() {
        return Err(Error::InvalidArgument {
            message: "findUp: name cannot be empty".into(),
        });
    }
    let start = tree::normalize(start)?;
    match resolve(tree, &start, true)? {
        Some(Found {
            entry: Entry::Dir { .. },
            ..
        }) => {}
        Some(_) => return Err(Error::NotADirectory { path: start }),
        None => return Err(Error::NotFound { path: start }),
    }
    let mut dir = start;
    loop {
        let candidate = if dir.is_empty() {
            name.clone()
        } else {
            format!("{dir}/{name}")
        };
        if tree.get(&candidate).is_some() {
            return Ok(Some(candidate));
        }
        if dir.is_empty() {
            return Ok(None);
        }
        dir = match dir.rfind('/') {
            Some(index) => dir[..index].to_owned(),
            None => String::new(),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;

    fn sample() -> Tree {
        let mut tree = Tree::default();
        let file = Entry::File {
            blob: Digest::of_bytes(b"data"),
            size: 4,
            mode: 0o444,
            mtime: 0,
            owner: crate::tree::Owner::ROOT,
        };
        tree.insert("quotes/descartes", file).unwrap();
        let link = |target: &str| Entry::Symlink {
            target: target.into(),
            owner: crate::tree::Owner::ROOT,
        };
        tree.insert("i-am", link("quotes/descartes")).unwrap();
        tree.insert("nothing", link("quotes/does-not-exist"))
            .unwrap();
        tree.insert("abs", link("/quotes")).unwrap();
        tree.insert("loop", link("loop")).unwrap();
        tree.insert("up", link("../../quotes")).unwrap();
        tree
    }

    #[test]
    fn exists_follows_links_like_test_does() {
        let tree = sample();
        let regular = Some(FileType::Regular);
        assert!(exists(&tree, "quotes", Some(FileType::Directory), true).unwrap());
        assert!(!exists(&tree, "quotes", regular, true).unwrap());
        assert!(exists(&tree, "i-am", regular, true).unwrap());
        assert!(!exists(&tree, "i-am", regular, false).unwrap());
        assert!(exists(&tree, "i-am", Some(FileType::Symlink), false).unwrap());
        // An expected symlink is never followed, so a link is one even when
        // links are followed, and its target is not.
        assert!(exists(&tree, "i-am", Some(FileType::Symlink), true).unwrap());
        assert!(exists(&tree, "nothing", Some(FileType::Symlink), true).unwrap());
        assert!(!exists(&tree, "quotes/descartes", Some(FileType::Symlink), true).unwrap());
        assert!(!exists(&tree, "nothing", None, true).unwrap());
        assert!(exists(&tree, "nothing", None, false).unwrap());
        assert!(exists(&tree, "abs/descartes", regular, true).unwrap());
        assert!(exists(&tree, "up/descartes", regular, true).unwrap());
        assert!(!exists(&tree, "quotes/descartes/x", None, true).unwrap());
        assert!(exists(&tree, "", Some(FileType::Directory), true).unwrap());
    }

    #[test]
    fn symlink_loops_are_an_error() {
        let error = exists(&sample(), "loop", None, true).unwrap_err();
        assert!(error.to_string().contains("too many levels"), "{error}");
    }

    #[test]
    fn stat_reports_dagger_fields() {
        let tree = sample();
        let file = stat(&tree, "i-am", true).unwrap();
        assert_eq!(
            (
                file.file_type,
                file.name.as_str(),
                file.permissions,
                file.size
            ),
            (FileType::Regular, "i-am", 0o444, 4)
        );
        let link = stat(&tree, "i-am", false).unwrap();
        assert_eq!(link.file_type, FileType::Symlink);
        let dir = stat(&tree, "quotes", true).unwrap();
        assert_eq!((dir.size, dir.permissions), (DIRECTORY_SIZE, 0o755));
        assert!(stat(&tree, "", true).is_err());
        assert!(matches!(
            stat(&tree, "nope", true),
            Err(Error::NotFound { .. })
        ));
    }

    #[test]
    fn find_up_walks_to_the_root() {
        let mut tree = sample();
        tree.insert("a/b/c", Entry::dir(0o755)).unwrap();
        tree.insert("a/go.mod", Entry::dir(0o755)).unwrap();
        assert_eq!(
            find_up(&tree, "a/b/c", "go.mod").unwrap().as_deref(),
            Some("a/go.mod")
        );
        assert_eq!(
            find_up(&tree, "a/b", "quotes").unwrap().as_deref(),
            Some("quotes")
        );
        assert_eq!(find_up(&tree, "a/b", "absent").unwrap(), None);
        assert!(find_up(&tree, "quotes/descartes", "x").is_err());
    }
}
