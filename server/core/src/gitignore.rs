//! `.gitignore`-style rules read from the ignore files inside a tree, as
//! `search(skipIgnored: true)` applies them (copies and `Directory.filter`
//! use `filter::Gitignores`, Dagger's rules for those): each file's rules hold for its directory and below, a deeper file
//! overrides a shallower one, and nothing under an ignored directory is kept.
//! Matching is the `ignore` crate's (ripgrep's), over paths only.

use ignore::gitignore::{Gitignore, GitignoreBuilder};
use ignore::Match;

use crate::error::{Error, Result};
use crate::store::Store;
use crate::tree::{Entry, Tree};

/// The rules of every ignore file named one of `names` in a tree.
pub(crate) struct IgnoreRules {
    /// (directory, its rules), deepest directories first.
    matchers: Vec<(String, Gitignore)>,
}

impl IgnoreRules {
    pub(crate) fn from_tree(store: &dyn Store, tree: &Tree, names: &[&str]) -> Result<Self> {
        let mut by_dir: Vec<(String, GitignoreBuilder)> = Vec::new();
        for (path, entry) in &tree.entries {
            let Entry::File { blob, .. } = entry else {
                continue;
            };
            if !names.contains(&Tree::name_of(path)) {
                continue;
            }
            let dir = match path.rfind('/') {
                Some(index) => path[..index].to_owned(),
                None => String::new(),
            };
            let text = String::from_utf8_lossy(&store.get_blob(blob)?).into_owned();
            let index = match by_dir.iter().position(|(existing, _)| *existing == dir) {
                Some(index) => index,
                None => {
                    by_dir.push((dir.clone(), GitignoreBuilder::new(format!("/{dir}"))));
                    by_dir.len() - 1
                }
            };
            for line in text.lines() {
                by_dir[index]
                    .1
                    .add_line(None, line)
                    .map_err(|source| Error::InvalidArgument {
                        message: format!("{path}: invalid ignore rule {line:?}: {source}"),
                    })?;
            }
        }
        let mut matchers = Vec::new();
        for (dir, builder) in by_dir {
            let rules = builder.build().map_err(|source| Error::InvalidArgument {
                message: format!("ignore rules in {dir:?}: {source}"),
            })?;
            matchers.push((dir, rules));
        }
        matchers.sort_by_key(|(dir, _)| std::cmp::Reverse(depth(dir)));
        Ok(Self { matchers })
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.matchers.is_empty()
    }

    /// Whether `path` (relative to the tree's root) is ignored, itself or
    /// through one of its parent directories.
    pub(crate) fn ignored(&self, path: &str, is_dir: bool) -> bool {
        let absolute = format!("/{path}");
        for (dir, rules) in &self.matchers {
            let inside = dir.is_empty() || path.starts_with(&format!("{dir}/"));
            if !inside {
                continue;
            }
            match rules.matched_path_or_any_parents(&absolute, is_dir) {
                Match::Ignore(_) => return true,
                Match::Whitelist(_) => return false,
                Match::None => {}
            }
        }
        false
    }

    /// `tree` without what the rules ignore.
    #[cfg(test)]
    fn apply(&self, tree: &Tree) -> Tree {
        if self.is_empty() {
            return tree.clone();
        }
        Tree {
            entries: tree
                .entries
                .iter()
                .filter(|(path, entry)| !self.ignored(path, entry.is_dir()))
                .map(|(path, entry)| (path.clone(), entry.clone()))
                .collect(),
        }
    }
}

fn depth(dir: &str) -> usize {
    if dir.is_empty() {
        0
    } else {
        dir.matches('/').count() + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    fn tree_with(store: &dyn Store, files: &[(&str, &str)]) -> Tree {
        let mut tree = Tree::default();
        for (path, contents) in files {
            let blob = store.put_blob(contents.as_bytes()).unwrap();
            let entry = Entry::File {
                blob,
                size: contents.len() as u64,
                mode: 0o644,
                mtime: 0,
                owner: crate::tree::Owner::ROOT,
            };
            tree.insert(path, entry).unwrap();
        }
        tree
    }

    #[test]
    fn nested_rules_override_and_directories_hide_their_contents() {
        let store = MemoryStore::default();
        let tree = tree_with(
            &store,
            &[
                (".gitignore", "*.log\nbuild/\n"),
                ("a.log", ""),
                ("keep.txt", ""),
                ("build/out.bin", ""),
                ("sub/.gitignore", "!important.log\n"),
                ("sub/important.log", ""),
                ("sub/other.log", ""),
            ],
        );
        let rules = IgnoreRules::from_tree(&store, &tree, &[".gitignore"]).unwrap();
        let kept: Vec<String> = rules.apply(&tree).entries.into_keys().collect();
        assert_eq!(
            kept,
            [
                ".gitignore",
                "keep.txt",
                "sub",
                "sub/.gitignore",
                "sub/important.log"
            ]
        );
    }
}
