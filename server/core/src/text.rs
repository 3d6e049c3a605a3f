//! Small text helpers shared by the solver: variable expansion, secret
//! scrubbing (of whole outputs, and of output streamed in pieces), output
//! trimming, and arguments as error messages repeat them.

/// The most of an argument an error message repeats (bytes).
pub const ECHO_LIMIT: usize = 1024;

/// `text` quoted as an error message repeats it: whole when short, else
/// its first `ECHO_LIMIT` bytes and its length, so a 1 MB argument never
/// comes back in a 1 MB error.
pub fn quoted(text: &str) -> String {
    if text.len() <= ECHO_LIMIT {
        return format!("{text:?}");
    }
    let mut end = ECHO_LIMIT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{:?}… ({} bytes)", &text[..end], text.len())
}

/// Expands `$NAME` and `${NAME}` from `env`; unknown names expand to "".
pub(crate) fn expand_vars(text: &str, env: &[(String, String)]) -> String {
    let lookup = |name: &str| {
        env.iter()
            .rev()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .unwrap_or("")
    };
    let mut out = String::with_capacity(text.len());
    let mut chars = text.char_indices().peekable();
    while let Some((_, ch)) = chars.next() {
        if ch != '$' {
            out.push(ch);
            continue;
        }
        match chars.peek().copied() {
            Some((_, '{')) => {
                chars.next();
                let mut name = String::new();
                for (_, c) in chars.by_ref() {
                    if c == '}' {
                        break;
                    }
                    name.push(c);
                }
                out.push_str(lookup(&name));
            }
            Some((_, c)) if c == '_' || c.is_ascii_alphabetic() => {
                let mut name = String::new();
                while let Some(&(_, c)) = chars.peek() {
                    if c == '_' || c.is_ascii_alphanumeric() {
                        name.push(c);
                        chars.next();
                    } else {
                        break;
                    }
                }
                out.push_str(lookup(&name));
            }
            _ => out.push('$'),
        }
    }
    out
}

/// Replaces every occurrence of each secret (and its whitespace-trimmed
/// form) with `***`. Longer secrets go first so a secret containing another
/// is masked whole.
pub(crate) fn scrub_secrets(text: &str, secrets: &[&str]) -> String {
    let mut needles: Vec<&str> = secrets
        .iter()
        .flat_map(|secret| [*secret, secret.trim()])
        .filter(|needle| !needle.is_empty())
        .collect();
    needles.sort_by_key(|needle| std::cmp::Reverse(needle.len()));
    needles.dedup();
    let mut out = text.to_owned();
    for needle in needles {
        if out.contains(needle) {
            out = out.replace(needle, "***");
        }
    }
    out
}

/// The longest partial line `LineScrubber` holds before passing it on as a
/// line of its own (output without newlines still shows).
const MAX_LINE: usize = 8 * 1024;

/// Turns output arriving in pieces split anywhere into complete lines with
/// every secret value (and its trimmed form) replaced by `***`, even a value
/// split across pieces or spanning lines: bytes that could still be the
/// start of a secret are held back until they are known not to be.
///
/// A line is what a terminal would show of it: up to `\n`, after the last
/// `\r` (progress bars redraw with `\r`).
pub(crate) struct LineScrubber {
    /// Secret forms, longest first.
    needles: Vec<Vec<u8>>,
    /// Scrubbed bytes not yet ended by a newline.
    clean: Vec<u8>,
    /// Bytes not yet scrubbed: a possible start of a secret.
    held: Vec<u8>,
}

impl LineScrubber {
    pub(crate) fn new(secrets: &[&str]) -> Self {
        let mut needles: Vec<Vec<u8>> = secrets
            .iter()
            .flat_map(|secret| [*secret, secret.trim()])
            .filter(|needle| !needle.is_empty())
            .map(|needle| needle.as_bytes().to_vec())
            .collect();
        needles.sort_by_key(|needle| std::cmp::Reverse(needle.len()));
        needles.dedup();
        Self {
            needles,
            clean: Vec::new(),
            held: Vec::new(),
        }
    }

    /// Takes the next piece; returns the lines it completed.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        if self.needles.is_empty() {
            self.clean.extend_from_slice(bytes);
            return self.lines(false);
        }
        self.held.extend_from_slice(bytes);
        let held = std::mem::take(&mut self.held);
        let mut at = 0;
        'scan: while at < held.len() {
            let rest = &held[at..];
            if self
                .needles
                .iter()
                .any(|needle| rest.len() < needle.len() && needle.starts_with(rest))
            {
                // Could still become a secret: wait for more.
                break 'scan;
            }
            for needle in &self.needles {
                if rest.starts_with(needle) {
                    self.clean.extend_from_slice(b"***");
                    at += needle.len();
                    continue 'scan;
                }
            }
            self.clean.push(held[at]);
            at += 1;
        }
        self.held = held[at..].to_vec();
        self.lines(false)
    }

    /// The end of the output: whatever is left, as a last line.
    pub(crate) fn finish(&mut self) -> Vec<String> {
        let held = std::mem::take(&mut self.held);
        // A held prefix of a secret is not the secret; scrub as a whole.
        let rest = String::from_utf8_lossy(&held).into_owned();
        let plaintexts: Vec<String> = self
            .needles
            .iter()
            .map(|needle| String::from_utf8_lossy(needle).into_owned())
            .collect();
        let refs: Vec<&str> = plaintexts.iter().map(String::as_str).collect();
        self.clean
            .extend_from_slice(scrub_secrets(&rest, &refs).as_bytes());
        self.lines(true)
    }

    fn lines(&mut self, last: bool) -> Vec<String> {
        let mut lines = Vec::new();
        while let Some(end) = self.clean.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.clean.drain(..=end).collect();
            lines.push(shown_line(&line[..end]));
        }
        if (last && !self.clean.is_empty()) || self.clean.len() > MAX_LINE {
            let line = std::mem::take(&mut self.clean);
            lines.push(shown_line(&line));
        }
        lines
    }
}

/// What a terminal shows of one line: the text after its last carriage
/// return (a trailing one, as in CRLF, ends the line instead).
fn shown_line(line: &[u8]) -> String {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let start = line
        .iter()
        .rposition(|b| *b == b'\r')
        .map_or(0, |index| index + 1);
    String::from_utf8_lossy(&line[start..]).into_owned()
}

/// The last `max` bytes of `text` (on a character boundary).
pub(crate) fn tail(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_arguments_are_cut_with_their_length() {
        assert_eq!(quoted("a/b"), "\"a/b\"");
        let long = "é".repeat(ECHO_LIMIT);
        let shown = quoted(&long);
        assert!(shown.len() < ECHO_LIMIT + 40, "{}", shown.len());
        assert!(
            shown.ends_with(&format!("… ({} bytes)", long.len())),
            "{shown}"
        );
    }

    #[test]
    fn expands_both_forms() {
        let env = vec![("A".into(), "1".into()), ("B_2".into(), "two".into())];
        assert_eq!(expand_vars("$A-${B_2}-$C-$", &env), "1-two--$");
    }

    #[test]
    fn scrubs_secrets_and_trimmed_forms() {
        assert_eq!(
            scrub_secrets("token=abc123 again abc123", &["abc123\n"]),
            "token=*** again ***"
        );
        assert_eq!(scrub_secrets("nothing here", &[""]), "nothing here");
    }

    /// Feeds `pieces` one by one and returns every line, in order.
    fn lines_of(secrets: &[&str], pieces: &[&str]) -> Vec<String> {
        let mut scrubber = LineScrubber::new(secrets);
        let mut lines = Vec::new();
        for piece in pieces {
            lines.extend(scrubber.push(piece.as_bytes()));
        }
        lines.extend(scrubber.finish());
        lines
    }

    #[test]
    fn streamed_lines_come_whole_and_scrubbed() {
        assert_eq!(
            lines_of(
                &["hunter2"],
                &["one\ntw", "o\r\nthe key is hun", "ter2!\nend"]
            ),
            ["one", "two", "the key is ***!", "end"]
        );
    }

    #[test]
    fn a_secret_split_at_every_byte_never_shows() {
        let secret = "s3cr3t-value";
        let text = format!("a {secret} b {secret}\nc {secret}");
        for split in 0..text.len() {
            let (first, second) = text.split_at(split);
            let lines = lines_of(&[secret], &[first, second]);
            assert_eq!(lines, ["a *** b ***", "c ***"], "split at {split}");
        }
        let one_byte_each: Vec<String> = text.chars().map(String::from).collect();
        let pieces: Vec<&str> = one_byte_each.iter().map(String::as_str).collect();
        assert_eq!(lines_of(&[secret], &pieces), ["a *** b ***", "c ***"]);
    }

    #[test]
    fn a_multi_line_secret_is_masked_across_lines() {
        let key = "-----BEGIN KEY-----\nabc\n-----END KEY-----\n";
        let text = format!("before\n{key}after\n");
        for split in 0..text.len() {
            let (first, second) = text.split_at(split);
            let lines = lines_of(&[key], &[first, second]);
            assert_eq!(lines, ["before", "***after"], "split at {split}");
        }
    }

    #[test]
    fn the_longer_form_of_a_secret_wins_and_progress_bars_collapse() {
        assert_eq!(lines_of(&["tok\n"], &["x tok", "\ny tok"]), ["x ***y ***"]);
        assert_eq!(lines_of(&[], &["10%\r50%\r100%\n"]), ["100%"]);
        let long = "x".repeat(MAX_LINE + 1);
        assert_eq!(lines_of(&[], &[&long]), [long]);
    }

    #[test]
    fn tail_keeps_the_end() {
        assert_eq!(tail("abcdef", 3), "def");
        assert_eq!(tail("ab", 3), "ab");
    }
}
