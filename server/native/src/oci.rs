//! Driving the OCI runtime binary (`crun`, else `runc`) and the cgroup of each step.
//!
//! A step is one `RUNTIME run --bundle B ID` process in a cgroup of gantry's own
//! (`gantry/<engine pid>/<step>`), which the runtime's own cgroup for the container
//! (`…/<step>/c`) nests in. gantry's cgroup outlives the container, so its CPU and
//! memory figures can be read after the container is gone, and everything in it (the
//! runtime, the container's init and whatever it spawned) can be killed at once when
//! a step is cancelled. The container has its own PID namespace too, so killing its
//! init takes down every process it started.
//!
//! crun (1.8) refuses a hybrid cgroup layout (cgroup v1 controllers beside a cgroup
//! v2 hierarchy at `/sys/fs/cgroup/unified` that has controllers of its own), which
//! runc accepts, but runc takes about twice as long to start a container. On such a
//! host gantry runs crun in a mount namespace of its own in which an empty tmpfs
//! covers `/sys/fs/cgroup/unified` (`OciRuntime::command`, through gantry's own
//! `preamble`): crun then sees plain cgroup v1, all that gantry's accounting uses
//! there, and the host's own mounts are untouched.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::error::Error;
use crate::preamble::Plan;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Crun,
    Runc,
}

impl Flavor {
    pub fn name(self) -> &'static str {
        match self {
            Flavor::Crun => "crun",
            Flavor::Runc => "runc",
        }
    }
}

/// The container's pid, written by the runtime into the bundle when it has started it.
pub(crate) const PID_FILE: &str = "container.pid";

/// The OCI runtime binary and where it keeps container state.
#[derive(Debug, Clone)]
pub(crate) struct OciRuntime {
    pub(crate) binary: PathBuf,
    pub(crate) flavor: Flavor,
    /// Run it with the cgroup v2 half of a hybrid layout hidden (see `command`).
    pub(crate) hide_unified: bool,
    /// The program that runs `preamble::main` (see `NativeOptions::preamble`).
    pub(crate) preamble: PathBuf,
}

/// Finds `name` on `PATH`.
pub(crate) fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")
        .unwrap_or_else(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| {
            std::fs::metadata(candidate).is_ok_and(|meta| {
                meta.is_file()
                    && std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o111 != 0
            })
        })
}

impl OciRuntime {
    /// `preference`: `crun`, `runc`, a path to either, or `None` for crun when it can
    /// run here, else runc.
    pub(crate) fn detect(
        preference: Option<&str>,
        cgroups: &Cgroups,
        preamble: &Path,
    ) -> Result<Self, Error> {
        let preamble = preamble.to_path_buf();
        let flavor_of = |path: &Path| {
            if path
                .file_name()
                .is_some_and(|name| name.to_string_lossy().contains("crun"))
            {
                Flavor::Crun
            } else {
                Flavor::Runc
            }
        };
        if let Some(preference) = preference.filter(|p| !p.is_empty()) {
            let binary = if preference.contains('/') {
                PathBuf::from(preference)
            } else {
                which(preference).ok_or_else(|| Error::Unsupported {
                    reason: format!("{preference} is not on PATH (install it, e.g. apt-get install {preference})"),
                })?
            };
            let flavor = flavor_of(&binary);
            return Ok(Self {
                binary,
                flavor,
                hide_unified: flavor == Flavor::Crun && !cgroups.crun_compatible(),
                preamble,
            });
        }
        if let Some(binary) = which("crun") {
            return Ok(Self {
                binary,
                flavor: Flavor::Crun,
                hide_unified: !cgroups.crun_compatible(),
                preamble,
            });
        }
        if let Some(binary) = which("runc") {
            return Ok(Self {
                binary,
                flavor: Flavor::Runc,
                hide_unified: false,
                preamble,
            });
        }
        Err(Error::Unsupported {
            reason: "neither crun nor runc is installed (apt-get install crun)".to_owned(),
        })
    }

    /// The arguments of `run` for a container `id` in `bundle`, its state under `root`
    /// and its own errors (JSON lines) in `log`. The runtime writes the container's pid
    /// to `bundle/PID_FILE` once it has started the command (the file's modification
    /// time splits a step's run into the runtime's start and the wait).
    pub(crate) fn run_args(&self, root: &Path, log: &Path, bundle: &Path, id: &str) -> Vec<String> {
        vec![
            "--root".into(),
            root.display().to_string(),
            "--log".into(),
            log.display().to_string(),
            "--log-format".into(),
            "json".into(),
            "run".into(),
            "--bundle".into(),
            bundle.display().to_string(),
            "--pid-file".into(),
            bundle.join(PID_FILE).display().to_string(),
            id.to_owned(),
        ]
    }

    /// A command that runs the runtime (the caller adds its arguments) where it can
    /// work: in the cgroups whose `cgroup.procs` files `procs` names, from its
    /// start, and with `hide_unified` in a mount namespace of its own whose
    /// `/sys/fs/cgroup/unified` is an empty tmpfs (see `preamble`).
    pub(crate) fn command(&self, procs: &[PathBuf]) -> std::process::Command {
        let plan = Plan {
            procs: procs.to_vec(),
            hide_unified: self.hide_unified,
        };
        if plan.is_empty() {
            return std::process::Command::new(&self.binary);
        }
        plan.command(&self.preamble, &self.binary)
    }

    /// `kill ID KILL` then `delete --force ID`; errors (it is gone already) ignored.
    /// Blocking.
    pub(crate) fn destroy(&self, root: &Path, id: &str) {
        for args in [vec!["kill", id, "KILL"], vec!["delete", "--force", id]] {
            let status = self
                .command(&[])
                .arg("--root")
                .arg(root)
                .args(&args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            tracing::debug!(
                container = id,
                command = args[0],
                ok = status.is_ok_and(|s| s.success()),
                "runtime cleanup"
            );
        }
    }
}

/// The runtime's own error from its `--log` file (JSON lines), if it logged one.
pub(crate) fn logged_error(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines()
        .rev()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|entry| matches!(entry["level"].as_str(), Some("error" | "fatal")))
        .find_map(|entry| entry["msg"].as_str().map(str::to_owned))
}

/// The exit code a shell gives for a command it cannot run, when `message` (the
/// runtime's error) says the process never started for that reason.
pub(crate) fn exec_failure_code(message: &str) -> Option<i64> {
    let lower = message.to_ascii_lowercase();
    if !(lower.contains("exec") || lower.contains("executable")) {
        return None;
    }
    if lower.contains("not found") || lower.contains("no such file or directory") {
        Some(127)
    } else if lower.contains("permission denied")
        || lower.contains("operation not permitted")
        || lower.contains("is a directory")
    {
        // crun opens the executable first: a directory is EPERM there.
        Some(126)
    } else {
        None
    }
}

/// The cgroup hierarchy of this machine.
#[derive(Debug, Clone)]
pub(crate) enum Cgroups {
    /// cgroup v2 at `/sys/fs/cgroup`.
    Unified(PathBuf),
    /// cgroup v1: one directory per mounted controller hierarchy.
    Legacy {
        hierarchies: Vec<PathBuf>,
        unified_controllers: bool,
    },
}

const CGROUP_ROOT: &str = "/sys/fs/cgroup";
/// Controllers gantry's own per-step cgroup is made in (v1): enough to account and kill.
const ACCOUNTED: [&str; 3] = ["cpuacct", "memory", "pids"];

impl Cgroups {
    pub(crate) fn detect() -> Result<Self, Error> {
        let root = Path::new(CGROUP_ROOT);
        if root.join("cgroup.controllers").exists() {
            return Ok(Self::Unified(root.to_owned()));
        }
        let entries = std::fs::read_dir(root).map_err(|source| Error::Unsupported {
            reason: format!("no cgroup hierarchy at {CGROUP_ROOT}: {source}"),
        })?;
        let mut hierarchies: Vec<PathBuf> = entries
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| path.join("cgroup.procs").exists() && !path.ends_with("unified"))
            .collect();
        hierarchies.sort();
        if !hierarchies
            .iter()
            .any(|h| h.ends_with("pids") || h.ends_with("memory"))
        {
            return Err(Error::Unsupported {
                reason: format!("no cgroup controllers are mounted under {CGROUP_ROOT}"),
            });
        }
        let unified_controllers = std::fs::read_to_string(root.join("unified/cgroup.controllers"))
            .is_ok_and(|text| !text.trim().is_empty());
        Ok(Self::Legacy {
            hierarchies,
            unified_controllers,
        })
    }

    /// crun (1.8) refuses hybrid hierarchies whose unified half has controllers.
    fn crun_compatible(&self) -> bool {
        !matches!(
            self,
            Self::Legacy {
                unified_controllers: true,
                ..
            }
        )
    }

    pub(crate) fn version(&self) -> u8 {
        match self {
            Self::Unified(_) => 2,
            Self::Legacy { .. } => 1,
        }
    }

    /// The directories of `relative` (e.g. `gantry/123/4`) where gantry creates it.
    fn accounted_dirs(&self, relative: &str) -> Vec<PathBuf> {
        match self {
            Self::Unified(root) => vec![root.join(relative)],
            Self::Legacy { hierarchies, .. } => hierarchies
                .iter()
                .filter(|h| {
                    h.file_name().is_some_and(|name| {
                        ACCOUNTED
                            .iter()
                            .any(|c| name.to_string_lossy().split(',').any(|part| part == *c))
                    })
                })
                .map(|h| h.join(relative))
                .collect(),
        }
    }

    /// Every directory of `relative` in every hierarchy (for removal).
    fn all_dirs(&self, relative: &str) -> Vec<PathBuf> {
        match self {
            Self::Unified(root) => vec![root.join(relative)],
            Self::Legacy { hierarchies, .. } => {
                hierarchies.iter().map(|h| h.join(relative)).collect()
            }
        }
    }

    /// Creates gantry's cgroup `relative` and returns the `cgroup.procs` files the
    /// runtime process joins it through: those of its leaf `rt`, beside the leaf `c`
    /// the runtime makes for the container (cgroup v2 keeps processes in leaves only).
    pub(crate) fn create(&self, relative: &str) -> Result<Vec<PathBuf>, Error> {
        let mut procs = Vec::new();
        for dir in self.accounted_dirs(&format!("{relative}/rt")) {
            std::fs::create_dir_all(&dir)
                .map_err(|source| Error::io("creating a cgroup", &dir, source))?;
            if let Self::Unified(root) = self {
                enable_controllers(root, &dir);
            }
            procs.push(dir.join("cgroup.procs"));
        }
        Ok(procs)
    }

    /// CPU time (ns) and peak memory (bytes) used in `relative`, where readable.
    pub(crate) fn usage(&self, relative: &str) -> (Option<u64>, Option<u64>) {
        let read = |path: PathBuf| std::fs::read_to_string(path).ok();
        match self {
            Self::Unified(root) => {
                let dir = root.join(relative);
                let cpu = read(dir.join("cpu.stat")).and_then(|text| {
                    text.lines()
                        .find_map(|line| line.strip_prefix("usage_usec "))
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(|usec| usec * 1000)
                });
                let memory = read(dir.join("memory.peak")).and_then(|v| v.trim().parse().ok());
                (cpu, memory)
            }
            Self::Legacy { .. } => {
                let dirs = self.accounted_dirs(relative);
                let find = |file: &str| {
                    dirs.iter()
                        .find_map(|dir| read(dir.join(file)))
                        .and_then(|v| v.trim().parse::<u64>().ok())
                };
                (find("cpuacct.usage"), find("memory.max_usage_in_bytes"))
            }
        }
    }

    /// Kills every process in `relative` (and below), then removes its cgroups.
    pub(crate) fn kill_and_remove(&self, relative: &str) {
        for _ in 0..50 {
            let mut alive = 0;
            for dir in self.all_dirs(relative) {
                if let Self::Unified(_) = self {
                    if std::fs::write(dir.join("cgroup.kill"), b"1").is_ok() {
                        continue;
                    }
                }
                for pid in pids_below(&dir) {
                    alive += 1;
                    let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                }
            }
            if alive == 0 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        for dir in self.all_dirs(relative) {
            remove_cgroup_tree(&dir);
        }
    }

    /// The engines' cgroups, `gantry/<engine name>` (for orphan cleanup).
    pub(crate) fn engine_dirs(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for dir in self.all_dirs("gantry") {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    out.push((name.clone(), format!("gantry/{name}")));
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }
}

/// On cgroup v2, processes may only sit in leaves and controllers must be enabled
/// down the path: turn on cpu, memory and pids for the new cgroup's ancestors.
fn enable_controllers(root: &Path, dir: &Path) {
    let Ok(relative) = dir.strip_prefix(root) else {
        return;
    };
    let mut current = root.to_owned();
    for component in relative.components() {
        let _ = std::fs::write(
            current.join("cgroup.subtree_control"),
            b"+cpu +memory +pids",
        );
        current.push(component);
    }
}

fn pids_below(dir: &Path) -> Vec<rustix::process::Pid> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(current) = stack.pop() {
        if let Ok(text) = std::fs::read_to_string(current.join("cgroup.procs")) {
            out.extend(
                text.lines()
                    .filter_map(|line| line.trim().parse::<i32>().ok())
                    .filter_map(rustix::process::Pid::from_raw),
            );
        }
        for entry in std::fs::read_dir(&current).into_iter().flatten().flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(entry.path());
            }
        }
    }
    out
}

/// `rmdir` a cgroup and its children, deepest first (cgroup directories hold only
/// virtual files, which rmdir accepts).
fn remove_cgroup_tree(dir: &Path) {
    let children: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_dir()))
        .map(|entry| entry.path())
        .collect();
    for child in children {
        remove_cgroup_tree(&child);
    }
    if let Err(error) = std::fs::remove_dir(dir) {
        if error.kind() != std::io::ErrorKind::NotFound {
            tracing::debug!(cgroup = %dir.display(), %error, "cannot remove a cgroup");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_errors_map_to_shell_exit_codes() {
        assert_eq!(
            exec_failure_code(
                r#"runc run failed: unable to start container process: exec: "nosuch": executable file not found in $PATH"#
            ),
            Some(127)
        );
        assert_eq!(
            exec_failure_code(
                r#"unable to start container process: exec: "/etc": permission denied"#
            ),
            Some(126)
        );
        assert_eq!(
            exec_failure_code(
                "executable file `nosuch` not found in $PATH: No such file or directory"
            ),
            Some(127)
        );
        assert_eq!(
            exec_failure_code("crun: open executable: Operation not permitted"),
            Some(126)
        );
        assert_eq!(exec_failure_code("cgroup: permission denied"), None);
    }

    #[test]
    fn on_a_hybrid_layout_crun_is_started_with_the_v2_half_covered() {
        let oci = |hide_unified: bool| OciRuntime {
            binary: "/usr/bin/crun".into(),
            flavor: Flavor::Crun,
            hide_unified,
            preamble: crate::preamble::SELF_EXE.into(),
        };
        // Nothing to do first: the runtime itself.
        let plain = oci(false).command(&[]);
        assert_eq!(plain.get_program(), "/usr/bin/crun");
        assert_eq!(plain.get_args().count(), 0);
        // Else gantry's preamble, which then execs it.
        let procs = PathBuf::from("/sys/fs/cgroup/x/cgroup.procs");
        let hidden = oci(true).command(std::slice::from_ref(&procs));
        assert_eq!(hidden.get_program(), "/proc/self/exe");
        let args: Vec<_> = hidden.get_args().collect();
        assert_eq!(
            args,
            [
                crate::preamble::ARG.as_ref(),
                "--hide-unified".as_ref(),
                "--procs".as_ref(),
                procs.as_os_str(),
                "--".as_ref(),
                "/usr/bin/crun".as_ref()
            ]
        );
        // A hybrid layout with controllers in its v2 half is what crun refuses.
        let hybrid = Cgroups::Legacy {
            hierarchies: Vec::new(),
            unified_controllers: true,
        };
        assert!(!hybrid.crun_compatible());
    }
}
