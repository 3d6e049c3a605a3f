//! A dockerd restart under a running engine (a daemon upgrade, a crash):
//! the first pipeline after it must work. The scenario starts a private
//! dockerd (its own data root, exec root and socket) in a network namespace
//! of its own (`unshare --net`): a dockerd started with `--bridge=none`
//! deletes the host's `docker0` interface, which would break the machine's
//! own daemon. Without a network it cannot pull, so the test image is
//! loaded into it from the machine's daemon (`docker save | docker load`),
//! and gantry falls back to that local image when the pull fails.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::engine::{self, Engine, Spec};
use crate::Outcome;

struct Daemon {
    root: PathBuf,
    child: Option<Child>,
}

impl Daemon {
    fn host(&self) -> String {
        format!("unix://{}", self.root.join("docker.sock").display())
    }

    fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.root.join("dockerd.log"))
            .unwrap();
        let child = Command::new("unshare")
            .args(["--net", "dockerd"])
            .arg("--data-root")
            .arg(self.root.join("data"))
            .arg("--exec-root")
            .arg(self.root.join("exec"))
            .arg("--pidfile")
            .arg(self.root.join("dockerd.pid"))
            .args([
                "-H",
                &self.host(),
                "--bridge=none",
                "--iptables=false",
                "--storage-driver=overlay2",
            ])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(120);
        while !self.docker(&["info"]).status.success() {
            if Instant::now() > deadline {
                let log =
                    std::fs::read_to_string(self.root.join("dockerd.log")).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(5).collect();
                panic!("the private dockerd did not start within 120 s: {tail:?}");
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let _ = child.wait();
        }
    }

    fn docker(&self, args: &[&str]) -> std::process::Output {
        Command::new("docker")
            .args(["-H", &self.host()])
            .args(args)
            .output()
            .unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
        // Containers it left are gone with it; its overlay mounts are unmounted.
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

pub(crate) fn run() -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = Daemon {
        root: dir.path().join("dockerd"),
        child: None,
    };
    std::fs::create_dir_all(&daemon.root).unwrap();
    daemon.start();
    load_test_image(&daemon);
    let spec = Spec {
        env: vec![("DOCKER_HOST".into(), daemon.host())],
        ..Spec::under(&dir.path().join("engine"))
    };
    let engine = Engine::start(&spec);
    let marker = format!("dockerd-{:x}", engine::random_u64());
    let pipeline = |n: u32| {
        format!(
            r#"{{ container {{ from(address: "{}") {{ withExec(args: ["sh", "-c", "echo {marker} > /m"]) {{
                withExec(args: ["sh", "-c", "cat /m; echo {n}"]) {{ stdout }} }} }} }} }}"#,
            crate::support::busybox()
        )
    };
    let before = engine.query(&pipeline(1), &json!(null));
    assert!(before["errors"].is_null(), "{before}");
    daemon.stop();
    daemon.start();
    let after = engine::query_socket(
        &spec.socket,
        &pipeline(2),
        &json!(null),
        Duration::from_secs(60),
    );
    let outcome = match &after {
        Ok(answer) => match engine::error_of(answer) {
            None if answer.to_string().contains(&marker) => "ok".to_owned(),
            None => format!("wrong answer: {answer}"),
            Some(error) => format!("error: {error}"),
        },
        Err(error) => format!("no answer: {error}"),
    };
    let second = engine::query_socket(
        &spec.socket,
        &pipeline(3),
        &json!(null),
        Duration::from_secs(60),
    )
    .is_ok_and(|answer| answer["errors"].is_null());
    drop(engine);
    Outcome::new(
        format!(
            "first pipeline after the restart: {outcome}; the next: {}",
            if second { "ok" } else { "failed" }
        ),
        outcome == "ok" && second,
    )
}

/// `docker save` from the machine's daemon into the private one.
fn load_test_image(daemon: &Daemon) {
    let image = crate::support::busybox();
    let mut save = Command::new("docker")
        .args(["save", &image])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let load = Command::new("docker")
        .args(["-H", &daemon.host(), "load", "-q"])
        .stdin(save.stdout.take().unwrap())
        .output()
        .unwrap();
    assert!(
        save.wait().unwrap().success() && load.status.success(),
        "loading {image} into the private dockerd"
    );
}
