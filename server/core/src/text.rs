//! Small text helpers shared by the solver: variable expansion, secret
//! scrubbing, output trimming, and arguments as error messages repeat them.

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

    #[test]
    fn tail_keeps_the_end() {
        assert_eq!(tail("abcdef", 3), "def");
        assert_eq!(tail("ab", 3), "ab");
    }
}
