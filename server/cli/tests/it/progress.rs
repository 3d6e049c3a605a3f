//! Live progress on stderr: plain timestamped lines (`--progress=plain`, or
//! auto when stderr is not a terminal) and the list redrawn in place on a
//! terminal, checked under tmux.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{self, busybox, run_query, Server};

/// A two-step pipeline whose commands carry `marker`.
fn two_steps(marker: &str, first_sleep: u32) -> String {
    format!(
        r#"{{ container {{ from(address: "{}") {{ withExec(args: ["sh", "-c", "sleep {first_sleep}; echo {marker}-one"]) {{ withExec(args: ["echo", "{marker}-two"]) {{ stdout }} }} }} }} }}"#,
        busybox()
    )
}

/// `gantry query ARGS` in `dir` (its own state; no engine on its socket, so
/// the engine runs in process), with `query` on stdin.
fn query_in(dir: &Path, args: &[&str], query: &str) -> Output {
    let mut command = support::gantry(dir);
    command.env_remove("GANTRY_PROGRESS");
    run_query(command, args, query)
}

/// The `[label]` of the plain line about `name`, in order of appearance.
fn labels_for<'a>(stderr: &'a str, name: &str) -> Vec<&'a str> {
    stderr
        .lines()
        .filter(|line| line.ends_with(name))
        .map(|line| {
            let (time, rest) = line.split_once(' ').unwrap();
            assert!(
                is_clock(time),
                "plain lines start with HH:MM:SS.mmm: {line:?}"
            );
            rest.strip_prefix('[').unwrap().split_once(']').unwrap().0
        })
        .collect()
}

fn is_clock(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 12
        && bytes.iter().enumerate().all(|(i, b)| match i {
            2 | 5 => *b == b':',
            8 => *b == b'.',
            _ => b.is_ascii_digit(),
        })
}

fn is_done_with_time(label: &str) -> bool {
    label
        .strip_prefix("done ")
        .and_then(|took| took.strip_suffix('s'))
        .is_some_and(|seconds| seconds.parse::<f64>().is_ok())
}

#[test]
fn plain_progress_shows_running_and_done_then_cached() {
    require_runtime!();
    let dir = tempfile::tempdir().unwrap();
    let marker = support::unique("plain");
    let query = two_steps(&marker, 1);
    let one = format!("exec sh -c sleep 1; echo {marker}-one");
    let two = format!("exec echo {marker}-two");

    let first = query_in(dir.path(), &["--progress=plain"], &query);
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(first.status.success(), "{stderr}");
    assert!(String::from_utf8_lossy(&first.stdout).contains(&format!("{marker}-two")));
    for name in [&one, &two] {
        let labels = labels_for(&stderr, name);
        assert_eq!(labels.len(), 2, "running then done for {name}:\n{stderr}");
        assert_eq!(labels[0], "running", "{stderr}");
        assert!(is_done_with_time(labels[1]), "{stderr}");
    }
    // Step one must finish before step two (its input) starts.
    let position = |needle: &str| stderr.find(needle).unwrap();
    assert!(position(&format!("] {one}")) < position(&format!("[running] {two}")));
    assert!(
        stderr.contains(&format!("] pull {}", busybox())),
        "the image pull is a step too:\n{stderr}"
    );

    // Not a terminal, so `auto` (the default) is plain too.
    let second = query_in(dir.path(), &[], &query);
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(second.status.success(), "{stderr}");
    assert_eq!(labels_for(&stderr, &one), ["cached"], "{stderr}");
    assert_eq!(labels_for(&stderr, &two), ["cached"], "{stderr}");

    let quiet = query_in(dir.path(), &["--progress=quiet"], &query);
    assert!(quiet.status.success());
    assert_eq!(String::from_utf8_lossy(&quiet.stderr), "");
}

#[test]
fn a_failed_step_shows_its_output_tail_without_secret_values() {
    require_runtime!();
    // Through a running engine: `gantry query` follows its event stream.
    let server = Server::start();
    let secret = support::unique("hunter2");
    let created = server.query(&format!(
        r#"{{ setSecret(name: "token", plaintext: "{secret}") {{ id }} }}"#
    ));
    let id = created["data"]["setSecret"]["id"].as_str().unwrap();
    let query = format!(
        r#"{{ container {{ from(address: "{}") {{ withSecretVariable(name: "TOKEN", secret: "{id}") {{ withExec(args: ["sh", "-c", "echo first line >&2; echo token is $TOKEN >&2; exit 3"]) {{ stdout }} }} }} }} }}"#,
        busybox()
    );
    let dir = tempfile::tempdir().unwrap();
    let mut command = support::gantry(dir.path());
    command
        .env("GANTRY_SOCKET", server.socket())
        .env_remove("GANTRY_PROGRESS");
    let out = run_query(command, &["--progress=plain"], &query);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    let name = "exec sh -c echo first line >&2; echo token is $TOKEN >&2; exit 3";
    let labels = labels_for(&stderr, name);
    assert_eq!(labels.first(), Some(&"running"), "{stderr}");
    assert!(
        labels.last().unwrap().starts_with("failed"),
        "{labels:?}\n{stderr}"
    );
    assert!(stderr.contains("    | first line\n"), "{stderr}");
    assert!(stderr.contains("    | token is ***\n"), "{stderr}");
    assert!(
        !stderr.contains(&secret),
        "a secret value leaked:\n{stderr}"
    );
}

/// Posts `query.json` to the session of the `gantry run` it runs under.
const POST_QUERY: &str =
    "curl -sf -u \"$GANTRY_SESSION_TOKEN:\" -H 'Content-Type: application/json' \
     --data-binary @query.json \"http://127.0.0.1:$GANTRY_SESSION_PORT/query\"";

/// `gantry run --progress=plain -- sh -c SCRIPT` in `dir`.
fn run_plain(dir: &Path, script: &str) -> Output {
    support::gantry(dir)
        .env_remove("GANTRY_PROGRESS")
        .args(["run", "--progress=plain", "--", "sh", "-c", script])
        .output()
        .unwrap()
}

#[test]
fn gantry_run_shows_the_steps_of_its_session() {
    require_runtime!();
    let dir = tempfile::tempdir().unwrap();
    let marker = support::unique("run");
    let body = json!({ "query": two_steps(&marker, 0) }).to_string();
    std::fs::write(dir.path().join("query.json"), body).unwrap();
    let out = run_plain(dir.path(), POST_QUERY);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("{marker}-two")));
    let labels = labels_for(&stderr, &format!("exec echo {marker}-two"));
    assert_eq!(labels.len(), 2, "{stderr}");
    assert_eq!(labels[0], "running");
    assert!(is_done_with_time(labels[1]), "{stderr}");
}

/// A tmux server of our own (its own socket), killed on drop.
pub(crate) struct Tmux {
    socket: String,
}

impl Tmux {
    pub(crate) fn available() -> bool {
        let ok = Command::new("tmux")
            .arg("-V")
            .output()
            .is_ok_and(|out| out.status.success());
        if !ok {
            if std::env::var("GANTRY_TEST_REQUIRE_DOCKER").as_deref() == Ok("1") {
                panic!("tmux is not installed: run `make setup`");
            }
            eprintln!("skipping: tmux is not installed (run `make setup`)");
        }
        ok
    }

    pub(crate) fn tmux(&self) -> Command {
        let mut command = Command::new("tmux");
        command.args(["-L", &self.socket]);
        command
    }

    /// Runs `shell` in a new 100x30 window.
    pub(crate) fn start(shell: &str) -> Self {
        let tmux = Self {
            socket: support::unique("gantry-progress"),
        };
        let status = tmux
            .tmux()
            .args([
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-x",
                "100",
                "-y",
                "30",
            ])
            .arg(shell)
            .status()
            .unwrap();
        assert!(status.success());
        tmux
    }

    pub(crate) fn screen(&self) -> String {
        let out = self.tmux().args(["capture-pane", "-p"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub(crate) fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        ok: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let screen = self.screen();
            if ok(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; the screen shows:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux().arg("kill-server").status();
    }
}

pub(crate) fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The shell command a tmux window runs: `gantry query FLAGS query.graphql`
/// in `dir` (its own engine), the answer to a file, then `exit=CODE`.
fn query_on_a_terminal(dir: &Path, flags: &str) -> String {
    format!(
        "cd {dir} && env -u GANTRY_PROGRESS GANTRY_STATE_DIR={dir}/state GANTRY_SOCKET={dir}/engine.sock \
         {gantry} query {flags} query.graphql > out.json; echo exit=$?; sleep 600",
        dir = shell_quote(&dir.display().to_string()),
        gantry = shell_quote(env!("CARGO_BIN_EXE_gantry")),
    )
}

#[test]
fn on_a_terminal_running_steps_are_redrawn_in_place() {
    require_runtime!();
    if !Tmux::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let marker = support::unique("tty");
    std::fs::write(dir.path().join("query.graphql"), two_steps(&marker, 3)).unwrap();
    // stdout (the answer) goes to a file: the screen shows only progress.
    let run = query_on_a_terminal(dir.path(), "");
    let one = format!("exec sh -c sleep 3; echo {marker}-one");
    let two = format!("exec echo {marker}-two");

    let tmux = Tmux::start(&run);
    // While step one runs, its line shows a spinner and a growing elapsed time.
    let running = tmux.wait_for(
        "step one to be running",
        Duration::from_secs(60),
        |screen| {
            screen.lines().any(|line| {
                line.contains(&one) && line.trim_end().ends_with('s') && !line.starts_with('✔')
            })
        },
    );
    let line = running.lines().find(|line| line.contains(&one)).unwrap();
    assert!(
        line.starts_with(|c: char| ('\u{2800}'..='\u{28ff}').contains(&c)),
        "a running step starts with a spinner: {line:?}\n{running}"
    );
    let finished = tmux.wait_for("the query to finish", Duration::from_secs(60), |screen| {
        screen.contains("exit=")
    });
    assert!(finished.contains("exit=0"), "{finished}");
    // Each step is on the screen once, finished: the running line was
    // replaced in place, not followed by a new one.
    for name in [&one, &two] {
        let lines: Vec<&str> = finished
            .lines()
            .filter(|line| line.contains(name.as_str()))
            .collect();
        assert_eq!(lines.len(), 1, "{name} once:\n{finished}");
        assert!(lines[0].starts_with("✔ "), "{finished}");
        assert!(
            lines[0].trim_end().ends_with('s'),
            "with its time: {finished}"
        );
    }
    assert!(
        finished.contains("gantry: 3 steps (3 done, 0 cached)"),
        "{finished}"
    );
    drop(tmux);

    // Again: every exec is a cache hit.
    let tmux = Tmux::start(&run);
    let cached = tmux.wait_for(
        "the cached run to finish",
        Duration::from_secs(60),
        |screen| screen.contains("exit="),
    );
    for name in [&one, &two] {
        assert!(
            cached
                .lines()
                .any(|line| line.starts_with("✔ ") && line.contains(&format!("{name} CACHED"))),
            "{name} CACHED:\n{cached}"
        );
    }
    assert!(cached.contains("(1 done, 2 cached)"), "{cached}");
}

/// The plain lines a step's output makes: `[label] line`.
fn output_lines<'a>(stderr: &'a str, label: &str) -> Vec<&'a str> {
    let prefix = format!("[{label}] ");
    stderr
        .lines()
        .filter_map(|line| line.strip_prefix(prefix.as_str()))
        .collect()
}

#[test]
fn plain_progress_shows_a_running_steps_lines_before_it_ends_without_secrets() {
    require_runtime!();
    // Through a running engine: `gantry query` follows its event stream.
    let server = Server::start();
    let secret = support::unique("hunter2");
    let created = server.query(&format!(
        r#"{{ setSecret(name: "token", plaintext: "{secret}") {{ id }} cacheVolume(key: "{}") {{ id }} }}"#,
        support::unique("sync")
    ));
    let secret_id = created["data"]["setSecret"]["id"].as_str().unwrap();
    let volume_id = created["data"]["cacheVolume"]["id"].as_str().unwrap();
    // The step prints a line, then the secret in two writes (split inside
    // the value), then waits until the test has seen the first line: only
    // output shown while the step runs lets it finish.
    let script = "echo live-ready; printf 'tok=%s' \"${TOKEN%???}\"; sleep 1; \
                  printf '%s!\\n' \"${TOKEN#${TOKEN%???}}\"; \
                  while [ ! -e /sync/go ]; do sleep 0.1; done; echo live-end >&2";
    let query = format!(
        r#"{{ container {{ from(address: "{}") {{ withSecretVariable(name: "TOKEN", secret: "{secret_id}") {{ withMountedCache(path: "/sync", cache: "{volume_id}") {{ withExec(args: ["sh", "-c", {script:?}]) {{ stdout }} }} }} }} }} }}"#,
        busybox()
    );
    let dir = tempfile::tempdir().unwrap();
    let mut command = support::gantry(dir.path());
    let mut child = command
        .env("GANTRY_SOCKET", server.socket())
        .env_remove("GANTRY_PROGRESS")
        .args(["query", "--progress=plain"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(query.as_bytes()).unwrap();
    }
    // Let the step end once its first line is seen (or after a minute, so
    // that a broken stream fails the test instead of hanging it): the
    // volume is a directory of the engine's state.
    let volumes = server.state_dir().join("cache-volumes");
    let release = move || {
        for volume in std::fs::read_dir(&volumes).unwrap() {
            std::fs::write(volume.unwrap().path().join("go"), "").unwrap();
        }
    };
    let watchdog = {
        let release = release.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(60));
            release();
        })
    };
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let label = loop {
        use std::io::BufRead as _;
        let mut line = String::new();
        let read = stderr.read_line(&mut line).unwrap();
        assert!(
            read > 0,
            "the step's first line never came while it ran:\n{seen}"
        );
        seen.push_str(&line);
        if let Some(label) = line.strip_suffix("] live-ready\n") {
            assert!(
                !watchdog.is_finished(),
                "live-ready came only after the step was released:\n{seen}"
            );
            break label.strip_prefix('[').unwrap().to_owned();
        }
    };
    let step_ended = |text: &str| {
        text.lines()
            .any(|line| line.contains("[done") && line.contains("] exec sh -c echo live-ready"))
    };
    assert!(!seen.contains("] live-end") && !step_ended(&seen), "{seen}");
    release();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    seen.push_str(&rest);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{seen}");
    assert!(label.starts_with("sh -c echo live-ready;"), "{label}");
    // stdout's lines in order; stderr's may come between them (the two
    // streams are read apart).
    let mut lines = output_lines(&seen, &label);
    let end = lines.iter().position(|line| *line == "live-end");
    assert!(end.is_some(), "{seen}");
    lines.retain(|line| *line != "live-end");
    assert_eq!(lines, ["live-ready", "tok=***!"], "{seen}");
    let end = seen.find("] live-end").unwrap();
    assert!(step_ended(&seen) && !step_ended(&seen[..end]), "{seen}");
    assert!(
        !seen.contains(&secret[..secret.len() - 3]),
        "a secret leaked:\n{seen}"
    );
}

#[test]
fn gantry_run_never_splits_a_line_of_the_command_with_progress() {
    require_runtime!();
    let dir = tempfile::tempdir().unwrap();
    let marker = support::unique("lines");
    let query = format!(
        r#"{{ container {{ from(address: "{}") {{ withExec(args: ["sh", "-c", "echo {marker}-a; echo {marker}-b; exit 4"]) {{ stdout }} }} }} }}"#,
        busybox()
    );
    let body = json!({ "query": query }).to_string();
    std::fs::write(dir.path().join("query.json"), body).unwrap();
    // The command writes half a line to stderr, runs a failing step (its
    // progress lines come meanwhile), then ends the line: as a traceback
    // printed in pieces would.
    let script = format!(
        "printf 'Traceback: begins-' >&2; {POST_QUERY} > answer.json; printf 'and ends\\n' >&2; exit 1"
    );
    let out = run_plain(dir.path(), &script);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let label = format!("sh -c echo {marker}-a; echo {marker}-b; exit 4");
    let label = label.chars().take(40).collect::<String>() + "…";
    assert_eq!(
        output_lines(&stderr, &label),
        [format!("{marker}-a"), format!("{marker}-b")],
        "{stderr}"
    );
    assert!(
        stderr
            .lines()
            .any(|line| line == "Traceback: begins-and ends"),
        "the command's line was split:\n{stderr}"
    );
    let failed = stderr.find("[failed").expect("the step failed");
    assert!(
        stderr[failed..].contains(&format!("    | {marker}-a\n    | {marker}-b\n")),
        "the failure tail shows the output:\n{stderr}"
    );
}

#[test]
fn explain_cache_names_the_host_file_that_changed() {
    require_runtime!();
    let server = Server::start();
    let src = support::workspace(&[
        ("app/main.go", "package main\n"),
        ("app/util.go", "package main\n"),
    ]);
    let marker = support::unique("explain");
    let run = |expect_success: bool| {
        let id = server.query_in(
            src.path(),
            r#"{ host { directory(path: "app") { id } } }"#,
            &json!({}),
        );
        let id = id["data"]["host"]["directory"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let query = format!(
            r#"{{ container {{ from(address: "{}") {{ withEnvVariable(name: "MARKER", value: "{marker}") {{ withDirectory(path: "/src", source: "{id}") {{ withExec(args: ["cat", "/src/main.go"]) {{ stdout }} }} }} }} }} }}"#,
            busybox()
        );
        let dir = tempfile::tempdir().unwrap();
        let mut command = support::gantry(dir.path());
        command
            .env("GANTRY_SOCKET", server.socket())
            .env_remove("GANTRY_PROGRESS");
        let out = run_query(command, &["--progress=plain", "--explain-cache"], &query);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.success(), expect_success, "{stderr}");
        stderr
    };
    let first = run(true);
    assert!(
        first.contains("    miss: new step: no earlier run of this command\n"),
        "{first}"
    );
    std::fs::write(src.path().join("app/main.go"), "package main // changed\n").unwrap();
    let second = run(true);
    let main_go = src.path().join("app/main.go");
    assert!(
        second.contains(&format!(
            "    miss:   host file {} changed\n",
            main_go.display()
        )),
        "{second}"
    );
    assert!(
        !second.contains("util.go"),
        "only the changed file: {second}"
    );
    assert!(
        !second.contains(&marker),
        "values are never shown: {second}"
    );
}

#[test]
fn on_a_terminal_a_running_step_shows_its_last_lines_until_it_finishes() {
    require_runtime!();
    if !Tmux::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let marker = support::unique("lines");
    let query = format!(
        r#"{{ container {{ from(address: "{}") {{ withExec(args: ["sh", "-c", "for n in 1 2 3 4 5 6 7; do echo {marker}-$n; done; sleep 4; echo {marker}-end"]) {{ stdout }} }} }} }}"#,
        busybox()
    );
    std::fs::write(dir.path().join("query.graphql"), query).unwrap();
    let run = query_on_a_terminal(dir.path(), "--explain-cache");
    let tmux = Tmux::start(&run);
    let running = tmux.wait_for(
        "the step's lines under it",
        Duration::from_secs(60),
        |screen| screen.contains(&format!("│ {marker}-7")),
    );
    let lines: Vec<&str> = running.lines().collect();
    let step = lines
        .iter()
        .position(|line| line.contains("exec sh -c for n in") && !line.starts_with('↻'))
        .unwrap_or_else(|| panic!("the running step:\n{running}"));
    assert!(
        lines[step].starts_with(|c: char| ('\u{2800}'..='\u{28ff}').contains(&c)),
        "{running}"
    );
    // The last five lines, under the step.
    let shown: Vec<String> = (3..=7).map(|n| format!("  │ {marker}-{n}")).collect();
    assert_eq!(lines[step + 1..step + 6], shown, "{running}");
    assert!(!running.contains(&format!("{marker}-2")), "{running}");
    let finished = tmux.wait_for("the query to finish", Duration::from_secs(60), |screen| {
        screen.contains("exit=")
    });
    assert!(finished.contains("exit=0"), "{finished}");
    // Finished, the step is one line: its output is gone from the screen;
    // why it ran stays above it.
    assert!(!finished.contains(&format!("│ {marker}")), "{finished}");
    let miss = finished
        .lines()
        .position(|line| line.starts_with("↻ exec sh -c for n in") && line.ends_with("CACHE MISS"))
        .unwrap_or_else(|| panic!("the cache miss:\n{finished}"));
    assert_eq!(
        finished.lines().nth(miss + 1),
        Some("  │ new step: no earlier run of this command"),
        "{finished}"
    );
    assert!(
        finished
            .lines()
            .any(|line| line.starts_with("✔ ") && line.contains("exec sh -c for n in")),
        "{finished}"
    );
}

#[test]
fn gantry_call_shows_live_lines_and_explains_a_changed_host_file() {
    require_runtime!();
    let dir = tempfile::tempdir().unwrap();
    let address = format!("--address={}", busybox());
    let call = |contents: &str| {
        std::fs::write(dir.path().join("in.txt"), contents).unwrap();
        let out = support::gantry(dir.path())
            .env_remove("GANTRY_PROGRESS")
            .args([
                "call",
                "-m",
                "core",
                "--progress=plain",
                "container",
                "from",
                &address,
                "with-file",
                "--path=/in.txt",
                "--source=in.txt",
                "with-exec",
                "--args=cat,/in.txt",
                "stdout",
                "--explain-cache",
            ])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{stderr}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), contents);
        stderr
    };
    let first = call("first version\n");
    assert!(first.contains("[cat /in.txt] first version\n"), "{first}");
    assert!(first.contains("    miss: new step"), "{first}");
    let second = call("second version\n");
    assert!(
        second.contains("[cat /in.txt] second version\n"),
        "{second}"
    );
    let path = dir.path().join("in.txt");
    assert!(
        second.contains(&format!(
            "    miss:   host file {} changed\n",
            path.display()
        )),
        "{second}"
    );
}
