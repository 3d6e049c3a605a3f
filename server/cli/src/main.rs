//! `gantry`: the binary. Parses the command line, installs the tracing
//! subscriber and dispatches to the subcommands; anyhow lives here only.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line program: printing is its interface (libraries never print)"
)]

mod activity;
mod cache;
mod cache_admin;
mod cache_layout;
mod call;
mod client;
mod engine;
mod env;
mod lifecycle;
mod module;
mod progress;
mod prune;
mod query;
mod remote_admin;
mod runtime;
mod serve;
mod session;
mod status;
mod telemetry;
mod terminal;
mod units;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// CI/CD pipelines as code: every step runs in a container and is cached by
/// a digest of its inputs.
#[derive(Debug, Parser)]
#[command(name = "gantry", version, propagate_version = true)]
#[command(after_help = "Docs: README.md and docs/ in the gantry repository.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the engine: GraphQL on a Unix socket (and optionally loopback TCP)
    Serve(serve::ServeArgs),
    /// See and stop the running engine: status, stop, logs
    Engine(lifecycle::ControlArgs),
    /// Run a command inside an engine session (how CI jobs and SDK scripts run)
    Run(session::RunArgs),
    /// Call a function of a module (or the core API with -m core) and print its result
    Call(call::CallArgs),
    /// List the functions of a module
    Functions(call::FunctionsArgs),
    /// Create a module with one example function
    Init(module::init::InitArgs),
    /// Send one GraphQL document to the engine and print the result
    Query(query::QueryArgs),
    /// Print the GraphQL schema (SDL)
    Schema,
    /// Print gantry's version
    Version,
    /// List, measure and prune the cache (ls, du, prune)
    Cache(cache_admin::CacheArgs),
    /// Remove cached results and their images (the same as `gantry cache prune --all`; --keep-storage is --max-size)
    Prune(prune::PruneArgs),
    /// Start a session for Dagger's SDKs: prints {"port","session_token"} and serves until stdin closes
    #[command(disable_help_flag = true)]
    Session {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
        args: Vec<String>,
    },
}

fn init_tracing(default: &str) {
    let filter = std::env::var(env::LOG)
        .ok()
        .and_then(|value| EnvFilter::try_new(value).ok())
        .unwrap_or_else(|| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal: an SDK's engine.log, a
        // CI log or a service manager's journal gets plain text.
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none(),
        )
        .with_target(false)
        .init();
}

/// Worker stack size. Deeply chained queries (SDKs replay whole pipelines)
/// recurse through async-graphql's resolvers; 2 MiB, tokio's default, is
/// not enough for the `MAX_QUERY_DEPTH` the API accepts.
const WORKER_STACK_BYTES: usize = 16 * 1024 * 1024;

fn main() -> ExitCode {
    // The native runtime's preamble: one thread, then exec (see its module).
    let mut args = std::env::args_os();
    if args
        .nth(1)
        .is_some_and(|arg| arg == gantry_native::preamble::ARG)
    {
        let code = gantry_native::preamble::main(args);
        return ExitCode::from(u8::try_from(code).unwrap_or(u8::MAX));
    }
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(WORKER_STACK_BYTES)
        .build();
    match runtime {
        Ok(runtime) => runtime.block_on(run(cli)),
        Err(error) => {
            eprintln!("gantry: error: could not start the async runtime: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> ExitCode {
    let default_filter = match cli.command {
        Command::Serve(_) => "info",
        _ => "warn",
    };
    init_tracing(default_filter);
    engine::raise_fd_limit();
    let outcome = match cli.command {
        Command::Serve(args) => serve::run(args).await.map(|()| ExitCode::SUCCESS),
        Command::Engine(args) => return lifecycle::run(args).await,
        Command::Run(args) => session::run(args).await,
        Command::Query(args) => query::run(args).await,
        Command::Call(args) => call::run(args).await,
        Command::Functions(args) => call::functions(args).await,
        Command::Init(args) => module::init::run(args).map(|()| ExitCode::SUCCESS),
        Command::Schema => {
            print!("{}", gantry_api::sdl());
            Ok(ExitCode::SUCCESS)
        }
        Command::Version => {
            println!("gantry {}", gantry_api::VERSION);
            Ok(ExitCode::SUCCESS)
        }
        Command::Cache(args) => cache_admin::run(args).await.map(|()| ExitCode::SUCCESS),
        Command::Prune(args) => prune::run(args).await.map(|()| ExitCode::SUCCESS),
        Command::Session { args } => session::session(args).await.map(|()| ExitCode::SUCCESS),
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("gantry: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
