//! Every environment variable gantry reads or sets, in one place. The names
//! the SDKs share (and the default socket rule) are defined in
//! `gantry_api::env`, from which `cargo xtask codegen` writes each SDK's copy;
//! the rest only the engine reads.

use std::path::PathBuf;

pub(crate) use gantry_api::env::{
    socket_path, DAGGER_SESSION_PORT, DAGGER_SESSION_TOKEN, IDLE_TIMEOUT, SESSION_PORT,
    SESSION_TOKEN, SOCKET, WORKDIR_HEADER,
};

/// Where the persistent cache lives.
pub(crate) const STATE_DIR: &str = "GANTRY_STATE_DIR";
/// Log filter (tracing EnvFilter syntax), e.g. `gantry=debug`.
pub(crate) const LOG: &str = "GANTRY_LOG";
/// Default for `--progress` (auto, plain, tty, quiet); `gantry session` reads it too.
pub(crate) const PROGRESS: &str = "GANTRY_PROGRESS";
/// Token for `gantry serve --listen`.
pub(crate) const TOKEN: &str = "GANTRY_TOKEN";
/// Container runtime: `auto` (default), `native` or `docker`.
pub(crate) const RUNTIME: &str = "GANTRY_RUNTIME";
/// The native runtime's OCI runtime: `crun`, `runc` or a path (default: crun when it
/// can run here, else runc).
pub(crate) const OCI_RUNTIME: &str = "GANTRY_OCI_RUNTIME";
/// The native runtime's step network: `bridge` (default) or `host`.
pub(crate) const NATIVE_NETWORK: &str = "GANTRY_NATIVE_NETWORK";
/// Exported layers' file times are clamped to this (seconds; 0 when unset).
pub(crate) const SOURCE_DATE_EPOCH: &str = "SOURCE_DATE_EPOCH";
/// The remote cache repository (`--cache`), e.g. `127.0.0.1:5000/team/cache`.
pub(crate) const CACHE: &str = "GANTRY_CACHE";
/// The remote cache mode (`--cache-mode`): `readwrite` (default) or `read`.
pub(crate) const CACHE_MODE: &str = "GANTRY_CACHE_MODE";
/// Remote cache credentials, `USER:env:VAR` (`--cache-auth`).
pub(crate) const CACHE_AUTH: &str = "GANTRY_CACHE_AUTH";
/// A secret MAC key shared between machines (at least 32 characters), so steps
/// that use secrets get the same cache keys everywhere (docs/cache.md).
pub(crate) const CACHE_KEY: &str = "GANTRY_CACHE_KEY";
/// The local cache's size limit (`--cache-max-size`), e.g. `10GB`.
pub(crate) const CACHE_MAX_SIZE: &str = "GANTRY_CACHE_MAX_SIZE";
/// A file holding the shared secret MAC key (instead of `GANTRY_CACHE_KEY`).
pub(crate) const CACHE_KEY_FILE: &str = "GANTRY_CACHE_KEY_FILE";
/// The module `gantry call` and `gantry functions` use (like `-m DIR`).
pub(crate) const MODULE: &str = "GANTRY_MODULE";
/// The Python interpreter that runs Python modules (default: the module's
/// `.venv/bin/python`, else `python3`).
pub(crate) const PYTHON: &str = "GANTRY_PYTHON";

/// OpenTelemetry (`telemetry.rs`, the standard names): the OTLP endpoint;
/// a session exports a trace when either is set.
pub(crate) const OTEL_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
pub(crate) const OTEL_TRACES_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
/// The OTLP protocol: only `http/protobuf` is spoken (others turn traces off
/// with a warning).
pub(crate) const OTEL_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_PROTOCOL";
pub(crate) const OTEL_TRACES_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL";
/// `otlp` (default) or `none`.
pub(crate) const OTEL_TRACES_EXPORTER: &str = "OTEL_TRACES_EXPORTER";
/// `true` turns traces off.
pub(crate) const OTEL_SDK_DISABLED: &str = "OTEL_SDK_DISABLED";
/// W3C trace context a session's spans join; `gantry run` sets it for its command.
pub(crate) const TRACEPARENT: &str = "TRACEPARENT";

/// The default state directory: `$XDG_CACHE_HOME/gantry`, else
/// `~/.cache/gantry`.
pub(crate) fn default_state_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|dir| !dir.is_empty()) {
        return PathBuf::from(dir).join("gantry");
    }
    match std::env::var_os("HOME").filter(|home| !home.is_empty()) {
        Some(home) => PathBuf::from(home).join(".cache").join("gantry"),
        None => PathBuf::from(format!("/tmp/gantry-{}", gantry_api::env::uid())).join("state"),
    }
}
