//! Changesets: what changed between two trees (`Directory.changes`), as
//! lists of paths, per-file line counts, a layer of the new content, a
//! git-style patch, and merges of two changesets; and applying changes
//! (`Directory.withChanges`) or a patch (`Directory.withPatch`) to a tree.
//!
//! Paths are relative and directories end with `/`, as in Dagger's API.
//! Removed paths are collapsed: a removed directory stands for everything
//! under it. Patches are written as `git diff --no-index` writes them, so
//! `git apply` and gantry's own `withPatch` take them.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{Error, Result};
use crate::store::Store;
use crate::tree::{Entry, Owner, Tree};

/// The paths of a changeset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangesetPaths {
    /// New files and directories (and the new side of renames).
    pub added: Vec<String>,
    /// Files whose content, mode or link target changed.
    pub modified: Vec<String>,
    /// Removed paths, a removed directory standing for its contents.
    pub removed: Vec<String>,
    /// Every removed path, nested ones included.
    pub all_removed: Vec<String>,
    /// Files moved unchanged: (new path, old path).
    pub renamed: Vec<(String, String)>,
}

fn shown(path: &str, entry: &Entry) -> String {
    if entry.is_dir() {
        format!("{path}/")
    } else {
        path.to_owned()
    }
}

/// Compares two trees.
pub fn compare(before: &Tree, after: &Tree) -> ChangesetPaths {
    let mut paths = ChangesetPaths::default();
    let mut added_files = Vec::new();
    for (path, entry) in &after.entries {
        match before.get(path) {
            None => {
                paths.added.push(shown(path, entry));
                if !entry.is_dir() {
                    added_files.push(path.clone());
                }
            }
            Some(old) if old.is_dir() != entry.is_dir() => {
                paths.all_removed.push(shown(path, old));
                paths.added.push(shown(path, entry));
            }
            Some(old) if old != entry && !entry.is_dir() && !same_content(old, entry) => {
                paths.modified.push(path.clone());
            }
            Some(_) => {}
        }
    }
    for (path, entry) in &before.entries {
        if after.get(path).is_none() {
            paths.all_removed.push(shown(path, entry));
        }
    }
    paths.all_removed.sort();
    paths.removed = collapse(&paths.all_removed);
    // A removed file whose exact content (and mode) reappears under one new
    // name is a rename.
    for new in &added_files {
        let entry = after.get(new).expect("listed from after");
        let sources: Vec<&String> = paths
            .all_removed
            .iter()
            .filter(|old| before.get(old.as_str()) == Some(entry))
            .collect();
        if let [old] = sources.as_slice() {
            paths.renamed.push((new.clone(), (*old).clone()));
        }
    }
    paths.added.sort();
    paths
}

/// Whether two entries differ only in their timestamps.
fn same_content(a: &Entry, b: &Entry) -> bool {
    match (a, b) {
        (
            Entry::File {
                blob: x, mode: m, ..
            },
            Entry::File {
                blob: y, mode: n, ..
            },
        ) => x == y && m == n,
        _ => a == b,
    }
}

/// Sorted paths without those under a removed directory listed too.
fn collapse(sorted: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for path in sorted {
        if out
            .iter()
            .any(|kept| kept.ends_with('/') && path.starts_with(kept.as_str()))
        {
            continue;
        }
        out.push(path.clone());
    }
    out
}

/// The kind of one `DiffStat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiffKind {
    Added,
    Modified,
    Removed,
    Renamed,
}

/// One path's change with its line counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffStat {
    pub path: String,
    pub old_path: Option<String>,
    pub kind: DiffKind,
    pub added_lines: u64,
    pub removed_lines: u64,
}

/// Per-path statistics, sorted by path; removals are listed one by one
/// (directories too), renames once under their new path.
pub fn diff_stats(store: &dyn Store, before: &Tree, after: &Tree) -> Result<Vec<DiffStat>> {
    let paths = compare(before, after);
    let renamed_old: BTreeSet<&String> = paths.renamed.iter().map(|(_, old)| old).collect();
    let renamed_new: BTreeMap<&String, &String> =
        paths.renamed.iter().map(|(new, old)| (new, old)).collect();
    let lines = |entry: Option<&Entry>| -> Result<String> { text_of(store, entry) };
    let mut stats = Vec::new();
    for path in &paths.added {
        if path.ends_with('/') {
            stats.push(stat(path, None, DiffKind::Added, 0, 0));
            continue;
        }
        let new = lines(after.get(path))?;
        match renamed_new.get(path) {
            Some(old) => {
                let (added, removed) = count_lines(&lines(before.get(old.as_str()))?, &new);
                let old = Some((*old).clone());
                stats.push(stat(path, old, DiffKind::Renamed, added, removed));
            }
            None => stats.push(stat(path, None, DiffKind::Added, line_count(&new), 0)),
        }
    }
    for path in &paths.modified {
        let (added, removed) = count_lines(&lines(before.get(path))?, &lines(after.get(path))?);
        stats.push(stat(path, None, DiffKind::Modified, added, removed));
    }
    for path in &paths.all_removed {
        if renamed_old.contains(path) {
            continue;
        }
        let removed = if path.ends_with('/') {
            0
        } else {
            line_count(&lines(before.get(path))?)
        };
        stats.push(stat(path, None, DiffKind::Removed, 0, removed));
    }
    stats.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(stats)
}

fn stat(
    path: &str,
    old_path: Option<String>,
    kind: DiffKind,
    added: u64,
    removed: u64,
) -> DiffStat {
    DiffStat {
        path: path.to_owned(),
        old_path,
        kind,
        added_lines: added,
        removed_lines: removed,
    }
}

/// A file's text ("" for anything else or a binary file).
fn text_of(store: &dyn Store, entry: Option<&Entry>) -> Result<String> {
    match entry {
        Some(Entry::File { blob, .. }) => {
            let bytes = store.get_blob(blob)?;
            Ok(String::from_utf8(bytes).unwrap_or_default())
        }
        Some(Entry::Symlink { target, .. }) => Ok(target.clone()),
        _ => Ok(String::new()),
    }
}

fn line_count(text: &str) -> u64 {
    text.lines().count() as u64
}

fn count_lines(old: &str, new: &str) -> (u64, u64) {
    let patch = diffy::create_patch(old, new);
    let (mut added, mut removed) = (0, 0);
    for hunk in patch.hunks() {
        for line in hunk.lines() {
            match line {
                diffy::Line::Insert(_) => added += 1,
                diffy::Line::Delete(_) => removed += 1,
                diffy::Line::Context(_) => {}
            }
        }
    }
    (added, removed)
}

/// The new and changed entries of `after` (with their parents): what
/// `Changeset.layer` returns. Removals are not represented.
pub fn layer(before: &Tree, after: &Tree) -> Result<Tree> {
    let mut out = Tree::default();
    for (path, entry) in &after.entries {
        if before.get(path) != Some(entry) {
            out.insert(path, entry.clone())?;
        }
    }
    Ok(out)
}

/// `base` with a changeset's changes applied: its removed paths removed,
/// its new and changed entries written.
pub fn apply(base: &Tree, before: &Tree, after: &Tree) -> Result<Tree> {
    let paths = compare(before, after);
    let mut out = base.clone();
    for path in &paths.removed {
        out.remove(path.trim_end_matches('/'));
    }
    out.merge_at("", &layer(before, after)?)?;
    Ok(out)
}

// ---- patches ---------------------------------------------------------------

/// The changeset as a `git diff --no-index --no-prefix a b` patch.
pub fn as_patch(store: &dyn Store, before: &Tree, after: &Tree) -> Result<String> {
    let mut paths: BTreeSet<&String> = BTreeSet::new();
    paths.extend(
        before
            .entries
            .keys()
            .filter(|p| !before.entries[*p].is_dir()),
    );
    paths.extend(after.entries.keys().filter(|p| !after.entries[*p].is_dir()));
    let mut out = String::new();
    for path in paths {
        let (old, new) = (before.get(path), after.get(path));
        if old.is_some_and(|o| new.is_some_and(|n| same_content(o, n))) {
            continue;
        }
        let old = old.filter(|e| !e.is_dir());
        let new = new.filter(|e| !e.is_dir());
        out.push_str(&file_patch(store, path, old, new)?);
    }
    Ok(out)
}

fn git_mode(entry: &Entry) -> String {
    match entry {
        Entry::Symlink { .. } => "120000".into(),
        Entry::File { mode, .. } if mode & 0o111 != 0 => "100755".into(),
        _ => "100644".into(),
    }
}

fn file_patch(
    store: &dyn Store,
    path: &str,
    old: Option<&Entry>,
    new: Option<&Entry>,
) -> Result<String> {
    let mut out = format!("diff --git a/{path} b/{path}\n");
    match (old, new) {
        (None, Some(new)) => out.push_str(&format!("new file mode {}\n", git_mode(new))),
        (Some(old), None) => out.push_str(&format!("deleted file mode {}\n", git_mode(old))),
        (Some(old), Some(new)) if git_mode(old) != git_mode(new) => {
            out.push_str(&format!(
                "old mode {}\nnew mode {}\n",
                git_mode(old),
                git_mode(new)
            ));
        }
        _ => {}
    }
    let read = |entry: Option<&Entry>| -> Result<Option<Vec<u8>>> {
        match entry {
            Some(Entry::File { blob, .. }) => Ok(Some(store.get_blob(blob)?)),
            Some(Entry::Symlink { target, .. }) => Ok(Some(target.as_bytes().to_vec())),
            _ => Ok(None),
        }
    };
    let (old_bytes, new_bytes) = (
        read(old)?.unwrap_or_default(),
        read(new)?.unwrap_or_default(),
    );
    if old_bytes == new_bytes {
        return Ok(out); // a mode change only
    }
    let (Ok(old_text), Ok(new_text)) = (
        std::str::from_utf8(&old_bytes),
        std::str::from_utf8(&new_bytes),
    ) else {
        out.push_str(&format!("Binary files a/{path} and b/{path} differ\n"));
        return Ok(out);
    };
    let from = if old.is_some() {
        format!("a/{path}")
    } else {
        "/dev/null".into()
    };
    let to = if new.is_some() {
        format!("b/{path}")
    } else {
        "/dev/null".into()
    };
    out.push_str(&format!("--- {from}\n+++ {to}\n"));
    let patch = diffy::create_patch(old_text, new_text).to_string();
    // diffy writes its own `---`/`+++` header lines first.
    out.extend(patch.split_inclusive('\n').skip(2));
    Ok(out)
}

/// One file's part of a patch.
#[derive(Debug, Default)]
struct FilePatch {
    old_path: Option<String>,
    new_path: Option<String>,
    new_mode: Option<u32>,
    deleted: bool,
    hunks: String,
    binary: bool,
}

/// Splits a (git or plain unified) patch into its files.
fn parse_patch(patch: &str) -> Result<Vec<FilePatch>> {
    let strip = |path: &str| -> Option<String> {
        let path = path.split('\t').next().unwrap_or(path).trim();
        if path == "/dev/null" {
            return None;
        }
        // `git apply` drops the first component (`a/`, `b/`).
        Some(
            path.split_once('/')
                .map_or(path, |(_, rest)| rest)
                .to_owned(),
        )
    };
    let mut files: Vec<FilePatch> = Vec::new();
    let mut in_hunks = false;
    for line in patch.split_inclusive('\n') {
        let bare = line.trim_end_matches('\n');
        if let Some(names) = bare.strip_prefix("diff --git ") {
            files.push(FilePatch::default());
            in_hunks = false;
            if let Some((a, b)) = names.split_once(" b/") {
                let file = files.last_mut().expect("just pushed");
                file.old_path = strip(a);
                file.new_path = Some(b.to_owned());
            }
            continue;
        }
        if let Some(rest) = bare.strip_prefix("--- ") {
            if files.is_empty() || in_hunks || files.last().is_some_and(|f| !f.hunks.is_empty()) {
                files.push(FilePatch::default());
            }
            let file = files.last_mut().expect("a file is open");
            file.old_path = strip(rest);
            in_hunks = false;
            continue;
        }
        let Some(file) = files.last_mut() else {
            continue; // text before the first file, as `git format-patch` writes
        };
        if let Some(rest) = bare.strip_prefix("+++ ") {
            file.new_path = strip(rest);
            file.deleted = file.new_path.is_none();
        } else if let Some(mode) = bare
            .strip_prefix("new file mode ")
            .or_else(|| bare.strip_prefix("new mode "))
        {
            file.new_mode = u32::from_str_radix(mode.trim(), 8).ok();
        } else if bare.starts_with("deleted file mode ") {
            file.deleted = true;
        } else if let Some(from) = bare.strip_prefix("rename from ") {
            file.old_path = Some(from.to_owned());
        } else if let Some(to) = bare.strip_prefix("rename to ") {
            file.new_path = Some(to.to_owned());
        } else if bare.starts_with("Binary files ") || bare == "GIT binary patch" {
            file.binary = true;
        } else if bare.starts_with("@@") || in_hunks {
            in_hunks = true;
            file.hunks.push_str(line);
        }
    }
    Ok(files)
}

/// `tree` with `patch` applied, as `git apply` would (all or nothing).
pub fn apply_patch(store: &dyn Store, tree: &Tree, patch: &str) -> Result<Tree> {
    let failed = |path: &str, why: String| Error::InvalidArgument {
        message: format!("patch does not apply to {path}: {why}"),
    };
    let mut out = tree.clone();
    for file in parse_patch(patch)? {
        let target = file
            .new_path
            .clone()
            .or(file.old_path.clone())
            .unwrap_or_default();
        if file.binary {
            return Err(Error::Unsupported {
                message: format!("patch for {target}: binary patches are not supported by gantry"),
            });
        }
        let old_entry = file.old_path.as_deref().and_then(|p| tree.get(p)).cloned();
        let old_text = match (&file.old_path, &old_entry) {
            (None, _) => String::new(),
            (Some(path), Some(Entry::File { blob, .. })) => {
                String::from_utf8(store.get_blob(blob)?)
                    .map_err(|_| failed(path, "not a text file".into()))?
            }
            (Some(path), _) => return Err(failed(path, "no such file".into())),
        };
        let new_text = if file.hunks.is_empty() {
            old_text
        } else {
            let text = format!("--- a\n+++ b\n{}", file.hunks);
            let parsed = diffy::Patch::from_str(&text)
                .map_err(|source| failed(&target, source.to_string()))?;
            diffy::apply(&old_text, &parsed)
                .map_err(|source| failed(&target, source.to_string()))?
        };
        if let Some(old) = &file.old_path {
            if file.deleted || file.new_path.as_deref() != Some(old.as_str()) {
                out.remove(old);
                remove_empty_parents(&mut out, old);
            }
        }
        if file.deleted {
            continue;
        }
        let symlink = match file.new_mode {
            Some(mode) => mode & 0o170000 == 0o120000,
            None => matches!(old_entry, Some(Entry::Symlink { .. })),
        };
        if symlink {
            // git stores a link as a file holding its target.
            let target_path = new_text.strip_suffix('\n').unwrap_or(&new_text);
            out.insert(
                &target,
                Entry::Symlink {
                    target: target_path.to_owned(),
                    owner: old_entry.as_ref().map_or(Owner::ROOT, Entry::owner),
                },
            )?;
            continue;
        }
        let old_mode = match old_entry {
            Some(Entry::File { mode, .. }) => mode,
            _ => 0o644,
        };
        let owner = old_entry.as_ref().map_or(Owner::ROOT, Entry::owner);
        let blob = store.put_blob(new_text.as_bytes())?;
        let mode = file.new_mode.map_or(old_mode, |mode| mode & 0o7777);
        out.insert(
            &target,
            Entry::File {
                blob,
                size: new_text.len() as u64,
                mode,
                mtime: 0,
                owner,
            },
        )?;
    }
    Ok(out)
}

/// Removes the directories above `path` that are left empty, as `git
/// apply` does after deleting a file.
fn remove_empty_parents(tree: &mut Tree, path: &str) {
    let mut current = path;
    while let Some(index) = current.rfind('/') {
        current = &current[..index];
        let prefix = format!("{current}/");
        let has_children = tree
            .entries
            .range(prefix.clone()..)
            .next()
            .is_some_and(|(key, _)| key.starts_with(&prefix));
        if has_children {
            return;
        }
        tree.remove(current);
    }
}

// ---- merges -----------------------------------------------------------------

/// What to do when two changesets change the same path differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnConflict {
    /// Fail when a three-way merge of the contents fails.
    Fail,
    /// Fail when both change a path, before merging.
    FailEarly,
    /// Keep git-style conflict markers in text files (a modified file wins
    /// over a removed one).
    LeaveConflictMarkers,
    PreferOurs,
    PreferTheirs,
}

/// A changeset as its two trees.
#[derive(Debug, Clone)]
pub struct Sides<'a> {
    pub before: &'a Tree,
    pub after: &'a Tree,
}

/// Merges `theirs` into `ours`: the result's before is ours (with what
/// only theirs had before), its after ours with their changes applied.
pub fn merge(
    store: &dyn Store,
    ours: Sides<'_>,
    theirs: Sides<'_>,
    on_conflict: OnConflict,
) -> Result<(Tree, Tree)> {
    let mut before = ours.before.clone();
    let mut after = ours.after.clone();
    for (path, entry) in &theirs.before.entries {
        if before.get(path).is_none() {
            before.insert(path, entry.clone())?;
            // A path ours never had is one ours left unchanged (the empty
            // changeset merges anything), unless ours added it.
            if after.get(path).is_none() {
                after.insert(path, entry.clone())?;
            }
        }
    }
    let ours_after = after.clone();
    let mut changed: BTreeSet<&String> = BTreeSet::new();
    for (path, entry) in &theirs.after.entries {
        if theirs.before.get(path) != Some(entry) {
            changed.insert(path);
        }
    }
    for path in theirs.before.entries.keys() {
        if theirs.after.get(path).is_none() {
            changed.insert(path);
        }
    }
    let mut conflicts = Vec::new();
    for path in changed {
        let base = before.get(path);
        let mine = ours_after.get(path);
        let their = theirs.after.get(path);
        let merged = if mine == base || mine == their {
            their.cloned()
        } else if on_conflict == OnConflict::FailEarly {
            conflicts.push(path.clone());
            continue;
        } else {
            match resolve_conflict(store, path, base, mine, their, on_conflict)? {
                Ok(entry) => entry,
                Err(()) => {
                    conflicts.push(path.clone());
                    continue;
                }
            }
        };
        match merged {
            Some(entry) => after.insert(path, entry)?,
            None => {
                after.remove(path);
            }
        }
    }
    if !conflicts.is_empty() {
        return Err(Error::InvalidArgument {
            message: format!("changesets conflict on {}", conflicts.join(", ")),
        });
    }
    Ok((before, after))
}

type Resolution = std::result::Result<Option<Entry>, ()>;

fn resolve_conflict(
    store: &dyn Store,
    path: &str,
    base: Option<&Entry>,
    mine: Option<&Entry>,
    their: Option<&Entry>,
    on_conflict: OnConflict,
) -> Result<Resolution> {
    match on_conflict {
        OnConflict::PreferOurs => return Ok(Ok(mine.cloned())),
        OnConflict::PreferTheirs => return Ok(Ok(their.cloned())),
        _ => {}
    }
    let text = |entry: Option<&Entry>| -> Result<Option<String>> {
        match entry {
            Some(Entry::File { blob, .. }) => Ok(String::from_utf8(store.get_blob(blob)?).ok()),
            None => Ok(Some(String::new())),
            _ => Ok(None),
        }
    };
    let (Some(Entry::File { mode, owner, .. }), Some(Entry::File { .. })) = (mine, their) else {
        // A modify/delete or a type conflict.
        return Ok(match on_conflict {
            OnConflict::LeaveConflictMarkers => Ok(mine.or(their).cloned()),
            _ => Err(()),
        });
    };
    let (Some(base_text), Some(mine_text), Some(their_text)) =
        (text(base)?, text(mine)?, text(their)?)
    else {
        return Ok(Err(()));
    };
    let merged = match diffy::merge(&base_text, &mine_text, &their_text) {
        Ok(merged) => merged,
        Err(marked) if on_conflict == OnConflict::LeaveConflictMarkers => marked,
        Err(_) => {
            let _ = path;
            return Ok(Err(()));
        }
    };
    let blob = store.put_blob(merged.as_bytes())?;
    Ok(Ok(Some(Entry::File {
        blob,
        size: merged.len() as u64,
        mode: *mode,
        mtime: 0,
        owner: *owner,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    fn tree(store: &dyn Store, files: &[(&str, &str)]) -> Tree {
        let mut tree = Tree::default();
        for (path, text) in files {
            if let Some(dir) = path.strip_suffix('/') {
                tree.insert(dir, Entry::dir(0o755)).unwrap();
                continue;
            }
            let blob = store.put_blob(text.as_bytes()).unwrap();
            let entry = Entry::File {
                blob,
                size: text.len() as u64,
                mode: 0o644,
                mtime: 0,
                owner: crate::tree::Owner::ROOT,
            };
            tree.insert(path, entry).unwrap();
        }
        tree
    }

    #[test]
    fn paths_collapse_removed_directories() {
        let store = MemoryStore::default();
        let before = tree(
            &store,
            &[
                ("keep", "k"),
                ("gone/a", "a"),
                ("gone/sub/b", "b"),
                ("empty/", ""),
                ("mod", "1"),
            ],
        );
        let after = tree(&store, &[("keep", "k"), ("mod", "2"), ("new/c", "c")]);
        let paths = compare(&before, &after);
        assert_eq!(paths.added, ["new/", "new/c"]);
        assert_eq!(paths.modified, ["mod"]);
        assert_eq!(paths.removed, ["empty/", "gone/"]);
        assert!(paths.all_removed.contains(&"gone/sub/b".to_owned()));
    }

    #[test]
    fn stats_count_lines_and_find_renames() {
        let store = MemoryStore::default();
        let before = tree(
            &store,
            &[
                ("mod.txt", "one\nold\n"),
                ("remove.txt", "gone\n"),
                ("old.txt", "same\n"),
            ],
        );
        let after = tree(
            &store,
            &[
                ("mod.txt", "one\nnew\n"),
                ("add.txt", "hello\n"),
                ("new.txt", "same\n"),
            ],
        );
        let stats = diff_stats(&store, &before, &after).unwrap();
        let shown: Vec<(&str, DiffKind, u64, u64)> = stats
            .iter()
            .map(|s| (s.path.as_str(), s.kind, s.added_lines, s.removed_lines))
            .collect();
        assert_eq!(
            shown,
            [
                ("add.txt", DiffKind::Added, 1, 0),
                ("mod.txt", DiffKind::Modified, 1, 1),
                ("new.txt", DiffKind::Renamed, 0, 0),
                ("remove.txt", DiffKind::Removed, 0, 1),
            ]
        );
        assert_eq!(stats[2].old_path.as_deref(), Some("old.txt"));
    }

    #[test]
    fn a_patch_applies_back_onto_before() {
        let store = MemoryStore::default();
        let before = tree(
            &store,
            &[
                ("a.txt", "one\ntwo\nthree\n"),
                ("gone.txt", "x\n"),
                ("dir/keep", "k"),
            ],
        );
        let after = tree(
            &store,
            &[
                ("a.txt", "one\n2\nthree\n"),
                ("new.txt", "fresh\n"),
                ("dir/keep", "k"),
            ],
        );
        let patch = as_patch(&store, &before, &after).unwrap();
        assert!(
            patch.contains("diff --git a/a.txt b/a.txt\n--- a/a.txt\n+++ b/a.txt\n"),
            "{patch}"
        );
        assert!(
            patch.contains("new file mode 100644\n--- /dev/null\n+++ b/new.txt\n"),
            "{patch}"
        );
        assert!(patch.contains("deleted file mode 100644\n"), "{patch}");
        let applied = apply_patch(&store, &before, &patch).unwrap();
        assert_eq!(applied.digest(), after.digest());
        let error = apply_patch(&store, &after, &patch).unwrap_err();
        assert!(
            error.to_string().contains("patch does not apply"),
            "{error}"
        );
    }

    #[test]
    fn apply_writes_changes_onto_another_tree() {
        let store = MemoryStore::default();
        let before = tree(&store, &[("a", "1"), ("b", "2")]);
        let after = tree(&store, &[("a", "one"), ("c", "3")]);
        let base = tree(&store, &[("a", "1"), ("b", "2"), ("other", "o")]);
        let result = apply(&base, &before, &after).unwrap();
        let names: Vec<&String> = result.entries.keys().collect();
        assert_eq!(names, ["a", "c", "other"]);
    }

    #[test]
    fn merges_combine_disjoint_edits_and_report_conflicts() {
        let store = MemoryStore::default();
        let base = tree(&store, &[("f", "1\n2\n3\n4\n5\n"), ("g", "g\n")]);
        let ours = tree(&store, &[("f", "one\n2\n3\n4\n5\n"), ("g", "g\n")]);
        let theirs = tree(&store, &[("f", "1\n2\n3\n4\nfive\n"), ("h", "h\n")]);
        let sides = |after| Sides {
            before: &base,
            after,
        };
        let (_, merged) = merge(&store, sides(&ours), sides(&theirs), OnConflict::Fail).unwrap();
        let expected = tree(&store, &[("f", "one\n2\n3\n4\nfive\n"), ("h", "h\n")]);
        assert_eq!(merged.digest(), expected.digest());
        let early = merge(&store, sides(&ours), sides(&theirs), OnConflict::FailEarly).unwrap_err();
        assert!(early.to_string().contains("conflict on f"), "{early}");
        let clash = tree(&store, &[("f", "uno\n2\n3\n4\n5\n"), ("g", "g\n")]);
        assert!(merge(&store, sides(&ours), sides(&clash), OnConflict::Fail).is_err());
        let (_, preferred) = merge(
            &store,
            sides(&ours),
            sides(&clash),
            OnConflict::PreferTheirs,
        )
        .unwrap();
        assert_eq!(preferred.get("f"), clash.get("f"));
        let (_, marked) = merge(
            &store,
            sides(&ours),
            sides(&clash),
            OnConflict::LeaveConflictMarkers,
        )
        .unwrap();
        let Some(Entry::File { blob, .. }) = marked.get("f") else {
            panic!("f is a file")
        };
        assert!(String::from_utf8(store.get_blob(blob).unwrap())
            .unwrap()
            .contains("<<<<<<<"));
    }

    #[test]
    fn the_empty_changeset_merges_with_any_other() {
        let store = MemoryStore::default();
        let empty = Tree::default();
        let base = tree(&store, &[("a", "1\n"), ("d", "d\n")]);
        let edited = tree(&store, &[("a", "one\n"), ("new", "n\n")]);
        let nothing = Sides {
            before: &empty,
            after: &empty,
        };
        let edit = Sides {
            before: &base,
            after: &edited,
        };
        let (before, after) = merge(&store, nothing, edit, OnConflict::Fail).unwrap();
        assert_eq!(before.digest(), base.digest());
        assert_eq!(after.digest(), edited.digest());
        // What ours added and theirs had before is ours' change, not a conflict
        // with an untouched path.
        let added = tree(&store, &[("x", "x\n")]);
        let ours = Sides {
            before: &empty,
            after: &added,
        };
        let theirs_before = tree(&store, &[("y", "y\n")]);
        let theirs_after = tree(&store, &[("y", "why\n")]);
        let theirs = Sides {
            before: &theirs_before,
            after: &theirs_after,
        };
        let (_, after) = merge(&store, ours, theirs, OnConflict::FailEarly).unwrap();
        let names: Vec<&String> = after.entries.keys().collect();
        assert_eq!(names, ["x", "y"]);
    }
}
