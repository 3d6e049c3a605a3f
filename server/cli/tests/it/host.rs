//! Host files: `host.directory` resolved against the client, filtered and
//! reloaded by content; files and directories moved between the host and
//! containers.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt as _};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::{self, busybox, Server};
use crate::support::{
    data, error_message, run, stdout_of, still_serving, text, workspace, EXEC_WITH_DIRECTORY,
};

const HOST_DIRECTORY: &str = r#"
query($path: String!, $exclude: [String!]!, $include: [String!]!) {
  host { directory(path: $path, exclude: $exclude, include: $include) {
    id entries glob(pattern: "**/*.txt") } }
}"#;

#[test]
fn host_directory_resolves_against_the_client_filters_and_keeps_symlinks() {
    require_runtime!();
    let server = Server::start();
    let work = workspace(&[
        ("a.txt", "alpha\n"),
        ("b.log", "log\n"),
        ("sub/c.txt", "gamma\n"),
        ("sub/d.log", "delta\n"),
        ("node_modules/x.js", "x\n"),
    ]);
    symlink("a.txt", work.path().join("link")).unwrap();
    symlink("/etc/passwd", work.path().join("abs-link")).unwrap();

    // Relative paths resolve against the client's directory (X-Gantry-Workdir).
    let out = data(server.query_in(
        work.path(),
        HOST_DIRECTORY,
        &json!({ "path": ".", "exclude": ["*.log", "node_modules"], "include": [] }),
    ));
    let dir = &out["host"]["directory"];
    assert_eq!(dir["entries"], json!(["a.txt", "abs-link", "link", "sub/"]));
    assert_eq!(dir["glob"], json!(["a.txt", "sub/c.txt"]));
    let dir_id = text(dir, "id");
    let out = data(server.query_in(
        work.path(),
        HOST_DIRECTORY,
        &json!({ "path": "sub", "exclude": [], "include": ["*.txt"] }),
    ));
    assert_eq!(out["host"]["directory"]["entries"], json!(["c.txt"]));
    let out = data(server.query_in(
        &work.path().join("sub"),
        HOST_DIRECTORY,
        &json!({ "path": ".", "exclude": [], "include": [] }),
    ));
    assert_eq!(
        out["host"]["directory"]["entries"],
        json!(["c.txt", "d.log"])
    );

    // `gantry query` sends its own working directory.
    let mut command = support::gantry(server.dir());
    command.current_dir(work.path().join("sub"));
    let cli = support::run_query(
        command,
        &[],
        r#"{ host { directory(path: ".") { entries } } }"#,
    );
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    let cli: Value = serde_json::from_slice(&cli.stdout).unwrap();
    assert_eq!(
        cli["host"]["directory"]["entries"],
        json!(["c.txt", "d.log"])
    );

    // Symlinks stay symlinks, in containers and when exported.
    let stdout = stdout_of(
        &server,
        EXEC_WITH_DIRECTORY,
        json!({ "image": busybox(), "dir": dir_id, "args": ["sh", "-c",
            "readlink /w/link; readlink /w/abs-link; cat /w/link; test -L /w/link && echo is-link"] }),
        "container.from.withDirectory.withExec",
    );
    assert_eq!(stdout, "a.txt\n/etc/passwd\nalpha\nis-link\n");
    let target = tempfile::tempdir().unwrap();
    let out = data(server.query_in(
        target.path(),
        r#"query($dir: ID!) { loadDirectoryFromID(id: $dir) { export(path: "out") } }"#,
        &json!({ "dir": dir_id }),
    ));
    let exported = target.path().join("out");
    assert_eq!(
        out["loadDirectoryFromID"]["export"],
        exported.display().to_string()
    );
    assert_eq!(
        fs::read_link(exported.join("link")).unwrap(),
        Path::new("a.txt")
    );
    assert_eq!(
        fs::read_to_string(exported.join("sub/c.txt")).unwrap(),
        "gamma\n"
    );
    assert!(!exported.join("b.log").exists());

    // host.file, and missing or wrong paths: named errors, engine still serving.
    let out = data(server.query_in(
        work.path(),
        r#"{ host { file(path: "sub/c.txt") { contents name size } } }"#,
        &Value::Null,
    ));
    assert_eq!(
        out["host"]["file"],
        json!({ "contents": "gamma\n", "name": "c.txt", "size": 6 })
    );
    for (query, needle) in [
        (
            r#"{ host { directory(path: "no-such-dir") { entries } } }"#,
            "no-such-dir: No such file or directory",
        ),
        (
            r#"{ host { file(path: "no-such-file.txt") { contents } } }"#,
            "no-such-file.txt: No such file or directory",
        ),
        (
            r#"{ host { directory(path: "a.txt") { entries } } }"#,
            "a.txt: not a directory",
        ),
    ] {
        let out = server.query_in(work.path(), query, &Value::Null);
        let message = error_message(&out);
        assert!(
            message.contains(&work.path().display().to_string()) && message.contains(needle),
            "{message}"
        );
    }
    still_serving(&server);
}

#[test]
fn gantry_run_resolves_host_paths_against_its_working_directory() {
    require_runtime!();
    let work = workspace(&[("one.txt", "1"), ("nested/two.txt", "2")]);
    let scratch = tempfile::tempdir().unwrap();
    let query = scratch.path().join("query.json");
    fs::write(
        &query,
        json!({ "query": r#"{ host { top: directory(path: ".") { entries }
                                   nested: directory(path: "nested") { entries } } }"# })
        .to_string(),
    )
    .unwrap();
    let out = support::gantry(scratch.path())
        .current_dir(work.path())
        .env("QUERY_FILE", &query)
        .args([
            "run",
            "--",
            "sh",
            "-c",
            r#"curl -sS -u "$DAGGER_SESSION_TOKEN:" -H 'Content-Type: application/json' --data-binary @"$QUERY_FILE" "http://127.0.0.1:$DAGGER_SESSION_PORT/query""#,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stdout)));
    let host = &data(answer)["host"];
    assert_eq!(host["top"]["entries"], json!(["nested/", "one.txt"]));
    assert_eq!(host["nested"]["entries"], json!(["two.txt"]));
}

/// Three steps over one host directory: one reads only a.txt, one only
/// b.txt, one the whole directory.
const THREE_STEPS: &str = r#"
query($image: String!, $path: String!, $marker: String!) {
  host { directory(path: $path) {
    a: file(path: "a.txt") { id }
    b: file(path: "b.txt") { id }
    id
  } }
  container { from(address: $image) { withEnvVariable(name: "MARKER", value: $marker) { id } } }
}"#;

const STEP: &str = r#"
query($base: ID!, $file: ID!, $args: [String!]!) {
  loadContainerFromID(id: $base) { withFile(path: "/in", source: $file) {
    withExec(args: $args) { stdout } } }
}"#;

const WHOLE: &str = r#"
query($base: ID!, $dir: ID!) {
  loadContainerFromID(id: $base) { withDirectory(path: "/src", source: $dir) {
    withExec(args: ["sh", "-c", "cat /src/a.txt /src/b.txt"]) { stdout } } }
}"#;

/// Runs the three steps; returns their outputs and how many containers ran.
fn three_steps(server: &Server, path: &Path, marker: &str) -> (Vec<String>, usize) {
    let since = support::now();
    let ids = run(
        server,
        THREE_STEPS,
        json!({ "image": busybox(), "path": path.display().to_string(), "marker": marker }),
    );
    let base = text(&ids, "container.from.withEnvVariable.id");
    let mut outputs = Vec::new();
    for file in ["a", "b"] {
        outputs.push(stdout_of(
            server,
            STEP,
            json!({ "base": base, "file": text(&ids, &format!("host.directory.{file}.id")),
                    "args": ["sh", "-c", format!("echo {file}: $(cat /in)")] }),
            "loadContainerFromID.withFile.withExec",
        ));
    }
    outputs.push(stdout_of(
        server,
        WHOLE,
        json!({ "base": base, "dir": text(&ids, "host.directory.id") }),
        "loadContainerFromID.withDirectory.withExec",
    ));
    (
        outputs,
        support::containers_created_since(&since, server.pid()),
    )
}

#[test]
fn unchanged_host_directory_is_a_cache_hit_and_a_change_reruns_only_its_steps() {
    require_runtime!();
    let mut server = Server::start();
    let work = workspace(&[("a.txt", "A1\n"), ("b.txt", "B1\n")]);
    let marker = support::unique("host-cache");
    let (first, created) = three_steps(&server, work.path(), &marker);
    assert_eq!(first, ["a: A1\n", "b: B1\n", "A1\nB1\n"]);
    assert_eq!(created, 3);

    // Unchanged: served from memory, then (after a restart) from the store.
    assert_eq!(
        three_steps(&server, work.path(), &marker),
        (first.clone(), 0)
    );
    server.restart();
    assert_eq!(
        three_steps(&server, work.path(), &marker),
        (first.clone(), 0)
    );

    // Touching a file without changing it is still a hit: content, not mtime.
    let b = work.path().join("b.txt");
    fs::write(&b, "B1\n").unwrap();
    assert_eq!(three_steps(&server, work.path(), &marker), (first, 0));

    // One changed file: only the steps that read it run again.
    fs::write(&b, "B2 changed\n").unwrap();
    let (outputs, created) = three_steps(&server, work.path(), &marker);
    assert_eq!(outputs, ["a: A1\n", "b: B2 changed\n", "A1\nB2 changed\n"]);
    assert_eq!(created, 2, "the step reading only a.txt must stay cached");
}

const HOST_DIGEST: &str = r#"query($path: String!) {
  host { directory(path: $path, gitignore: true) { digest } } }"#;

/// Every kind of change to a host directory, each seen by an engine that
/// holds the directory's snapshot in memory or (every other one) by one
/// restarted since; then a damaged stored snapshot is ignored, not trusted.
#[test]
fn host_directory_changes_are_seen_in_memory_after_a_restart_and_past_a_damaged_index() {
    require_runtime!();
    let mut server = Server::start();
    let work = workspace(&[
        ("a.txt", "A1"),
        ("sub/b.txt", "B1"),
        ("sub/c.txt", "C1"),
        (".gitignore", "*.log\n"),
        ("x.log", "x"),
    ]);
    fs::create_dir(work.path().join(".git")).unwrap();
    let root = work.path().to_owned();
    // Older than the racy margin, as a checkout usually is.
    std::thread::sleep(Duration::from_millis(1100));
    let digest = |server: &Server| {
        let vars = json!({ "path": root.display().to_string() });
        text(&run(server, HOST_DIGEST, vars), "host.directory.digest")
    };
    let keep_mtime = |path: &Path, contents: &str| {
        let mtime = fs::metadata(path).unwrap().modified().unwrap();
        fs::write(path, contents).unwrap();
        let file = fs::File::options().write(true).open(path).unwrap();
        file.set_modified(mtime).unwrap();
    };
    type Change<'a> = (&'a str, Box<dyn Fn(&Path) + 'a>);
    let changes: Vec<Change<'_>> = vec![
        (
            "same size and mtime",
            Box::new(|root| keep_mtime(&root.join("a.txt"), "A2")),
        ),
        (
            "file replaced by a symlink",
            Box::new(|root| {
                fs::remove_file(root.join("sub/b.txt")).unwrap();
                symlink("c.txt", root.join("sub/b.txt")).unwrap();
            }),
        ),
        (
            "mode changed",
            Box::new(|root| {
                let path = root.join("sub/c.txt");
                fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
            }),
        ),
        (
            "file deleted",
            Box::new(|root| fs::remove_file(root.join("a.txt")).unwrap()),
        ),
        (
            "file added",
            Box::new(|root| fs::write(root.join("sub/d.txt"), "D").unwrap()),
        ),
        (
            ".gitignore changed",
            Box::new(|root| keep_mtime(&root.join(".gitignore"), "*.txt\n")),
        ),
    ];
    let mut last = digest(&server);
    let mut seen = vec![last.clone()];
    for (n, (name, change)) in changes.iter().enumerate() {
        assert_eq!(digest(&server), last, "{name}: an unchanged reload changed");
        change(&root);
        if n % 2 == 1 {
            server.restart();
        }
        let now = digest(&server);
        assert!(!seen.contains(&now), "{name}: the change was missed");
        seen.push(now.clone());
        last = now;
    }
    // What a fresh engine reads is what the reloads gave.
    let fresh = Server::start();
    assert_eq!(digest(&fresh), last);

    // Damaged stored snapshots: ignored and rewritten, never an error.
    let indexes = server.state_dir().join("store/host-indexes");
    let mut damaged = 0;
    for shard in fs::read_dir(&indexes).unwrap() {
        for record in fs::read_dir(shard.unwrap().path()).unwrap() {
            let path = record.unwrap().path();
            let mut bytes = fs::read(&path).unwrap();
            let middle = bytes.len() / 2;
            bytes[middle] ^= 0xff;
            fs::write(&path, &bytes).unwrap();
            damaged += 1;
        }
    }
    assert_eq!(damaged, 1);
    server.restart();
    assert_eq!(digest(&server), last);
    fs::write(root.join("sub/e.md"), "E").unwrap();
    assert_ne!(digest(&server), last, "a change after recovery is seen");
}

/// Not run by default: prints how long a 10,000-file host directory takes
/// to load the first time and unchanged (`cargo test -p gantry --test it
/// -- --ignored host_directory_reload_timing --nocapture`).
#[test]
#[ignore = "a measurement, not a check"]
fn host_directory_reload_timing() {
    require_runtime!();
    let server = Server::start();
    let tree = tempfile::tempdir().unwrap();
    for n in 0..10_000 {
        let path = tree
            .path()
            .join(format!("d{:02}/e{:02}/f{n:05}.txt", n % 50, n % 7));
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, format!("file {n}\n").repeat(64)).unwrap();
    }
    // A checkout is not edited in the second before it is read (files that
    // are get re-read, like git's racily clean entries).
    std::thread::sleep(Duration::from_millis(1500));
    let query = r#"query($path: String!) { host { directory(path: $path) { digest } } }"#;
    let vars = json!({ "path": tree.path().display().to_string() });
    let mut times = Vec::new();
    let mut digests = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let out = run(&server, query, vars.clone());
        times.push(started.elapsed());
        digests.push(text(&out, "host.directory.digest"));
    }
    assert!(digests.windows(2).all(|w| w[0] == w[1]));
    eprintln!(
        "10,000 files: first load {:?}, unchanged reloads {:?} and {:?}",
        times[0], times[1], times[2]
    );
}

#[test]
fn files_and_directories_move_between_host_and_containers() {
    require_runtime!();
    let server = Server::start();
    let query = format!(
        r#"{{ container {{ from(address: "{}") {{
            withNewFile(path: "/work/in.txt", contents: "hello file") {{
              withWorkdir(path: "/work") {{
                withExec(args: ["sh", "-c", "mkdir out && cp in.txt out/copy.txt && echo made > out/new.txt"]) {{
                  directory(path: "out") {{ entries file(path: "copy.txt") {{ contents }} }}
                  file(path: "/work/out/new.txt") {{ contents size }}
                }} }} }} }} }} }}"#,
        busybox()
    );
    let out = server.query(&query);
    assert!(out["errors"].is_null(), "{out}");
    let exec = &out["data"]["container"]["from"]["withNewFile"]["withWorkdir"]["withExec"];
    assert_eq!(exec["directory"]["entries"], json!(["copy.txt", "new.txt"]));
    assert_eq!(exec["directory"]["file"]["contents"], "hello file");
    assert_eq!(exec["file"]["contents"], "made\n");
    let bad = server.query(&format!(
        r#"{{ container {{ from(address: "{}") {{ file(path: "/nope") {{ contents }} }} }} }}"#,
        busybox()
    ));
    assert!(
        bad["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("/nope"),
        "{bad}"
    );
}
