//! `make chaos`: the engine against the faults a busy CI machine and a
//! hostile local user bring (issue 16). Each scenario drives the real
//! `gantry` binary against real Docker and prints one line with its figure:
//!
//! ```text
//! chaos: sigkill: 10/10 survived, 0 corrupt, 0 orphans, 0 temp files, 0 secret bytes ... ok
//! ```
//!
//! then the closing line `chaos: N passed, M failed`. A scenario that fails
//! still prints its figure (so the same harness measures a "before"), and
//! the binary exits non-zero. Not part of `cargo test --workspace` (the
//! target has `test = false`); `make chaos` runs it.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a test harness: its report is printed"
)]

#[allow(
    dead_code,
    reason = "shared with the `it` test binary; not every helper is used here"
)]
#[path = "../it/support.rs"]
mod support;

mod disk;
mod dockerd;
mod engine;
mod flood;
mod images;
mod memory;
mod sessions;
mod sigkill;

use std::panic::AssertUnwindSafe;
use std::process::ExitCode;
use std::time::Instant;

/// What a scenario measured and whether that meets the requirement.
pub(crate) struct Outcome {
    pub(crate) figure: String,
    pub(crate) passed: bool,
}

impl Outcome {
    pub(crate) fn new(figure: impl Into<String>, passed: bool) -> Self {
        Self {
            figure: figure.into(),
            passed,
        }
    }
}

type Scenario = fn() -> Outcome;

const SCENARIOS: &[(&str, Scenario)] = &[
    ("sigkill", sigkill::run),
    ("sessions", sessions::run),
    ("two state dirs + prune", images::prune),
    ("missing image", images::missing),
    ("full disk", disk::run),
    ("connection flood", flood::run),
    ("1 GiB host file", memory::run),
    ("dockerd restart", dockerd::run),
];

fn main() -> ExitCode {
    if !support::docker_available() {
        println!("chaos: 0 passed, 1 failed (no Docker daemon: run `make setup`)");
        return ExitCode::FAILURE;
    }
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let started = Instant::now();
    let (mut passed, mut failed) = (0, 0);
    for (name, scenario) in SCENARIOS {
        if !only.is_empty() && !only.iter().any(|o| name.contains(o.as_str())) {
            continue;
        }
        let begun = Instant::now();
        let outcome =
            std::panic::catch_unwind(AssertUnwindSafe(scenario)).unwrap_or_else(|panic| {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_else(|| "panicked".into());
                Outcome::new(format!("error: {message}"), false)
            });
        let verdict = if outcome.passed { "ok" } else { "FAILED" };
        println!(
            "chaos: {name}: {} ... {verdict} ({:.1} s)",
            outcome.figure,
            begun.elapsed().as_secs_f64()
        );
        if outcome.passed {
            passed += 1;
        } else {
            failed += 1;
        }
    }
    println!(
        "chaos: {passed} passed, {failed} failed ({:.0} s)",
        started.elapsed().as_secs_f64()
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
