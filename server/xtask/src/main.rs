//! `cargo xtask`: repository chores.
//!
//! - `cargo xtask schema [--check]` writes `schema.graphql` from the Rust
//!   schema (`gantry_api::sdl()`); `--check` fails when it is stale.
//! - `cargo xtask codegen [--check]` renders every SDK's generated module from
//!   the checked-in `schema.graphql` (see `codegen/mod.rs`); `--check`
//!   compares in memory and fails naming the stale files.

mod codegen;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context as _, Result};

const USAGE: &str = "usage: cargo xtask schema [--check]\n       cargo xtask codegen [--check]";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("xtask lives at server/xtask")
        .to_path_buf()
}

/// Where `cargo xtask schema` writes, relative to the repository root.
const SCHEMA_PATH: &str = "schema.graphql";

fn schema(check: bool) -> Result<()> {
    let path = repo_root().join(SCHEMA_PATH);
    let fresh = gantry_api::sdl();
    if check {
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        if current != fresh {
            bail!("schema.graphql is out of date with server/api: run `cargo xtask schema` and commit the result");
        }
        return Ok(());
    }
    std::fs::write(&path, fresh).with_context(|| format!("while writing {}", path.display()))?;
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let check = args.iter().any(|arg| arg == "--check");
    let unknown = args.iter().skip(1).find(|arg| *arg != "--check");
    let outcome = match (args.first().map(String::as_str), unknown) {
        (Some("schema"), None) => schema(check),
        (Some("codegen"), None) => codegen::run(&repo_root(), check),
        _ => Err(anyhow::anyhow!(USAGE)),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            #[expect(clippy::print_stderr, reason = "xtask is a CLI; stderr is its output")]
            {
                eprintln!("xtask: {error:#}");
            }
            ExitCode::FAILURE
        }
    }
}
