//! `gantry call` and `gantry functions`: a module's functions (or the core
//! API, `-m core`) called from the command line inside an engine session.
//!
//! The flow: find the module, read its description (cached by source digest,
//! so no language runtime starts when nothing changed), parse the words into a
//! chain of fields with typed flags, and only then start the engine. Object
//! flags become IDs in the session (`host.directory`, `setSecret`, ...), the
//! module's runtime calls the function with them (the same session variables
//! as `gantry run`), and any further fields are one GraphQL query from the
//! returned object's ID. Progress goes to stderr, the result alone to stdout.

pub(crate) mod api;
mod chain;
mod dotenv;
mod help;
mod invoke;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result};

use crate::engine::EngineArgs;
use crate::module::manifest::{self, Module};
use crate::module::runtime::Loaded;
use crate::progress::{ProgressArgs, ProgressMode};
use api::{core, Field};
use chain::Start;

/// Exit statuses of `gantry call` (docs/modules.md, "Exit codes").
pub(crate) mod exit {
    /// The function (or a chained field) failed: it raised, an exec failed,
    /// or the engine reported an error.
    pub(crate) const FAILED: u8 = 1;
    /// The command line is wrong: unknown function or flag, missing or
    /// malformed value, unreadable secret source.
    pub(crate) const USAGE: u8 = 2;
    /// The module could not be loaded: manifest, toolchain, import or build.
    pub(crate) const MODULE: u8 = 3;
}

/// A command-line mistake: printed with a hint, exit status 2.
#[derive(Debug)]
pub(crate) struct Usage {
    pub(crate) message: String,
    /// The command whose `--help` would help.
    help_for: Option<String>,
}

impl Usage {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            help_for: None,
        }
    }

    pub(crate) fn with_help(mut self, command: String) -> Self {
        self.help_for = Some(command);
        self
    }
}

const AFTER_HELP: &str = "\
Examples:
  gantry call test --src=.
  gantry call publish --src=. --registry=REG/app --tag=v1 --registry-user=ci --registry-token=env:REGISTRY_TOKEN
  gantry call build --src=. -o image.tar
  gantry call build --src=. file --path=/server size
  gantry call test --help
  gantry call -m core container from --address=IMAGE with-exec --args=echo,hi stdout

Flags after FUNCTION are its arguments; `gantry functions` lists the functions.
Defaults come from a .env file beside the manifest (FUNCTION_ARG=value).
Exit status: 0 done, 1 the function failed, 2 bad command line, 3 the module
could not be loaded. See docs/modules.md.";

#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub(crate) struct CallArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Save the returned Directory, File or Container (as a tarball) to PATH
    #[arg(short = 'o', long, value_name = "PATH")]
    output: Option<PathBuf>,
    /// Print the result as JSON
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    engine: EngineArgs,
    #[command(flatten)]
    progress: ProgressArgs,
    /// When a step fails, open a shell in its container (as the failed
    /// command left it) on this terminal; the call fails as before once the
    /// shell exits
    #[arg(short = 'i', long)]
    interactive: bool,
    /// The function, its flags, then fields to chain with theirs
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "FUNCTION [ARGS]"
    )]
    words: Vec<String>,
}

#[derive(Debug, Clone, clap::Args)]
pub(crate) struct TargetArgs {
    /// Module directory (with gantry.toml or dagger.json), or `core` for the
    /// core API [default: the nearest manifest at or above the current directory]
    #[arg(short = 'm', long = "mod", visible_alias = "module", value_name = "DIR", env = crate::env::MODULE)]
    module: Option<String>,
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Lists from a cache keyed by the module's source digest: no language runtime starts when nothing changed."
)]
pub(crate) struct FunctionsArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Print the module's description (JSON) instead
    #[arg(long)]
    json: bool,
    /// Directory for the persistent cache [env: GANTRY_STATE_DIR] [default: ~/.cache/gantry]
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
}

/// What the call is against.
enum Target {
    Module(Box<Loaded>, Vec<Field>),
    Core,
}

fn fail(code: u8, error: &anyhow::Error) -> ExitCode {
    eprintln!("gantry: error: {error:#}");
    ExitCode::from(code)
}

fn usage_error(usage: &Usage) -> ExitCode {
    eprintln!("gantry: error: {}", usage.message);
    if let Some(command) = &usage.help_for {
        eprintln!("(see `gantry call {command} --help`)");
    }
    ExitCode::from(exit::USAGE)
}

/// Finds and loads the module (`Ok(None)` for `-m core`).
async fn target(args: &TargetArgs, state_dir: &Path, cwd: &Path) -> Result<Target, ExitCode> {
    if args.module.as_deref() == Some("core") {
        return Ok(Target::Core);
    }
    let module = manifest::find(args.module.as_deref().map(Path::new), cwd)
        .map_err(|error| fail(exit::MODULE, &error))?;
    let loaded = Loaded::new(module, state_dir).map_err(|error| fail(exit::MODULE, &error))?;
    let description = loaded
        .describe()
        .await
        .map_err(|load| fail(exit::MODULE, &load.error))?;
    let fields = description
        .fields()
        .with_context(|| format!("module {}: its description", loaded.module.name))
        .map_err(|error| fail(exit::MODULE, &error))?;
    Ok(Target::Module(Box::new(loaded), fields))
}

fn title(module: &Module) -> String {
    format!(
        "Functions of module {} ({}, {}):",
        module.name,
        module.sdk.name(),
        module.root.display()
    )
}

pub(crate) async fn functions(args: FunctionsArgs) -> Result<ExitCode> {
    let cwd = std::env::current_dir().context("while reading the current directory")?;
    let engine = EngineArgs {
        state_dir: args.state_dir,
        max_parallel: 1,
        runtime: None,
        cache: crate::cache::CacheArgs::default(),
        cache_max_size: None,
    };
    let target = match target(&args.target, &engine.state_dir(), &cwd).await {
        Ok(target) => target,
        Err(code) => return Ok(code),
    };
    let (title, fields) = match &target {
        Target::Module(loaded, fields) => (title(&loaded.module), fields.clone()),
        Target::Core => (
            "Fields of the core API (gantry call -m core FIELD ...):".to_owned(),
            core()
                .fields("Query")
                .map(<[Field]>::to_vec)
                .unwrap_or_default(),
        ),
    };
    if args.json {
        if let Target::Module(loaded, _) = &target {
            let description = loaded.describe().await.map_err(|load| load.error)?;
            println!("{}", serde_json::to_string_pretty(&description)?);
            return Ok(ExitCode::SUCCESS);
        }
    }
    print!("{}", help::list(&title, &fields));
    Ok(ExitCode::SUCCESS)
}

/// Takes `--output`, `-o`, `--json`, `--progress`, `--explain-cache` and
/// `--help` out of the
/// words after the function (they may come anywhere; no function argument
/// may use these names).
fn global_flags(
    words: Vec<String>,
    output: &mut Option<PathBuf>,
    json: &mut bool,
    progress: &mut ProgressArgs,
) -> Result<(Vec<String>, bool), Usage> {
    let mode = |value: &str| {
        <ProgressMode as clap::ValueEnum>::from_str(value, true).map_err(|_| {
            Usage::new(format!(
                "--progress: expected auto, plain, tty or quiet, got {value:?}"
            ))
        })
    };
    let mut rest = Vec::with_capacity(words.len());
    let mut help = false;
    let mut iter = words.into_iter();
    while let Some(word) = iter.next() {
        match word.as_str() {
            "--help" | "-h" => help = true,
            "--json" => *json = true,
            "--explain-cache" => progress.explain_cache = true,
            "--progress" => match iter.next() {
                Some(value) => progress.progress = mode(&value)?,
                None => return Err(Usage::new("--progress needs a mode")),
            },
            "-o" | "--output" => match iter.next() {
                Some(path) => *output = Some(PathBuf::from(path)),
                None => return Err(Usage::new(format!("{word} needs a path"))),
            },
            _ => {
                if let Some(path) = word
                    .strip_prefix("--output=")
                    .or_else(|| word.strip_prefix("-o="))
                {
                    *output = Some(PathBuf::from(path));
                } else if let Some(value) = word.strip_prefix("--progress=") {
                    progress.progress = mode(value)?;
                } else {
                    rest.push(word);
                }
            }
        }
    }
    Ok((rest, help))
}

pub(crate) async fn run(args: CallArgs) -> Result<ExitCode> {
    let cwd = std::env::current_dir().context("while reading the current directory")?;
    let mut output = args.output.clone();
    let mut json = args.json;
    let mut progress = args.progress.clone();
    let (words, help) =
        match global_flags(args.words.clone(), &mut output, &mut json, &mut progress) {
            Ok(split) => split,
            Err(usage) => return Ok(usage_error(&usage)),
        };
    let state_dir = args.engine.state_dir();
    let target = match target(&args.target, &state_dir, &cwd).await {
        Ok(target) => target,
        Err(code) => return Ok(code),
    };
    let (start, prefix) = match &target {
        Target::Module(loaded, fields) => (
            Start::Module {
                name: &loaded.module.name,
                functions: fields,
            },
            String::new(),
        ),
        Target::Core => (Start::Core, "-m core ".to_owned()),
    };
    if words.is_empty() {
        let listing = match &target {
            Target::Module(loaded, fields) => help::list(&title(&loaded.module), fields),
            Target::Core => help::list(
                "Fields of the core API:",
                core().fields("Query").unwrap_or_default(),
            ),
        };
        eprint!("{listing}");
        eprintln!("\nUsage: gantry call {prefix}FUNCTION [--flag=value ...] [FIELD [--flag=value ...]] ...");
        return Ok(if help {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(exit::USAGE)
        });
    }
    let env_file = match &target {
        Target::Module(loaded, _) => dotenv::read(&loaded.module.root.join(".env"))?,
        Target::Core => Vec::new(),
    };
    let env_root = match &target {
        Target::Module(loaded, _) => loaded.module.root.clone(),
        Target::Core => cwd.clone(),
    };
    let defaults = |field: &Field| dotenv::defaults_for(&env_file, field, &env_root);
    let parsed = chain::parse(&start, &words, &cwd, &defaults, !help);
    if help {
        // Explain the last field named, even if its flags are incomplete.
        let chain = match parsed {
            Ok(chain) => chain,
            Err(usage) => return Ok(usage_error(&usage)),
        };
        let last = chain
            .segments
            .last()
            .expect("words name at least one field");
        let mut command_prefix = prefix;
        for segment in &chain.segments[..chain.segments.len() - 1] {
            command_prefix.push_str(&segment.field.command());
            command_prefix.push_str(" [...] ");
        }
        let chainable = last
            .field
            .returns
            .object_name()
            .and_then(|o| core().fields(o));
        print!("{}", help::usage(&command_prefix, &last.field, chainable));
        return Ok(ExitCode::SUCCESS);
    }
    let chain = match parsed {
        Ok(chain) => chain,
        Err(usage) => return Ok(usage_error(&usage)),
    };
    let loaded = match &target {
        Target::Module(loaded, _) => Some(loaded.as_ref()),
        Target::Core => None,
    };
    invoke::call(invoke::Call {
        loaded,
        chain,
        output,
        json,
        cwd,
        engine: &args.engine,
        progress,
        interactive: args.interactive,
    })
    .await
}
