//! Environment files (`EnvFile`): `NAME=value` lines kept as written, and
//! read the way a shell (and Dagger) reads them: quotes removed (`'…'`
//! literal, `"…"` with `\` escapes), `$NAME` and `${NAME}` (also
//! `${NAME:-default}`) replaced by other variables of the file in any order
//! (cycles are an error), else by the engine's environment, else an error.
//! Command substitution (`$(…)`, backticks) is refused.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// An environment file's contents.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvFile {
    /// `NAME=raw value`, in order (duplicates allowed: the last wins).
    pub variables: Vec<String>,
    /// Recorded as Dagger records it; values are always read expanded.
    pub expand: bool,
    /// Variables only used to expand others (what `namespace` left out).
    #[serde(default)]
    pub context: Vec<String>,
}

/// Where an unknown name is looked up last (the engine's environment).
pub type Fallback<'a> = &'a dyn Fn(&str) -> Option<String>;

fn split(line: &str) -> (&str, &str) {
    line.split_once('=').unwrap_or((line, ""))
}

impl EnvFile {
    /// Parses a file's text: one `NAME=value` per line (`export ` allowed),
    /// blank lines and `#` comments skipped.
    pub fn parse(text: &str, expand: bool) -> EnvFile {
        let mut file = EnvFile {
            expand,
            ..EnvFile::default()
        };
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let line = line.strip_prefix("export ").map_or(line, str::trim_start);
            let (name, value) = split(line);
            file = file.with_variable(name.trim(), value);
        }
        file
    }

    /// Sets `name` (replacing its first occurrence, else appended).
    pub fn with_variable(&self, name: &str, value: &str) -> EnvFile {
        let mut out = self.clone();
        let line = format!("{name}={value}");
        match out
            .variables
            .iter_mut()
            .find(|existing| split(existing).0 == name)
        {
            Some(slot) => *slot = line,
            None => out.variables.push(line),
        }
        out
    }

    /// Removes every occurrence of `name`.
    pub fn without_variable(&self, name: &str) -> EnvFile {
        let mut out = self.clone();
        out.variables.retain(|line| split(line).0 != name);
        out
    }

    pub fn exists(&self, name: &str) -> bool {
        self.variables.iter().any(|line| split(line).0 == name)
    }

    /// The value as written (last occurrence).
    pub fn raw(&self, name: &str) -> Option<&str> {
        self.variables
            .iter()
            .rev()
            .map(|line| split(line))
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value)
    }

    /// The value read as a shell would, `None` when the name is not set.
    pub fn get(&self, name: &str, fallback: Fallback<'_>) -> Result<Option<String>> {
        if !self.exists(name) {
            return Ok(None);
        }
        Evaluator::new(self, fallback).lookup(name).map(Some)
    }

    /// Every variable (each name once, sorted), raw or read.
    pub fn list(&self, raw: bool, fallback: Fallback<'_>) -> Result<Vec<(String, String)>> {
        let mut names: BTreeMap<&str, &str> = BTreeMap::new();
        for line in &self.variables {
            let (name, value) = split(line);
            names.insert(name, value);
        }
        let mut evaluator = Evaluator::new(self, fallback);
        names
            .into_iter()
            .map(|(name, value)| {
                let value = if raw {
                    value.to_owned()
                } else {
                    evaluator.lookup(name)?
                };
                Ok((name.to_owned(), value))
            })
            .collect()
    }

    /// The variables whose names start with `prefix` (compared without
    /// case, `-` and `_` alike, camelCase words split), prefix removed; the
    /// others stay as context for expansion.
    pub fn namespace(&self, prefix: &str) -> EnvFile {
        let mut out = EnvFile {
            expand: self.expand,
            context: self.context.clone(),
            ..EnvFile::default()
        };
        let wanted = words(prefix);
        for line in &self.variables {
            let (name, value) = split(line);
            match strip_prefix_words(name, &wanted) {
                Some(rest) => out = out.with_variable(rest, value),
                None => out.context.push(line.clone()),
            }
        }
        out
    }

    /// The file's text, one variable per line.
    pub fn render(&self) -> String {
        let mut text = self.variables.join("\n");
        if !self.variables.is_empty() {
            text.push('\n');
        }
        text
    }
}

/// Lowercase words of a name: split at `_`, `-` and lower→upper changes.
fn words(name: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut previous_lower = false;
    for c in name.chars() {
        if c == '_' || c == '-' {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            previous_lower = false;
            continue;
        }
        if c.is_uppercase() && previous_lower && !current.is_empty() {
            out.push(std::mem::take(&mut current));
        }
        previous_lower = c.is_lowercase() || c.is_ascii_digit();
        current.extend(c.to_lowercase());
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// `name` without its first words when they are `prefix`, and the `_`
/// after them.
fn strip_prefix_words<'a>(name: &'a str, prefix: &[String]) -> Option<&'a str> {
    if prefix.is_empty() {
        return None;
    }
    // Walk the name's characters, matching the prefix's words in order.
    let mut index = 0;
    let bytes: Vec<(usize, char)> = name.char_indices().collect();
    for (n, word) in prefix.iter().enumerate() {
        for expected in word.chars() {
            let (_, c) = *bytes.get(index)?;
            if c.to_lowercase().next() != Some(expected) {
                return None;
            }
            index += 1;
        }
        let last = n + 1 == prefix.len();
        match bytes.get(index) {
            Some((_, '_' | '-')) => index += 1,
            Some(_) if !last => {}
            _ => return None,
        }
    }
    let at = bytes.get(index).map_or(name.len(), |(at, _)| *at);
    let rest = &name[at..];
    (!rest.is_empty()).then_some(rest)
}

/// Reads values, expanding references between them (memoised).
struct Evaluator<'a> {
    raw: BTreeMap<&'a str, &'a str>,
    context: BTreeMap<&'a str, &'a str>,
    fallback: Fallback<'a>,
    done: BTreeMap<String, String>,
    active: Vec<String>,
}

impl<'a> Evaluator<'a> {
    fn new(file: &'a EnvFile, fallback: Fallback<'a>) -> Self {
        let collect = |lines: &'a [String]| lines.iter().map(|line| split(line)).collect();
        Self {
            raw: collect(&file.variables),
            context: collect(&file.context),
            fallback,
            done: BTreeMap::new(),
            active: Vec::new(),
        }
    }

    fn lookup(&mut self, name: &str) -> Result<String> {
        if let Some(value) = self.done.get(name) {
            return Ok(value.clone());
        }
        let Some(raw) = self
            .raw
            .get(name)
            .or_else(|| self.context.get(name))
            .copied()
        else {
            return (self.fallback)(name).ok_or_else(|| Error::InvalidArgument {
                message: format!("env file: variable {name} is not set"),
            });
        };
        if self.active.iter().any(|active| active == name) {
            return Err(Error::InvalidArgument {
                message: format!(
                    "env file: circular reference: {} -> {name}",
                    self.active.join(" -> ")
                ),
            });
        }
        self.active.push(name.to_owned());
        let value = self.word(raw).map_err(|error| match error {
            Error::InvalidArgument { message } if !message.starts_with("env file") => {
                Error::InvalidArgument {
                    message: format!("env file: {name}: {message}"),
                }
            }
            other => other,
        });
        self.active.pop();
        let value = value?;
        self.done.insert(name.to_owned(), value.clone());
        Ok(value)
    }

    /// A value as a shell word (words separated by blanks are joined with
    /// one space).
    fn word(&mut self, raw: &str) -> Result<String> {
        if !raw.contains(['\'', '"', '$', '`', '\\']) {
            return Ok(raw.to_owned());
        }
        let chars: Vec<char> = raw.trim().chars().collect();
        let mut out = String::new();
        let mut i = 0;
        let mut pending_space = false;
        while i < chars.len() {
            let c = chars[i];
            if c.is_whitespace() {
                pending_space = true;
                i += 1;
                continue;
            }
            if c == '#' && pending_space {
                break; // a comment
            }
            if pending_space {
                out.push(' ');
                pending_space = false;
            }
            match c {
                '\'' => {
                    let end = find(&chars, i + 1, '\'')?;
                    out.extend(&chars[i + 1..end]);
                    i = end + 1;
                }
                '"' => {
                    i = self.double_quoted(&chars, i + 1, &mut out)?;
                }
                '\\' => {
                    if let Some(next) = chars.get(i + 1) {
                        out.push(*next);
                    }
                    i += 2;
                }
                '$' => i = self.dollar(&chars, i, &mut out)?,
                '`' => return Err(command_substitution()),
                other => {
                    out.push(other);
                    i += 1;
                }
            }
        }
        Ok(out)
    }

    fn double_quoted(&mut self, chars: &[char], mut i: usize, out: &mut String) -> Result<usize> {
        while i < chars.len() {
            match chars[i] {
                '"' => return Ok(i + 1),
                '\\' if matches!(chars.get(i + 1), Some('"' | '\\' | '$' | '`')) => {
                    out.push(chars[i + 1]);
                    i += 2;
                }
                '$' => i = self.dollar(chars, i, out)?,
                '`' => return Err(command_substitution()),
                other => {
                    out.push(other);
                    i += 1;
                }
            }
        }
        Err(Error::InvalidArgument {
            message: "unterminated double quote".into(),
        })
    }

    /// Expands the reference at `chars[i] == '$'`; returns where it ends.
    fn dollar(&mut self, chars: &[char], i: usize, out: &mut String) -> Result<usize> {
        match chars.get(i + 1) {
            Some('(') => Err(command_substitution()),
            Some('{') => {
                let end = find(chars, i + 2, '}')?;
                let inner: String = chars[i + 2..end].iter().collect();
                let (name, default) = match inner.split_once(":-").or_else(|| inner.split_once('-'))
                {
                    Some((name, default)) => (name.to_owned(), Some(default.to_owned())),
                    None => (inner, None),
                };
                let value = match (self.known(&name), default) {
                    (true, _) | (false, None) => self.lookup(&name)?,
                    (false, Some(default)) => self.word(&default)?,
                };
                out.push_str(&value);
                Ok(end + 1)
            }
            Some(c) if c.is_ascii_alphabetic() || *c == '_' => {
                let end = (i + 1..chars.len())
                    .find(|j| !(chars[*j].is_ascii_alphanumeric() || chars[*j] == '_'))
                    .unwrap_or(chars.len());
                let name: String = chars[i + 1..end].iter().collect();
                out.push_str(&self.lookup(&name)?);
                Ok(end)
            }
            _ => {
                out.push('$');
                Ok(i + 1)
            }
        }
    }

    fn known(&self, name: &str) -> bool {
        self.raw.contains_key(name)
            || self.context.contains_key(name)
            || (self.fallback)(name).is_some()
    }
}

fn find(chars: &[char], from: usize, wanted: char) -> Result<usize> {
    (from..chars.len())
        .find(|j| chars[*j] == wanted)
        .ok_or_else(|| Error::InvalidArgument {
            message: format!("unterminated {wanted}"),
        })
}

fn command_substitution() -> Error {
    Error::InvalidArgument {
        message: "command substitution is not supported in env files".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn values_are_read_like_a_shell_reads_them() {
        let file = EnvFile::parse(
            "# comment\nanimal=dog\nexport superhero=${animal}man\nmessage=\"hello, nice $animal\"\nsingle='${animal}'\nplain=lots of (weird) characters &^\nquoted=\"with \\\"quotes\\\"\"\nlater=$early\nearly=first\n",
            false,
        );
        let get = |name| file.get(name, &none).unwrap().unwrap();
        assert_eq!(get("superhero"), "dogman");
        assert_eq!(get("message"), "hello, nice dog");
        assert_eq!(get("single"), "${animal}");
        assert_eq!(get("plain"), "lots of (weird) characters &^");
        assert_eq!(get("quoted"), "with \"quotes\"");
        assert_eq!(get("later"), "first");
        assert_eq!(file.raw("message"), Some("\"hello, nice $animal\""));
        assert_eq!(file.get("absent", &none).unwrap(), None);
    }

    #[test]
    fn unknown_and_circular_references_fail() {
        let file = EnvFile::default()
            .with_variable("a", "$b")
            .with_variable("b", "$a")
            .with_variable("c", "$nowhere")
            .with_variable("d", "${nowhere:-fallback}")
            .with_variable("e", "$(echo hi)");
        assert!(file
            .get("a", &none)
            .unwrap_err()
            .to_string()
            .contains("circular"));
        assert!(file
            .get("c", &none)
            .unwrap_err()
            .to_string()
            .contains("not set"));
        assert_eq!(file.get("d", &none).unwrap().unwrap(), "fallback");
        let from_engine = |name: &str| (name == "nowhere").then(|| "engine".to_owned());
        assert_eq!(file.get("c", &from_engine).unwrap().unwrap(), "engine");
        assert!(file.get("e", &none).is_err());
    }

    #[test]
    fn namespaces_match_names_loosely() {
        let file = EnvFile::default()
            .with_variable("my_app_token", "secret")
            .with_variable("myApp_name", "petstore")
            .with_variable("MY_aPp_URL", "http://localhost")
            .with_variable("ROOT", "/r")
            .with_variable("my_app_dir", "$ROOT/x");
        let spaced = file.namespace("my-app");
        let vars = spaced.list(false, &none).unwrap();
        assert_eq!(
            vars,
            [
                ("URL".to_owned(), "http://localhost".to_owned()),
                ("dir".to_owned(), "/r/x".to_owned()),
                ("name".to_owned(), "petstore".to_owned()),
                ("token".to_owned(), "secret".to_owned()),
            ]
        );
        assert!(!spaced.exists("ROOT"));
    }

    #[test]
    fn editing_keeps_order_and_renders_lines() {
        let file = EnvFile::default()
            .with_variable("A", "1")
            .with_variable("B", "2")
            .with_variable("A", "3")
            .without_variable("B");
        assert_eq!(file.render(), "A=3\n");
    }
}
