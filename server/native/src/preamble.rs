//! What the OCI runtime's process does before it becomes the runtime: join the
//! step's cgroups (so everything the runtime forks is accounted there) and, on a
//! hybrid cgroup layout, hide the layout's cgroup v2 half from crun, which refuses
//! such layouts when that half holds controllers.
//!
//! It runs as the gantry binary itself, `gantry __oci-start [--hide-unified]
//! [--procs FILE]... -- RUNTIME ARGS...`, which `main` hands here before anything
//! else (one thread, no async runtime), and which then execs the runtime in the
//! same process: one exec of the running binary (`/proc/self/exe`, right even
//! when the file was replaced since) instead of the chain of `unshare`, two shells
//! and `mount` it replaces, each an exec of its own (about 8 ms of CPU a step on
//! the 2-core CI machine). gantry forbids `unsafe` code, which rules out doing this
//! between fork and exec in the engine itself (`pre_exec`).
//!
//! A failure exits 125, as a runtime that cannot start, with one line on stderr
//! that starts with `FAILED`; `failure` turns it back into an error.

use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The argument that makes `gantry` run `main` here.
pub const ARG: &str = "__oci-start";

/// The program that runs the preamble by default: the engine's own binary,
/// whose `main` must hand [`ARG`] to [`main`] first (`gantry`'s does).
pub const SELF_EXE: &str = "/proc/self/exe";

/// The exit code of a failed preamble (as of a runtime that cannot start).
const EXIT_FAILED: i32 = 125;

/// How a failed preamble's message starts.
const FAILED: &str = "gantry: cannot start the OCI runtime: ";

/// Where a hybrid cgroup layout mounts its v2 half.
const UNIFIED: &str = "/sys/fs/cgroup/unified";

/// What the preamble does before it execs the runtime.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    /// `cgroup.procs` files to write the process into.
    pub(crate) procs: Vec<PathBuf>,
    /// Enter a mount namespace of its own whose `/sys/fs/cgroup/unified` is an
    /// empty tmpfs.
    pub(crate) hide_unified: bool,
}

impl Plan {
    /// Whether there is anything to do before the runtime runs.
    pub(crate) fn is_empty(&self) -> bool {
        self.procs.is_empty() && !self.hide_unified
    }

    /// A command that carries out the plan (through `preamble`, a program
    /// whose `main` hands [`ARG`] to [`main`]), then runs `runtime` with the
    /// arguments the caller adds.
    pub(crate) fn command(&self, preamble: &Path, runtime: &Path) -> std::process::Command {
        let mut command = std::process::Command::new(preamble);
        command.arg(ARG);
        if self.hide_unified {
            command.arg("--hide-unified");
        }
        for procs in &self.procs {
            command.arg("--procs").arg(procs);
        }
        command.arg("--").arg(runtime);
        command
    }

    /// The plan and the command line after `--`.
    fn parse(args: impl IntoIterator<Item = OsString>) -> Result<(Self, Vec<OsString>), String> {
        let mut plan = Plan::default();
        let mut args = args.into_iter();
        loop {
            let Some(arg) = args.next() else {
                return Err(format!("{ARG}: no `-- RUNTIME ARGS...` given"));
            };
            match arg.to_str() {
                Some("--") => break,
                Some("--hide-unified") => plan.hide_unified = true,
                Some("--procs") => plan.procs.push(
                    args.next()
                        .ok_or_else(|| format!("{ARG}: --procs needs a file"))?
                        .into(),
                ),
                _ => return Err(format!("{ARG}: unknown argument {arg:?}")),
            }
        }
        let command: Vec<OsString> = args.collect();
        if command.is_empty() {
            return Err(format!("{ARG}: no runtime given after `--`"));
        }
        Ok((plan, command))
    }

    /// Joins the cgroups, then hides the unified half: a new mount namespace,
    /// every mount in it made private (nothing done here reaches the host), an
    /// empty tmpfs over the v2 half.
    fn prepare(&self) -> Result<(), String> {
        use rustix::mount::{MountFlags, MountPropagationFlags};
        for procs in &self.procs {
            // "0" is the writing process, in cgroup v1 and v2 alike.
            std::fs::write(procs, "0").map_err(|error| {
                format!("joining the step's cgroup ({}): {error}", procs.display())
            })?;
        }
        if self.hide_unified {
            // The safe form is deprecated only because unsharing the file table
            // (CLONE_FILES) can break other threads; this process has one thread
            // and unshares its mount namespace alone.
            #[allow(deprecated)]
            rustix::thread::unshare(rustix::thread::UnshareFlags::NEWNS)
                .and_then(|()| {
                    rustix::mount::mount_change(
                        "/",
                        MountPropagationFlags::REC | MountPropagationFlags::PRIVATE,
                    )
                })
                .and_then(|()| {
                    rustix::mount::mount(
                        "gantry",
                        UNIFIED,
                        "tmpfs",
                        MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
                        c"size=4k,mode=755",
                    )
                })
                .map_err(|error| {
                    format!(
                        "hiding the cgroup v2 half ({UNIFIED}) from crun in a mount namespace of \
                         its own: {error} (GANTRY_OCI_RUNTIME=runc needs no such namespace)"
                    )
                })?;
        }
        Ok(())
    }
}

/// `gantry __oci-start ARGS...` (`args` after `ARG`): carries out the plan and
/// execs the runtime; returns only when that fails, with the exit code.
pub fn main(args: impl IntoIterator<Item = OsString>) -> i32 {
    use std::os::unix::process::CommandExt as _;
    let failed = match Plan::parse(args) {
        Err(message) => message,
        Ok((plan, command)) => match plan.prepare() {
            Err(message) => message,
            Ok(()) => {
                let error = std::process::Command::new(&command[0])
                    .args(&command[1..])
                    .exec();
                format!("running {}: {error}", Path::new(&command[0]).display())
            }
        },
    };
    let _ = writeln!(std::io::stderr(), "{FAILED}{failed}");
    EXIT_FAILED
}

/// The preamble's own failure, from the runtime process's exit code and
/// stderr: its message without the prefix.
pub(crate) fn failure(exit_code: i64, stderr: &[u8]) -> Option<String> {
    if exit_code != i64::from(EXIT_FAILED) {
        return None;
    }
    let text = String::from_utf8_lossy(stderr);
    let line = text.lines().next()?;
    line.strip_prefix(FAILED).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_crosses_the_command_line_whole() {
        let plan = Plan {
            procs: vec![
                "/sys/fs/cgroup/cpu/gantry/a/cgroup.procs".into(),
                "/x y/cgroup.procs".into(),
            ],
            hide_unified: true,
        };
        let command = plan.command(Path::new(SELF_EXE), Path::new("/usr/bin/crun"));
        assert_eq!(command.get_program(), SELF_EXE);
        let mut args: Vec<OsString> = command.get_args().map(OsString::from).collect();
        assert_eq!(args.remove(0), ARG);
        args.push("run".into());
        let (parsed, runtime) = Plan::parse(args).unwrap();
        assert_eq!(parsed, plan);
        assert_eq!(runtime, [OsString::from("/usr/bin/crun"), "run".into()]);
        assert!(Plan::default().is_empty() && !plan.is_empty());
    }

    #[test]
    fn bad_arguments_and_failures_are_named() {
        let parse = |args: &[&str]| Plan::parse(args.iter().map(OsString::from)).unwrap_err();
        assert!(parse(&["--procs"]).contains("--procs needs a file"));
        assert!(parse(&["--nope", "--", "crun"]).contains("unknown argument"));
        assert!(parse(&["--"]).contains("no runtime"));
        assert!(parse(&[]).contains("no `-- RUNTIME"));
        let plan = Plan {
            procs: vec!["/nonexistent/cgroup.procs".into()],
            hide_unified: false,
        };
        let message = plan.prepare().unwrap_err();
        assert!(
            message.contains("joining the step's cgroup (/nonexistent/cgroup.procs)"),
            "{message}"
        );
        let stderr = format!("{FAILED}{message}\nmore");
        assert_eq!(failure(125, stderr.as_bytes()), Some(message));
        assert_eq!(failure(1, stderr.as_bytes()), None);
        assert_eq!(failure(125, b"crun: something else"), None);
    }
}
