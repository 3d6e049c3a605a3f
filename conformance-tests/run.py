#!/usr/bin/env python3
"""Runs every conformance scenario with every gantry SDK against one engine.

    python3 conformance-tests/run.py [SCENARIO...]        (default: all)
    CONFORMANCE_SDKS="python go" python3 conformance-tests/run.py

Starts `gantry serve` on target/conformance/engine.sock with its state in
target/conformance/state (kept between runs, so the Go caches stay warm), runs
each scenario's program for each SDK, normalises its stdout and compares it
with expected/SCENARIO.txt. Logs (stdout + stderr of every program, the diff on
failure) go to target/conformance/logs/. `make conformance` builds what the SDKs
need first; see README.md.

Prints one line per SDK, `python: N passed, M failed`, then the total
`N passed, M failed`; exits 1 if anything failed.
"""

from __future__ import annotations

import difflib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = ROOT / "target" / "conformance"
LOGS = OUT / "logs"
GANTRY = Path(os.environ.get("GANTRY_BIN", ROOT / "target" / "debug" / "gantry"))
PYTHON = os.environ.get("CONFORMANCE_PYTHON", str(ROOT / "sdk-python" / ".venv" / "bin" / "python"))

# name -> (runs, count_containers). Two-run scenarios get CONFORMANCE_RUN=1, then 2,
# with the same marker. count_containers: the runner appends
# `run N: containers created: K` after each run, K counted from `docker events` (or the
# native runtime's own counter).
SCENARIOS: dict[str, tuple[int, bool]] = {
    "hello": (1, False),
    "container_config": (1, False),
    "files": (1, False),
    "cache_volume": (2, False),
    "secret": (1, False),
    "exec_error": (1, False),
    "parallel": (1, False),
    "cached_rerun": (2, True),
    "publish_auth": (1, False),
    "ids": (1, False),
    "services": (1, False),
    "seed": (1, False),
    "module": (1, False),
    "inspect_and_change": (1, False),
    "git": (1, False),
    "docker_build": (1, False),
    "registry_service": (1, False),
}
MODULES = ROOT / "examples" / "modules"


def command(sdk: str, scenario: str) -> tuple[list[str], Path] | None:
    """The command line and working directory of one program, None if it is missing."""
    folder = HERE / sdk
    if scenario == "module":
        # The seed pipeline as a module in this SDK, called through `gantry call`.
        module = MODULES / sdk
        cmd = [sys.executable, str(HERE / "module_call.py"), str(GANTRY), str(module)]
        return (cmd, folder) if (module / "gantry.toml").exists() else None
    if sdk == "python":
        cmd, program = [PYTHON, f"{scenario}.py"], folder / f"{scenario}.py"
    elif sdk == "typescript":
        cmd, program = ["node", f"{scenario}.mjs"], folder / f"{scenario}.mjs"
    elif sdk == "go":
        program = OUT / "bin" / "go" / scenario
        cmd = [str(program)]
    elif sdk == "php":
        cmd, program = ["php", f"{scenario}.php"], folder / f"{scenario}.php"
    else:
        raise ValueError(sdk)
    return (cmd, folder) if program.exists() else None


def prepare(sdk: str) -> str | None:
    """Per-SDK setup before its scenarios; returns an error message on failure."""
    if sdk == "go":
        bin_dir = OUT / "bin" / "go"
        shutil.rmtree(bin_dir, ignore_errors=True)
        bin_dir.mkdir(parents=True)
        env = dict(os.environ, PATH=f"{os.environ['PATH']}:/usr/local/go/bin")
        # One `go build` for every scenario: faster than `go run` per program.
        result = subprocess.run(
            ["go", "build", "-o", f"{bin_dir}/", "./..."],
            cwd=HERE / "go",
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            return f"go build failed:\n{result.stdout}{result.stderr}"
    elif sdk == "typescript":
        # `import "@gantry/sdk"` resolves to the checkout (built by `make conformance`).
        link = HERE / "typescript" / "node_modules" / "@gantry" / "sdk"
        if not link.is_symlink():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(os.path.relpath(ROOT / "sdk-typescript", link.parent))
        if not (ROOT / "sdk-typescript" / "dist" / "index.js").exists():
            return "sdk-typescript/dist is missing: run `npx tsc` in sdk-typescript"
        return prepare_typescript_module()
    elif sdk == "python" and not os.access(PYTHON, os.X_OK):
        return f"no Python at {PYTHON}: run `make conformance`"
    elif sdk == "php" and not (ROOT / "sdk-php" / "vendor" / "autoload.php").exists():
        return "sdk-php/vendor/autoload.php is missing: run `composer dump-autoload` in sdk-php"
    elif sdk == "php":
        return prepare_php_module()
    return None


def prepare_typescript_module() -> str | None:
    """examples/modules/typescript: `npm ci` (typescript 6 for the module runtime) when
    its lock file changed, and `@gantry/sdk` linked to the checkout."""
    module = MODULES / "typescript"
    lock = module / "package-lock.json"
    stamp = module / "node_modules" / ".package-lock.json.installed"
    if not stamp.exists() or stamp.read_bytes() != lock.read_bytes():
        result = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=module, capture_output=True, text=True, check=False,
        )
        if result.returncode != 0:
            return f"npm ci in {module} failed:\n{result.stdout}{result.stderr}"
        stamp.write_bytes(lock.read_bytes())
    link = module / "node_modules" / "@gantry" / "sdk"
    if not link.is_symlink():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(ROOT / "sdk-typescript", link.parent))
    return None


def prepare_php_module() -> str | None:
    """examples/modules/php: its Composer autoloader, with gantry/sdk from the checkout
    (a path repository; Packagist is disabled)."""
    module = MODULES / "php"
    if (module / "vendor" / "autoload.php").exists():
        return None
    result = subprocess.run(
        ["composer", "update", "--no-interaction", "-q"],
        cwd=module, capture_output=True, text=True, check=False,
        env=dict(os.environ, COMPOSER_DISABLE_NETWORK="1"),
    )
    if result.returncode != 0:
        return f"composer update in {module} failed:\n{result.stdout}{result.stderr}"
    return None


# The native runtime's run directories: `<pid>-<n>/created` has a line per container
# the engine created, `<unix nanos> <step>` (see docs/native-runtime.md).
NATIVE_ENGINES = Path("/dev/shm/gantry-native/engines")


def containers_created(since: float, until: float, pid: int) -> int:
    """Containers the engine with `pid` created in [since, until]: from the native
    runtime's counter when the engine runs on it, else from Docker's events.

    Filtered here, not with --filter label=: dockerd 20.10 ignores label filters on events.
    """
    native = list(NATIVE_ENGINES.glob(f"{pid}-*/created"))
    if native:
        stamps = [int(line.split()[0]) / 1e9 for path in native
                  for line in path.read_text().splitlines() if line.strip()]
        return sum(1 for stamp in stamps if since <= stamp <= until)
    out = subprocess.run(
        [
            "docker",
            "events",
            "--since",
            f"{since:.6f}",
            "--until",
            f"{until:.6f}",
            "--filter",
            "type=container",
            "--filter",
            "event=create",
            "--format",
            '{{index .Actor.Attributes "dev.gantry.engine-pid"}}',
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return sum(1 for line in out.splitlines() if line.strip() == str(pid))


def normalise(text: str, marker: str) -> list[str]:
    text = text.replace(marker, "<MARKER>")
    auth_registry = os.environ.get("GANTRY_TEST_AUTH_REGISTRY", "127.0.0.1:5001")
    text = text.replace(auth_registry, "<AUTH_REGISTRY>")
    text = re.sub(r"sha256:[0-9a-f]{64}", "sha256:<DIGEST>", text)
    lines = [line.rstrip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def run_scenario(sdk: str, scenario: str, engine_pid: int, env: dict[str, str]) -> tuple[bool, str]:
    """Runs one scenario for one SDK; returns (passed, a short reason on failure)."""
    found = command(sdk, scenario)
    if found is None:
        return False, "no program"
    cmd, cwd = found
    runs, count = SCENARIOS[scenario]
    marker = f"{sdk}-{int(time.time())}-{secrets.token_hex(4)}"
    # 32 characters, new for every scenario; the programs print its length and `***`.
    secret = secrets.token_hex(16)
    out_dir = OUT / "out" / sdk / scenario
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    log = LOGS / f"{sdk}-{scenario}.log"
    stdout, reason = "", ""
    with open(log, "w") as log_file:
        for run in range(1, runs + 1):
            run_env = dict(
                env,
                CONFORMANCE_MARKER=marker,
                CONFORMANCE_RUN=str(run),
                CONFORMANCE_OUT=str(out_dir),
                CONFORMANCE_SECRET=secret,
            )
            since = time.time()
            try:
                result = subprocess.run(
                    cmd,
                    check=False,
                    cwd=cwd,
                    env=run_env,
                    capture_output=True,
                    text=True,
                    timeout=300,
                    stdin=subprocess.DEVNULL,
                )
            except subprocess.TimeoutExpired:
                reason = f"run {run} timed out after 300 s"
                break
            log_file.write(
                f"$ {' '.join(cmd)}  (run {run}, exit {result.returncode})\n"
                f"--- stdout\n{result.stdout}--- stderr\n{result.stderr}\n"
            )
            if secret in result.stdout + result.stderr:
                reason = "the secret's value appears in the output"
                break
            stdout += result.stdout
            if count:
                time.sleep(0.2)  # let dockerd record the last events
                created = containers_created(since, time.time(), engine_pid)
                stdout += f"run {run}: containers created: {created}\n"
            if result.returncode != 0:
                reason = f"run {run} exited with {result.returncode}"
                break
        expected = normalise((HERE / "expected" / f"{scenario}.txt").read_text(), marker)
        actual = normalise(stdout, marker)
        if not reason and actual != expected:
            reason = "output differs from expected"
        if reason:
            diff = "\n".join(
                difflib.unified_diff(expected, actual, "expected", "actual", lineterm="")
            )
            log_file.write(f"FAILED: {reason}\n{diff}\n")
            reason += "\n" + "\n".join("        | " + line for line in diff.splitlines()[2:])
    return not reason, reason


def git_repository() -> str:
    """The `git` scenario's repository, made afresh: its `file://` URL.

    Author, committer and dates are fixed, so every run makes the same commits:
    `main` (two commits; `README.md` changes), the annotated tag `v1.0.0` on the
    first, and `feature` branching from it.
    """
    repo = OUT / "git" / "repo"
    shutil.rmtree(repo, ignore_errors=True)
    repo.mkdir(parents=True)
    env = dict(
        os.environ,
        GIT_AUTHOR_NAME="Conformance", GIT_AUTHOR_EMAIL="conformance@example.invalid",
        GIT_COMMITTER_NAME="Conformance", GIT_COMMITTER_EMAIL="conformance@example.invalid",
        GIT_AUTHOR_DATE="2026-01-01T00:00:00Z", GIT_COMMITTER_DATE="2026-01-01T00:00:00Z",
        GIT_CONFIG_GLOBAL="/dev/null", GIT_CONFIG_NOSYSTEM="1",
    )

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)

    def write(path: str, text: str) -> None:
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(text)

    git("init", "-q", "-b", "main")
    write("README.md", "version one\n")
    write("src/app.txt", "app at v1\n")
    git("add", "-A")
    git("commit", "-q", "-m", "first")
    git("tag", "-a", "v1.0.0", "-m", "release 1.0.0")
    git("branch", "feature")
    write("README.md", "version two\n")
    write("docs/guide.txt", "a guide\n")
    git("add", "-A")
    git("commit", "-q", "-m", "second")
    git("switch", "-q", "feature")
    write("feature.txt", "feature work\n")
    git("add", "-A")
    git("commit", "-q", "-m", "feature")
    git("switch", "-q", "main")
    return f"file://{repo}"


def start_engine() -> subprocess.Popen[bytes]:
    sock = OUT / "engine.sock"
    sock.unlink(missing_ok=True)
    with open(OUT / "engine.log", "wb") as log:
        proc = subprocess.Popen(
            # One state directory per runtime: a step image of one is not in the other.
            [GANTRY, "serve", "--socket", sock, "--state-dir",
             OUT / f"state-{os.environ.get('GANTRY_RUNTIME') or 'auto'}"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while True:
        with socket.socket(socket.AF_UNIX) as probe:
            try:
                probe.connect(str(sock))
                return proc
            except OSError:
                pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            sys.exit(f"conformance: gantry serve did not start; see {OUT / 'engine.log'}")
        time.sleep(0.05)


def main(argv: list[str]) -> int:
    scenarios = argv or list(SCENARIOS)
    unknown = [s for s in scenarios if s not in SCENARIOS]
    if unknown:
        sys.exit(f"conformance: unknown scenario(s): {' '.join(unknown)}")
    sdks = os.environ.get("CONFORMANCE_SDKS", "python typescript go php").split()
    if not GANTRY.exists():
        sys.exit(f"conformance: no gantry binary at {GANTRY} (cargo build -p gantry)")
    LOGS.mkdir(parents=True, exist_ok=True)
    for old in LOGS.glob("*.log"):
        old.unlink()

    engine = start_engine()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GANTRY_SESSION_", "DAGGER_SESSION_")) and k != "GANTRY_BIN"
    }
    env["GANTRY_SOCKET"] = str(OUT / "engine.sock")
    # `gantry call` (the module scenario) runs its own engine on its own state.
    env["GANTRY_STATE_DIR"] = str(OUT / "call-state")
    env["GANTRY_PYTHON"] = PYTHON
    if "git" in scenarios:
        env["CONFORMANCE_GIT_URL"] = git_repository()
    totals = {}
    started = time.monotonic()
    try:
        for sdk in sdks:
            sdk_start = time.monotonic()
            passed = failed = 0
            error = prepare(sdk)
            for scenario in scenarios:
                start = time.monotonic()
                if error:
                    ok, reason = False, error
                else:
                    ok, reason = run_scenario(sdk, scenario, engine.pid, env)
                took = time.monotonic() - start
                status = "ok  " if ok else "FAIL"
                print(
                    f"  {status}  {sdk + '/' + scenario:<30} {took:5.1f}s"
                    + ("" if ok else f"  {reason}"),
                    flush=True,
                )
                passed, failed = passed + ok, failed + (not ok)
            totals[sdk] = (passed, failed)
            print(f"  ({sdk}: {time.monotonic() - sdk_start:.1f}s)", flush=True)
    finally:
        engine.send_signal(signal.SIGTERM)
        try:
            engine.wait(timeout=20)
        except subprocess.TimeoutExpired:
            engine.kill()
            engine.wait()
    print(f"  (total: {time.monotonic() - started:.1f}s; logs in {LOGS.relative_to(ROOT)})")
    for sdk, (passed, failed) in totals.items():
        print(f"{sdk}: {passed} passed, {failed} failed")
    passed = sum(p for p, _ in totals.values())
    failed = sum(f for _, f in totals.values())
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
