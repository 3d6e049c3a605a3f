//! Interactive terminals: a shell in a container state on the user's
//! terminal (`Container.terminal`, `Directory.terminal`, `Service.terminal`
//! in its container's state) and, with
//! `--interactive`, in the state a failed step left.
//!
//! The engine has no terminal of its own: the client that owns the user's
//! terminal lends it (`Engine::attach_terminal`, a `TerminalHost`), and a
//! terminal requested where none was lent fails at once with
//! `Error::NoTerminal`, which names the fix. The process is prepared as an
//! exec's is (mounts, bound services, environment, secrets) and run by the
//! runtime with a TTY; nothing it does is committed or cached.

use std::sync::Arc;

use tracing::{debug, info_span, Instrument as _};

use crate::context::Context;
use crate::error::{Error, Result};
use crate::launch;
use crate::value::{ContainerState, ServiceSource, ServiceValue};

/// The shell a terminal runs when neither the call nor the container
/// (`withDefaultTerminalCmd`) names a command, as in Dagger.
pub(crate) const DEFAULT_TERMINAL_CMD: &str = "sh";

/// The command a terminal runs in `state`: `cmd` when given, else the
/// container's default terminal command, else `sh`.
pub(crate) fn command(state: &ContainerState, cmd: &[String]) -> Vec<String> {
    if !cmd.is_empty() {
        cmd.to_vec()
    } else if !state.default_terminal_cmd.is_empty() {
        state.default_terminal_cmd.clone()
    } else {
        vec![DEFAULT_TERMINAL_CMD.to_owned()]
    }
}

/// Whether a terminal falls back to the default terminal command
/// (`withDefaultTerminalCmd`), whose options then apply.
fn runs_default(state: &ContainerState, cmd: &[String]) -> bool {
    cmd.is_empty() && !state.default_terminal_cmd.is_empty()
}

/// Whether a terminal runs with every root capability: when asked
/// (`insecureRootCapabilities`), or when it falls back to a default
/// terminal command that was set privileged, as in Dagger.
pub(crate) fn privileged(state: &ContainerState, cmd: &[String], asked: bool) -> bool {
    asked || (runs_default(state, cmd) && state.default_terminal_privileged)
}

/// Whether a terminal gets a nested session (`experimentalPrivilegedNesting`):
/// when asked, or when it falls back to a default terminal command that was
/// set so, as `privileged`.
pub(crate) fn nesting(state: &ContainerState, cmd: &[String], asked: bool) -> bool {
    asked || (runs_default(state, cmd) && state.default_terminal_nesting)
}

/// The container state a `Service.terminal` shell runs in: a container
/// service's own (`asService`), through any tunnels. A `Host.service` has
/// none, which is an error naming the fix.
pub(crate) fn service_state(service: &ServiceValue) -> Result<Arc<ContainerState>> {
    match &service.source {
        ServiceSource::Container { state, .. } => Ok(state.clone()),
        ServiceSource::Tunnel { upstream, .. } => service_state(upstream),
        ServiceSource::Host { host, .. } => Err(Error::Unsupported {
            message: format!(
                "Service.terminal needs a container service (`Container.asService`), and this \
                 one forwards ports of the engine's host ({host}, `Host.service`), so there is \
                 no container to open a shell in: call `terminal` on a container instead"
            ),
        }),
    }
}

/// Whether a terminal can be opened at all; `what` names the request in
/// the error (`Container.terminal`).
pub(crate) fn check(cx: &Context, what: &str) -> Result<()> {
    match cx.terminal.get() {
        Some(_) => Ok(()),
        None => Err(Error::NoTerminal { what: what.into() }),
    }
}

/// Runs `cmd` in `state` on the user's terminal until it exits, with every
/// root capability when `privileged` and a nested session of its own when
/// `nesting` (as `withExec` runs one). `title`
/// is what the user is told before the shell starts. The exit code of the
/// shell is not an error: the user ends it however they like.
pub(crate) async fn open(
    cx: &Context,
    state: &ContainerState,
    cmd: Vec<String>,
    privileged: bool,
    nesting: bool,
    what: &str,
    title: &str,
) -> Result<()> {
    let Some(host) = cx.terminal.get() else {
        return Err(Error::NoTerminal { what: what.into() });
    };
    let mut process = launch::prepare(cx, state, cmd).await?;
    process.spec.privileged = privileged;
    if nesting {
        process.nest(cx).await?;
    }
    if !process
        .spec
        .env
        .iter()
        .any(|entry| entry.starts_with("TERM="))
    {
        process.spec.env.push("TERM=xterm".to_owned());
    }
    let io = host.attach(title).await?;
    let run = cx
        .runtime
        .terminal(process.spec.clone(), io)
        .instrument(info_span!("terminal"));
    let exit_code = tokio::select! {
        code = run => code?,
        error = process.services.exited() => return Err(error),
    };
    debug!(exit_code, "terminal closed");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_falls_back_to_the_default_then_sh() {
        let mut state = ContainerState::default();
        assert_eq!(command(&state, &[]), ["sh"]);
        state.default_terminal_cmd = vec!["bash".into(), "-l".into()];
        assert_eq!(command(&state, &[]), ["bash", "-l"]);
        assert_eq!(command(&state, &["zsh".to_owned()]), ["zsh"]);
    }

    #[test]
    fn a_privileged_default_command_is_privileged_only_when_it_runs() {
        let mut state = ContainerState::default();
        assert!(!privileged(&state, &[], false));
        assert!(privileged(&state, &[], true));
        state.default_terminal_cmd = vec!["bash".into()];
        state.default_terminal_privileged = true;
        assert!(privileged(&state, &[], false));
        assert!(!privileged(&state, &["zsh".to_owned()], false));
    }
}
