//! Running a module's code: one small runtime per SDK, shipped in that SDK's
//! directory and embedded here, so the binary runs the same runtime whatever
//! version of the SDK a module has installed.
//!
//! A runtime has two commands (docs/modules.md, "Runtimes"):
//! `describe SPEC RESULT` writes the module's description (JSON) to RESULT;
//! `invoke SPEC RESULT` reads `{"function", "args"}` on stdin, calls the
//! function inside the engine session named by the environment and writes
//! `{"type", "value"|"id"}` to RESULT. SPEC is a JSON object naming the
//! module. Exit status: 0 done, 1 the function raised (the runtime printed
//! why), 3 the module could not be loaded.
//!
//! Python, TypeScript and PHP run the runtime file with the module's own
//! interpreter. Go lists with a stdlib-only tool (`go/parser`, no build) and
//! invokes through a dispatcher generated into the module's package and built
//! once per source digest.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context as _, Result};
use sha2::{Digest as _, Sha256};

use super::manifest::{Module, Sdk};
use super::source::{self, write_atomic};
use crate::call::api::Description;

const PYTHON_RUNTIME: &str = include_str!("../../../../sdk-python/src/gantry/_module.py");
const TYPESCRIPT_RUNTIME: &str = include_str!("../../../../sdk-typescript/module/runtime.mjs");
const PHP_RUNTIME: &str = include_str!("../../../../sdk-php/module/runtime.php");
const GO_TOOL: &str = include_str!("../../../../sdk-go/cmd/gantry-go-module/main.go");

/// Exit status of a runtime whose module could not be loaded.
pub(crate) const LOAD_FAILED: i32 = 3;

fn runtime_source(sdk: Sdk) -> &'static str {
    match sdk {
        Sdk::Python => PYTHON_RUNTIME,
        Sdk::Typescript => TYPESCRIPT_RUNTIME,
        Sdk::Php => PHP_RUNTIME,
        Sdk::Go => GO_TOOL,
    }
}

fn short_digest(text: &str) -> String {
    hex::encode(&Sha256::digest(text.as_bytes())[..8])
}

/// A module with what is needed to run its code.
pub(crate) struct Loaded {
    pub(crate) module: Module,
    /// Digest of the module's source and the runtime reading it.
    pub(crate) digest: String,
    cache: PathBuf,
}

/// Why a module could not be described or prepared.
#[derive(Debug)]
pub(crate) struct LoadError {
    pub(crate) error: anyhow::Error,
}

impl<E: Into<anyhow::Error>> From<E> for LoadError {
    fn from(error: E) -> Self {
        Self {
            error: error.into(),
        }
    }
}

impl Loaded {
    pub(crate) fn new(module: Module, state_dir: &Path) -> Result<Self> {
        let digest = source::digest(&module, &short_digest(runtime_source(module.sdk)))?;
        Ok(Self {
            module,
            digest,
            cache: source::cache_dir(state_dir),
        })
    }

    fn description_path(&self) -> PathBuf {
        self.cache
            .join("descriptions")
            .join(format!("{}.json", self.digest))
    }

    /// The module's description: from the cache when the source is unchanged,
    /// else from its runtime (then cached).
    pub(crate) async fn describe(&self) -> Result<Description, LoadError> {
        let path = self.description_path();
        if let Ok(bytes) = std::fs::read(&path) {
            if let Ok(description) = serde_json::from_slice::<Description>(&bytes) {
                return Ok(description);
            }
        }
        let bytes = match self.module.sdk {
            Sdk::Go => self.go_describe().await?,
            _ => self.script_describe().await?,
        };
        let description: Description = serde_json::from_slice(&bytes).map_err(|error| {
            anyhow::anyhow!(
                "the {} runtime printed a description gantry cannot read: {error}",
                self.module.sdk.name()
            )
        })?;
        if description.object != self.module.object {
            return Err(anyhow::anyhow!(
                "the runtime described object {:?}, expected {:?}",
                description.object,
                self.module.object
            )
            .into());
        }
        write_atomic(&path, &serde_json::to_vec_pretty(&description)?)?;
        Ok(description)
    }

    fn spec(&self) -> String {
        serde_json::json!({
            "root": self.module.root,
            "source": self.module.source,
            "name": self.module.name,
            "object": self.module.object,
            "format": self.module.format.name(),
            "digest": self.digest,
        })
        .to_string()
    }

    /// The runtime file of a script SDK, written into the cache once.
    fn runtime_file(&self) -> Result<PathBuf> {
        let sdk = self.module.sdk;
        let text = runtime_source(sdk);
        let ext = match sdk {
            Sdk::Python => "py",
            Sdk::Typescript => "mjs",
            Sdk::Php => "php",
            Sdk::Go => "go",
        };
        let path =
            self.cache
                .join("runtime")
                .join(format!("{}-{}.{ext}", sdk.name(), short_digest(text)));
        if !path.is_file() {
            write_atomic(&path, text.as_bytes())?;
        }
        Ok(path)
    }

    /// The interpreter a script SDK's module runs with.
    fn interpreter(&self) -> PathBuf {
        match self.module.sdk {
            Sdk::Python => {
                if let Some(python) = std::env::var_os(crate::env::PYTHON).filter(|v| !v.is_empty())
                {
                    return PathBuf::from(python);
                }
                [&self.module.root, &self.module.source]
                    .into_iter()
                    .map(|dir| dir.join(".venv/bin/python"))
                    .find(|path| path.is_file())
                    .unwrap_or_else(|| PathBuf::from("python3"))
            }
            Sdk::Typescript => PathBuf::from("node"),
            Sdk::Php => PathBuf::from("php"),
            Sdk::Go => PathBuf::from("go"),
        }
    }

    /// The command that runs `verb` (`describe` or `invoke`), writing its
    /// answer to `result`.
    pub(crate) async fn command(
        &self,
        verb: &str,
        result: &Path,
    ) -> Result<tokio::process::Command, LoadError> {
        let mut command = match self.module.sdk {
            Sdk::Go => {
                let dispatcher = self.go_dispatcher().await?;
                let mut command = tokio::process::Command::new(dispatcher);
                command.arg(verb).arg(self.spec()).arg(result);
                command
            }
            _ => {
                let interpreter = self.interpreter();
                let mut command = tokio::process::Command::new(&interpreter);
                command
                    .arg(self.runtime_file()?)
                    .arg(verb)
                    .arg(self.spec())
                    .arg(result);
                command
            }
        };
        command.current_dir(&self.module.source);
        Ok(command)
    }

    async fn script_describe(&self) -> Result<Vec<u8>, LoadError> {
        let dir = tempfile::tempdir()?;
        let result = dir.path().join("description.json");
        let mut command = self.command("describe", &result).await?;
        let program = command
            .as_std()
            .get_program()
            .to_string_lossy()
            .into_owned();
        let output = command
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|error| missing_tool(&program, self.module.sdk, error))?;
        if !output.status.success() {
            return Err(anyhow::anyhow!(
                "could not load module {} ({}):\n{}{}",
                self.module.name,
                self.module.root.display(),
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr).trim_end()
            )
            .into());
        }
        Ok(std::fs::read(&result).context("the runtime wrote no description")?)
    }

    // --- Go ------------------------------------------------------------------------------

    /// The describe/generate tool, built once per version of its source.
    async fn go_tool(&self) -> Result<PathBuf, LoadError> {
        let dir = self
            .cache
            .join("go")
            .join(format!("tool-{}", short_digest(GO_TOOL)));
        let binary = dir.join("gantry-go-module");
        if binary.is_file() {
            return Ok(binary);
        }
        let build = tempfile::Builder::new()
            .prefix("gantry-go-tool")
            .tempdir()?;
        std::fs::write(build.path().join("main.go"), GO_TOOL)?;
        std::fs::write(
            build.path().join("go.mod"),
            "module gantry.dev/gantry-go-module\n\ngo 1.21\n",
        )?;
        std::fs::create_dir_all(&dir)?;
        let staged = dir.join(format!(".gantry-go-module.{}", std::process::id()));
        run_go(
            tokio::process::Command::new("go")
                .args(["build", "-o"])
                .arg(&staged)
                .arg(".")
                .current_dir(build.path())
                .env("GOFLAGS", "-mod=mod")
                .env("GOWORK", "off"),
            "while building gantry's Go module tool",
        )
        .await?;
        std::fs::rename(&staged, &binary)?;
        Ok(binary)
    }

    /// Runs the Go tool's `verb` on the module (with `extra` arguments); its
    /// stdout, or its error message in a load error.
    async fn go_tool_run(&self, verb: &str, extra: &[&Path]) -> Result<Vec<u8>, LoadError> {
        let tool = self.go_tool().await?;
        let output = tokio::process::Command::new(tool)
            .arg(verb)
            .arg(&self.module.source)
            .arg(&self.module.object)
            .args(extra)
            .stdin(Stdio::null())
            .output()
            .await?;
        if !output.status.success() {
            return Err(anyhow::anyhow!(
                "Go module {} ({}): {verb} failed:\n{}",
                self.module.name,
                self.module.source.display(),
                String::from_utf8_lossy(&output.stderr).trim_end()
            )
            .into());
        }
        Ok(output.stdout)
    }

    async fn go_describe(&self) -> Result<Vec<u8>, LoadError> {
        self.go_tool_run("describe", &[]).await
    }

    /// The module's dispatcher binary, built once per source digest.
    async fn go_dispatcher(&self) -> Result<PathBuf, LoadError> {
        let dir = self.cache.join("go").join("bin").join(&self.digest);
        let binary = dir.join("dispatcher");
        if binary.is_file() {
            return Ok(binary);
        }
        let work = tempfile::Builder::new()
            .prefix("gantry-go-dispatch")
            .tempdir()?;
        let generated = work.path().join("zz_gantry_dispatch.go");
        self.go_tool_run("generate", &[&generated]).await?;
        // The generated file joins the package through an overlay, so the
        // module's directory is never written to.
        let overlay = work.path().join("overlay.json");
        let target = self.module.source.join("zz_gantry_dispatch.go");
        std::fs::write(
            &overlay,
            serde_json::json!({ "Replace": { target.to_string_lossy(): generated } }).to_string(),
        )?;
        std::fs::create_dir_all(&dir)?;
        let staged = dir.join(format!(".dispatcher.{}", std::process::id()));
        tracing::info!(module = %self.module.name, "building the Go module dispatcher");
        run_go(
            tokio::process::Command::new("go")
                .arg("build")
                .arg(format!("-overlay={}", overlay.display()))
                .arg("-o")
                .arg(&staged)
                .arg(".")
                .current_dir(&self.module.source),
            &format!("while building Go module {}", self.module.name),
        )
        .await?;
        std::fs::rename(&staged, &binary)?;
        Ok(binary)
    }
}

async fn run_go(command: &mut tokio::process::Command, context: &str) -> Result<(), LoadError> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|error| missing_tool("go", Sdk::Go, error))?;
    if !output.status.success() {
        bail_load(format!(
            "{context}: go build failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr).trim_end()
        ))?;
    }
    Ok(())
}

fn bail_load(message: String) -> Result<(), LoadError> {
    Err(anyhow::anyhow!(message).into())
}

fn missing_tool(program: &str, sdk: Sdk, error: std::io::Error) -> LoadError {
    let hint = match sdk {
        Sdk::Python => "install Python 3.10+ (or set GANTRY_PYTHON to the interpreter)",
        Sdk::Typescript => "install Node.js 20+",
        Sdk::Go => "install Go 1.21+ and put `go` on PATH",
        Sdk::Php => "install PHP 8.1+ (php-cli, php-curl)",
    };
    anyhow::anyhow!(
        "could not start {program:?} for a {} module: {error}: {hint}",
        sdk.name()
    )
    .into()
}
