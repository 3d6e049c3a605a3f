//! Case conversion and comment wrapping shared by every language.

/// `withExec` → `with_exec`, `loadContainerFromID` → `load_container_from_id`,
/// `OCIMediaTypes` → `oci_media_types`.
pub(crate) fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (index, &ch) in chars.iter().enumerate() {
        if ch.is_ascii_uppercase() {
            let previous = index.checked_sub(1).map(|i| chars[i]);
            let next = chars.get(index + 1).copied();
            let boundary = match previous {
                Some(prev) if prev.is_ascii_lowercase() || prev.is_ascii_digit() => true,
                Some(prev) if prev.is_ascii_uppercase() => {
                    next.is_some_and(|n| n.is_ascii_lowercase())
                }
                _ => false,
            };
            if boundary && !out.ends_with('_') {
                out.push('_');
            }
            out.push(ch.to_ascii_lowercase());
        } else {
            out.push(ch);
        }
    }
    out
}

/// Greedy word wrap of one paragraph line to `width` columns. Words longer
/// than `width` stay whole (URLs, paths).
pub(crate) fn wrap_line(line: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = String::new();
    for word in line.split_whitespace() {
        if !current.is_empty() && current.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(word);
    }
    if !current.is_empty() || lines.is_empty() {
        lines.push(current);
    }
    lines
}

/// Wraps text line by line, keeping the author's line breaks (lists, code).
pub(crate) fn wrap(text: &str, width: usize) -> Vec<String> {
    text.trim()
        .lines()
        .flat_map(|line| {
            if line.trim().is_empty() {
                vec![String::new()]
            } else {
                wrap_line(line, width)
            }
        })
        .collect()
}

/// The lines of a doc comment: the wrapped summary, a blank line, then each
/// tag (`@param …`) wrapped with a hanging indent of `hang` spaces. Text is
/// taken as given (escape it first); lines carry no comment markers.
pub(crate) fn doc_lines(
    summary: Option<&str>,
    tags: &[String],
    width: usize,
    hang: usize,
) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    if let Some(summary) = summary {
        lines.extend(wrap(summary, width));
    }
    if !tags.is_empty() {
        if !lines.is_empty() {
            lines.push(String::new());
        }
        let indent = " ".repeat(hang);
        for tag in tags {
            let mut wrapped = wrap_line(tag, width).into_iter();
            if let Some(first) = wrapped.next() {
                lines.push(first);
            }
            let rest: Vec<String> = wrapped.collect();
            if !rest.is_empty() {
                for line in wrap_line(&rest.join(" "), width - hang) {
                    lines.push(format!("{indent}{line}"));
                }
            }
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_handles_acronyms() {
        assert_eq!(snake_case("withExec"), "with_exec");
        assert_eq!(snake_case("loadContainerFromID"), "load_container_from_id");
        assert_eq!(snake_case("OCIMediaTypes"), "oci_media_types");
        assert_eq!(
            snake_case("insecureSkipTlsVerify"),
            "insecure_skip_tls_verify"
        );
        assert_eq!(snake_case("id"), "id");
        assert_eq!(snake_case("from"), "from");
        assert_eq!(snake_case("sha256Sum"), "sha256_sum");
    }

    #[test]
    fn wrap_keeps_long_words_and_breaks() {
        assert_eq!(wrap_line("a b c", 3), vec!["a b", "c"]);
        assert_eq!(wrap_line("abcdef g", 3), vec!["abcdef", "g"]);
        assert_eq!(wrap("one\n\ntwo", 80), vec!["one", "", "two"]);
    }
}
