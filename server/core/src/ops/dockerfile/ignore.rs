//! `.dockerignore`: which files of the build context a Dockerfile sees.
//!
//! As Docker reads it: one pattern per line, `#` comments, patterns
//! relative to the context root (a leading `/` is dropped, paths are
//! cleaned), Go `filepath.Match` syntax plus `**` for any number of
//! directories, `!` re-includes, and the last matching line wins. A
//! pattern that matches a directory excludes everything under it.
//! `<Dockerfile>.dockerignore` beside the Dockerfile takes precedence over
//! `.dockerignore` at the root, as in BuildKit.

use crate::error::{Error, Result};
use crate::tree::{self, Tree};

struct Rule {
    matcher: globset::GlobMatcher,
    include: bool,
}

pub(crate) struct DockerIgnore {
    rules: Vec<Rule>,
}

impl DockerIgnore {
    pub(crate) fn parse(text: &str) -> Result<Self> {
        let mut rules = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (include, pattern) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            let cleaned = tree::normalize(pattern).unwrap_or_else(|_| pattern.to_owned());
            if cleaned.is_empty() {
                continue;
            }
            let matcher = globset::GlobBuilder::new(&cleaned)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|error| Error::InvalidArgument {
                    message: format!(".dockerignore: invalid pattern {line:?}: {error}"),
                })?
                .compile_matcher();
            rules.push(Rule { matcher, include });
        }
        Ok(Self { rules })
    }

    /// Whether `path` (or a directory above it) is excluded.
    fn excluded(&self, path: &str) -> bool {
        let mut excluded = false;
        for rule in &self.rules {
            // A pattern matching a parent directory applies to its contents.
            let hit = std::iter::once(path)
                .chain(path.match_indices('/').map(|(at, _)| &path[..at]))
                .any(|candidate| rule.matcher.is_match(candidate));
            if hit {
                excluded = !rule.include;
            }
        }
        excluded
    }

    /// The context without what these rules exclude. Directories that are
    /// excluded but hold re-included files stay, as parents of those files.
    pub(crate) fn apply(&self, context: &Tree) -> Result<Tree> {
        if self.rules.is_empty() {
            return Ok(context.clone());
        }
        let mut kept = Tree::default();
        for (path, entry) in &context.entries {
            if !self.excluded(path) {
                kept.insert(path, entry.clone())?;
            }
        }
        Ok(kept)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;
    use crate::tree::Entry;

    fn context(paths: &[&str]) -> Tree {
        let mut tree = Tree::default();
        for path in paths {
            let entry = Entry::File {
                blob: Digest::of_bytes(path.as_bytes()),
                size: 1,
                mode: 0o644,
                mtime: 0,
                owner: crate::tree::Owner::ROOT,
            };
            tree.insert(path, entry).unwrap();
        }
        tree
    }

    fn kept(rules: &str, paths: &[&str]) -> Vec<String> {
        let tree = DockerIgnore::parse(rules)
            .unwrap()
            .apply(&context(paths))
            .unwrap();
        tree.entries
            .iter()
            .filter(|(_, entry)| !entry.is_dir())
            .map(|(path, _)| path.clone())
            .collect()
    }

    #[test]
    fn patterns_exclude_and_exceptions_re_include() {
        let paths = [
            "main.go",
            "README.md",
            "docs/a.md",
            "build/out.bin",
            "build/keep.txt",
            "src/x.log",
            "x.log",
        ];
        assert_eq!(
            kept(
                "# comment\n*.md\n/build\n!build/keep.txt\n**/*.log\n",
                &paths
            ),
            ["build/keep.txt", "docs/a.md", "main.go"]
        );
        // The last matching line wins.
        assert_eq!(kept("!main.go\n*.go\n", &["main.go", "b"]), ["b"]);
        assert_eq!(kept("", &["a"]), ["a"]);
    }
}
