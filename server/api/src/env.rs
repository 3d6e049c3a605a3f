//! Names a client and the engine must agree on: the environment variables
//! that tell a program where its engine is, the header that carries the
//! client's working directory, and where the engine's socket is by default.
//!
//! This is their one definition. The CLI uses these constants, and `cargo
//! xtask codegen` writes each SDK's copy from [`SDK_VARIABLES`],
//! [`WORKDIR_HEADER`], the version headers ([`VERSION_HEADER`],
//! [`CLIENT_HEADER`], [`VERSION_WARNING`]) and [`DEFAULT_SOCKET`] (its
//! `--check` fails when one is stale). Variables only the engine reads (`GANTRY_STATE_DIR`, `GANTRY_LOG`,
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

/// The response header naming the engine's version (every response carries
/// it). An SDK compares it with its own version ([`versions_match`]) and
/// warns once per process when they differ ([`VERSION_WARNING`]).
pub const VERSION_HEADER: &str = "X-Gantry-Version";

/// The request header naming the client: `<sdk>/<version>` (`python/0.9.0`).
/// The engine logs each distinct value once.
pub const CLIENT_HEADER: &str = "X-Gantry-Client";

/// Tests only: the version an SDK reports and compares instead of its own, so
/// that a test can see the mismatch warning against a real engine. Not for
/// silencing the warning: it makes the SDK claim a version it is not.
pub const TEST_SDK_VERSION: &str = "GANTRY_TEST_SDK_VERSION";

/// What an SDK prints on stderr, once per process, when the engine's version
/// does not match its own: `{sdk}` and `{engine}` stand for the two versions
/// (each SDK substitutes them).
pub const VERSION_WARNING: &str =
    "gantry: warning: this SDK is version {sdk} but the engine is version {engine}; \
upgrade the SDK to {engine}, or use a {sdk} engine: stop this one (`gantry engine stop`) and \
set GANTRY_BIN to a gantry {sdk} binary";

/// Whether an SDK of version `sdk` and an engine of version `engine` are
/// meant to work together. From 1.0 on, the same major and minor version
/// (patch releases change no API). Before 1.0 (or for a version that is not
/// `major.minor.patch`), the very same version: every 0.x release may change
/// the API, and the engine and the SDKs are released together.
pub fn versions_match(sdk: &str, engine: &str) -> bool {
    fn major_minor(version: &str) -> Option<(u64, u64)> {
        let mut parts = version.split(['.', '-', '+']);
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        Some((major, minor))
    }
    match (major_minor(sdk), major_minor(engine)) {
        (Some(a @ (major, _)), Some(b)) if major > 0 => a == b,
        _ => sdk == engine,
    }
}

/// The warning an SDK of version `sdk` prints for an engine of version
/// `engine`, or `None` when they match.
pub fn version_warning(sdk: &str, engine: &str) -> Option<String> {
    (!versions_match(sdk, engine)).then(|| {
        VERSION_WARNING
            .replace("{sdk}", sdk)
            .replace("{engine}", engine)
    })
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
    Variable {
        key: "TEST_SDK_VERSION",
        name: TEST_SDK_VERSION,
        doc: "Tests only: the version the SDK reports instead of its own.",
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
    fn versions_match_by_major_and_minor_from_one_on() {
        assert!(versions_match("1.4.0", "1.4.7"));
        assert!(versions_match("2.0.1-rc.1", "2.0.0"));
        assert!(!versions_match("1.4.0", "1.5.0"));
        assert!(!versions_match("1.4.0", "2.4.0"));
        // Before 1.0 every release may break the API: only the same version matches.
        assert!(versions_match("0.9.0", "0.9.0"));
        assert!(!versions_match("0.9.0", "0.9.1"));
        assert!(!versions_match("0.9.0", "1.9.0"));
        assert!(!versions_match("garbage", "0.9.0"));
        assert_eq!(version_warning("0.9.0", "0.9.0"), None);
        let warning = version_warning("0.8.0", "0.9.0").unwrap();
        assert!(
            warning.starts_with(
                "gantry: warning: this SDK is version 0.8.0 but the engine is version 0.9.0; \
                 upgrade the SDK to 0.9.0, or use a 0.8.0 engine"
            ),
            "{warning}"
        );
        assert!(!warning.contains('{'), "{warning}");
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
