//! The names every SDK shares with the engine (`gantry_api::env`: the
//! environment variables, the working-directory and version headers, the
//! version mismatch warning and the default socket rule) and the release version (`gantry_api::VERSION`, Cargo.toml's
//! `[workspace.package] version`), as the `env` templates see them. Each SDK's
//! names module is rendered from this, so the engine and the four SDKs cannot
//! drift apart.

use gantry_api::env as names;
use serde::Serialize;

#[derive(Debug, Serialize)]
pub(crate) struct Shared {
    /// The version the engine and every SDK are released under.
    version: &'static str,
    /// The variables the SDKs read, in definition order.
    variables: Vec<SharedVariable>,
    /// The key of the socket variable (`SOCKET`), for `socket_path`.
    socket_key: &'static str,
    /// Its name (`GANTRY_SOCKET`).
    socket_name: &'static str,
    workdir_header: &'static str,
    /// The response header naming the engine's version.
    version_header: &'static str,
    /// The request header naming the SDK and its version.
    client_header: &'static str,
    /// The key of the variable overriding the SDK's version in tests.
    test_version_key: &'static str,
    /// The mismatch warning, with `{sdk}` and `{engine}` to substitute.
    version_warning: &'static str,
    /// The same in pieces of at most 72 characters (cut after a space), for
    /// languages whose linters limit the line length.
    version_warning_parts: Vec<&'static str>,
    /// Bytes the header carries as they are; every other is percent-encoded.
    workdir_unreserved: &'static str,
    socket: Socket,
}

#[derive(Debug, Serialize)]
struct SharedVariable {
    /// The constant's name in the SDKs' own style, from `SESSION_PORT`.
    key: &'static str,
    name: &'static str,
    doc: &'static str,
}

#[derive(Debug, Serialize)]
struct Socket {
    runtime_dir_variable: &'static str,
    subdirectory: &'static str,
    fallback_prefix: &'static str,
    file_name: &'static str,
    /// `` `$XDG_RUNTIME_DIR/gantry/engine.sock`, else `/tmp/gantry-$UID/engine.sock` ``
    describe: String,
}

impl Shared {
    pub(crate) fn new() -> Self {
        let variables = names::SDK_VARIABLES;
        let rule = names::DEFAULT_SOCKET;
        let key_of = |name: &str| {
            variables
                .iter()
                .find(|variable| variable.name == name)
                .map(|variable| variable.key)
                .expect("a variable the SDKs read")
        };
        let socket_key = key_of(names::SOCKET);
        Self {
            version: gantry_api::VERSION,
            variables: variables
                .iter()
                .map(|variable| SharedVariable {
                    key: variable.key,
                    name: variable.name,
                    doc: variable.doc,
                })
                .collect(),
            socket_key,
            socket_name: names::SOCKET,
            workdir_header: names::WORKDIR_HEADER,
            version_header: names::VERSION_HEADER,
            client_header: names::CLIENT_HEADER,
            test_version_key: key_of(names::TEST_SDK_VERSION),
            version_warning: names::VERSION_WARNING,
            version_warning_parts: pieces(names::VERSION_WARNING, 72),
            workdir_unreserved: names::WORKDIR_UNRESERVED,
            socket: Socket {
                runtime_dir_variable: rule.runtime_dir_variable,
                subdirectory: rule.subdirectory,
                fallback_prefix: rule.fallback_prefix,
                file_name: rule.file_name,
                describe: rule.describe(),
            },
        }
    }
}

/// `text` cut after spaces into pieces of at most `width` bytes (a word
/// longer than that is a piece of its own); concatenated, they are `text`.
fn pieces(text: &str, width: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut cut = None;
    for (index, _) in text.match_indices(' ') {
        let end = index + 1;
        if end - start > width {
            if let Some(at) = cut {
                out.push(&text[start..at]);
                start = at;
            }
        }
        cut = Some(end);
    }
    if text.len() - start > width {
        if let Some(at) = cut.filter(|&at| at > start) {
            out.push(&text[start..at]);
            start = at;
        }
    }
    out.push(&text[start..]);
    out
}

#[cfg(test)]
mod tests {
    use super::pieces;

    #[test]
    fn pieces_cut_after_spaces_and_join_back() {
        let text = gantry_api::env::VERSION_WARNING;
        let parts = pieces(text, 72);
        assert_eq!(parts.concat(), text);
        assert!(parts.len() > 1);
        for part in &parts[..parts.len() - 1] {
            assert!(part.len() <= 72 && part.ends_with(' '), "{part:?}");
        }
        assert_eq!(pieces("a bb ccc", 4), ["a ", "bb ", "ccc"]);
        assert_eq!(pieces("short", 72), ["short"]);
    }
}
