//! Which paths of a directory a copy keeps: `include`/`exclude` patterns
//! (`PathFilter`) and `.gitignore` rules (`Gitignores`), as Dagger applies
//! them when it copies a directory or reads one from the host.
//!
//! Patterns follow Docker's `.dockerignore` rules, which Dagger uses: `*`
//! and `?` stay within one path component, `**` spans any number, a pattern
//! that matches a directory matches everything under it, a leading `!`
//! negates, and the last pattern that matches a path decides. With include
//! patterns a directory that matches none of them is only looked into: it
//! is kept when something under it is (`Verdict::Traverse`), so a copy never
//! gains empty directories that the patterns did not ask for.

use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use ignore::gitignore::{Gitignore, GitignoreBuilder};

use crate::error::{Error, Result};

/// What a filter does with one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Keep it (a directory: with whatever under it is kept too).
    Keep,
    /// A directory kept only if something under it is kept.
    Traverse,
    /// Leave it out (a directory: with everything under it).
    Skip,
}

pub(crate) fn glob(pattern: &str) -> Result<globset::Glob> {
    GlobBuilder::new(pattern.trim_start_matches("./"))
        .literal_separator(true)
        .build()
        .map_err(|source| Error::InvalidArgument {
            message: format!("invalid glob pattern {pattern:?}: {source}"),
        })
}

/// One pattern: what it matches (itself, or anything under a match), its
/// polarity and the part of it before the first wildcard.
#[derive(Debug)]
struct Pattern {
    set: GlobSet,
    negated: bool,
    /// Leading components without wildcards: `src/*/x` → `src`.
    literal: String,
}

impl Pattern {
    fn new(pattern: &str) -> Result<Self> {
        let (negated, pattern) = match pattern.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, pattern),
        };
        let trimmed = pattern
            .trim_start_matches("./")
            .trim_start_matches('/')
            .trim_end_matches('/');
        let trimmed = if trimmed.is_empty() || trimmed == "." {
            "**"
        } else {
            trimmed
        };
        let set = GlobSetBuilder::new()
            .add(glob(trimmed)?)
            .add(glob(&format!("{trimmed}/**"))?)
            .build()
            .map_err(|source| Error::InvalidArgument {
                message: format!("invalid glob pattern {pattern:?}: {source}"),
            })?;
        let literal = trimmed
            .split('/')
            .take_while(|part| !part.contains(['*', '?', '[', '{']))
            .collect::<Vec<_>>()
            .join("/");
        Ok(Self {
            set,
            negated,
            literal,
        })
    }

    /// Whether this pattern could match `dir` or something under it.
    fn reaches(&self, dir: &str) -> bool {
        let literal = &self.literal;
        literal.is_empty()
            || literal == dir
            || literal.starts_with(&format!("{dir}/"))
            || dir.starts_with(&format!("{literal}/"))
    }
}

/// An ordered list of patterns; the last one that matches decides.
#[derive(Debug, Default)]
struct Patterns(Vec<Pattern>);

impl Patterns {
    fn new(patterns: &[String]) -> Result<Self> {
        patterns
            .iter()
            .filter(|pattern| !pattern.is_empty())
            .map(|pattern| Pattern::new(pattern))
            .collect::<Result<Vec<_>>>()
            .map(Patterns)
    }

    fn matches(&self, path: &str) -> bool {
        self.0.iter().fold(false, |matched, pattern| {
            if pattern.set.is_match(path) {
                !pattern.negated
            } else {
                matched
            }
        })
    }

    fn reach(&self, dir: &str, negated_only: bool) -> bool {
        self.0
            .iter()
            .any(|pattern| (pattern.negated || !negated_only) && pattern.reaches(dir))
    }
}

/// `include`/`exclude` patterns. Exclusion wins over inclusion.
#[derive(Debug, Default)]
pub(crate) struct PathFilter {
    include: Option<Patterns>,
    exclude: Patterns,
}

impl PathFilter {
    pub(crate) fn new(include: &[String], exclude: &[String]) -> Result<Self> {
        let include = Patterns::new(include)?;
        Ok(Self {
            include: (!include.0.is_empty()).then_some(include),
            exclude: Patterns::new(exclude)?,
        })
    }

    /// Whether the filter keeps everything.
    pub(crate) fn is_empty(&self) -> bool {
        self.include.is_none() && self.exclude.0.is_empty()
    }

    /// What to do with `path` (relative, normalised).
    pub(crate) fn verdict(&self, path: &str, is_dir: bool) -> Verdict {
        if self.exclude.matches(path) {
            // A negated exclude pattern may take back something under it.
            return if is_dir && self.exclude.reach(path, true) {
                Verdict::Traverse
            } else {
                Verdict::Skip
            };
        }
        match &self.include {
            None => Verdict::Keep,
            Some(include) if include.matches(path) => Verdict::Keep,
            Some(include) if is_dir && include.reach(path, false) => Verdict::Traverse,
            Some(_) => Verdict::Skip,
        }
    }
}

/// The `.gitignore` files that apply to a directory tree, each with the
/// directory it sits in (relative to the tree's root, "" for the root).
/// A deeper file's rules take precedence, as in git, and nothing under an
/// ignored directory can be taken back.
#[derive(Default)]
pub(crate) struct Gitignores {
    files: Vec<(String, Gitignore)>,
}

/// Gitignore matchers see paths under this virtual root.
const ROOT: &str = "/";

fn virtual_path(path: &str) -> PathBuf {
    Path::new(ROOT).join(path)
}

impl Gitignores {
    /// Adds the rules of the `.gitignore` in `dir`, given its text.
    pub(crate) fn add(&mut self, dir: &str, text: &str) -> Result<()> {
        let mut builder = GitignoreBuilder::new(virtual_path(dir));
        for line in text.lines() {
            builder
                .add_line(None, line)
                .map_err(|source| Error::InvalidArgument {
                    message: format!("{dir}/.gitignore: {source}"),
                })?;
        }
        let matcher = builder.build().map_err(|source| Error::InvalidArgument {
            message: format!("{dir}/.gitignore: {source}"),
        })?;
        self.files.push((dir.to_owned(), matcher));
        Ok(())
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Whether `path` is ignored by its own name (the caller checks that no
    /// directory above it is ignored).
    pub(crate) fn ignores(&self, path: &str, is_dir: bool) -> bool {
        let full = virtual_path(path);
        let mut applicable: Vec<&(String, Gitignore)> = self
            .files
            .iter()
            .filter(|(dir, _)| dir.is_empty() || path.starts_with(&format!("{dir}/")))
            .collect();
        // Deepest first: its decision wins.
        applicable.sort_by_key(|(dir, _)| std::cmp::Reverse(dir.len()));
        for (_, matcher) in applicable {
            let matched = matcher.matched(&full, is_dir);
            if matched.is_ignore() {
                return true;
            }
            if matched.is_whitelist() {
                return false;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(include: &[&str], exclude: &[&str]) -> PathFilter {
        let owned = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        PathFilter::new(&owned(include), &owned(exclude)).unwrap()
    }

    #[test]
    fn include_patterns_only_look_into_directories_they_do_not_match() {
        let rar = filter(&["*.rar"], &[]);
        assert_eq!(rar.verdict("c.txt.rar", false), Verdict::Keep);
        assert_eq!(rar.verdict("subdir", true), Verdict::Traverse);
        assert_eq!(rar.verdict("subdir/f.txt.rar", false), Verdict::Skip);
        let nested = filter(&["src/**/*.go"], &[]);
        assert_eq!(nested.verdict("src/a", true), Verdict::Traverse);
        assert_eq!(nested.verdict("src/a/x.go", false), Verdict::Keep);
        assert_eq!(nested.verdict("docs", true), Verdict::Skip);
        let dir = filter(&["src"], &[]);
        assert_eq!(dir.verdict("src", true), Verdict::Keep);
        assert_eq!(dir.verdict("src/deep/x", false), Verdict::Keep);
    }

    #[test]
    fn exclusion_wins_and_the_last_matching_pattern_decides() {
        let both = filter(&["a.txt"], &["*.txt"]);
        assert_eq!(both.verdict("a.txt", false), Verdict::Skip);
        let dir = filter(&[], &["subdir"]);
        assert_eq!(dir.verdict("subdir", true), Verdict::Skip);
        assert_eq!(dir.verdict("subdir/d.txt", false), Verdict::Skip);
        assert_eq!(dir.verdict("a.txt", false), Verdict::Keep);
        let negated = filter(&[], &["*", "!src"]);
        assert_eq!(negated.verdict("src", true), Verdict::Keep);
        assert_eq!(negated.verdict("src/main.rs", false), Verdict::Keep);
        assert_eq!(negated.verdict("docs", true), Verdict::Skip);
        let inner = filter(&[], &["build", "!build/keep"]);
        assert_eq!(inner.verdict("build", true), Verdict::Traverse);
        assert_eq!(inner.verdict("build/keep", false), Verdict::Keep);
        assert_eq!(inner.verdict("build/other", false), Verdict::Skip);
    }

    #[test]
    fn deeper_gitignores_win_and_anchor_at_their_directory() {
        let mut rules = Gitignores::default();
        rules
            .add("", "**.txt\n.git/\n!subdir/e.txt\n*.md\n")
            .unwrap();
        rules.add("subdir2", "*.yaml\n.gitignore\n").unwrap();
        assert!(rules.ignores("a.txt", false));
        assert!(rules.ignores(".git", true));
        assert!(!rules.ignores(".gitignore", false));
        assert!(!rules.ignores("subdir/e.txt", false));
        assert!(rules.ignores("subdir/g.txt", false));
        assert!(!rules.ignores("subdir/h.yaml", false));
        assert!(rules.ignores("subdir2/bool.yaml", false));
        assert!(rules.ignores("subdir2/.gitignore", false));
        assert!(!rules.ignores("subdir2/foo.go", false));
    }
}
