//! Names a client and the engine must agree on: the environment variables
//! that tell a program where its engine is, the header that carries the
//! client's working directory, and where the engine's socket is by default.
//!
//! This is their one definition. The CLI uses these constants, and `cargo
//! xtask codegen` writes each SDK's copy from [`SDK_VARIABLES`],
//! [`WORKDIR_HEADER`] and [`DEFAULT_SOCKET`] (its `--check` fails when one is
//! stale). Variables only the engine reads (`GANTRY_STATE_DIR`, `GANTRY_LOG`,
//! ...) live with the CLI.

use std::path::PathBuf;

/// Path of the engine's Unix socket.
pub const SOCKET: &str = "GANTRY_SOCKET";
/// Set by `gantry run` for the command it runs: the session's loopback port.
pub const SESSION_PORT: &str = "GANTRY_SESSION_PORT";
/// Set by `gantry run`: the token sent as the HTTP basic-auth username.
pub const SESSION_TOKEN: &str = "GANTRY_SESSION_TOKEN";
/// The `gantry` binary an SDK starts when no engine answers.
pub const BIN: &str = "GANTRY_BIN";
/// `gantry serve --idle-timeout` (e.g. `30m`; `0`/`off`: never). An SDK that
/// starts an engine sets it to 30m unless it is set already.
pub const IDLE_TIMEOUT: &str = "GANTRY_IDLE_TIMEOUT";
/// What Dagger's official SDKs read for the port (`gantry run` sets both names).
pub const DAGGER_SESSION_PORT: &str = "DAGGER_SESSION_PORT";
/// What Dagger's official SDKs read for the token.
pub const DAGGER_SESSION_TOKEN: &str = "DAGGER_SESSION_TOKEN";

/// The request header carrying the client's working directory (an absolute
/// path, percent-encoded: `%` followed by two hex digits stands for a byte,
/// and every byte outside printable ASCII, and `%` itself, is sent so), against
/// which relative host paths resolve. Clients encode every byte that is not
/// an unreserved character or `/`; the engine decodes any valid escape.
pub const WORKDIR_HEADER: &str = "X-Gantry-Workdir";

/// The bytes a client leaves as they are in the workdir header: RFC 3986's
/// unreserved characters and `/` (everything else is percent-encoded).
pub const WORKDIR_UNRESERVED: &str =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~/";

/// Percent-encodes a working directory for the workdir header.
pub fn encode_workdir(path: &std::path::Path) -> String {
    use std::os::unix::ffi::OsStrExt as _;
    let mut out = String::new();
    for &byte in path.as_os_str().as_bytes() {
        if WORKDIR_UNRESERVED.as_bytes().contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Decodes the workdir header: `None` unless it is an absolute path with
/// only valid escapes and no NUL byte.
pub fn decode_workdir(header: &[u8]) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStringExt as _;
    let mut bytes = Vec::with_capacity(header.len());
    let mut rest = header.iter();
    while let Some(&byte) = rest.next() {
        if byte == b'%' {
            let hex = [*rest.next()?, *rest.next()?];
            let text = std::str::from_utf8(&hex).ok()?;
            bytes.push(u8::from_str_radix(text, 16).ok()?);
        } else if byte.is_ascii_graphic() || byte == b' ' {
            bytes.push(byte);
        } else {
            return None;
        }
    }
    (bytes.first() == Some(&b'/') && !bytes.contains(&0))
        .then(|| PathBuf::from(std::ffi::OsString::from_vec(bytes)))
}

/// An environment variable as the SDKs see it.
#[derive(Debug, Clone, Copy)]
pub struct Variable {
    /// The SDKs' name for the constant (`SESSION_PORT`), spelled in each
    /// language's style.
    pub key: &'static str,
    /// The variable's name.
    pub name: &'static str,
    /// One sentence for the SDKs' doc comments.
    pub doc: &'static str,
}

/// The variables gantry's SDKs read. (Dagger's names are not among them: only
/// Dagger's own SDKs read those.)
pub const SDK_VARIABLES: &[Variable] = &[
    Variable {
        key: "SESSION_PORT",
        name: SESSION_PORT,
        doc: "Set by `gantry run` for the command it runs: loopback port of the session.",
    },
    Variable {
        key: "SESSION_TOKEN",
        name: SESSION_TOKEN,
        doc: "Set by `gantry run`: the token sent as the HTTP basic-auth username.",
    },
    Variable {
        key: "SOCKET",
        name: SOCKET,
        doc: "Path of the engine's Unix socket.",
    },
    Variable {
        key: "BIN",
        name: BIN,
        doc: "The `gantry` binary to start when no engine answers (else `gantry` on PATH).",
    },
    Variable {
        key: "IDLE_TIMEOUT",
        name: IDLE_TIMEOUT,
        doc: "Idle timeout of an engine the SDK starts (default 30m; 0 or off: never).",
    },
];

/// Where the engine's socket is when `GANTRY_SOCKET` does not say:
/// `$XDG_RUNTIME_DIR/gantry/engine.sock` when that variable is set and not
/// empty, else `/tmp/gantry-$UID/engine.sock`.
#[derive(Debug, Clone, Copy)]
pub struct SocketRule {
    /// The per-user runtime directory's variable.
    pub runtime_dir_variable: &'static str,
    /// The directory under it.
    pub subdirectory: &'static str,
    /// Without it, the directory is this prefix followed by the user's ID.
    pub fallback_prefix: &'static str,
    /// The socket's file name, in either directory.
    pub file_name: &'static str,
}

/// The default socket path, as every client computes it.
pub const DEFAULT_SOCKET: SocketRule = SocketRule {
    runtime_dir_variable: "XDG_RUNTIME_DIR",
    subdirectory: "gantry",
    fallback_prefix: "/tmp/gantry-",
    file_name: "engine.sock",
};

impl SocketRule {
    /// `$XDG_RUNTIME_DIR/gantry/engine.sock`, else `/tmp/gantry-$UID/engine.sock`.
    pub fn path(&self) -> PathBuf {
        match std::env::var_os(self.runtime_dir_variable) {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir)
                .join(self.subdirectory)
                .join(self.file_name),
            _ => PathBuf::from(format!("{}{}", self.fallback_prefix, uid())).join(self.file_name),
        }
    }

    /// A one-line description for doc comments.
    pub fn describe(&self) -> String {
        format!(
            "`${}/{}/{}`, else `{}$UID/{}`",
            self.runtime_dir_variable,
            self.subdirectory,
            self.file_name,
            self.fallback_prefix,
            self.file_name
        )
    }
}

/// The socket to use: `GANTRY_SOCKET` if set and not empty, else the default.
pub fn socket_path() -> PathBuf {
    std::env::var_os(SOCKET)
        .filter(|value| !value.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| DEFAULT_SOCKET.path())
}

/// The current user's ID, read without unsafe code.
pub fn uid() -> u32 {
    std::fs::metadata("/proc/self")
        .map(|meta| std::os::unix::fs::MetadataExt::uid(&meta))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_describes_itself_as_documented() {
        assert_eq!(
            DEFAULT_SOCKET.describe(),
            "`$XDG_RUNTIME_DIR/gantry/engine.sock`, else `/tmp/gantry-$UID/engine.sock`"
        );
    }

    #[test]
    fn workdirs_round_trip_through_the_header() {
        for dir in ["/home/me/caf\u{e9}", "/tmp/a b/100%", "/plain/path-1.2_x~"] {
            let encoded = encode_workdir(std::path::Path::new(dir));
            assert!(encoded.bytes().all(|b| b.is_ascii_graphic()), "{encoded}");
            assert_eq!(
                decode_workdir(encoded.as_bytes()).unwrap(),
                PathBuf::from(dir)
            );
        }
        assert_eq!(
            encode_workdir(std::path::Path::new("/caf\u{e9}")),
            "/caf%C3%A9"
        );
        // Older clients sent printable paths as they are.
        assert_eq!(
            decode_workdir(b"/srv/app").unwrap(),
            PathBuf::from("/srv/app")
        );
        for bad in [
            &b"relative"[..],
            b"/bad%zz",
            b"/cut%4",
            b"/nul%00",
            b"/raw\xc3",
        ] {
            assert_eq!(decode_workdir(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn sdk_variables_are_distinct_gantry_names() {
        let mut keys: Vec<&str> = SDK_VARIABLES.iter().map(|v| v.key).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), SDK_VARIABLES.len());
        for variable in SDK_VARIABLES {
            assert_eq!(variable.name, format!("GANTRY_{}", variable.key));
        }
    }
}
