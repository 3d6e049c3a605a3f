//! Modules: a directory with a manifest (`gantry.toml`, or Dagger's
//! `dagger.json`) whose main object's public methods are functions that
//! `gantry call` runs on the host, in the module's own toolchain, inside an
//! engine session. This module finds and reads modules, keys them by a digest
//! of their source, and runs their language runtimes; `crate::call` owns the
//! command line.

pub(crate) mod init;
pub(crate) mod manifest;
pub(crate) mod runtime;
pub(crate) mod source;
