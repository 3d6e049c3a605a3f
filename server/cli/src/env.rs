//! Every environment variable gantry reads or sets, in one place. The SDKs
//! read the same names (see docs/architecture.md).

use std::path::PathBuf;

/// Path of the engine's Unix socket.
pub(crate) const SOCKET: &str = "GANTRY_SOCKET";
/// Where the persistent cache lives.
pub(crate) const STATE_DIR: &str = "GANTRY_STATE_DIR";
/// Log filter (tracing EnvFilter syntax), e.g. `gantry=debug`.
pub(crate) const LOG: &str = "GANTRY_LOG";
/// Default for `--progress` (auto, plain, tty, quiet); `gantry session` reads it too.
pub(crate) const PROGRESS: &str = "GANTRY_PROGRESS";
/// Set by `gantry run` for the command it runs.
pub(crate) const SESSION_PORT: &str = "GANTRY_SESSION_PORT";
pub(crate) const SESSION_TOKEN: &str = "GANTRY_SESSION_TOKEN";
/// What Dagger's official SDKs read.
pub(crate) const DAGGER_SESSION_PORT: &str = "DAGGER_SESSION_PORT";
pub(crate) const DAGGER_SESSION_TOKEN: &str = "DAGGER_SESSION_TOKEN";

/// The current user's ID, read without unsafe code.
fn uid() -> u32 {
    std::fs::metadata("/proc/self")
        .map(|meta| std::os::unix::fs::MetadataExt::uid(&meta))
        .unwrap_or(0)
}

/// The default socket: `$XDG_RUNTIME_DIR/gantry/engine.sock`, else
/// `/tmp/gantry-$UID/engine.sock`.
pub(crate) fn default_socket() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("gantry").join("engine.sock"),
        _ => PathBuf::from(format!("/tmp/gantry-{}", uid())).join("engine.sock"),
    }
}

/// The default state directory: `$XDG_CACHE_HOME/gantry`, else
/// `~/.cache/gantry`.
pub(crate) fn default_state_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|dir| !dir.is_empty()) {
        return PathBuf::from(dir).join("gantry");
    }
    match std::env::var_os("HOME").filter(|home| !home.is_empty()) {
        Some(home) => PathBuf::from(home).join(".cache").join("gantry"),
        None => PathBuf::from(format!("/tmp/gantry-{}", uid())).join("state"),
    }
}
