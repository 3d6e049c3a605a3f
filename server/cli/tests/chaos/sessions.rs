//! Many engines on one state directory: 100 concurrent `gantry run`
//! sessions each ask for the same new step (it prints a fresh UUID); it
//! must run once and every session must get the same answer. A second
//! `gantry serve` on a state directory another one serves must attach or
//! be refused with an error naming the owner's socket.

use std::collections::BTreeSet;
use std::process::Stdio;

use crate::engine::{self, Engine, Spec};
use crate::Outcome;

const SESSIONS: usize = 100;

pub(crate) fn run() -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let spec = Spec::under(dir.path());
    let marker = format!("sessions-{:x}", engine::random_u64());
    let query = format!(
        r#"{{ container {{ from(address: "{}") {{ withEnvVariable(name: "M", value: "{marker}") {{
            withExec(args: ["sh", "-c", "cat /proc/sys/kernel/random/uuid"]) {{ stdout }} }} }} }} }}"#,
        crate::support::busybox()
    );
    std::fs::write(dir.path().join("q.graphql"), &query).unwrap();
    let events = engine::Events::watch();
    let children: Vec<_> = (0..SESSIONS)
        .map(|_| {
            spec.command(&["run", "--progress", "quiet", "--"])
                .args([
                    env!("CARGO_BIN_EXE_gantry"),
                    "query",
                    "--progress",
                    "quiet",
                    "q.graphql",
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let pids: Vec<u32> = children.iter().map(std::process::Child::id).collect();
    let mut answers = BTreeSet::new();
    let mut failed = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(data) if out.status.success() => {
                let stdout = &data["container"]["from"]["withEnvVariable"]["withExec"]["stdout"];
                answers.insert(stdout.as_str().unwrap_or_default().to_owned());
            }
            _ => failed.push(String::from_utf8_lossy(&out.stderr).trim().to_owned()),
        }
    }
    let executions = events.stop().created(&pids);
    let second = second_serve(dir.path());
    let figure = format!(
        "{SESSIONS} sessions: {executions} executions, {} distinct answers, {} failed sessions; \
         second serve on a served state dir: {}{}",
        answers.len(),
        failed.len(),
        second.0,
        failed
            .first()
            .map(|f| format!(" (first failure: {f})"))
            .unwrap_or_default()
    );
    Outcome::new(
        figure,
        executions == 1 && answers.len() == 1 && failed.is_empty() && second.1,
    )
}

/// Starts `gantry serve` twice on one state directory (different sockets).
fn second_serve(dir: &std::path::Path) -> (String, bool) {
    let first = Spec {
        socket: dir.join("first.sock"),
        dir: dir.join("first"),
        ..Spec::under(dir)
    };
    std::fs::create_dir_all(&first.dir).unwrap();
    let second = Spec {
        socket: dir.join("second.sock"),
        dir: dir.join("second"),
        ..first.clone()
    };
    std::fs::create_dir_all(&second.dir).unwrap();
    let owner = Engine::start(&first);
    let outcome = match Engine::try_start(&second) {
        Ok(engine) => {
            drop(engine);
            ("started beside the first (not refused)".to_owned(), false)
        }
        Err(error) => {
            let names = error.contains(&first.socket.display().to_string());
            (
                if names {
                    "refused, naming the owner's socket".to_owned()
                } else {
                    format!("refused without naming the owner's socket: {error}")
                },
                names,
            )
        }
    };
    drop(owner);
    outcome
}
