//! A second Docker daemon on this host, for the cross-machine tests of the
//! remote cache: "machine B" is an engine on another dockerd (its own data
//! root, exec root, pid file, socket, containerd and bridge), so it shares no
//! image, layer or container with machine A on the host's daemon.
//!
//! One daemon per test binary, started by the first test that asks for it.
//! A watcher process (in a session of its own, so a Ctrl-C of the tests does
//! not stop it) stops the daemon and removes its directory and bridge when the
//! test binary exits. A daemon left by a run that was killed together with its
//! watcher is removed by the next run, before it starts its own.
//!
//! The daemon runs in the host's network namespace, so it pulls from the test
//! registry on the loopback address as the host's daemon does. Its bridge is
//! its own (`--bridge=none` would delete the host's `docker0`), with an
//! address picked here from `10.232.0.0/16` and no iptables rules, and its
//! address pools are in that range too, away from the host daemon's.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Removes a daemon's remains once the process `$1` (the test binary that
/// started it) is gone: stops the dockerd of `$2/dockerd.pid`, unmounts and
/// deletes `$2`, deletes the bridge `$3`. The watcher runs it; so does the
/// next run for a directory whose owner died with its watcher.
const CLEANUP: &str = r#"
owner=$1 root=$2 bridge=$3
while kill -0 "$owner" 2>/dev/null; do sleep 1; done
daemon=$(cat "$root/dockerd.pid" 2>/dev/null)
if [ -n "$daemon" ] && kill "$daemon" 2>/dev/null; then
    waited=0
    while kill -0 "$daemon" 2>/dev/null && [ $waited -lt 300 ]; do sleep 0.2; waited=$((waited + 1)); done
    kill -9 "$daemon" 2>/dev/null
fi
grep -o " $root/[^ ]*" /proc/mounts | sort -r | while read -r mount; do umount -l "$mount"; done
ip link delete "$bridge" 2>/dev/null
rm -rf "$root"
"#;

/// The second daemon of this test binary.
pub(crate) struct Daemon {
    root: PathBuf,
    host: String,
}

impl Daemon {
    /// This binary's second daemon, started (with the busybox fixture pulled
    /// into it) the first time it is asked for; panics with the reason when
    /// it cannot run here.
    pub(crate) fn shared() -> &'static Daemon {
        static DAEMON: OnceLock<Result<Daemon, String>> = OnceLock::new();
        DAEMON
            .get_or_init(Daemon::start)
            .as_ref()
            .unwrap_or_else(|reason| panic!("the second dockerd cannot run here: {reason}"))
    }

    /// `DOCKER_HOST` for an engine on this daemon.
    pub(crate) fn host(&self) -> &str {
        &self.host
    }

    /// `docker ARGS…` against this daemon.
    pub(crate) fn docker(&self, args: &[&str]) -> Output {
        Command::new("docker")
            .args(["--host", &self.host])
            .args(args)
            .output()
            .unwrap()
    }

    fn start() -> Result<Daemon, String> {
        let parent = std::env::temp_dir().join("gantry-it-dockerd");
        remove_stale(&parent);
        let pid = std::process::id();
        let root = parent.join(pid.to_string());
        let bridge = bridge_name(pid);
        std::fs::create_dir_all(&root).map_err(|e| format!("{}: {e}", root.display()))?;
        // The watcher first: whatever happens next, the daemon goes with the tests.
        Command::new("setsid")
            .args(["sh", "-c", CLEANUP, "cleanup"])
            .arg(pid.to_string())
            .arg(&root)
            .arg(&bridge)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start its watcher (setsid sh): {e}"))?;
        let subnet = free_subnet().ok_or("no free /24 in 10.232.0.0/16 for its bridge")?;
        let added = ip(&["link", "add", &bridge, "type", "bridge"])
            .and_then(|()| {
                ip(&[
                    "addr",
                    "add",
                    &format!("10.232.{subnet}.1/24"),
                    "dev",
                    &bridge,
                ])
            })
            .and_then(|()| ip(&["link", "set", &bridge, "up"]));
        added.map_err(|e| format!("cannot make its bridge {bridge} (needs root): {e}"))?;
        let registry = crate::support::registry();
        let config = serde_json::json!({
            "insecure-registries": [registry],
            "registry-mirrors": [],
            "default-address-pools": [{ "base": format!("10.232.{subnet}.0/24"), "size": 28 }],
        });
        let config_file = root.join("daemon.json");
        std::fs::write(&config_file, config.to_string()).map_err(|e| e.to_string())?;
        let log = std::fs::File::create(root.join("dockerd.log")).map_err(|e| e.to_string())?;
        let host = format!("unix://{}", root.join("docker.sock").display());
        let mut child = Command::new("dockerd")
            .arg("--config-file")
            .arg(&config_file)
            .arg("--data-root")
            .arg(root.join("data"))
            .arg("--exec-root")
            .arg(root.join("exec"))
            .arg("--pidfile")
            .arg(root.join("dockerd.pid"))
            .args(["--host", &host, "--bridge", &bridge])
            .args(["--iptables=false", "--ip-masq=false", "--ip-forward=false"])
            .args(["--storage-driver=overlay2", "--log-level=warn"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot run dockerd: {e}"))?;
        let daemon = Daemon { root, host };
        let deadline = Instant::now() + Duration::from_secs(120);
        while !daemon.docker(&["version"]).status.success() {
            if child.try_wait().ok().flatten().is_some() || Instant::now() > deadline {
                return Err(format!(
                    "dockerd did not start within 120 s; its log ends: {}",
                    daemon.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let busybox = crate::support::busybox();
        let pulled = daemon.docker(&["pull", "-q", &busybox]);
        if !pulled.status.success() {
            return Err(format!(
                "it cannot pull {busybox}: {}",
                String::from_utf8_lossy(&pulled.stderr)
            ));
        }
        Ok(daemon)
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.root.join("dockerd.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(5)..].join("\n")
    }
}

/// The bridge of the daemon that the test binary `pid` started (at most 15
/// characters, as Linux allows).
fn bridge_name(pid: u32) -> String {
    format!("gantryb{pid}")
}

/// Removes the daemons under `parent` whose test binaries are gone (killed
/// with their watchers).
fn remove_stale(parent: &Path) {
    for entry in std::fs::read_dir(parent).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(owner) = name.parse::<u32>() else {
            continue;
        };
        if Path::new(&format!("/proc/{owner}")).exists() {
            continue;
        }
        let _ = Command::new("sh")
            .args(["-c", CLEANUP, "cleanup"])
            .arg(owner.to_string())
            .arg(entry.path())
            .arg(bridge_name(owner))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A third octet `n` such that no interface has an address in `10.232.n.0/24`.
fn free_subnet() -> Option<u32> {
    let out = Command::new("ip").args(["-4", "addr"]).output().ok()?;
    let used = String::from_utf8_lossy(&out.stdout).into_owned();
    let start = std::process::id() % 250;
    (0..250)
        .map(|i| (start + i) % 250)
        .find(|n| !used.contains(&format!("inet 10.232.{n}.")))
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    ))
}
