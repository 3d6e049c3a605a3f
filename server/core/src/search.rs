//! Text search in files and trees (`Directory.search`, `File.search`) with
//! ripgrep's semantics as Dagger runs it: Rust regex syntax, one result per
//! matched line (or block of lines in multiline mode) with the byte offsets
//! of each match in it, hidden and ignored files searched unless skipped,
//! binary files and symlinks never. Also the literal replacement behind
//! `File.withReplaced`.

use ignore::overrides::{Override, OverrideBuilder};
use regex::bytes::{Regex, RegexBuilder};

use crate::error::{Error, Result};
use crate::gitignore::IgnoreRules;
use crate::store::Store;
use crate::tree::{self, Entry, Tree};

/// A byte range `(start, end)` of a match.
type Span = (usize, usize);

/// The arguments `search` takes on both types.
#[derive(Debug, Clone, Default)]
pub struct SearchOptions {
    pub pattern: String,
    pub literal: bool,
    pub multiline: bool,
    pub dotall: bool,
    pub insensitive: bool,
    pub skip_ignored: bool,
    pub skip_hidden: bool,
    pub files_only: bool,
    pub limit: Option<usize>,
}

/// One match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchResult {
    pub file_path: String,
    /// 1-based number of the first matched line.
    pub line_number: u64,
    /// Byte offset of the matched lines in the file.
    pub absolute_offset: u64,
    /// The matched lines, newline included.
    pub matched_lines: String,
    pub submatches: Vec<Submatch>,
}

/// A match's position within its result's `matched_lines`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submatch {
    pub text: String,
    pub start: u64,
    pub end: u64,
}

impl SearchOptions {
    fn regex(&self) -> Result<Regex> {
        let pattern = if self.literal {
            regex::escape(&self.pattern)
        } else {
            self.pattern.clone()
        };
        RegexBuilder::new(&pattern)
            .case_insensitive(self.insensitive)
            .multi_line(true)
            .dot_matches_new_line(self.multiline && self.dotall)
            .build()
            .map_err(|source| Error::InvalidArgument {
                message: format!("search: invalid pattern {:?}: {source}", self.pattern),
            })
    }

    fn full(&self, results: &[SearchResult]) -> bool {
        self.limit.is_some_and(|limit| results.len() >= limit)
    }
}

/// Searches one file's contents (`File.search`); results name it `name`.
pub fn search_file(
    name: &str,
    content: &[u8],
    options: &SearchOptions,
) -> Result<Vec<SearchResult>> {
    let regex = options.regex()?;
    let mut results = Vec::new();
    if !is_binary(content) {
        search_content(name, content, &regex, options, &mut results);
    }
    Ok(results)
}

/// Searches a tree's files (`Directory.search`), in path order. `paths`
/// restricts the search to those files or directories, `globs` are
/// ripgrep's `--glob` rules (`!` excludes).
pub fn search_tree(
    store: &dyn Store,
    tree: &Tree,
    options: &SearchOptions,
    paths: &[String],
    globs: &[String],
) -> Result<Vec<SearchResult>> {
    let regex = options.regex()?;
    let roots = paths
        .iter()
        .map(|path| tree::normalize(path))
        .collect::<Result<Vec<_>>>()?;
    let globs = glob_rules(globs)?;
    let ignored = if options.skip_ignored {
        let mut names = vec![".ignore", ".rgignore"];
        // ripgrep reads .gitignore files only inside a git repository.
        if tree.get(".git").is_some() {
            names.push(".gitignore");
        }
        Some(IgnoreRules::from_tree(store, tree, &names)?)
    } else {
        None
    };
    let mut results = Vec::new();
    for (path, entry) in &tree.entries {
        let Entry::File { blob, .. } = entry else {
            continue;
        };
        let under_root = roots.is_empty()
            || roots.iter().any(|root| {
                root.is_empty() || path == root || path.starts_with(&format!("{root}/"))
            });
        let explicit = roots.iter().any(|root| root == path);
        if !under_root
            || (options.skip_hidden && !explicit && is_hidden(path))
            || ignored
                .as_ref()
                .is_some_and(|rules| rules.ignored(path, false))
            || (!explicit && globs.matched(path, false).is_ignore())
        {
            continue;
        }
        let content = store.get_blob(blob)?;
        if is_binary(&content) {
            continue;
        }
        search_content(path, &content, &regex, options, &mut results);
        if options.full(&results) {
            break;
        }
    }
    Ok(results)
}

fn glob_rules(globs: &[String]) -> Result<Override> {
    let mut builder = OverrideBuilder::new("/");
    for glob in globs {
        builder.add(glob).map_err(|source| Error::InvalidArgument {
            message: format!("search: invalid glob {glob:?}: {source}"),
        })?;
    }
    builder.build().map_err(|source| Error::InvalidArgument {
        message: format!("search: invalid globs: {source}"),
    })
}

fn is_hidden(path: &str) -> bool {
    path.split('/').any(|part| part.starts_with('.'))
}

/// Like ripgrep: a NUL byte marks a binary file, which is not searched.
fn is_binary(content: &[u8]) -> bool {
    content.contains(&0)
}

fn search_content(
    name: &str,
    content: &[u8],
    regex: &Regex,
    options: &SearchOptions,
    results: &mut Vec<SearchResult>,
) {
    if options.files_only {
        if regex.is_match(content) {
            results.push(SearchResult {
                file_path: name.to_owned(),
                line_number: 0,
                absolute_offset: 0,
                matched_lines: String::new(),
                submatches: Vec::new(),
            });
        }
        return;
    }
    if !options.multiline {
        // Line by line: a match never crosses a line end.
        let mut offset = 0;
        for line in content.split_inclusive(|byte| *byte == b'\n') {
            let text = line.strip_suffix(b"\n").unwrap_or(line);
            let spans: Vec<(usize, usize)> = regex
                .find_iter(text)
                .map(|m| (offset + m.start(), offset + m.end()))
                .collect();
            if !spans.is_empty() {
                results.push(result_of(
                    name,
                    content,
                    (offset, offset + line.len(), spans),
                ));
                if options.full(results) {
                    return;
                }
            }
            offset += line.len();
        }
        return;
    }
    // Each result spans whole lines; matches whose lines overlap the
    // previous result's join it (a line is reported once, with all its
    // matches).
    // (first line start, end, the matches as byte ranges)
    let mut current: Option<(usize, usize, Vec<Span>)> = None;
    for found in regex.find_iter(content) {
        let start = line_start(content, found.start());
        let last = if found.end() > found.start() {
            found.end() - 1
        } else {
            found.start()
        };
        let end = line_end(content, last);
        match &mut current {
            Some((_, block_end, spans)) if start < *block_end => {
                *block_end = (*block_end).max(end);
                spans.push((found.start(), found.end()));
            }
            _ => {
                if let Some(block) = current.take() {
                    results.push(result_of(name, content, block));
                    if options.full(results) {
                        return;
                    }
                }
                current = Some((start, end, vec![(found.start(), found.end())]));
            }
        }
    }
    if let Some(block) = current {
        if !options.full(results) {
            results.push(result_of(name, content, block));
        }
    }
}

fn line_start(content: &[u8], at: usize) -> usize {
    content[..at]
        .iter()
        .rposition(|byte| *byte == b'\n')
        .map_or(0, |index| index + 1)
}

/// The end (after its newline) of the line holding byte `at`.
fn line_end(content: &[u8], at: usize) -> usize {
    let from = at.min(content.len());
    content[from..]
        .iter()
        .position(|byte| *byte == b'\n')
        .map_or(content.len(), |index| from + index + 1)
}

fn result_of(
    name: &str,
    content: &[u8],
    (start, end, spans): (usize, usize, Vec<(usize, usize)>),
) -> SearchResult {
    SearchResult {
        file_path: name.to_owned(),
        line_number: content[..start]
            .iter()
            .filter(|byte| **byte == b'\n')
            .count() as u64
            + 1,
        absolute_offset: start as u64,
        matched_lines: String::from_utf8_lossy(&content[start..end]).into_owned(),
        submatches: spans
            .into_iter()
            .map(|(from, to)| Submatch {
                text: String::from_utf8_lossy(&content[from..to]).into_owned(),
                start: (from - start) as u64,
                end: (to - start) as u64,
            })
            .collect(),
    }
}

/// `File.withReplaced`: `content` with `search` replaced by `replacement`,
/// Dagger's rules: without `all` the text must occur exactly once (at or
/// after line `first_from` when given, then the first such occurrence is
/// replaced); with `all` every occurrence is, and none is not an error.
pub fn replace(
    content: &[u8],
    search: &str,
    replacement: &str,
    all: bool,
    first_from: Option<u64>,
) -> Result<Vec<u8>> {
    if search.is_empty() {
        return Err(Error::InvalidArgument {
            message: "withReplaced: search must not be empty".into(),
        });
    }
    let from_line = first_from.unwrap_or(1).max(1);
    let offset = if from_line > 1 {
        let mut line = 1;
        let mut offset = content.len();
        for (index, byte) in content.iter().enumerate() {
            if line == from_line {
                offset = index;
                break;
            }
            if *byte == b'\n' {
                line += 1;
                if line == from_line {
                    offset = index + 1;
                    break;
                }
            }
        }
        offset
    } else {
        0
    };
    let needle = search.as_bytes();
    let positions: Vec<usize> = find_all(&content[offset..], needle)
        .into_iter()
        .map(|at| at + offset)
        .collect();
    if positions.is_empty() {
        if all {
            return Ok(content.to_vec());
        }
        return Err(Error::InvalidArgument {
            message: "search string not found".into(),
        });
    }
    if !all && first_from.is_none() && positions.len() > 1 {
        let lines: Vec<String> = positions
            .iter()
            .map(|at| {
                let line = content[..*at].iter().filter(|b| **b == b'\n').count() + 1;
                let column = at - line_start(content, *at);
                format!("line {line} ({column}-{})", column + needle.len())
            })
            .collect();
        return Err(Error::InvalidArgument {
            message: format!("search string found multiple times: {}", lines.join(", ")),
        });
    }
    let chosen = if all { positions } else { vec![positions[0]] };
    let mut out = Vec::with_capacity(content.len());
    let mut last = 0;
    for at in chosen {
        out.extend_from_slice(&content[last..at]);
        out.extend_from_slice(replacement.as_bytes());
        last = at + needle.len();
    }
    out.extend_from_slice(&content[last..]);
    Ok(out)
}

/// Non-overlapping occurrences of `needle`, left to right.
fn find_all(haystack: &[u8], needle: &[u8]) -> Vec<usize> {
    let mut found = Vec::new();
    let mut at = 0;
    while at + needle.len() <= haystack.len() {
        if &haystack[at..at + needle.len()] == needle {
            found.push(at);
            at += needle.len();
        } else {
            at += 1;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    fn options(pattern: &str) -> SearchOptions {
        SearchOptions {
            pattern: pattern.into(),
            ..SearchOptions::default()
        }
    }

    #[test]
    fn one_result_per_line_with_every_match_in_it() {
        let text = b"alpha beta\ngamma alpha alpha\ndelta\n";
        let results = search_file("f", text, &options("alpha")).unwrap();
        assert_eq!(results.len(), 2);
        assert_eq!(results[0].line_number, 1);
        assert_eq!(results[0].matched_lines, "alpha beta\n");
        assert_eq!(results[1].line_number, 2);
        assert_eq!(results[1].absolute_offset, 11);
        let spans: Vec<(u64, u64)> = results[1]
            .submatches
            .iter()
            .map(|s| (s.start, s.end))
            .collect();
        assert_eq!(spans, [(6, 11), (12, 17)]);
    }

    #[test]
    fn options_change_what_matches() {
        let text = b"Hello\nworld\n";
        assert!(search_file("f", text, &options("hello"))
            .unwrap()
            .is_empty());
        let insensitive = SearchOptions {
            insensitive: true,
            ..options("hello")
        };
        assert_eq!(search_file("f", text, &insensitive).unwrap().len(), 1);
        assert!(search_file("f", text, &options("o\\nw"))
            .unwrap()
            .is_empty());
        let multiline = SearchOptions {
            multiline: true,
            ..options("o\\nw")
        };
        let found = search_file("f", text, &multiline).unwrap();
        assert_eq!(found[0].matched_lines, "Hello\nworld\n");
        let literal = SearchOptions {
            literal: true,
            ..options("l.o")
        };
        assert!(search_file("f", b"llo", &literal).unwrap().is_empty());
        assert!(search_file("f", b"x\0y", &options("x")).unwrap().is_empty());
    }

    #[test]
    fn trees_are_searched_in_path_order_with_filters() {
        let store = MemoryStore::default();
        let mut tree = Tree::default();
        for (path, text) in [
            ("b.txt", "needle"),
            ("a/c.md", "needle"),
            (".hidden", "needle"),
            ("z.txt", "hay"),
        ] {
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
        let paths = |results: Vec<SearchResult>| -> Vec<String> {
            results.into_iter().map(|r| r.file_path).collect()
        };
        let all = search_tree(&store, &tree, &options("needle"), &[], &[]).unwrap();
        assert_eq!(paths(all), [".hidden", "a/c.md", "b.txt"]);
        let skip = SearchOptions {
            skip_hidden: true,
            limit: Some(1),
            ..options("needle")
        };
        assert_eq!(
            paths(search_tree(&store, &tree, &skip, &[], &[]).unwrap()),
            ["a/c.md"]
        );
        let globbed =
            search_tree(&store, &tree, &options("needle"), &[], &["*.txt".into()]).unwrap();
        assert_eq!(paths(globbed), ["b.txt"]);
        let under = search_tree(&store, &tree, &options("needle"), &["a".into()], &[]).unwrap();
        assert_eq!(paths(under), ["a/c.md"]);
    }

    #[test]
    fn replace_follows_dagger_rules() {
        let text = b"a x\nb x\nc x\n";
        assert!(replace(text, "x", "y", false, None)
            .unwrap_err()
            .to_string()
            .contains("found multiple times: line 1 (2-3), line 2 (2-3), line 3 (2-3)"));
        assert_eq!(
            replace(text, "x", "y", true, None).unwrap(),
            b"a y\nb y\nc y\n"
        );
        assert_eq!(
            replace(text, "x", "y", false, Some(2)).unwrap(),
            b"a x\nb y\nc x\n"
        );
        assert_eq!(
            replace(text, "b", "B", false, None).unwrap(),
            b"a x\nB x\nc x\n"
        );
        assert!(replace(text, "q", "y", false, None).is_err());
        assert_eq!(replace(text, "q", "y", true, None).unwrap(), text);
    }
}
