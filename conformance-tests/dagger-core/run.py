#!/usr/bin/env python3
"""Runs Dagger's own core integration tests (core/integration at v0.21.8, unmodified) against
gantry and says what fails and why.

    conformance-tests/dagger-core/run.py [--suites core,tier2] [--connect run|session]
                                         [--test-timeout 180] [--parallel 4] [--only REGEX]

Steps (see README.md beside this file):
1. Dagger's source through the Go module proxy (`go mod download`), copied to
   target/dagger-core/src/ (build overlays are refused inside the module cache).
2. The core/integration test binary, built once with `go test -c` and cached as
   target/dagger-core/integration.test (rebuilt when the version, Go or a stand-in changes).
3. The test list and what each test needs, from the test source (classify.py).
4. Each suite in one process, `gantry run -- integration.test -test.run ...` (or, with
   --connect session, the SDK starting `gantry session` per client), its output read through
   `go tool test2json`; a test running longer than --test-timeout is stopped (SIGQUIT, so Go
   prints where it hung), recorded as a timeout, and the suite resumes without it.
5. target/dagger-core/results.json (every test: status, needs, first failure line, cause),
   target/dagger-core/summary.md and a table on stdout.

The exit status is 0 when the run completed, whatever the tests did (this is a measurement,
not a gate), and 2 when the harness itself could not run.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

import classify

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
OUT = ROOT / "target" / "dagger-core"
DAGGER_MODULE = "github.com/dagger/dagger"
SDK_MODULE = "dagger.io/dagger"
VERSION = "v0.21.8"
PACKAGE = f"{DAGGER_MODULE}/core/integration"

# Suites by group. "core": the core-API suites of issue 20; "tier2": those of issue 18.
GROUPS = {
    "core": [
        "TestContainer",
        "TestDirectory",
        "TestFile",
        "TestSecret",
        "TestCache",
        "TestHost",
        "TestAddress",
        "TestChangeset",
        "TestEnvFile",
        "TestJSON",
        "TestPlatform",
    ],
    "tier2": ["TestServices", "TestGit", "TestHTTP", "TestDockerfile"],
}

# Modules of Dagger v0.21.8's build list that the Go module proxy does not serve, each
# replaced by a folder under standins/ (see README.md, "Stand-ins").
STANDIN_MODULES = {
    "github.com/dagger/dagger/engine/distconsts": "distconsts",
    "github.com/vito/midterm": "midterm",
    "github.com/vito/tuist": "tuist",
    "github.com/vito/tuist/teav1": "tuist-teav1",
    "github.com/vito/dang/v2": "dang-v2",
}
# Packages of Dagger's own module whose files are swapped by a `go build -overlay`: every
# non-test file but those kept is left out and the stand-in file is added.
OVERLAY_PACKAGES = {
    "dagql/idtui": ({"symbols.go", "output.go"}, "overlay/idtui/standin.go"),
    "core/sdk/dang/v2": (set(), "overlay/dangv2/standin.go"),
}


def log(*parts: object) -> None:
    print("dagger-core:", *parts, file=sys.stderr, flush=True)


def die(message: str) -> None:
    log(message)
    sys.exit(2)


def go_env() -> dict[str, str]:
    env = dict(os.environ)
    if shutil.which("go") is None and pathlib.Path("/usr/local/go/bin/go").exists():
        env["PATH"] = env.get("PATH", "") + ":/usr/local/go/bin"
    env["GOFLAGS"] = "-buildvcs=false"
    env["GOCACHE"] = str(OUT / "go-build")
    env["GOWORK"] = str(OUT / "build" / "go.work")
    env.pop("GOOS", None)
    env.pop("GOARCH", None)
    return env


def go_download(module: str, env: dict[str, str]) -> pathlib.Path:
    """The module's directory in the Go module cache, downloaded through the proxy if needed."""
    result = subprocess.run(
        ["go", "mod", "download", "-json", f"{module}@{VERSION}"],
        env={**env, "GOWORK": "off"},
        cwd=OUT,
        capture_output=True,
        text=True,
    )
    try:
        info = json.loads(result.stdout)
    except json.JSONDecodeError:
        die(f"go mod download {module}@{VERSION} failed: {result.stderr.strip()}")
    if "Error" in info or not info.get("Dir"):
        die(f"go mod download {module}@{VERSION} failed: {info.get('Error')}")
    return pathlib.Path(info["Dir"])


def prepare_source(env: dict[str, str]) -> tuple[pathlib.Path, pathlib.Path]:
    """Dagger's module (a hard-linked copy outside the module cache) and the Go SDK's."""
    module_dir = go_download(DAGGER_MODULE, env)
    sdk_dir = go_download(SDK_MODULE, env)
    src = OUT / "src" / f"dagger@{VERSION}"
    done = OUT / "src" / f"dagger@{VERSION}.complete"
    if not done.exists():
        # `go build -overlay` refuses to overlay files inside GOMODCACHE, hence a copy (about
        # 190 MB). Not hard links: the tests run as root in core/integration, and root could
        # write through a link into the module cache. Modes stay read-only, as in the cache.
        remove_tree(src)
        src.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["cp", "-a", str(module_dir), str(src)], check=True)
        done.write_text(f"{module_dir}\n")
    return src, sdk_dir


def remove_tree(path: pathlib.Path) -> None:
    if not path.exists():
        return
    # Directories copied from the module cache are read-only.
    for dirpath, _, _ in os.walk(path):
        os.chmod(dirpath, 0o755)
    shutil.rmtree(path)


def write_build_files(src: pathlib.Path, sdk_dir: pathlib.Path) -> str:
    """go.work and overlay.json under target/dagger-core/build/; returns their digest."""
    build = OUT / "build"
    build.mkdir(parents=True, exist_ok=True)
    go_version = re.search(r"^go (\S+)", (src / "go.mod").read_text(), re.M)
    lines = [f"go {go_version.group(1) if go_version else '1.26'}", "", f"use {src}", "", "replace ("]
    # Dagger's go.mod replaces both with folders of its repository (./sdk/go,
    # ./engine/distconsts) that are separate modules and so are not in the module's zip.
    lines.append(f"\t{SDK_MODULE} => {sdk_dir}")
    for module, folder in STANDIN_MODULES.items():
        lines.append(f"\t{module} => {HERE / 'standins' / folder}")
    lines += [")", ""]
    (build / "go.work").write_text("\n".join(lines))
    replace: dict[str, str] = {}
    for package, (keep, standin) in OVERLAY_PACKAGES.items():
        package_dir = src / package
        for path in sorted(package_dir.glob("*.go")):
            if not path.name.endswith("_test.go") and path.name not in keep:
                replace[str(path)] = ""
        replace[str(package_dir / "zz_gantry_standin.go")] = str(HERE / "standins" / standin)
    (build / "overlay.json").write_text(json.dumps({"Replace": replace}, indent=1) + "\n")
    digest = hashlib.sha256()
    digest.update((build / "go.work").read_bytes())
    digest.update((build / "overlay.json").read_bytes())
    for path in sorted((HERE / "standins").rglob("*")):
        if path.is_file():
            digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


def build(env: dict[str, str], inputs: str) -> pathlib.Path:
    binary = OUT / "integration.test"
    stamp = OUT / "integration.test.stamp"
    go_version = subprocess.run(["go", "version"], env=env, capture_output=True, text=True).stdout.strip()
    want = f"{VERSION} {go_version} {inputs}\n"
    if binary.exists() and stamp.exists() and stamp.read_text() == want:
        return binary
    log(f"building the core/integration test binary (cold: tens of minutes on 2 cores; log {rel(OUT / 'build.log')})")
    start = time.monotonic()
    with open(OUT / "build.log", "w") as out:
        result = subprocess.run(
            ["nice", "-n", "10", "go", "test", "-c", "-overlay", str(OUT / "build" / "overlay.json"), "-o", str(binary), PACKAGE],
            env=env,
            cwd=OUT / "build",
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    if result.returncode != 0:
        die(f"go test -c failed (exit {result.returncode}); see {rel(OUT / 'build.log')}")
    stamp.write_text(want)
    log(f"built {rel(binary)} in {time.monotonic() - start:.0f}s")
    return binary


def rel(path: pathlib.Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


# --- running ---------------------------------------------------------------------------


class Result:
    def __init__(self) -> None:
        self.status = "not-run"  # pass | fail | skip | timeout | interrupted | not-run
        self.elapsed = 0.0
        self.output: list[str] = []  # its own output and that of its subtests, in order
        self.subtests: dict[str, str] = {}  # subtest name -> pass|fail|skip
        self.subtest_output: dict[str, list[str]] = collections.defaultdict(list)


def children(pid: int) -> list[int]:
    found = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                found += [int(p) for p in f.read().split()]
    except OSError:
        pass
    return found


def run_round(
    suite: str,
    names: list[str],
    results: dict[str, Result],
    args: argparse.Namespace,
    binary: pathlib.Path,
    env: dict[str, str],
    round_no: int,
) -> list[str]:
    """Runs the named tests of one suite in one process; returns those to run again."""
    pattern = f"^{suite}$/^({'|'.join(names)})$"
    test_args = [
        str(binary),
        "-test.v=test2json",
        "-test.run",
        pattern,
        "-test.parallel",
        str(args.parallel),
        "-test.timeout",
        "0",
        "-test.count",
        "1",
    ]
    logs = OUT / "logs"
    engine_log = open(logs / f"{suite}.{round_no}.stderr.log", "w")
    events_log = open(logs / f"{suite}.{round_no}.events.jsonl", "w")
    # `go test` runs a test binary in its package's directory; the tests read testdata/ from there.
    workdir = OUT / "src" / f"dagger@{VERSION}" / "core" / "integration"
    run_env = dict(env)
    run_env.pop("GOWORK", None)
    run_env["GANTRY_STATE_DIR"] = str(OUT / "state")
    if args.connect == "run":
        command = [args.gantry, "run", "--progress", "plain", "--", *test_args]
    else:
        run_env["_EXPERIMENTAL_DAGGER_CLI_BIN"] = args.gantry
        command = test_args
    tests = subprocess.Popen(
        command,
        cwd=workdir,
        env=run_env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=engine_log,
        start_new_session=True,
    )
    reader = subprocess.Popen(
        ["go", "tool", "test2json", "-t", "-p", "core/integration"],
        env=env,
        stdin=tests.stdout,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert tests.stdout is not None
    tests.stdout.close()
    running: dict[str, float] = {}  # test -> monotonic time it started or continued
    finished: set[str] = set()
    timed_out: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def test_pid() -> int:
        if args.connect == "session":
            return tests.pid
        kids = children(tests.pid)
        return kids[0] if kids else tests.pid

    def watchdog() -> None:
        while not stop.wait(1.0):
            now = time.monotonic()
            with lock:
                late = [t for t, since in running.items() if now - since > args.test_timeout]
            if late and not timed_out:
                timed_out.extend(late)
                log(f"{suite}: {', '.join(late)} ran past {args.test_timeout}s; stopping the process (SIGQUIT)")
                try:
                    os.kill(test_pid(), signal.SIGQUIT)
                except ProcessLookupError:
                    pass
                if stop.wait(20):
                    return
                try:
                    os.killpg(tests.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                return

    threading.Thread(target=watchdog, daemon=True).start()
    assert reader.stdout is not None
    for line in reader.stdout:
        events_log.write(line)
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        name = event.get("Test") or ""
        parts = name.split("/")
        if len(parts) < 2 or parts[0] != suite:
            continue
        top = parts[1]
        result = results.get(top)
        if result is None:
            continue
        action = event.get("Action")
        if action == "output":
            result.output.append(event.get("Output", ""))
            if len(parts) > 2:
                result.subtest_output["/".join(parts[2:])].append(event.get("Output", ""))
            continue
        if len(parts) > 2:
            if action in ("pass", "fail", "skip"):
                result.subtests["/".join(parts[2:])] = action
            continue
        with lock:
            if action in ("run", "cont"):
                running[top] = time.monotonic()
            elif action == "pause":
                running.pop(top, None)
            elif action in ("pass", "fail", "skip"):
                running.pop(top, None)
                finished.add(top)
                result.status = action
                result.elapsed = float(event.get("Elapsed") or 0.0)
    stop.set()
    tests.wait()
    reader.wait()
    engine_log.close()
    events_log.close()
    crashed = panicked_test(logs / f"{suite}.{round_no}.stderr.log") if tests.returncode != 0 else None
    if crashed and crashed[0] in results and crashed[0] not in timed_out:
        # A panic in a test ends the whole process; Go prints it on stderr, not in the test's
        # output, so it is attached here.
        name, message = crashed
        results[name].status = "fail"
        results[name].output.append(f"{message}\n")
        finished.add(name)
    again = []
    for top in names:
        if top in finished:
            continue
        result = results[top]
        if top in timed_out:
            result.status = "timeout"
            result.elapsed = float(args.test_timeout)
            result.output.append(f"harness: stopped after the per-test timeout of {args.test_timeout}s\n")
        elif tests.returncode != 0 and (finished or timed_out):
            # Another test's timeout or panic stopped this one: run it again, without the
            # tests that have a result (each round settles at least one, so this ends).
            again.append(top)
        else:
            result.status = "interrupted" if tests.returncode else "not-run"
            result.output.append(f"harness: the test process ended (exit {tests.returncode}) before this test finished\n")
    if again:
        log(f"{suite}: the test process exited {tests.returncode} with {len(again)} tests unfinished; running them again")
    return again


PANIC_FRAME = re.compile(r"core/integration\.\(?\*?\w+\)?\.(Test\w+)(?:\.func[\d.]+)?\(.*\n\s+(\S+/core/integration/(\w+\.go:\d+))")


def panicked_test(stderr_log: pathlib.Path) -> tuple[str, str] | None:
    """(test method, "panic: …") from a Go panic trace on stderr, if there is one."""
    try:
        text = stderr_log.read_text(errors="replace")
    except OSError:
        return None
    start = text.find("panic: ")
    if start < 0:
        return None
    message = text[start:].splitlines()[0].removesuffix(" [recovered, repanicked]").removesuffix(" [recovered]")
    frame = PANIC_FRAME.search(text, start)
    if not frame:
        return None
    return frame.group(1), f"{message} (at {frame.group(3)})"


def run_suite(suite: str, names: list[str], args, binary, env) -> dict[str, Result]:
    results = {name: Result() for name in names}
    todo = list(names)
    round_no = 1
    while todo:
        todo = run_round(suite, todo, results, args, binary, env, round_no)
        round_no += 1
    return results


# --- failures --------------------------------------------------------------------------

TESTIFY_GENERIC = re.compile(
    r"^(Received unexpected error:|An error is expected but got nil\.|Error \"[^\n]*|Should (?:be|not be|contain|NOT contain).*|Not equal:|"
    r"Error message not equal:|elements differ|\"[^\n]*\" does not contain .*|Expected value not to be nil\.)$"
)


def first_failure_line(output: list[str]) -> str:
    """The line that says why a test failed, from `go test -v` output."""
    lines = "".join(output).splitlines()
    for i, line in enumerate(lines):
        text = line.strip()
        if text.startswith("Error:"):
            message = text[len("Error:") :].strip()
            follow = []
            for nxt in lines[i + 1 : i + 6]:
                cell = nxt.strip()
                if not cell or re.match(r"^(Test|Messages|Error Trace):", cell):
                    break
                follow.append(cell)
            if message.startswith("Received unexpected error:") and follow:
                return follow[0]
            if message.endswith(":") or TESTIFY_GENERIC.match(message):
                return " ".join([message, *follow[:2]])
            return message
    for line in lines:
        text = line.strip()
        if text.startswith(("panic:", "harness:")):
            return text
    for line in lines:
        match = re.match(r"^\s+\w+\.go:\d+: (.+)$", line)
        if match and match.group(1).strip():
            return match.group(1).strip()
    for line in lines:
        if line.strip() and not line.startswith(("=== ", "--- ", "    --- ")):
            return line.strip()
    return ""


# --- report ----------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suites", default="core,tier2", help="groups (core, tier2, all) or Test<Suite> names, comma-separated")
    parser.add_argument("--only", help="run only tests whose id (TestSuite/TestName) matches this regex")
    parser.add_argument("--connect", choices=("run", "session"), default="session", help="session (default): each client of the Go SDK starts `gantry session` itself (_EXPERIMENTAL_DAGGER_CLI_BIN), as in Dagger's own CI; run: one `gantry run` session per suite process (DAGGER_SESSION_PORT/TOKEN)")
    parser.add_argument("--test-timeout", type=int, default=180, help="seconds one test may run (default 180)")
    parser.add_argument("--parallel", type=int, default=4, help="tests run at once in a suite (-test.parallel, default 4)")
    parser.add_argument("--gantry", default=os.environ.get("GANTRY_BIN", str(ROOT / "target" / "debug" / "gantry")))
    parser.add_argument("--build-only", action="store_true", help="fetch and build, run nothing")
    parser.add_argument("--list", action="store_true", help="print the selected tests and their needs, run nothing")
    args = parser.parse_args()
    args.gantry = str(pathlib.Path(args.gantry).resolve())

    started = time.monotonic()
    OUT.mkdir(parents=True, exist_ok=True)
    env = go_env()
    src, sdk_dir = prepare_source(env)
    inputs = write_build_files(src, sdk_dir)
    tests = classify.scan(src / "core" / "integration")
    suites_all = sorted({t.suite for t in tests.values()})
    wanted: list[str] = []
    for item in args.suites.split(","):
        item = item.strip()
        if item == "all":
            wanted += suites_all
        elif item in GROUPS:
            wanted += GROUPS[item]
        elif item in suites_all:
            wanted.append(item)
        else:
            die(f"unknown suite or group {item!r} (groups: {', '.join(GROUPS)}, all; suites: {', '.join(suites_all)})")
    wanted = list(dict.fromkeys(wanted))
    selected = [t for t in tests.values() if t.suite in wanted and (not args.only or re.search(args.only, t.id))]
    if args.list:
        for t in selected:
            print(t.id, ",".join(sorted(t.needs)) or "-", f"{t.file}:{t.line}")
        return 0
    binary = build(env, inputs)
    if args.build_only:
        return 0
    if not os.access(args.gantry, os.X_OK):
        die(f"no gantry binary at {args.gantry} (cargo build -p gantry, or --gantry / GANTRY_BIN)")

    logs = OUT / "logs"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True)
    # Each run starts from an empty cache (and removes the step images the last run left in
    # Docker): results must not depend on what an earlier run cached.
    state = OUT / "state"
    if state.exists():
        subprocess.run([args.gantry, "prune", "--state-dir", str(state)], stdout=subprocess.DEVNULL, stderr=open(logs / "prune.log", "w"))
    run_started = time.monotonic()
    records = []
    for suite in wanted:
        names = [t.name for t in selected if t.suite == suite]
        if not names:
            continue
        suite_start = time.monotonic()
        results = run_suite(suite, names, args, binary, env)
        counts = collections.Counter(r.status for r in results.values())
        log(f"{suite}: {dict(counts)} in {time.monotonic() - suite_start:.0f}s")
        for name in names:
            case, result = tests[f"{suite}/{name}"], results[name]
            line = first_failure_line(result.output) if result.status not in ("pass", "skip") else ""
            if result.status == "skip":
                line = first_failure_line(result.output)
            cause, revealed = classify.cause(line) if result.status in ("fail", "timeout", "interrupted", "not-run") else ("", None)
            if result.status == "timeout":
                cause = f"timeout (no result within {args.test_timeout}s)"
            needs = sorted(case.needs)
            refined = []
            if revealed and revealed not in case.needs:
                refined.append(revealed)
            effective = set(needs) | set(refined)
            failed_subtests = []
            for sub, status in result.subtests.items():
                leaf = not any(other.startswith(sub + "/") and st == "fail" for other, st in result.subtests.items())
                if status == "fail" and leaf:
                    sub_line = first_failure_line(result.subtest_output.get(sub, []))
                    failed_subtests.append({"name": sub, "failure": sub_line, "cause": classify.cause(sub_line)[0]})
            records.append(
                {
                    "id": case.id,
                    "suite": suite,
                    "test": name,
                    "source": f"core/integration/{case.file}:{case.line}",
                    "status": result.status,
                    "seconds": round(result.elapsed, 2),
                    "needs": needs,
                    "needs_evidence": case.needs,
                    "needs_from_failure": refined,
                    "core_api_only": not (effective & set(classify.EXCLUDING)),
                    "failure": line,
                    "cause": cause,
                    "subtests": result.subtests,
                    "failed_subtests": failed_subtests,
                }
            )
    run_seconds = time.monotonic() - run_started
    report = make_report(records, args, run_seconds, time.monotonic() - started)
    (OUT / "results.json").write_text(json.dumps(report, indent=1) + "\n")
    summary = render(report)
    (OUT / "summary.md").write_text(summary)
    print(summary)
    log(f"results: {rel(OUT / 'results.json')}, {rel(OUT / 'summary.md')}; logs in {rel(logs)}")
    return 0


def counts_of(records) -> dict[str, int]:
    c = collections.Counter(r["status"] for r in records)
    return {
        "total": len(records),
        "passed": c["pass"],
        "failed": c["fail"] + c["timeout"] + c["interrupted"] + c["not-run"],
        "skipped": c["skip"],
        "timeouts": c["timeout"],
    }


def subtest_counts(records) -> dict[str, int]:
    """Every reported result: each test method plus each of its t.Run subtests."""
    c = collections.Counter()
    for r in records:
        c[r["status"]] += 1
        for status in r["subtests"].values():
            c[status] += 1
    return {"total": sum(c.values()), "passed": c["pass"], "failed": sum(v for k, v in c.items() if k not in ("pass", "skip")), "skipped": c["skip"]}


def make_report(records, args, run_seconds, total_seconds) -> dict:
    suites = {}
    for r in records:
        suites.setdefault(r["suite"], []).append(r)
    core = [r for r in records if r["core_api_only"]]
    failing = [r for r in records if r["status"] not in ("pass", "skip")]
    causes = collections.Counter(r["cause"] for r in failing)
    core_causes = collections.Counter(r["cause"] for r in failing if r["core_api_only"])
    groups = []
    for cause, n in causes.most_common():
        members = [r for r in failing if r["cause"] == cause]
        groups.append(
            {
                "cause": cause,
                "tests": n,
                "core_api_only_tests": core_causes.get(cause, 0),
                "example": members[0]["failure"][:300],
                "ids": [r["id"] for r in members],
            }
        )
    sub_causes = collections.Counter(f["cause"] for r in records for f in r["failed_subtests"])
    # Tests kept out of the core-API-only set by nothing but public images: the set a registry
    # mirror with local stand-in images would add (whether they would pass is another matter).
    image_only = [r for r in records if (set(r["needs"]) | set(r["needs_from_failure"])) & set(classify.EXCLUDING) == {"public-image"}]
    core_counts = counts_of(core)
    return {
        "dagger": f"{DAGGER_MODULE}@{VERSION} core/integration (Go SDK {SDK_MODULE}@{VERSION})",
        "connect": args.connect,
        "per_test_timeout_seconds": args.test_timeout,
        "parallel": args.parallel,
        "run_seconds": round(run_seconds),
        "total_seconds": round(total_seconds),
        "unit": "one test = one method of a testctx suite (TestSuite/TestName); its t.Run subtests are listed under it",
        "core_api_only_definition": "tests whose source (and the package helpers it uses) needs none of: "
        + ", ".join(classify.EXCLUDING)
        + ", and whose failure did not reveal such a need",
        "core_api_only": {**core_counts, "pass_rate": round(core_counts["passed"] / core_counts["total"], 4) if core else None, "target": 0.85},
        "suites": {name: {**counts_of(rs), "core_api_only": counts_of([r for r in rs if r["core_api_only"]]), "with_subtests": subtest_counts(rs)} for name, rs in suites.items()},
        "all": {**counts_of(records), "with_subtests": subtest_counts(records)},
        "needs": dict(collections.Counter(n for r in records for n in set(r["needs"]) | set(r["needs_from_failure"]))),
        "causes": groups,
        "subtest_causes": [{"cause": c, "failed_subtests": n} for c, n in sub_causes.most_common()],
        "excluded_only_by_public_images": {"tests": len(image_only), "passed": sum(r["status"] == "pass" for r in image_only), "ids": [r["id"] for r in image_only]},
        "tests": records,
    }


def render(report: dict) -> str:
    out = []
    out.append(f"# Dagger's core integration tests against gantry\n")
    out.append(f"{report['dagger']}; connect: {report['connect']}; per-test timeout {report['per_test_timeout_seconds']}s; "
               f"parallel {report['parallel']}; run time {report['run_seconds']}s (with build check {report['total_seconds']}s).\n")
    out.append(f"Unit: {report['unit']}.\n")
    out.append("| suite | tests | passed | failed | skipped | timeouts | core-API-only: passed / tests | with subtests: passed / total |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, s in report["suites"].items():
        c, w = s["core_api_only"], s["with_subtests"]
        out.append(f"| {name} | {s['total']} | {s['passed']} | {s['failed']} | {s['skipped']} | {s['timeouts']} | {c['passed']} / {c['total']} | {w['passed']} / {w['total']} |")
    a, w = report["all"], report["all"]["with_subtests"]
    core = report["core_api_only"]
    out.append(f"| **all** | {a['total']} | {a['passed']} | {a['failed']} | {a['skipped']} | {a['timeouts']} | {core['passed']} / {core['total']} | {w['passed']} / {w['total']} |")
    rate = f"{100 * core['pass_rate']:.1f} %" if core["pass_rate"] is not None else "n/a"
    out.append("")
    out.append(f"**Core-API-only pass rate: {core['passed']} / {core['total']} = {rate}** (target ≥ 85 %). "
               f"Denominator: {report['core_api_only_definition']}. Skipped tests count as not passed.\n")
    needs = ", ".join(f"{k} {v}" for k, v in sorted(report["needs"].items(), key=lambda kv: -kv[1]))
    out.append(f"Needs among the tests run (a test may have several): {needs}.\n")
    out.append("## Failure causes (largest first)\n")
    out.append("| # | cause | tests | of them core-API-only | example |")
    out.append("|---:|---|---:|---:|---|")
    for i, g in enumerate(report["causes"][:30], 1):
        example = g["example"][:110].replace("|", "\\|").replace("\n", " ")
        out.append(f"| {i} | {g['cause'].replace('|', '/')} | {g['tests']} | {g['core_api_only_tests']} | {example} |")
    if len(report["causes"]) > 30:
        out.append(f"\n{len(report['causes']) - 30} more causes in results.json.")
    out.append("\n## Causes counted over failing subtests (t.Run leaves), largest first\n")
    out.append("| cause | failing subtests |")
    out.append("|---|---:|")
    for item in report["subtest_causes"][:15]:
        out.append(f"| {item['cause'].replace('|', '/')} | {item['failed_subtests']} |")
    mirror = report["excluded_only_by_public_images"]
    out.append(f"\n{mirror['tests']} tests are outside the core-API-only set only because they use public images "
               f"(Docker Hub): the set an image mirror would add (see README.md).")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.exit(main())
