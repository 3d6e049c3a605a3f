//! End-to-end tests of the `gantry` binary against a real container runtime
//! and the local fixture registry (`make setup` provides both).
//!
//! Each test starts its own `gantry serve` with a private socket and state
//! directory, on the runtime `GANTRY_RUNTIME` names (`auto` when unset: the
//! native runtime where it can run, else Docker). Without that runtime the
//! tests print why and pass, unless `GANTRY_TEST_REQUIRE_DOCKER=1` (as
//! `make test` sets), which fails them.

#![allow(clippy::print_stderr, reason = "tests explain why they skip")]

mod servers;
mod support;

macro_rules! require_runtime {
    () => {
        if !crate::support::runtime_available() {
            return;
        }
    };
}

// After the macros, which the test modules use.
mod cache_admin;
mod cache_remote;
mod cache_volumes;
mod daemon;
mod directory;
mod dockerfile;
mod engine;
mod engine_lifecycle;
mod git;
mod host;
mod http;
mod module;
mod mounts;
mod otel;
mod pipeline;
mod progress;
mod registry;
mod secrets;
mod services;
mod serving;
mod state_dir;
mod terminal;
mod tier2;
