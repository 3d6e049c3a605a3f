//! `gantry call`, `gantry functions` and `gantry init` on real modules: the
//! seed module in Go (Dagger's Go SDK types, as the use case writes it), the
//! same pipeline with gantry's Python SDK, help output, each error a user can
//! act on, `.env` defaults, `-m core` and a cached second call.
//!
//! Python modules run with the system `python3` and the checkout's SDK on
//! PYTHONPATH (it has no dependencies); the Go seed module needs `go` and the
//! Go module proxy (or a warm module cache) for dagger.io/dagger.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::support::{containers_created_since, now, unique};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn auth_registry() -> String {
    std::env::var("GANTRY_TEST_AUTH_REGISTRY").unwrap_or_else(|_| "127.0.0.1:5001".into())
}

fn auth_user() -> String {
    std::env::var("GANTRY_TEST_AUTH_REGISTRY_USER").unwrap_or_else(|_| "gantry".into())
}

fn auth_password() -> String {
    std::env::var("GANTRY_TEST_AUTH_REGISTRY_PASSWORD")
        .unwrap_or_else(|_| "gantry-test-password".into())
}

/// `gantry ARGS` in `cwd` with the state in `state`; Python modules use the
/// checkout's SDK; Go from /usr/local/go when it is not on PATH.
fn gantry(state: &Path, cwd: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_gantry"));
    let path = format!(
        "{}:/usr/local/go/bin",
        std::env::var("PATH").unwrap_or_default()
    );
    command
        .args(args)
        .current_dir(cwd)
        .env("GANTRY_STATE_DIR", state)
        .env("GANTRY_PYTHON", "python3")
        .env("PYTHONPATH", repo().join("sdk-python/src"))
        .env("PATH", path)
        .env("GANTRY_PROGRESS", "plain")
        .env_remove("GANTRY_MODULE")
        .env_remove("GANTRY_SESSION_PORT")
        .env_remove("DAGGER_SESSION_PORT")
        .stdin(Stdio::null());
    command
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    pid: u32,
}

fn run(mut command: Command) -> Run {
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().unwrap();
    Run {
        code: status.code(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        pid,
    }
}

impl Run {
    #[track_caller]
    fn ok(self) -> Self {
        assert_eq!(
            self.code,
            Some(0),
            "stdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    #[track_caller]
    fn fails(self, code: i32, needles: &[&str]) -> Self {
        assert_eq!(
            self.code,
            Some(code),
            "stdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        for needle in needles {
            assert!(
                self.stderr.contains(needle),
                "stderr lacks {needle:?}:\n{}",
                self.stderr
            );
        }
        assert!(
            self.stdout.is_empty(),
            "a failed call printed a result: {}",
            self.stdout
        );
        self
    }
}

/// The three functions of the seed pipeline, called as the use case does.
fn seed_pipeline(module: &Path, language: &str) {
    let state = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let app = repo().join("examples/seed-app");
    let app = app.to_str().unwrap();
    let src = format!("--src={app}");
    let call = |args: &[&str]| {
        let mut full = vec!["call", "-m", module.to_str().unwrap()];
        full.extend_from_slice(args);
        gantry(state.path(), work.path(), &full)
    };

    let tested = run(call(&["test", &src])).ok();
    assert!(tested.stdout.contains("ok"), "{}", tested.stdout);
    assert!(
        tested.stderr.contains("exec go test ./..."),
        "progress goes to stderr: {}",
        tested.stderr
    );

    // The same call again: every step is cached, no container is created.
    let since = now();
    let again = run(call(&["test", &src])).ok();
    assert_eq!(again.stdout, tested.stdout);
    assert_eq!(
        containers_created_since(&since, again.pid),
        0,
        "{}",
        again.stderr
    );

    let tarball = work.path().join("image.tar");
    let built = run(call(&["build", &src, "-o", tarball.to_str().unwrap()])).ok();
    assert_eq!(built.stdout.trim(), tarball.to_str().unwrap());
    let listing = Command::new("tar")
        .arg("-tf")
        .arg(&tarball)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(
        listing.contains("manifest.json") || listing.contains("index.json"),
        "not an image tarball: {listing}"
    );

    // Chained: a field of the returned Container, then of the File.
    let size = run(call(&["build", &src, "file", "--path=/server", "size"])).ok();
    assert!(
        size.stdout.trim().parse::<u64>().unwrap() > 100_000,
        "{}",
        size.stdout
    );

    let repository = format!(
        "{}/gantry-it/{}",
        auth_registry(),
        unique(&format!("module-{language}"))
    );
    let password = auth_password();
    let publish = |tag: &str, token: &str| {
        let mut command = call(&[
            "publish",
            &src,
            &format!("--registry={repository}"),
            &format!("--tag={tag}"),
            &format!("--registry-user={}", auth_user()),
            "--registry-token=env:GANTRY_IT_REGISTRY_TOKEN",
        ]);
        command.env("GANTRY_IT_REGISTRY_TOKEN", token);
        run(command)
    };
    let published = publish("v1", &password).ok();
    assert!(
        published
            .stdout
            .starts_with(&format!("{repository}:v1@sha256:")),
        "{}",
        published.stdout
    );
    assert!(
        !published.stdout.contains(&password) && !published.stderr.contains(&password),
        "the secret leaked"
    );

    // A wrong token: the registry refuses, the call fails with exit 1, and
    // the value never shows.
    let refused = publish("v2", "not-the-password-4711").fails(1, &["failed"]);
    assert!(
        !refused.stderr.contains("not-the-password-4711"),
        "{}",
        refused.stderr
    );
}

#[test]
fn seed_module_in_go_with_daggers_types_tests_builds_and_publishes() {
    require_runtime!();
    seed_pipeline(&repo().join("examples/seed-module"), "go");
}

#[test]
fn seed_pipeline_as_a_python_module_tests_builds_and_publishes() {
    require_runtime!();
    seed_pipeline(&repo().join("examples/modules/python"), "python");
}

#[test]
fn functions_and_help_come_from_the_description() {
    let state = tempfile::tempdir().unwrap();
    let module = repo().join("examples/modules/python");
    let listed = run(gantry(state.path(), &module, &["functions"])).ok();
    assert!(
        listed
            .stdout
            .starts_with("Functions of module pipeline (python, "),
        "{}",
        listed.stdout
    );
    for line in [
        "  test     Runs `go test ./...` and returns its output.",
        "  build    Builds the server into a minimal non-root image.",
        "  publish  Tests, builds and publishes REGISTRY:TAG; returns the reference with its digest.",
    ] {
        assert!(listed.stdout.contains(line), "{line:?} missing from:\n{}", listed.stdout);
    }
    let help = run(gantry(
        state.path(),
        &module,
        &["call", "publish", "--help"],
    ))
    .ok();
    let expected = "\
Usage: gantry call publish [FLAGS]

Tests, builds and publishes REGISTRY:TAG; returns the reference with its digest.

Flags:
  --src Directory          The Go module. (required)
  --registry string        The repository to publish to, e.g. 127.0.0.1:5001/app. (required)
  --tag string             The image tag. (required)
  --registry-user string   The registry user name. (required)
  --registry-token Secret  The registry password or token. (required)

Returns: string

Values:
  Directory: a host path, or a Git URL[#REF][:DIR]
  Secret: env:NAME, file:PATH or cmd:COMMAND (the value never appears in output)
";
    assert_eq!(help.stdout, expected);
    let build = run(gantry(state.path(), &module, &["call", "build", "--help"])).ok();
    assert!(
        build.stdout.contains("Returns: Container"),
        "{}",
        build.stdout
    );
    assert!(
        build
            .stdout
            .contains("Chain a field of Container after it ("),
        "{}",
        build.stdout
    );
    // A chained core field has help too.
    let file = run(gantry(
        state.path(),
        &module,
        &["call", "build", "file", "--help"],
    ))
    .ok();
    assert!(
        file.stdout
            .starts_with("Usage: gantry call build [...] file [FLAGS]"),
        "{}",
        file.stdout
    );
    assert!(file.stdout.contains("--path string"), "{}", file.stdout);
    // GANTRY_MODULE names the module from anywhere.
    let elsewhere = tempfile::tempdir().unwrap();
    let mut by_env = gantry(state.path(), elsewhere.path(), &["functions"]);
    by_env.env("GANTRY_MODULE", &module);
    assert_eq!(run(by_env).ok().stdout, listed.stdout);
    // The JSON description, from the cache now.
    let json = run(gantry(state.path(), &module, &["functions", "--json"])).ok();
    let description: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(
        description["functions"][2]["args"][4]["name"],
        "registry_token"
    );
    assert_eq!(description["functions"][2]["args"][4]["type"], "Secret");
}

const ERRORS_MODULE: &str = r#"
from typing import Literal

import gantry

BUSYBOX = "BUSYBOX_IMAGE"


class Errors:
    """Functions that fail in the ways a user meets."""

    def echo(
        self,
        name: str,
        count: int = 1,
        loud: bool = False,
        level: Literal["low", "high"] = "low",
        tags: list[str] | None = None,
        token: gantry.Secret | None = None,
    ) -> str:
        """Echoes its arguments (no container)."""
        text = " ".join([name] * count)
        if loud:
            text = text.upper()
        return f"{text} level={level} tags={','.join(tags or [])} token={'set' if token else 'unset'}"

    async def objects(
        self, ctr: gantry.Container, cache: gantry.CacheVolume, note: gantry.File
    ) -> str:
        """Reads a host file inside a container with a cache volume mounted."""
        return await (
            ctr.with_mounted_cache("/cache", cache)
            .with_file("/note.txt", note)
            .with_exec(["sh", "-c", "cat /note.txt; test -d /cache && echo cache mounted"])
            .stdout()
        )

    def fail(self) -> str:
        """Raises."""
        raise ValueError("boom from the module")

    async def bad_exec(self) -> str:
        """Runs a command that fails."""
        async with gantry.Connection() as client:
            return await (
                client.container()
                .from_(BUSYBOX)
                .with_exec(["sh", "-c", "echo out-line; echo err-line >&2; exit 3"])
                .stdout()
            )
"#;

fn errors_module() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("gantry.toml"),
        "name = \"errors\"\nsdk = \"python\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("main.py"),
        ERRORS_MODULE.replace("BUSYBOX_IMAGE", &crate::support::busybox()),
    )
    .unwrap();
    dir
}

#[test]
fn command_line_mistakes_are_usage_errors_with_a_hint() {
    let state = tempfile::tempdir().unwrap();
    let module = errors_module();
    let m = module.path();
    let call = |args: &[&str]| run(gantry(state.path(), m, &[&["call"], args].concat()));
    call(&["ehco"]).fails(
        2,
        &["unknown function \"ehco\" in module errors: did you mean \"echo\"?"],
    );
    call(&["echo", "--nmae=x"]).fails(
        2,
        &[
            "echo has no flag --nmae: did you mean --name?",
            "gantry call echo --help",
        ],
    );
    call(&["echo"]).fails(2, &["echo needs --name", "(see `gantry call echo --help`)"]);
    call(&["echo", "--name=x", "--count=many"])
        .fails(2, &["--count: expected an integer, got \"many\""]);
    call(&["echo", "--name=x", "--level=mid"])
        .fails(2, &["--level: expected one of low, high, got \"mid\""]);
    call(&["echo", "--name=x", "--token=env:GANTRY_IT_SURELY_UNSET"]).fails(
        2,
        &["--token: environment variable GANTRY_IT_SURELY_UNSET is not set"],
    );
    let leaked = call(&["echo", "--name=x", "--token=s3cr3t-value"]).fails(
        2,
        &["--token: unknown secret source <value>: use env:NAME, file:PATH or cmd:COMMAND"],
    );
    assert!(!leaked.stderr.contains("s3cr3t-value"));
    call(&["echo", "--name=x", "--token=vault:kv/x"]).fails(2, &["unknown secret source vault:"]);
    call(&["echo", "--name=x", "stdout"]).fails(2, &["echo returns string, which has no fields"]);
    // Without any module.
    let empty = tempfile::tempdir().unwrap();
    run(gantry(state.path(), empty.path(), &["call", "echo"]))
        .fails(3, &["no module here", "gantry init"]);
}

#[test]
fn flags_defaults_and_output_shapes() {
    let state = tempfile::tempdir().unwrap();
    let module = errors_module();
    let m = module.path();
    let call = |args: &[&str]| run(gantry(state.path(), m, &[&["call"], args].concat()));
    require_runtime!();
    let out = call(&[
        "echo",
        "--name",
        "hi",
        "--count=2",
        "--loud",
        "--tags=a,b",
        "--tags",
        "c",
        "--level=HIGH",
    ])
    .ok();
    assert_eq!(out.stdout, "HI HI level=high tags=a,b,c token=unset\n");
    let out = call(&["echo", "--name=hi", "--loud=false", "--json"]).ok();
    assert_eq!(out.stdout.trim(), "\"hi level=low tags= token=unset\"");
    std::fs::write(m.join(".env"), "ECHO_NAME=from-dotenv\necho_count=2\n").unwrap();
    let out = call(&["echo"]).ok();
    assert_eq!(
        out.stdout,
        "from-dotenv from-dotenv level=low tags= token=unset\n"
    );
    let out = call(&["echo", "--name=flag"]).ok();
    assert_eq!(
        out.stdout, "flag flag level=low tags= token=unset\n",
        "flags win over .env"
    );
    let mut with_secret = gantry(
        state.path(),
        m,
        &["call", "echo", "--name=x", "--token=env:GANTRY_IT_TOKEN"],
    );
    with_secret.env("GANTRY_IT_TOKEN", "value-4711");
    let out = run(with_secret).ok();
    assert!(out.stdout.ends_with("token=set\n"), "{}", out.stdout);
    let file = m.join("token.txt");
    std::fs::write(&file, "from-a-file\n").unwrap();
    call(&["echo", "--name=x", "--token=file:token.txt"]).ok();
    call(&["echo", "--name=x", "--token=cmd:echo from-a-command"]).ok();
    // A Container from an image address, a CacheVolume from a name, a File from a path.
    let image = format!("--ctr={}", crate::support::busybox());
    let out = call(&[
        "objects",
        &image,
        "--cache=it-module-cache",
        "--note=token.txt",
    ])
    .ok();
    assert_eq!(out.stdout, "from-a-file\ncache mounted\n");
}

#[test]
fn module_failures_show_their_own_error() {
    require_runtime!();
    let state = tempfile::tempdir().unwrap();
    let module = errors_module();
    let m = module.path();
    let call = |args: &[&str]| run(gantry(state.path(), m, &[&["call"], args].concat()));
    call(&["fail"]).fails(
        1,
        &[
            "Traceback",
            "ValueError: boom from the module",
            "function fail failed",
        ],
    );
    call(&["bad-exec"]).fails(
        1,
        &[
            "exit code: 3",
            "out-line",
            "err-line",
            "sh -c echo out-line",
        ],
    );
    // Code that cannot be imported: exit 3 with Python's own error.
    std::fs::write(
        m.join("main.py"),
        "class Errors:\n    def broken(self) -> str\n",
    )
    .unwrap();
    call(&["broken"]).fails(3, &["SyntaxError", "could not load module errors"]);
}

/// `gantry call -m core container from --address=BUSYBOX` and then `chain`.
fn core_container(state: &Path, cwd: &Path, chain: &[&str]) -> Command {
    let address = format!("--address={}", crate::support::busybox());
    let head = ["call", "-m", "core", "container", "from", address.as_str()];
    gantry(state, cwd, &[&head[..], chain].concat())
}

#[test]
fn core_api_without_a_module() {
    require_runtime!();
    let state = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let out = run(core_container(
        state.path(),
        work.path(),
        &["with-exec", "--args=echo,hi from core", "stdout"],
    ))
    .ok();
    assert_eq!(out.stdout, "hi from core\n");
    std::fs::write(work.path().join("in.txt"), "host file\n").unwrap();
    let out = run(core_container(
        state.path(),
        work.path(),
        &[
            "with-file",
            "--path=/in.txt",
            "--source=in.txt",
            "file",
            "--path=/in.txt",
            "contents",
        ],
    ))
    .ok();
    assert_eq!(out.stdout, "host file\n");
    run(gantry(
        state.path(),
        work.path(),
        &["call", "-m", "core", "contianer"],
    ))
    .fails(
        2,
        &["the core API has no field \"contianer\": did you mean \"container\"?"],
    );
}

#[test]
fn init_scaffolds_a_module_that_lists_its_function() {
    let state = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    for sdk in ["python", "typescript", "go", "php"] {
        let dir = work.path().join(format!("ci-{sdk}"));
        run(gantry(
            state.path(),
            work.path(),
            &["init", &format!("--sdk={sdk}"), dir.to_str().unwrap()],
        ))
        .ok();
        let manifest = std::fs::read_to_string(dir.join("gantry.toml")).unwrap();
        assert_eq!(manifest, format!("name = \"ci-{sdk}\"\nsdk = \"{sdk}\"\n"));
        let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
        assert!(readme.contains("gantry call hello --name=you"), "{readme}");
        // A second init refuses to overwrite.
        run(gantry(
            state.path(),
            work.path(),
            &["init", &format!("--sdk={sdk}"), dir.to_str().unwrap()],
        ))
        .fails(1, &["already has a gantry.toml"]);
    }
    // Python and Go list without installing anything.
    for sdk in ["python", "go"] {
        let dir = work.path().join(format!("ci-{sdk}"));
        let listed = run(gantry(state.path(), &dir, &["functions"])).ok();
        assert!(
            listed.stdout.contains("  hello  "),
            "{sdk}: {}",
            listed.stdout
        );
    }
    let help = run(gantry(
        state.path(),
        &work.path().join("ci-python"),
        &["call", "hello", "--help"],
    ))
    .ok();
    assert!(
        help.stdout
            .contains("--name string   Who to greet. (default: \"world\")"),
        "{}",
        help.stdout
    );
}

#[test]
fn directory_and_file_flags_take_git_urls() {
    require_runtime!();
    let state = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    crate::servers::sample_repo(root.path(), "repo");
    let daemon = crate::servers::GitDaemon::start(root.path(), &root.path().join("daemon.log"));
    let url = daemon.url("repo");
    let call = |file_flag: &str| {
        core_container(
            state.path(),
            work.path(),
            &[
                "with-directory",
                "--path=/src",
                &format!("--source={url}#main:src"),
                "with-file",
                "--path=/readme",
                file_flag,
                "with-exec",
                "--args=cat,/src/main.txt,/readme",
                "stdout",
            ],
        )
    };
    let out = run(call(&format!("--source={url}#feature:README.md"))).ok();
    assert_eq!(out.stdout, "second\nfirst\n");
    // A File flag names a file in the repository.
    run(call(&format!("--source={url}#main"))).fails(
        2,
        &[
            "--source:",
            "names no file in the repository: use URL#REF:PATH",
        ],
    );
}
