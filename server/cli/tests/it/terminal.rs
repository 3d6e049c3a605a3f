//! Interactive terminals: `Container.terminal` and `gantry run
//! --interactive` on a real terminal (tmux: keys typed, the screen read),
//! and the error where no terminal is attached.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::progress::{shell_quote, Tmux};
use crate::support::{self, busybox};

/// Writes `query.graphql` and `pipeline.sh` into `dir`: the script sends
/// the query to the session (`gantry query` on the session's socket,
/// quietly) and then prints `script-continues` and the answer (also kept in
/// `continues.txt`, to tell a wrong answer from a line missing on the screen).
fn pipeline(dir: &Path, query: &str) {
    std::fs::write(dir.join("query.graphql"), query).unwrap();
    let script = format!(
        "{gantry} query --progress=quiet query.graphql > out.json 2>&1; code=$?\n\
         echo \"script-continues code=$code $(cat out.json)\" | tee continues.txt\n\
         exit $code\n",
        gantry = shell_quote(env!("CARGO_BIN_EXE_gantry")),
    );
    std::fs::write(dir.join("pipeline.sh"), script).unwrap();
}

/// The shell line a tmux window runs: `gantry run FLAGS -- sh pipeline.sh`
/// in `dir` with its own state, then `exit=CODE` (and a pause to read it).
fn run_on_a_terminal(dir: &Path, flags: &str) -> String {
    format!(
        "cd {dir} && env -u GANTRY_PROGRESS GANTRY_STATE_DIR={dir}/state \
         {gantry} run {flags} -- sh pipeline.sh; echo exit=$?; sleep 600",
        dir = shell_quote(&dir.display().to_string()),
        gantry = shell_quote(env!("CARGO_BIN_EXE_gantry")),
    )
}

fn type_line(tmux: &Tmux, line: &str) {
    let status = tmux
        .tmux()
        .args(["send-keys", "-l", line])
        .status()
        .unwrap();
    assert!(status.success());
    let status = tmux.tmux().args(["send-keys", "Enter"]).status().unwrap();
    assert!(status.success());
}

const SLOW: Duration = Duration::from_secs(120);

/// Waits for the shell's prompt (`PROMPT ` alone on the last line that has
/// text) before anything is typed: keys typed earlier reach the shell before
/// it reads them (busybox asks the terminal where the cursor is as it
/// starts, and typed keys would mix with the answer).
fn wait_for_prompt(tmux: &Tmux, prompt: &str) {
    tmux.wait_for("the shell's prompt", SLOW, |screen| {
        screen
            .lines()
            .rev()
            .find(|line| !line.trim().is_empty())
            .is_some_and(|line| line.trim_end() == prompt)
    });
}

/// The script's line is on the screen, whole and at the start of a row,
/// after the run ended: the progress renderer's last redraw and its summary
/// (and the terminal handed back after a shell) left it alone.
fn assert_script_line_on(screen: &str, start: &str) {
    assert!(
        screen.lines().any(|line| line.starts_with(start)),
        "the script's line ({start}…) is not on the screen:\n{screen}"
    );
}

/// In the shell on `tmux` (prompt `workdir #`): reads `workdir/marker` and
/// the working directory, checks both on the screen, exits, and returns the
/// screen once the script has ended, its line after the shell whole on the
/// screen and in continues.txt.
fn read_marker_and_exit(tmux: &Tmux, dir: &Path, workdir: &str, marker: &str) -> String {
    wait_for_prompt(tmux, &format!("{workdir} #"));
    type_line(
        tmux,
        &format!("cat {workdir}/marker; echo; pwd; echo $((6*7))-answer"),
    );
    let screen = tmux.wait_for("the shell's answer", SLOW, |screen| {
        screen.contains("42-answer")
    });
    assert!(
        screen.lines().any(|line| line.trim_end() == marker),
        "the container's file, read in the shell:\n{screen}"
    );
    assert!(
        screen.lines().any(|line| line.trim_end() == workdir),
        "the container's workdir:\n{screen}"
    );
    type_line(tmux, "exit");
    let screen = tmux.wait_for("the script to finish", SLOW, |screen| {
        screen.contains("exit=")
    });
    let continues = std::fs::read_to_string(dir.join("continues.txt")).unwrap();
    assert!(
        continues.contains("script-continues code=0"),
        "{continues}\n{screen}"
    );
    assert_script_line_on(&screen, "script-continues code=0");
    screen
}

#[test]
fn terminal_opens_a_shell_in_the_container_and_the_script_continues() {
    require_runtime!();
    if !Tmux::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let marker = support::unique("marker");
    pipeline(
        dir.path(),
        &format!(
            r#"{{ container {{ from(address: "{}") {{ withNewFile(path: "/etc/marker", contents: "{marker}") {{ withWorkdir(path: "/etc") {{ terminal {{ withExec(args: ["cat", "marker"]) {{ stdout }} }} }} }} }} }} }}"#,
            busybox()
        ),
    );
    let tmux = Tmux::start(&run_on_a_terminal(dir.path(), ""));
    tmux.wait_for("the shell to open", SLOW, |screen| {
        screen.contains("terminal: sh")
    });
    let screen = read_marker_and_exit(&tmux, dir.path(), "/etc", &marker);
    // The container came back unchanged: the next step reads the file.
    let answer = std::fs::read_to_string(dir.path().join("out.json")).unwrap();
    assert!(answer.contains(&marker), "{answer}");
    assert!(screen.contains("exit=0"), "{screen}");
}

/// Opens `terminal(ARGUMENTS)` on busybox in `/tmp` under `gantry run`,
/// types `line` at its prompt, and returns the screen once `done` shows
/// (computed by the line, so that the typed text cannot show it), after
/// checking that the shell exits and the run ends well.
fn answer_in_a_terminal(arguments: &str, line: &str, done: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    pipeline(
        dir.path(),
        &format!(
            r#"{{ container {{ from(address: "{}") {{ withWorkdir(path: "/tmp") {{ terminal({arguments}) {{ id }} }} }} }} }}"#,
            busybox()
        ),
    );
    let tmux = Tmux::start(&run_on_a_terminal(dir.path(), ""));
    wait_for_prompt(&tmux, "/tmp #");
    type_line(&tmux, line);
    let answer = tmux.wait_for("the shell's answer", SLOW, |screen| screen.contains(done));
    type_line(&tmux, "exit");
    let screen = tmux.wait_for("the script to finish", SLOW, |screen| {
        screen.contains("exit=")
    });
    assert!(screen.contains("exit=0"), "{screen}");
    answer
}

#[test]
fn a_terminal_with_insecure_root_capabilities_can_mount() {
    require_runtime!();
    if !Tmux::available() {
        return;
    }
    // Mounting takes CAP_SYS_ADMIN, which an unprivileged terminal lacks.
    let screen = answer_in_a_terminal(
        "insecureRootCapabilities: true",
        "mkdir -p m; mount -t tmpfs tmpfs m && echo $((6*7))-mounted; echo $((6*7))-done",
        "42-done",
    );
    assert!(screen.contains("42-mounted"), "{screen}");
}

/// `terminal(experimentalPrivilegedNesting: true)`: the shell has a nested
/// session of its own, as `withExec` gives one, and a query sent to it from
/// the shell is answered.
#[test]
fn a_terminal_with_nesting_reaches_its_own_session() {
    require_runtime!();
    if !Tmux::available() {
        return;
    }
    let screen = answer_in_a_terminal(
        "experimentalPrivilegedNesting: true",
        r#"wget -qO- --header "Authorization: Bearer $DAGGER_SESSION_TOKEN" --post-data '{"query":"{ version }"}' "http://127.0.0.1:$DAGGER_SESSION_PORT/query"; echo; echo $((6*7))-done"#,
        "42-done",
    );
    assert!(screen.contains(r#"{"data":{"version":""#), "{screen}");
}

#[test]
fn service_terminal_opens_a_shell_in_the_services_container_state() {
    require_runtime!();
    if !Tmux::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let marker = support::unique("service-marker");
    pipeline(
        dir.path(),
        &format!(
            r#"{{ container {{ from(address: "{}") {{ withNewFile(path: "/srv/marker", contents: "{marker}") {{ withWorkdir(path: "/srv") {{ asService(args: ["sleep", "600"]) {{ terminal {{ withHostname(hostname: "after-terminal") {{ hostname }} }} }} }} }} }} }} }}"#,
            busybox()
        ),
    );
    let tmux = Tmux::start(&run_on_a_terminal(dir.path(), ""));
    tmux.wait_for("the shell to open", SLOW, |screen| {
        screen.contains("terminal (service ") && screen.contains("): sh")
    });
    let screen = read_marker_and_exit(&tmux, dir.path(), "/srv", &marker);
    // The service came back: the next field reads it.
    let answer = std::fs::read_to_string(dir.path().join("out.json")).unwrap();
    assert!(answer.contains("after-terminal"), "{answer}");
    assert!(screen.contains("exit=0"), "{screen}");
}

#[test]
fn interactive_opens_a_shell_where_a_step_failed_then_fails_as_before() {
    require_runtime!();
    if !Tmux::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let marker = support::unique("before");
    pipeline(
        dir.path(),
        &format!(
            r#"{{ container {{ from(address: "{}") {{ withNewFile(path: "/work/before.txt", contents: "{marker}") {{ withWorkdir(path: "/work") {{ withExec(args: ["sh", "-c", "echo $((20+3))-left-by-the-step > after.txt; exit 3"]) {{ stdout }} }} }} }} }} }}"#,
            busybox()
        ),
    );
    let tmux = Tmux::start(&run_on_a_terminal(dir.path(), "--interactive"));
    tmux.wait_for("the shell to open", SLOW, |screen| {
        screen.contains("step failed, opening sh")
    });
    wait_for_prompt(&tmux, "/work #");
    type_line(
        &tmux,
        "cat before.txt; echo; cat after.txt; echo $((6*7))-end",
    );
    let screen = tmux.wait_for("the failed step's files", SLOW, |screen| {
        screen.contains("42-end")
    });
    assert!(
        screen
            .lines()
            .any(|line| line.trim_end() == "23-left-by-the-step"),
        "the failed step's files:\n{screen}"
    );
    assert!(
        screen.lines().any(|line| line.trim_end() == marker),
        "the step's input files:\n{screen}"
    );
    type_line(&tmux, "exit");
    let screen = tmux.wait_for("the run to finish", SLOW, |screen| screen.contains("exit="));
    let continues = std::fs::read_to_string(dir.path().join("continues.txt")).unwrap();
    assert!(
        continues.contains("script-continues code="),
        "{continues}\n{screen}"
    );
    assert!(
        !continues.contains("script-continues code=0"),
        "{continues}\n{screen}"
    );
    assert_script_line_on(&screen, "script-continues code=");
    let answer = std::fs::read_to_string(dir.path().join("out.json")).unwrap();
    assert!(
        answer.contains("exit code: 3"),
        "the original error: {answer}"
    );
    assert!(!screen.contains("exit=0"), "{screen}");
}

#[test]
fn terminal_without_a_terminal_fails_at_once_naming_the_fix() {
    require_runtime!();
    let dir = tempfile::tempdir().unwrap();
    pipeline(
        dir.path(),
        &format!(
            r#"{{ container {{ from(address: "{}") {{ terminal {{ id }} }} }} }}"#,
            busybox()
        ),
    );
    // stdin is not a terminal (as in CI): nothing is lent, nothing waits.
    let out = support::gantry(dir.path())
        .env_remove("GANTRY_SOCKET")
        .args(["run", "--", "sh", "pipeline.sh"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(stdout.contains("script-continues code="), "{stdout}");
    assert!(!stdout.contains("script-continues code=0"), "{stdout}");
    let answer = std::fs::read_to_string(dir.path().join("out.json")).unwrap();
    assert!(
        answer.contains("Container.terminal needs an interactive terminal")
            && answer.contains("run the pipeline under `gantry run -- CMD`"),
        "{answer}"
    );

    // --interactive says at once that it has no terminal to open a shell on.
    let out = support::gantry(dir.path())
        .args(["run", "--interactive", "--", "true"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("--interactive") && stderr.contains("not a terminal"),
        "{stderr}"
    );
}
