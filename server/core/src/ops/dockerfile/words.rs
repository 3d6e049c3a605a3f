//! Dockerfile words as BuildKit's shell lexer reads them: quotes (`'…'`
//! literal, `"…"` with escapes and expansion), the escape character, and
//! variable expansion (`$NAME`, `${NAME}`, `${NAME:-default}`,
//! `${NAME-default}`, `${NAME:+alt}`, `${NAME+alt}`, `${NAME:?message}`).
//! Used for the arguments of every instruction but the command of a
//! shell-form `RUN`/`CMD`/`ENTRYPOINT`, which the shell itself expands.

use crate::error::{Error, Result};

/// The variables a word expands against (`name`, value); later entries
/// win. `None` marks a declared but unset `ARG`.
pub(crate) type Vars<'a> = &'a [(String, Option<String>)];

fn lookup<'a>(vars: Vars<'a>, name: &str) -> Option<&'a str> {
    vars.iter()
        .rev()
        .find(|(candidate, _)| candidate == name)
        .and_then(|(_, value)| value.as_deref())
}

fn invalid(message: String) -> Error {
    Error::InvalidArgument {
        message: format!("Dockerfile: {message}"),
    }
}

struct Lexer<'a> {
    chars: Vec<char>,
    at: usize,
    escape: char,
    vars: Vars<'a>,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        self.at += 1;
        c
    }

    /// Reads words until the input ends; `split` breaks them at unquoted
    /// whitespace, else the whole input is one word.
    fn words(&mut self, split: bool) -> Result<Vec<String>> {
        let mut words = Vec::new();
        let mut word = String::new();
        let mut started = false;
        while let Some(c) = self.next() {
            match c {
                c if split && c.is_whitespace() => {
                    if started {
                        words.push(std::mem::take(&mut word));
                        started = false;
                    }
                }
                '\'' => {
                    started = true;
                    loop {
                        match self.next() {
                            Some('\'') => break,
                            Some(c) => word.push(c),
                            None => return Err(invalid("unterminated single quote".into())),
                        }
                    }
                }
                '"' => {
                    started = true;
                    self.double_quoted(&mut word)?;
                }
                '$' => {
                    started = true;
                    word.push_str(&self.variable()?);
                }
                c if c == self.escape => {
                    started = true;
                    match self.next() {
                        Some(next) => word.push(next),
                        None => word.push(c),
                    }
                }
                c => {
                    started = true;
                    word.push(c);
                }
            }
        }
        if started || !split {
            words.push(word);
        }
        Ok(words)
    }

    fn double_quoted(&mut self, word: &mut String) -> Result<()> {
        loop {
            match self.next() {
                Some('"') => return Ok(()),
                Some('$') => word.push_str(&self.variable()?),
                Some(c) if c == self.escape => match self.peek() {
                    Some(next) if next == '"' || next == '$' || next == self.escape => {
                        word.push(next);
                        self.at += 1;
                    }
                    _ => word.push(c),
                },
                Some(c) => word.push(c),
                None => return Err(invalid("unterminated double quote".into())),
            }
        }
    }

    /// After a `$`: the expansion of what follows.
    fn variable(&mut self) -> Result<String> {
        match self.peek() {
            Some('{') => {
                self.at += 1;
                self.braced()
            }
            Some(c) if c.is_ascii_alphanumeric() || c == '_' => {
                let mut name = String::new();
                while let Some(c) = self.peek() {
                    if !(c.is_ascii_alphanumeric() || c == '_') {
                        break;
                    }
                    name.push(c);
                    self.at += 1;
                }
                Ok(lookup(self.vars, &name).unwrap_or_default().to_owned())
            }
            _ => Ok("$".into()),
        }
    }

    fn braced(&mut self) -> Result<String> {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if !(c.is_ascii_alphanumeric() || c == '_') {
                break;
            }
            name.push(c);
            self.at += 1;
        }
        let value = lookup(self.vars, &name);
        let operator = match self.next() {
            Some('}') => return Ok(value.unwrap_or_default().to_owned()),
            Some(':') => match self.next() {
                Some(op @ ('-' | '+' | '?')) => format!(":{op}"),
                other => {
                    return Err(invalid(format!(
                        "unsupported modifier ':{}' in ${{{name}…}}",
                        other.unwrap_or(' ')
                    )))
                }
            },
            Some(op @ ('-' | '+' | '?')) => op.to_string(),
            other => {
                return Err(invalid(format!(
                    "unsupported expansion ${{{name}{}…}}",
                    other.unwrap_or(' ')
                )))
            }
        };
        let word = self.until_brace()?;
        let set = value.is_some();
        let non_empty = value.is_some_and(|v| !v.is_empty());
        let value = value.unwrap_or_default().to_owned();
        Ok(match operator.as_str() {
            ":-" if non_empty => value,
            "-" if set => value,
            ":-" | "-" => word,
            ":+" if non_empty => word,
            "+" if set => word,
            ":+" | "+" => String::new(),
            ":?" if non_empty => value,
            "?" if set => value,
            _ => {
                let message = if word.is_empty() {
                    "is not set".to_owned()
                } else {
                    word
                };
                return Err(invalid(format!("{name}: {message}")));
            }
        })
    }

    /// The (expanded) word of `${NAME-word}` up to its closing brace.
    fn until_brace(&mut self) -> Result<String> {
        let mut word = String::new();
        loop {
            match self.next() {
                Some('}') => return Ok(word),
                Some('$') => word.push_str(&self.variable()?),
                Some('\'') => loop {
                    match self.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err(invalid("unterminated single quote".into())),
                    }
                },
                Some('"') => self.double_quoted(&mut word)?,
                Some(c) if c == self.escape => {
                    if let Some(next) = self.next() {
                        word.push(next);
                    }
                }
                Some(c) => word.push(c),
                None => return Err(invalid("missing '}' in a variable expansion".into())),
            }
        }
    }
}

/// One word, expanded and unquoted (whitespace kept).
pub(crate) fn word(text: &str, vars: Vars<'_>, escape: char) -> Result<String> {
    let mut lexer = Lexer {
        chars: text.chars().collect(),
        at: 0,
        escape,
        vars,
    };
    Ok(lexer.words(false)?.pop().unwrap_or_default())
}

/// Words split at unquoted whitespace, each expanded and unquoted.
pub(crate) fn words(text: &str, vars: Vars<'_>, escape: char) -> Result<Vec<String>> {
    let mut lexer = Lexer {
        chars: text.chars().collect(),
        at: 0,
        escape,
        vars,
    };
    lexer.words(true)
}

/// `KEY=VALUE …` pairs (`ENV`, `LABEL`, `ARG`), or the legacy `KEY VALUE`
/// form of `ENV`/`LABEL` (`legacy`: the rest of the line is the value).
/// `ARG NAME` without a value gives `None`.
pub(crate) fn pairs(
    text: &str,
    vars: Vars<'_>,
    escape: char,
    legacy: bool,
) -> Result<Vec<(String, Option<String>)>> {
    let first = words(text, &[], escape)?;
    let is_pairs = first.first().is_some_and(|word| word.contains('='));
    if legacy && !is_pairs {
        let trimmed = text.trim_start();
        let split = trimmed
            .find(char::is_whitespace)
            .ok_or_else(|| invalid(format!("{text:?} needs a value")))?;
        let (name, value) = trimmed.split_at(split);
        return Ok(vec![(
            name.to_owned(),
            Some(word(value.trim(), vars, escape)?),
        )]);
    }
    let mut out = Vec::new();
    for raw in split_raw(text, escape) {
        match raw.split_once('=') {
            Some((name, value)) => {
                let name = word(name, vars, escape)?;
                out.push((name, Some(word(value, vars, escape)?)));
            }
            None => out.push((word(&raw, vars, escape)?, None)),
        }
    }
    Ok(out)
}

/// Splits at unquoted whitespace without expanding or unquoting, so each
/// `KEY=VALUE` can be expanded on its own.
fn split_raw(text: &str, escape: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
            }
            (None, '\'' | '"') => {
                quote = Some(c);
                current.push(c);
            }
            (Some(open), c) if c == open => {
                quote = None;
                current.push(c);
            }
            (_, c) if c == escape => {
                current.push(c);
                if let Some(next) = chars.next() {
                    current.push(next);
                }
            }
            (_, c) => current.push(c),
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// A shell-form command as the shell gets it: line continuations (the
/// escape character before a newline) removed.
pub(crate) fn shell_command(text: &str, escape: char) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == escape {
            // Whitespace may trail the escape before the newline.
            let mut lookahead = chars.clone();
            let mut skipped = 0;
            while lookahead.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
                lookahead.next();
                skipped += 1;
            }
            if lookahead.peek() == Some(&'\n') {
                for _ in 0..=skipped {
                    chars.next();
                }
                continue;
            }
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vec<(String, Option<String>)> {
        vec![
            ("A".into(), Some("alpha".into())),
            ("EMPTY".into(), Some(String::new())),
            ("UNSET".into(), None),
        ]
    }

    #[test]
    fn words_expand_and_unquote_like_buildkit() {
        let v = vars();
        let w = |text| words(text, &v, '\\').unwrap();
        assert_eq!(
            w("$A ${A}b \"$A c\" '$A'"),
            ["alpha", "alphab", "alpha c", "$A"]
        );
        assert_eq!(
            w("${EMPTY:-d} ${EMPTY-d}x ${UNSET-d} ${A:+set}"),
            ["d", "x", "d", "set"]
        );
        assert_eq!(w(r"a\ b c\$A"), ["a b", "c$A"]);
        assert_eq!(w("${NOPE}x $"), ["x", "$"]);
        let error = words("${UNSET:?must be set}", &v, '\\').unwrap_err();
        assert!(error.to_string().contains("UNSET: must be set"), "{error}");
    }

    #[test]
    fn pairs_take_both_forms() {
        let v = vars();
        let p = |text, legacy| pairs(text, &v, '\\', legacy).unwrap();
        assert_eq!(
            p("X=1 Y=\"two words\" Z=$A", false),
            [
                ("X".into(), Some("1".into())),
                ("Y".into(), Some("two words".into())),
                ("Z".into(), Some("alpha".into()))
            ]
        );
        assert_eq!(p("NAME", false), [("NAME".into(), None)]);
        assert_eq!(
            p("KEY the rest $A", true),
            [("KEY".into(), Some("the rest alpha".into()))]
        );
    }

    #[test]
    fn continuations_are_joined() {
        assert_eq!(
            shell_command("echo a \\\n  && echo b", '\\'),
            "echo a   && echo b"
        );
        assert_eq!(shell_command("echo a \\  \nb", '\\'), "echo a b");
        assert_eq!(shell_command("echo \\$x", '\\'), "echo \\$x");
        assert_eq!(shell_command("echo a `\nb", '`'), "echo a b");
    }
}
