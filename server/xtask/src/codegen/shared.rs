//! The names every SDK shares with the engine (`gantry_api::env`: the
//! environment variables, the working-directory header and the default
//! socket rule) and the release version (`gantry_api::VERSION`, Cargo.toml's
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
        let socket_key = variables
            .iter()
            .find(|variable| variable.name == names::SOCKET)
            .map(|variable| variable.key)
            .expect("the SDKs read GANTRY_SOCKET");
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
