#!/usr/bin/env python3
"""gantry's benchmark suite: gantry against a baseline, both in the same run.

Run through `make bench` (bench/run.sh builds everything first). Every figure
is repeated; the median is quoted with the min and max. Paired figures run
gantry and its baseline in turn (A B A B ...) and take the ratio pair by pair,
so a machine whose speed drifts during the run still gives a fair ratio.
Each benchmark ends with one line `ratio: ...`. Results go to
bench/results/latest.json and bench/results/latest.md.

Standard library only. See bench/README.md for the method and how to read
the ratios.
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import json
import os
import platform
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
GANTRY = Path(os.environ.get("GANTRY_BIN", ROOT / "target/release/gantry"))
LOADGEN = Path(os.environ.get("BENCH_LOADGEN", ROOT / "target/bench/loadgen"))
FIXTURES = os.environ.get("GANTRY_TEST_FIXTURES", "127.0.0.1:5000/gantry-fixtures")
# Where the native runtime keeps each engine's run directory (its `timings` file).
NATIVE_RUN_ROOT = "/dev/shm/gantry-native"
BUSYBOX = f"{FIXTURES}/busybox:latest"
GOLANG = f"{FIXTURES}/golang:latest"
REGISTRY = os.environ.get("GANTRY_TEST_REGISTRY", "127.0.0.1:5000")
DOCKER_SOCKET = "/var/run/docker.sock"
MB = 1024 * 1024

# ---------------------------------------------------------------- small helpers


def log(line: str = "") -> None:
    print(line, flush=True)


def summary(values: list[float]) -> dict[str, Any]:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "runs": len(values),
        "values": [round(v, 6) for v in values],
    }


def single(value: float) -> dict[str, Any]:
    """A summary of one measurement (a figure read once, such as an RSS)."""
    return {"median": value, "min": value, "max": value, "runs": 1}


def fmt_s(stats: dict[str, Any]) -> str:
    return f"{stats['median']:.3f} s (min {stats['min']:.3f}, max {stats['max']:.3f}, n={stats['runs']})"


def fmt_x(stats: dict[str, Any]) -> str:
    return f"{stats['median']:.3f}x (min {stats['min']:.3f}, max {stats['max']:.3f})"


def run(argv: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None,
        timeout: float = 600) -> str:
    """Runs a command, returns its stdout; raises with its stderr on failure."""
    proc = subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, argv))} exited {proc.returncode}: "
                           f"{proc.stderr.strip()[-2000:]}")
    return proc.stdout


def timed(argv: list[str], **kwargs: Any) -> float:
    """Wall seconds of one whole command (process start to exit)."""
    t0 = time.perf_counter()
    run(argv, **kwargs)
    return time.perf_counter() - t0


def paired(a: Callable[[], float], b: Callable[[], float], runs: int,
           warmup: int = 1) -> tuple[list[float], list[float], list[float]]:
    """Runs a and b in turn (A B A B ...); each returns its own seconds."""
    for _ in range(warmup):
        a()
        b()
    xs, ys, ratios = [], [], []
    for _ in range(runs):
        x = a()
        y = b()
        xs.append(x)
        ys.append(y)
        ratios.append(x / y)
    return xs, ys, ratios


def tree_bytes(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, and VmRSS's anonymous and file-backed parts, in bytes."""
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                    out[key] = int(value.split()[0]) * 1024
    except OSError:
        pass
    return out


def images_in(state_dir: Path) -> set[str]:
    """Docker image IDs named by the exec results in a state directory."""
    found: set[str] = set()
    for dirpath, _dirs, files in os.walk(state_dir / "store" / "exec"):
        for name in files:
            try:
                text = Path(dirpath, name).read_text(errors="replace")
            except OSError:
                continue
            found.update(re.findall(r'"image_id":"(sha256:[0-9a-f]{64})"', text))
    return found


def layers(image: str) -> dict[str, int]:
    """An image's layers (from `docker history`) and their sizes in bytes."""
    out: dict[str, int] = {}
    lines = run(["docker", "history", "--no-trunc", "--human=false", "--format", "{{json .}}",
                 image]).splitlines()
    for line in lines:
        row = json.loads(line)
        key = row["ID"] if row["ID"] != "<missing>" else f"{row['CreatedAt']}|{row['CreatedBy']}"
        try:
            out[key] = int(row["Size"])
        except ValueError:
            out[key] = 0
    return out


def layer_bytes(images: list[str], base: dict[str, int]) -> int:
    """Bytes of the distinct layers of images that are not in base."""
    union: dict[str, int] = {}
    for image in images:
        union.update(layers(image))
    return sum(size for key, size in union.items() if key not in base)


class RssSampler:
    """Samples a process's VmRSS every few milliseconds; keeps the maximum."""

    def __init__(self, pid: int, interval: float = 0.005) -> None:
        self.pid, self.interval, self.peak = pid, interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, proc_status(self.pid).get("VmRSS", 0))
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, proc_status(self.pid).get("VmRSS", 0))


def docker_events(since: float, until: float, name_part: str = "",
                  label: str = "") -> list[tuple[str, str, int]]:
    """Container events (action, container ID, nanoseconds) between two wall times, of
    containers whose name contains name_part or that carry label (others' containers
    on this shared daemon are left out)."""
    argv = ["docker", "events", "--since", f"{since:.6f}", "--until", f"{until + 0.05:.6f}",
            "--filter", "type=container",
            "--format", "{{.Action}} {{.Actor.ID}} {{.TimeNano}} {{.Actor.Attributes.name}}"]
    if label:
        argv += ["--filter", f"label={label}"]
    events = []
    for line in run(argv).splitlines():
        parts = line.split()
        if len(parts) == 4 and name_part in parts[3]:
            events.append((parts[0].split(":")[0], parts[1], int(parts[2])))
    return events


def phases(events: list[tuple[str, str, int]]) -> dict[str, float]:
    """Mean milliseconds per container of each lifecycle phase, and the gap between
    one container's removal and the next one's creation (client-side time)."""
    by_id: dict[str, dict[str, int]] = {}
    order: list[str] = []
    for action, cid, ns in events:
        if cid not in by_id:
            by_id[cid] = {}
            order.append(cid)
        by_id[cid].setdefault(action, ns)
    spans = {"create→start": ("create", "start"), "start→exit": ("start", "die"),
             "exit→commit": ("die", "commit"), "exit→removed": ("die", "destroy"),
             "commit→removed": ("commit", "destroy")}
    out: dict[str, float] = {}
    for label, (a, b) in spans.items():
        values = [(c[b] - c[a]) / 1e6 for c in by_id.values() if a in c and b in c]
        if values:
            out[label] = statistics.mean(values)
    gaps = [(by_id[n]["create"] - by_id[p]["destroy"]) / 1e6
            for p, n in zip(order, order[1:])
            if "destroy" in by_id[p] and "create" in by_id[n]]
    if gaps:
        out["removed→next create"] = statistics.mean(gaps)
    return out


# ---------------------------------------------------------------- the engine


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 600) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.socket_path)
        self.sock = sock


class QueryError(RuntimeError):
    pass


class Engine:
    """A `gantry serve` process on its own socket and state directory."""

    def __init__(self, workdir: Path, name: str, state_dir: Path | None = None,
                 runtime: str = "docker", extra_args: list[str] | None = None) -> None:
        self.runtime = runtime
        self.extra_args = extra_args or []
        self.dir = workdir / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.socket = self.dir / "engine.sock"
        self.state_dir = state_dir or self.dir / "state"
        self.log_path = self.dir / "engine.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._conn: UnixHTTPConnection | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 60) -> float:
        """Starts the engine; returns seconds from spawn to the first answered query."""
        body = json.dumps({"query": "{ version }"}).encode()
        with open(self.log_path, "ab") as logfile:
            t0 = time.perf_counter()
            self.proc = subprocess.Popen(
                [str(GANTRY), "serve", "--socket", str(self.socket),
                 "--state-dir", str(self.state_dir), "--runtime", self.runtime,
                 *self.extra_args],
                stdout=logfile, stderr=logfile, stdin=subprocess.DEVNULL)
        while True:
            try:
                conn = UnixHTTPConnection(str(self.socket), timeout=5)
                conn.request("POST", "/query", body, {"Content-Type": "application/json"})
                response = conn.getresponse()
                payload = response.read()
                conn.close()
                if response.status == 200 and b'"version"' in payload:
                    return time.perf_counter() - t0
            except (FileNotFoundError, ConnectionRefusedError):
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"gantry serve exited {self.proc.returncode}; see {self.log_path}")
            if time.perf_counter() - t0 > timeout:
                raise RuntimeError(f"gantry serve did not answer in {timeout} s; see {self.log_path}")
            time.sleep(0.001)

    def query(self, document: str, variables: dict[str, Any] | None = None) -> Any:
        body = json.dumps({"query": document, "variables": variables or {}}).encode()
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = UnixHTTPConnection(str(self.socket))
            try:
                self._conn.request("POST", "/query", body, {"Content-Type": "application/json"})
                response = self._conn.getresponse()
                payload = response.read()
                break
            except (http.client.HTTPException, ConnectionError, BrokenPipeError):
                self._conn.close()
                self._conn = None
                if attempt == 2:
                    raise
        result = json.loads(payload)
        if response.status != 200 or result.get("errors"):
            raise QueryError(f"HTTP {response.status}: {json.dumps(result.get('errors'))[:2000]}")
        return result["data"]

    def timed_query(self, document: str, variables: dict[str, Any] | None = None) -> float:
        t0 = time.perf_counter()
        self.query(document, variables)
        return time.perf_counter() - t0

    def stop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


PRIVATE_BRIDGE = "gantry-bench0"


class PrivateDockerd:
    """A dockerd of the benchmark's own: its own data root, exec root, socket and
    containerd, no bridge and no iptables rules, and an empty configuration file (the
    host's daemon.json is not read). Pulling into it, and removing what it pulled,
    leaves the shared daemon's images, which other people's tests use, alone."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.socket = root / "docker.sock"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        # A bridge of its own: a dockerd started with --bridge=none deletes the
        # host's docker0, which breaks the machine's own daemon until it restarts.
        subprocess.run(["ip", "link", "add", PRIVATE_BRIDGE, "type", "bridge"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        config = self.root / "daemon.json"
        config.write_text("{}\n")
        with open(self.root / "dockerd.log", "ab") as logfile:
            self.proc = subprocess.Popen(
                ["dockerd", "--config-file", str(config),
                 "--data-root", str(self.root / "data"), "--exec-root", str(self.root / "exec"),
                 "--pidfile", str(self.root / "dockerd.pid"), "--host", f"unix://{self.socket}",
                 f"--bridge={PRIVATE_BRIDGE}", "--iptables=false", "--ip-masq=false",
                 "--ip-forward=false",
                 "--log-level=warn"],
                stdout=logfile, stderr=logfile, stdin=subprocess.DEVNULL)
        t0 = time.perf_counter()
        while subprocess.run(self.docker("version", "--format", "{{.Server.Version}}"),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             check=False).returncode != 0:
            if self.proc.poll() is not None or time.perf_counter() - t0 > timeout:
                raise RuntimeError(f"a private dockerd did not start; see {self.root / 'dockerd.log'}")
            time.sleep(0.2)

    def docker(self, *args: str) -> list[str]:
        return ["docker", "--host", f"unix://{self.socket}", *args]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        shutil.rmtree(self.root, ignore_errors=True)
        subprocess.run(["ip", "link", "delete", PRIVATE_BRIDGE],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)


# ---------------------------------------------------------------- the suite


class Suite:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.quick = args.quick
        self.work = Path(tempfile.mkdtemp(prefix="gantry-bench."))
        self.results: list[dict[str, Any]] = []
        self.engines: list[Engine] = []
        self.docker_tags: list[str] = []
        self.main: Engine | None = None
        self.rss: dict[str, int] = {}
        self.mounts: list[Path] = []
        self.images_before = set(self._gantry_images())
        self.started = time.perf_counter()

    def n(self, full: int, quick: int = 2) -> int:
        return quick if self.quick else full

    # -- bookkeeping

    def record(self, bench: str, name: str, *, gantry: dict[str, Any] | None,
               baseline_name: str | None = None, baseline: dict[str, Any] | None = None,
               ratio: dict[str, Any] | None, ratio_of: str, unit: str = "s",
               target: str | None = None, met: bool | None = None,
               extra: dict[str, Any] | None = None) -> None:
        """Stores one row and prints the benchmark's last line: its ratio."""
        row = {
            "bench": bench, "name": name, "unit": unit,
            "gantry": gantry, "baseline_name": baseline_name, "baseline": baseline,
            "ratio": ratio, "ratio_of": ratio_of, "target": target, "met": met,
            **(extra or {}),
        }
        self.results.append(row)
        verdict = "" if target is None else f"  target {target}: {verdict_word(met)}"
        if ratio is None:
            log(f"ratio: not measurable{verdict}")
        else:
            log(f"ratio: {fmt_x(ratio)}  [{ratio_of}]{verdict}")
        log()

    def engine(self, name: str, state_dir: Path | None = None, runtime: str = "docker",
               extra_args: list[str] | None = None) -> Engine:
        engine = Engine(self.work, name, state_dir, runtime, extra_args)
        self.engines.append(engine)
        return engine

    def docker_run(self, *cmd: str) -> float:
        return timed(["docker", "run", "--rm", BUSYBOX, *cmd])

    def _gantry_images(self) -> list[str]:
        out = run(["docker", "images", "-q", "--no-trunc", "--filter",
                   "label=dev.gantry.managed=true"])
        return out.split()

    def _images_of_our_engines(self) -> set[str]:
        roots = {e.state_dir for e in self.engines} | {self.work / "start-state"}
        return set().union(*(images_in(root) for root in roots))

    def fresh_filesystem(self, name: str) -> tuple[Path, str]:
        """A directory on an ext4 filesystem made for this benchmark (a loop image in the work
        dir), when running as root with mkfs.ext4; else the work dir. How fast a filesystem
        creates files depends on its history: right after tens of thousands of files were
        deleted nearby (the previous run's state directories, a CI checkout), ext4 creates new
        ones several times slower, and a host-directory first load showed 0.7 s one run and
        4.3 s the next for the same commit. A fresh filesystem makes runs comparable."""
        if os.geteuid() != 0 or not shutil.which("mkfs.ext4"):
            return self.work, "the work dir's filesystem (not root: no fresh filesystem)"
        image, mount = self.work / f"{name}.img", self.work / name
        mount.mkdir()
        with open(image, "wb") as f:
            f.truncate(2 << 30)
        made = subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, check=False)
        mounted = made.returncode == 0 and subprocess.run(
            ["mount", "-o", "loop", str(image), str(mount)], stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True, check=False).returncode == 0
        if not mounted:
            image.unlink()
            return self.work, "the work dir's filesystem (a loop mount failed)"
        self.mounts.append(mount)
        return mount, "a fresh 2 GiB ext4 loop image"

    def cleanup(self) -> None:
        for engine in self.engines:
            engine.stop()
        # Remove only the images this run made: those the suite's own state directories
        # point at (and that did not exist before the run), and the docker build
        # baseline's tag. Other engines' images on this shared daemon stay.
        new = [i for i in self._images_of_our_engines() if i not in self.images_before]
        if new:
            # Newest first: an image that is another's parent cannot go before it.
            listed = subprocess.run(
                ["docker", "image", "inspect", "-f", "{{.Created}} {{.Id}}", *new],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, check=False)
            def created(line: str) -> str:  # RFC 3339 with its fraction padded to 9 digits
                stamp = line.split()[0].rstrip("Z")
                whole, _, frac = stamp.partition(".")
                return f"{whole}.{frac.ljust(9, '0')}"

            ordered = [line.split()[-1]
                       for line in sorted((line for line in listed.stdout.splitlines()
                                           if line.strip()), key=created, reverse=True)]
            for _ in range(2):  # a second pass for any parent that went too early
                if not ordered:
                    break
                subprocess.run(["docker", "rmi", "-f", *ordered], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, check=False)
                left = subprocess.run(["docker", "image", "inspect", "-f", "{{.Id}}", *ordered],
                                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                      text=True, check=False)
                ordered = left.stdout.split()
            if ordered:
                log(f"bench: could not remove {len(ordered)} of its images")
        for tag in reversed(self.docker_tags):
            subprocess.run(["docker", "rmi", "-f", tag], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=False)
        for mount in self.mounts:
            subprocess.run(["umount", str(mount)], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=False)
        if os.environ.get("BENCH_KEEP"):
            # The engines' logs and state dirs, to read what a run did.
            log(f"bench: kept {self.work} (BENCH_KEEP)")
        else:
            shutil.rmtree(self.work, ignore_errors=True)

    # -- 1. engine start

    def bench_start(self) -> None:
        log("== 1a. engine start: `gantry serve` spawn to first answered query, vs `docker run --rm` busybox true")
        runs = self.n(7, 2)
        state = self.work / "start-state"

        def serve_once() -> float:
            engine = Engine(self.work, "start", state)
            try:
                return engine.start()
            finally:
                engine.stop()

        xs, ys, ratios = paired(serve_once, lambda: self.docker_run("true"), runs)
        log(f"gantry serve to first answer: {fmt_s(summary(xs))}")
        log(f"docker run --rm busybox true: {fmt_s(summary(ys))}")
        self.record("1a", "engine start: serve to first answered query", gantry=summary(xs),
                    baseline_name="docker run --rm busybox true", baseline=summary(ys),
                    ratio=summary(ratios), ratio_of="gantry / baseline")

        log("== 1b. a whole `gantry run -- true` session, vs `docker run --rm` busybox true")
        env = {k: v for k, v in os.environ.items() if k != "GANTRY_SOCKET"}
        gantry_run = [str(GANTRY), "run", "--state-dir", str(state), "--", "true"]
        xs, ys, ratios = paired(lambda: timed(gantry_run, env=env),
                                lambda: self.docker_run("true"), runs)
        log(f"gantry run -- true:           {fmt_s(summary(xs))}")
        log(f"docker run --rm busybox true: {fmt_s(summary(ys))}")
        r = summary(ratios)
        self.record("1b", "`gantry run -- true` session", gantry=summary(xs),
                    baseline_name="docker run --rm busybox true", baseline=summary(ys),
                    ratio=r, ratio_of="gantry / baseline", target="<= 0.25x",
                    met=r["median"] <= 0.25)

    # -- 2. per-step overhead

    def bench_steps(self) -> None:
        steps = 20
        log(f"== 2. per-step overhead: {steps} sequential withExec steps (one chain, nothing cached) "
            f"vs {steps} `docker run --rm` of the same commands")
        engine = self.main
        assert engine is not None
        runs = self.n(5, 2)

        def chain_doc(marker: str) -> str:
            doc = "{ container { from(address: %s) { " % json.dumps(BUSYBOX)
            for i in range(steps):
                doc += 'withExec(args: ["echo", "%s-%d"]) { ' % (marker, i)
            doc += "stdout" + " }" * steps + " } } }"
            return doc

        def gantry_chain() -> float:
            marker = f"bench-{uuid.uuid4().hex[:12]}"
            t0 = time.perf_counter()
            data = engine.query(chain_doc(marker))
            took = time.perf_counter() - t0
            out = json.dumps(data)
            assert f"{marker}-{steps - 1}" in out, out[:300]
            return took

        def docker_chain() -> float:
            marker = f"bench-{uuid.uuid4().hex[:12]}"
            t0 = time.perf_counter()
            for i in range(steps):
                run(["docker", "run", "--rm", "--label", "dev.gantry.bench=1", BUSYBOX,
                     "echo", f"{marker}-{i}"])
            return time.perf_counter() - t0

        xs, ys, ratios = paired(gantry_chain, docker_chain, runs)
        gx, gy = summary(xs), summary(ys)
        # Where a step's time goes, from the daemon's own event timestamps (one more run
        # of each side).
        breakdown = {}
        sides = (("gantry", gantry_chain, {"name_part": f"-{engine.pid}-"}),
                 ("docker run", docker_chain, {"label": "dev.gantry.bench"}))
        for side, fn, which in sides:
            since = time.time()
            fn()
            breakdown[side] = phases(docker_events(since, time.time(), **which))
            log(f"  {side}, mean per step (daemon events): " + ", ".join(
                f"{k} {v:.0f} ms" for k, v in breakdown[side].items()))
        log(f"gantry, {steps} chained withExec (one query): {fmt_s(gx)} "
            f"= {gx['median'] / steps * 1000:.0f} ms/step")
        log(f"{steps} x docker run --rm:                   {fmt_s(gy)} "
            f"= {gy['median'] / steps * 1000:.0f} ms/step")
        r = summary(ratios)
        self.record("2", f"{steps} sequential withExec steps", gantry=gx,
                    baseline_name=f"{steps} x docker run --rm", baseline=gy, ratio=r,
                    ratio_of="gantry / baseline", target="<= 0.8x", met=r["median"] <= 0.8,
                    extra={"ms_per_step": gx["median"] / steps * 1000,
                           "baseline_ms_per_step": gy["median"] / steps * 1000,
                           "phases_ms": breakdown})

    # -- 3. seed pipeline, cached and with one file touched

    def bench_seed(self) -> None:
        log("== 3a. fully cached re-run of the seed pipeline (go test + go build) through "
            "`gantry query` (two round trips: load the source, run the pipeline), vs a "
            "cached `DOCKER_BUILDKIT=0 docker build` re-run")
        src = self.work / "seed-src"
        shutil.copytree(BENCH / "seed/app", src)
        shutil.copy(BENCH / "seed/Dockerfile", src / "Dockerfile")
        engine = self.engine("seed")
        engine.start()
        self.seed_engine = engine
        tag = f"gantry-bench-seed:{uuid.uuid4().hex[:8]}"
        self.docker_tags.append(tag)
        env = dict(os.environ, GANTRY_SOCKET=str(engine.socket), GANTRY_BIN=str(GANTRY))
        gantry_cmd = ["bash", str(BENCH / "seed/rerun.sh"), str(src), GOLANG]
        docker_env = dict(os.environ, DOCKER_BUILDKIT="0")
        docker_cmd = ["docker", "build", "-q", "--build-arg", f"GOLANG={GOLANG}", "-t", tag, str(src)]

        def docker_build() -> float:
            t0 = time.perf_counter()
            image = run(docker_cmd, env=docker_env).strip()
            took = time.perf_counter() - t0
            if image not in self.docker_tags:
                self.docker_tags.append(image)  # removed at the end, newest first
            return took

        cold_g = timed(gantry_cmd, env=env)
        cold_d = docker_build()
        out = run(gantry_cmd, env=env)
        assert '"size"' in out and "ok" in out, out
        log(f"first (uncached) run: gantry {cold_g:.2f} s, docker build {cold_d:.2f} s")
        runs = self.n(7, 2)
        xs, ys, ratios = paired(lambda: timed(gantry_cmd, env=env),
                                docker_build, runs)
        log(f"gantry (2 x gantry query, cached): {fmt_s(summary(xs))}")
        log(f"docker build (legacy, cached):     {fmt_s(summary(ys))}")
        # The same two round trips from inside this process: the engine's own share.
        source_doc = (BENCH / "seed/source.graphql").read_text()
        pipeline_doc = (BENCH / "seed/pipeline.graphql").read_text()

        def in_engine() -> float:
            t0 = time.perf_counter()
            sid = engine.query(source_doc, {"path": str(src)})["host"]["directory"]["id"]
            engine.query(pipeline_doc, {"golang": GOLANG, "src": sid})
            return time.perf_counter() - t0

        inner = summary([in_engine() for _ in range(self.n(15, 3))])
        log(f"  the same two queries from a client already connected: {fmt_s(inner)}")
        # `gantry query` follows the engine's event stream to show progress; this is
        # the same re-run with that turned off.
        quiet_env = dict(env, GANTRY_PROGRESS="quiet")
        quiet = summary([timed(gantry_cmd, env=quiet_env) for _ in range(runs)])
        log(f"  the same re-run with GANTRY_PROGRESS=quiet: {fmt_s(quiet)} "
            f"= {quiet['median'] / summary(ys)['median']:.3f}x the docker build median")
        r = summary(ratios)
        self.record("3a", "fully cached re-run of the seed pipeline", gantry=summary(xs),
                    baseline_name="DOCKER_BUILDKIT=0 docker build (all cached)",
                    baseline=summary(ys), ratio=r, ratio_of="gantry / baseline",
                    target="<= 0.1x", met=r["median"] <= 0.1,
                    extra={"first_run_s": {"gantry": cold_g, "baseline": cold_d},
                           "in_engine": inner, "progress_quiet": quiet})

        log("== 3b. the same after changing one source file (test and build run again)")
        touched = src / "greet/greet.go"
        original = touched.read_text()

        def touch() -> None:
            touched.write_text(original + f"\n// touched {uuid.uuid4().hex}\n")

        xs, ys, ratios = [], [], []
        for _ in range(self.n(3, 1)):
            touch()
            x = timed(gantry_cmd, env=env)
            y = docker_build()
            xs.append(x)
            ys.append(y)
            ratios.append(x / y)
        log(f"gantry (2 x gantry query):     {fmt_s(summary(xs))}")
        log(f"docker build (legacy):         {fmt_s(summary(ys))}")
        self.record("3b", "seed pipeline after one source file changed", gantry=summary(xs),
                    baseline_name="DOCKER_BUILDKIT=0 docker build", baseline=summary(ys),
                    ratio=summary(ratios), ratio_of="gantry / baseline")

    # -- 4. parallel branches

    def bench_parallel(self) -> None:
        branches = 8
        log(f"== 4. {branches} independent `sleep 1` branches in one query: wall time vs the ideal 1 s "
            f"(and vs {branches} parallel `docker run`)")
        engine = self.main
        assert engine is not None

        def doc(marker: str) -> str:
            parts = [
                'b%d: container { from(address: %s) { withExec(args: ["sh", "-c", "sleep 1; echo %s-%d"]) { stdout } } }'
                % (i, json.dumps(BUSYBOX), marker, i)
                for i in range(branches)
            ]
            return "{ " + " ".join(parts) + " }"

        xs = []
        since = time.time()
        with RssSampler(engine.pid) as sampler:
            for _ in range(self.n(5, 2)):
                xs.append(engine.timed_query(doc(f"par-{uuid.uuid4().hex[:12]}")))
        self.rss["peak_parallel"] = sampler.peak
        spread = phases(docker_events(since, time.time(), name_part=f"-{engine.pid}-"))
        spread.pop("removed→next create", None)

        def docker_parallel() -> float:
            t0 = time.perf_counter()
            procs = [subprocess.Popen(["docker", "run", "--rm", BUSYBOX, "sleep", "1"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                     for _ in range(branches)]
            codes = [p.wait() for p in procs]
            assert not any(codes), codes
            return time.perf_counter() - t0

        ys = [docker_parallel() for _ in range(self.n(3, 1))]
        g = summary(xs)
        log(f"gantry, one query with {branches} branches: {fmt_s(g)}")
        log(f"{branches} x docker run in parallel:        {fmt_s(summary(ys))}")
        log(f"engine peak RSS during these queries: {sampler.peak / MB:.1f} MB")
        log("  gantry, mean per container (daemon events): " + ", ".join(
            f"{k} {v:.0f} ms" for k, v in spread.items()))
        r = summary([x / 1.0 for x in xs])
        self.record("4", f"{branches} parallel `sleep 1` branches", gantry=g,
                    baseline_name=f"{branches} x docker run --rm sleep 1 in parallel (reference)",
                    baseline=summary(ys), ratio=r, ratio_of="gantry wall / ideal 1 s",
                    target="<= 1.3 s", met=g["median"] <= 1.3,
                    extra={"phases_ms": {"gantry": spread}})

    # -- 5. host directory

    def make_tree(self, root: Path, files: int = 10_000) -> list[Path]:
        """A node_modules-like tree: packages with package.json, lib/*.js, a README."""
        rng = random.Random(11)
        made: list[Path] = []
        pkg = 0
        while len(made) < files:
            base = root / "node_modules" / f"pkg-{pkg:04d}"
            if pkg % 7 == 0:  # scoped packages and nested node_modules, as npm makes them
                base = root / "node_modules" / f"@scope{pkg % 5}" / f"pkg-{pkg:04d}"
            (base / "lib").mkdir(parents=True, exist_ok=True)
            (base / "package.json").write_text(json.dumps(
                {"name": f"pkg-{pkg}", "version": f"1.{pkg % 10}.0", "main": "lib/index.js"}))
            (base / "README.md").write_text(f"# pkg-{pkg}\n" + "docs " * rng.randint(20, 400))
            made += [base / "package.json", base / "README.md"]
            for i in range(min(16, files - len(made))):
                path = base / "lib" / f"m{i}.js"
                path.write_text(f"module.exports = {i};\n" + "//" + "x" * rng.randint(50, 4000) + "\n")
                made.append(path)
            pkg += 1
        return made[:files]

    def bench_host_dir(self) -> None:
        log("== 5. host directory of 10,000 files (node_modules-like): first load, unchanged "
            "reload, one-file-changed reload (one running engine), and reload by a restarted engine")
        base, filesystem = self.fresh_filesystem("host-fs")
        tree = base / "tree"
        files = self.make_tree(tree)
        total = tree_bytes(tree)
        log(f"tree: {len(files)} files, {total / MB:.1f} MB, on {filesystem}")
        doc = "query($p: String!) { host { directory(path: $p) { digest } } }"
        v = {"p": str(tree)}
        first, same, changed, restart, tar = [], [], [], [], []
        digests = set()
        for rep in range(self.n(5, 2)):
            state = base / f"host-state-{rep}"
            engine = self.engine(f"host-{rep}", state)
            engine.start()
            # Start each first load from clean page-cache state: no dirty pages left by
            # the previous repetition's thousands of new files. (State directories are
            # removed only at the end: deleting 10,000 files just before creating 10,000
            # more slowed the next load 2-3x on ext4.)
            os.sync()
            t0 = time.perf_counter()
            d1 = engine.query(doc, v)["host"]["directory"]["digest"]
            first.append(time.perf_counter() - t0)
            # Each reload below also starts with no dirty pages left by the
            # step before (the first load's 20 MB of new blobs were still
            # being written back and took CPU from the reload on 2 cores).
            os.sync()
            t0 = time.perf_counter()
            d2 = engine.query(doc, v)["host"]["directory"]["digest"]
            same.append(time.perf_counter() - t0)
            assert d1 == d2, (d1, d2)
            target = files[rep * 997 % len(files)]
            target.write_text(target.read_text() + f"// changed {rep}\n")
            os.sync()
            t0 = time.perf_counter()
            d3 = engine.query(doc, v)["host"]["directory"]["digest"]
            changed.append(time.perf_counter() - t0)
            assert d3 != d2, "a changed file must change the digest"
            digests.add(d3)
            engine.stop()
            engine.start()
            os.sync()
            t0 = time.perf_counter()
            d4 = engine.query(doc, v)["host"]["directory"]["digest"]
            restart.append(time.perf_counter() - t0)
            assert d4 == d3, (d3, d4)
            engine.stop()
            tar.append(timed(["sh", "-c", f"tar -C {tree} -cf - . | sha256sum"]))
        f, s, c, rs = summary(first), summary(same), summary(changed), summary(restart)
        log(f"first load (fresh state):          {fmt_s(f)}")
        log(f"unchanged reload (same engine):     {fmt_s(s)}")
        log(f"one file changed (same engine):     {fmt_s(c)}")
        log(f"unchanged reload (restarted engine): {fmt_s(rs)}")
        log(f"reference: tar | sha256sum of the tree: {fmt_s(summary(tar))}")
        ratio = summary([a / b for a, b in zip(same, first)])
        first_ratio = summary([a / b for a, b in zip(first, tar)])
        changed_ratio = summary([a / b for a, b in zip(changed, first)])
        self.record("5a", "host directory, first load (10,000 files)", gantry=f,
                    baseline_name="tar -cf - | sha256sum (reads every byte once)",
                    baseline=summary(tar), ratio=first_ratio, ratio_of="gantry / baseline",
                    target="<= 2x", met=first_ratio["median"] <= 2, extra={"filesystem": filesystem})
        self.record("5b", "host directory, unchanged reload", gantry=s,
                    baseline_name="first load (5a)", baseline=f, ratio=ratio,
                    ratio_of="reload / first load", target="<= 0.05x",
                    met=ratio["median"] <= 0.05)
        self.record("5c", "host directory, one file changed", gantry=c,
                    baseline_name="first load (5a)", baseline=f, ratio=changed_ratio,
                    ratio_of="reload / first load", target="<= 0.1x",
                    met=changed_ratio["median"] <= 0.1)
        self.record("5d", "host directory, unchanged, restarted engine", gantry=rs,
                    baseline_name="first load (5a)", baseline=f,
                    ratio=summary([a / b for a, b in zip(restart, first)]),
                    ratio_of="reload / first load")

    # -- 6. throughput

    def loadgen(self, *args: str) -> dict[str, Any]:
        duration = "2s" if self.quick else "6s"
        out = run([str(LOADGEN), "-c", "8", "-duration", duration, "-max", "200000", *args],
                  env=dict(os.environ, GOMAXPROCS="1"), timeout=120)
        return json.loads(out.strip().splitlines()[-1])

    def bench_throughput(self) -> None:
        log("== 6. query throughput of cached, pure API work (8 keep-alive connections on the "
            "Unix socket, bounded to 200,000 requests and a few seconds), vs the Docker "
            "daemon's own API answering an image inspect on its socket")
        engine = self.main
        assert engine is not None
        bodies = {
            "6a": ("build an ID: container.from.withEnvVariable.id",
                   "{ container { from(address: %s) { withEnvVariable(name: \"BENCH\", value: \"1\") { id } } } }"
                   % json.dumps(BUSYBOX)),
            "6b": ("read a cached result: container.from.withExec.stdout",
                   "{ container { from(address: %s) { withExec(args: [\"echo\", \"cached\"]) { stdout } } } }"
                   % json.dumps(BUSYBOX)),
        }
        image = BUSYBOX
        baseline = self.loadgen("-socket", DOCKER_SOCKET, "-method", "GET",
                                "-path", f"/v1.41/images/{image}/json")
        log(f"docker API image inspect: {baseline['qps']:.0f} q/s, p99 {baseline['p99_ms']:.2f} ms")
        peak = 0
        for key, (name, doc) in bodies.items():
            engine.query(doc)  # warm: pin the image, run the exec once
            path = self.work / f"body-{key}.json"
            path.write_text(json.dumps({"query": doc}))
            with RssSampler(engine.pid) as sampler:
                res = self.loadgen("-socket", str(engine.socket), "-body", str(path))
            peak = max(peak, sampler.peak)
            log(f"{name}: {res['requests']} requests in {res['seconds']:.1f} s = "
                f"{res['qps']:.0f} q/s; p50 {res['p50_ms']:.2f} ms, p99 {res['p99_ms']:.2f} ms, "
                f"max {res['max_ms']:.1f} ms; errors {res['errors']}")
            if res["errors"]:
                log(f"  first error: {res.get('first_error')}")
            log(f"engine peak RSS during the load: {sampler.peak / MB:.1f} MB")
            met = res["qps"] >= 5000 and res["p99_ms"] < 10
            one = single(res["qps"])
            base = single(baseline["qps"])
            r = res["qps"] / baseline["qps"]
            self.record(key, f"throughput: {name}", gantry=one, unit="q/s",
                        baseline_name="Docker API GET /images/{name}/json (same load generator)",
                        baseline=base, ratio=single(r),
                        ratio_of="gantry q/s / baseline q/s",
                        target=">= 5,000 q/s and p99 < 10 ms", met=met,
                        extra={"p50_ms": res["p50_ms"], "p99_ms": res["p99_ms"],
                               "max_ms": res["max_ms"], "errors": res["errors"],
                               "baseline_p99_ms": baseline["p99_ms"]})
        self.rss["peak_throughput"] = peak

    # -- 7. memory

    def bench_memory(self) -> None:
        log("== 7. engine memory (VmRSS of `gantry serve`), vs the Docker daemon's")
        engine = self.main
        assert engine is not None
        status = proc_status(engine.pid)
        self.rss["after_suite"] = status.get("VmRSS", 0)
        self.rss["hwm"] = status.get("VmHWM", 0)
        dockerd = 0
        pids = subprocess.run(["pidof", "dockerd"], stdout=subprocess.PIPE, text=True,
                              check=False).stdout.split()
        if pids:
            dockerd = proc_status(int(pids[0])).get("VmRSS", 0)
        rows = [
            ("7a", "engine RSS idle (started, one query answered)", "idle", True),
            ("7b", "engine peak RSS during 4 (parallel)", "peak_parallel", False),
            ("7c", "engine peak RSS during 6 (throughput)", "peak_throughput", False),
            ("7d", "engine RSS after the whole suite", "after_suite", True),
        ]
        log(f"dockerd RSS now: {dockerd / MB:.1f} MB; engine high-water mark (VmHWM): "
            f"{self.rss['hwm'] / MB:.1f} MB")
        for key, name, field, targeted in rows:
            value = self.rss.get(field, 0) / MB
            log(f"{name}: {value:.1f} MB")
            one = single(value)
            base = single(dockerd / MB)
            r = value / (dockerd / MB) if dockerd else None
            self.record(key, name, gantry=one, unit="MB", baseline_name="dockerd RSS (now)",
                        baseline=base,
                        ratio=None if r is None else single(r),
                        ratio_of="gantry / dockerd", target="<= 30 MB" if targeted else None,
                        met=(value <= 30) if targeted else None)

    # -- 8. cache size

    def bench_cache_size(self) -> None:
        log("== 8. cache size after the seed pipeline (3a + 3b): bytes in the state "
            "directory, vs the images' own size")
        engine = self.seed_engine
        state = tree_bytes(engine.state_dir)
        golang = int(run(["docker", "image", "inspect", "-f", "{{.Size}}", GOLANG]).strip())
        # Images gantry committed for this state directory (exec results): their size
        # beyond the golang image they start from.
        ours = sorted(images_in(engine.state_dir))
        base = layers(GOLANG)
        added = layer_bytes(ours, base)
        built = [t for t in self.docker_tags if t.startswith("sha256:")]
        docker_added = layer_bytes(built, base)
        log(f"state directory: {state / MB:.2f} MB; golang image: {golang / MB:.1f} MB")
        log(f"in Docker: the {len(ours)} images gantry committed add {added / MB:.1f} MB of layers "
            f"to the golang image; the {len(built)} docker build results add {docker_added / MB:.1f} MB")
        r = state / golang
        self.record("8", "cache size: state directory after the seed pipeline",
                    gantry=single(state / MB),
                    unit="MB", baseline_name="golang fixture image size",
                    baseline=single(golang / MB),
                    ratio=single(r),
                    ratio_of="state dir / image size",
                    extra={"docker_images_committed": len(ours),
                           "docker_layers_added_mb": added / MB,
                           "docker_build_layers_added_mb": docker_added / MB})

    # -- 9. Python SDK

    def bench_python_sdk(self) -> None:
        log("== 9. Python SDK: a script that runs one cached step, whole process, vs "
            "`docker run --rm` of the same command")
        sdk = ROOT / "sdk-python"
        reason = None
        venv = ROOT / "target/bench/venv"
        if not (sdk / "pyproject.toml").exists():
            reason = "sdk-python/ does not exist yet"
        else:
            try:
                if not (venv / "bin/python").exists():
                    run([sys.executable, "-m", "venv", str(venv)])
                run([str(venv / "bin/pip"), "install", "-q", "--disable-pip-version-check",
                     str(sdk)], timeout=300)
                run([str(venv / "bin/python"), "-c", "import gantry"])
            except Exception as error:  # noqa: BLE001 - reported, not fatal
                reason = f"`pip install ./sdk-python` failed: {str(error)[:300]}"
        if reason:
            log(f"not yet measurable: {reason}")
            self.record("9", "Python SDK: one cached step, whole process", gantry=None,
                        ratio=None, ratio_of="gantry / baseline", target="<= 0.3 s",
                        met=None, extra={"not_measurable": reason})
            return
        engine = self.main
        assert engine is not None
        env = {k: v for k, v in os.environ.items()
               if k not in ("GANTRY_SESSION_PORT", "GANTRY_SESSION_TOKEN")}
        env.update(GANTRY_SOCKET=str(engine.socket), BENCH_IMAGE=BUSYBOX)
        script = [str(venv / "bin/python"), str(BENCH / "sdk/one_step.py")]
        out = run(script, env=env)
        assert "cached step" in out, out
        runs = self.n(7, 2)
        xs, ys, ratios = paired(lambda: timed(script, env=env),
                                lambda: self.docker_run("echo", "cached step"), runs)
        imp = summary([timed([str(venv / "bin/python"), "-c", "import gantry"]) for _ in range(5)])
        bare = summary([timed([str(venv / "bin/python"), "-c", "pass"]) for _ in range(5)])
        g = summary(xs)
        log(f"python one_step.py (cached):  {fmt_s(g)}")
        log(f"docker run --rm busybox echo: {fmt_s(summary(ys))}")
        log(f"  of which: python startup {bare['median']:.3f} s, + import gantry "
            f"{imp['median'] - bare['median']:.3f} s")
        self.record("9", "Python SDK: one cached step, whole process", gantry=g,
                    baseline_name="docker run --rm busybox echo", baseline=summary(ys),
                    ratio=summary(ratios), ratio_of="gantry / baseline", target="<= 0.3 s",
                    met=g["median"] <= 0.3,
                    extra={"python_startup_s": bare["median"], "import_s": imp["median"]})


    # -- 10/11. modules: `gantry call` and `gantry functions`, per SDK

    def _prepare_module(self, sdk: str, module: Path, venv: Path) -> tuple[list[str], dict[str, str]]:
        """Installs what the bench module needs; returns the comparison script and env."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("GANTRY_SESSION_", "DAGGER_SESSION_")) and k != "GANTRY_SOCKET"}
        env.update(BENCH_IMAGE=BUSYBOX, GANTRY_STATE_DIR=str(self.work / "call-state"),
                   GANTRY_PROGRESS="quiet", PATH=f"{env.get('PATH', '')}:/usr/local/go/bin")
        if sdk == "python":
            if not (venv / "bin/python").exists():
                run([sys.executable, "-m", "venv", str(venv)])
                run([str(venv / "bin/pip"), "install", "-q", "--disable-pip-version-check",
                     str(ROOT / "sdk-python")], timeout=300)
            env["GANTRY_PYTHON"] = str(venv / "bin/python")
            return [str(venv / "bin/python"), "main.py"], env
        if sdk == "typescript":
            sdk_dir = ROOT / "sdk-typescript"
            if not (sdk_dir / "dist/index.js").exists():
                run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=sdk_dir, timeout=600)
                run(["npx", "tsc", "-p", "tsconfig.json"], cwd=sdk_dir, timeout=600)
            example = ROOT / "examples/modules/typescript"
            if not (example / "node_modules/typescript").exists():
                run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=example, timeout=600)
            link = example / "node_modules/@gantry/sdk"
            if not link.is_symlink():
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(os.path.relpath(sdk_dir, link.parent))
            modules = module / "node_modules"
            if not modules.is_symlink():
                modules.symlink_to(os.path.relpath(example / "node_modules", module))
            return ["node", "script.mjs"], env
        if sdk == "go":
            binary = self.work / "go-step-script"
            run(["go", "build", "-o", str(binary), "./script"], cwd=module, env=env, timeout=600)
            return [str(binary)], env
        if not (module / "vendor/autoload.php").exists():
            run(["composer", "update", "--no-interaction", "-q"], cwd=module,
                env=dict(env, COMPOSER_DISABLE_NETWORK="1"), timeout=300)
        return ["php", "script.php"], env

    def bench_modules(self) -> None:
        targets = {"python": 0.3, "typescript": 0.4, "go": 0.3, "php": 0.3}
        for letter, (sdk, target) in zip("abcd", targets.items()):
            module = BENCH / "modules" / sdk
            log(f"== 10{letter}. {sdk}: warm `gantry call step` (one cached step, whole process), "
                f"vs `gantry run -- SCRIPT` doing the same work")
            try:
                script, env = self._prepare_module(sdk, module, ROOT / "target/bench/venv")
                call = [str(GANTRY), "call", "-m", str(module), "step"]
                # The first call describes the module (and builds the Go dispatcher) and
                # runs the step; every call after it is warm.
                out = run(call, env=env, cwd=module, timeout=600)
                assert "cached step" in out, out
                session = [str(GANTRY), "run", "--", *script]
                out = run(session, env=env, cwd=module, timeout=600)
                assert "cached step" in out, out
            except Exception as error:  # noqa: BLE001 - reported, not fatal
                reason = f"setup failed: {str(error)[:300]}"
                log(f"not measurable: {reason}")
                for key, name in ((f"10{letter}", "warm `gantry call`"), (f"11{letter}", "warm `gantry functions`")):
                    self.record(key, f"{sdk} module: {name}", gantry=None, ratio=None,
                                ratio_of="gantry call / gantry run", met=None,
                                extra={"not_measurable": reason})
                continue
            runs = self.n(9, 2)
            xs, ys, ratios = paired(lambda: timed(call, env=env, cwd=module),
                                    lambda: timed(session, env=env, cwd=module), runs)
            g = summary(xs)
            log(f"gantry call step:           {fmt_s(g)}")
            log(f"gantry run -- {' '.join(Path(a).name for a in script)}: {fmt_s(summary(ys))}")
            self.record(f"10{letter}", f"{sdk} module: warm `gantry call` of a cached step, whole process",
                        gantry=g, baseline_name=f"gantry run -- {' '.join(Path(a).name for a in script)}",
                        baseline=summary(ys), ratio=summary(ratios),
                        ratio_of="gantry call / gantry run", target=f"<= {target} s",
                        met=g["median"] <= target)
            log(f"== 11{letter}. {sdk}: warm `gantry functions` (description from the cache)")
            listing = [str(GANTRY), "functions", "-m", str(module)]
            fs = summary([timed(listing, env=env, cwd=module) for _ in range(self.n(9, 2))])
            log(f"gantry functions: {fmt_s(fs)}")
            self.record(f"11{letter}", f"{sdk} module: warm `gantry functions`", gantry=fs,
                        ratio=None, ratio_of="", target="<= 0.2 s", met=fs["median"] <= 0.2)

    # -- 12. the native runtime (crun/runc on overlayfs snapshots) beside Docker

    def native_timings(self, engine: Engine) -> list[dict[str, Any]]:
        """The per-step phase timings the native runtime records in its run directory."""
        rows: list[dict[str, Any]] = []
        for run_dir in Path(NATIVE_RUN_ROOT, "engines").glob(f"{engine.pid}-*"):
            try:
                text = (run_dir / "timings").read_text()
            except OSError:
                continue
            rows += [json.loads(line) for line in text.splitlines() if line.strip()]
        return rows

    def bench_native(self) -> None:
        log("== 12. the native runtime (--runtime=native: crun/runc on overlayfs snapshots, no daemon) "
            "beside the Docker runtime and `docker run`")
        engine = self.engine("native", runtime="native")
        try:
            engine.start()
        except RuntimeError as error:
            log(f"native runtime unavailable: {error}")
            self.record("12", "native runtime", gantry=None, ratio=None, ratio_of="-")
            return
        docker_engine = self.main
        assert docker_engine is not None
        steps, branches = 20, 8

        def chain_doc(marker: str) -> str:
            doc = "{ container { from(address: %s) { " % json.dumps(BUSYBOX)
            for i in range(steps):
                doc += 'withExec(args: ["echo", "%s-%d"]) { ' % (marker, i)
            return doc + "stdout" + " }" * steps + " } } }"

        def chain_on(target: Engine) -> Callable[[], float]:
            def go() -> float:
                marker = f"bench-{uuid.uuid4().hex[:12]}"
                t0 = time.perf_counter()
                out = json.dumps(target.query(chain_doc(marker)))
                took = time.perf_counter() - t0
                assert f"{marker}-{steps - 1}" in out, out[:300]
                return took
            return go

        def docker_chain() -> float:
            marker = f"bench-{uuid.uuid4().hex[:12]}"
            t0 = time.perf_counter()
            for i in range(steps):
                run(["docker", "run", "--rm", BUSYBOX, "echo", f"{marker}-{i}"])
            return time.perf_counter() - t0

        chain_on(engine)()  # warm: the image is pulled once per engine
        before = len(self.native_timings(engine))
        runs = self.n(5, 2)
        xs, ys, ratios = paired(chain_on(engine), docker_chain, runs)
        timings = self.native_timings(engine)[before:]
        phase_keys = ["prepare_ms", "network_ms", "spec_ms", "start_ms", "wait_ms", "teardown_ms",
                      "commit_ms", "total_ms"]
        phases_ms = {k: statistics.mean(t[k] for t in timings if t.get(k) is not None)
                     for k in phase_keys if any(t.get(k) is not None for t in timings)}
        xd = [chain_on(docker_engine)() for _ in range(self.n(3, 1))]
        gx, gy, gd = summary(xs), summary(ys), summary(xd)
        log(f"native, {steps} chained withExec (one query): {fmt_s(gx)} = {gx['median'] / steps * 1000:.0f} ms/step")
        log(f"docker runtime, the same query:             {fmt_s(gd)} = {gd['median'] / steps * 1000:.0f} ms/step")
        log(f"{steps} x docker run --rm:                      {fmt_s(gy)} = {gy['median'] / steps * 1000:.0f} ms/step")
        if phases_ms:
            log("  native, mean per step (engine's own timings): " + ", ".join(
                f"{k.removesuffix('_ms')} {v:.1f} ms" for k, v in phases_ms.items()))
        r = summary(ratios)
        self.record("12a", f"native: {steps} sequential withExec steps", gantry=gx,
                    baseline_name=f"{steps} x docker run --rm", baseline=gy, ratio=r,
                    ratio_of="native / baseline", target="<= 0.25x", met=r["median"] <= 0.25,
                    extra={"ms_per_step": gx["median"] / steps * 1000, "native_phases_ms": phases_ms,
                           "docker_runtime_same_query": gd})

        def par_doc(marker: str) -> str:
            parts = [
                'b%d: container { from(address: %s) { withExec(args: ["sh", "-c", "sleep 1; echo %s-%d"]) { stdout } } }'
                % (i, json.dumps(BUSYBOX), marker, i)
                for i in range(branches)
            ]
            return "{ " + " ".join(parts) + " }"

        with RssSampler(engine.pid) as sampler:
            par = [engine.timed_query(par_doc(f"par-{uuid.uuid4().hex[:12]}")) for _ in range(self.n(5, 2))]
        g = summary(par)
        log(f"native, one query with {branches} `sleep 1` branches: {fmt_s(g)} (peak RSS {sampler.peak / MB:.1f} MB)")
        self.record("12b", f"native: {branches} parallel `sleep 1` branches", gantry=g, ratio=summary(par),
                    ratio_of="wall / ideal 1 s", target="<= 1.2 s", met=g["median"] <= 1.2)

        # First uncached exec after a restart, the image already pulled (same state).
        firsts, owns = [], []
        for _ in range(self.n(5, 2)):
            engine.stop()
            engine.start()
            marker = uuid.uuid4().hex[:12]
            doc = ('{ container { from(address: %s) { withExec(args: ["sh", "-c", "echo %s"]) { stdout } } } }'
                   % (json.dumps(BUSYBOX), marker))
            firsts.append(engine.timed_query(doc))
            owns.append(timed(["docker", "run", "--rm", BUSYBOX, "true"]))
        f = summary(firsts)
        log(f"native, first uncached exec after engine start: {fmt_s(f)} (command's own time ~0)")
        self.record("12c", "native: first uncached exec after engine start (image pulled)", gantry=f,
                    baseline_name="docker run --rm busybox true", baseline=summary(owns),
                    ratio=summary([a / b for a, b in zip(firsts, owns)]), ratio_of="native / baseline",
                    target="<= 0.1 s over the command", met=f["median"] <= 0.1)
        engine.query("{ version }")
        time.sleep(0.5)
        status = proc_status(engine.pid)
        idle = status.get("VmRSS", 0)
        # Most of an idle engine's RSS is the binary's own code pages (file-backed, shared
        # with every other gantry process), not heap: say which.
        log(f"native engine idle RSS: {idle / MB:.1f} MB (anonymous {status.get('RssAnon', 0) / MB:.1f} MB, "
            f"file-backed {status.get('RssFile', 0) / MB:.1f} MB)")
        docker_idle = self.rss.get("idle", 0)
        self.record("12d", "native: engine idle RSS", gantry=single(idle / MB),
                    baseline_name="the Docker-runtime engine's idle RSS (7a)" if docker_idle else None,
                    baseline=single(docker_idle / MB) if docker_idle else None,
                    ratio=single(idle / docker_idle) if docker_idle else None, ratio_of="native / Docker runtime",
                    unit="MB", target="<= 20 MB", met=idle / MB <= 20,
                    extra={"rss_anon_mb": status.get("RssAnon", 0) / MB, "rss_file_mb": status.get("RssFile", 0) / MB})

        # Pull + unpack of the Go fixture vs `docker pull` of it. Docker skips layers it
        # has, so its side pulls into a private daemon of the benchmark's own, removing
        # the image before each pull (the shared daemon's copy, which others use, stays).
        golang = f"{FIXTURES}/golang:latest"
        pulls, docker_pulls = [], []
        private = PrivateDockerd(self.work / "dockerd")
        try:
            private.start()
        except RuntimeError as error:
            log(f"  docker pull baseline unavailable: {error}")
            private.stop()
            private = None
        try:
            for rep in range(self.n(3, 1)):
                fresh = self.engine(f"native-pull-{rep}", runtime="native")
                fresh.start()
                doc = '{ container { from(address: %s) { id } } }' % json.dumps(golang)
                fresh.query(doc)  # `id` pulls nothing: the pull is lazy
                t0 = time.perf_counter()
                # Reading a file needs the layers (the image's config alone needs none:
                # a pull resolves the manifest and config and fetches layers on first use).
                fresh.query('{ container { from(address: %s) { file(path: "/bin/busybox") '
                            '{ size } } } }' % json.dumps(golang))
                pulls.append(time.perf_counter() - t0)
                fresh.stop()
                shutil.rmtree(fresh.state_dir, ignore_errors=True)
                if private is not None:
                    subprocess.run(private.docker("image", "rm", "--force", golang),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
                    docker_pulls.append(timed(private.docker("pull", "-q", golang)))
        finally:
            if private is not None:
                private.stop()
        p = summary(pulls)
        log(f"native pull + unpack of {golang}: {fmt_s(p)}")
        if docker_pulls:
            d = summary(docker_pulls)
            log(f"docker pull of it:                {fmt_s(d)}")
            r = summary([a / b for a, b in zip(pulls, docker_pulls)])
            self.record("12e", "native: pull + unpack of the Go fixture image", gantry=p,
                        baseline_name="docker pull", baseline=d, ratio=r, ratio_of="native / baseline",
                        target="<= 1.0x", met=r["median"] <= 1.0)
        else:
            self.record("12e", "native: pull + unpack of the Go fixture image", gantry=p,
                        ratio=None, ratio_of="-")
        engine.stop()

    def bench_remote_cache(self) -> None:
        runtimes = ["docker"]
        probe = self.engine("cache-probe", runtime="native")
        try:
            probe.start()
            runtimes.append("native")
        except RuntimeError as error:
            log(f"(13 on the native runtime skipped: {error})")
        probe.stop()
        wanted = set(filter(None, self.args.cache_cases.split(",")))
        for runtime in runtimes:
            for kind in ("registry", "layout"):
                if not wanted or f"{runtime}-{kind}" in wanted:
                    self.bench_remote_cache_on(runtime, kind)

    def bench_remote_cache_on(self, runtime: str, kind: str) -> None:
        where = ("one dockerd: B finds A's layers on the daemon, so it downloads nothing"
                 if runtime == "docker" else
                 "each state directory its own snapshot store: B resolves the base image "
                 "(manifest and config) and downloads only the filesystems its leaves need")
        cache_where = ("on the local registry" if kind == "registry" else
                       "an OCI layout directory, oci-layout:DIR")
        case = runtime if kind == "registry" else f"{runtime}-layout"
        log(f"== 13 ({case}). the seed pipeline on a fresh machine B from machine A's remote "
            f"cache (--cache {cache_where}); {where}")
        src = self.work / f"cache-src-{case}"
        shutil.copytree(BENCH / "seed/app", src)
        source_doc = (BENCH / "seed/source.graphql").read_text()
        pipeline_doc = (BENCH / "seed/pipeline.graphql").read_text()

        def pipeline(engine: Engine) -> float:
            t0 = time.perf_counter()
            sid = engine.query(source_doc, {"path": str(src)})["host"]["directory"]["id"]
            engine.query(pipeline_doc, {"golang": GOLANG, "src": sid})
            return time.perf_counter() - t0

        def stopped(engine: Engine) -> float:
            t0 = time.perf_counter()
            engine.stop()
            return time.perf_counter() - t0

        cold_cache, cold_plain, flushes, plain_stops, cached_b, warm_local, b_bytes = (
            [], [], [], [], [], [], [])
        # The two cold runs of a round take turns going first: on this kind of machine
        # a cold run right after another one was measured slower by about 0.2 s (its
        # `go test` step alone: 1.85 s against 2.05-2.13 s, alternating run by run,
        # with plain `docker` commands too), so a fixed order would charge that to one
        # side. An even number of rounds gives each side the same share of both places.
        for i in range(self.n(4, 1)):
            if kind == "registry":
                repo = f"{REGISTRY}/gantry-bench-{uuid.uuid4().hex[:12]}/cache"
            else:
                repo = f"oci-layout:{self.work / f'cache-layout-{case}-{i}'}"
            cache = ["--cache", repo]

            def cold_plain_run() -> None:
                # A fresh source marker before each cold run: every one is cold.
                (src / "bench_marker.txt").write_text(uuid.uuid4().hex)
                plain = self.engine(f"cache-plain-{case}-{i}", runtime=runtime)
                plain.start()
                # No dirty pages left by the run before (as in benchmark 10).
                os.sync()
                cold_plain.append(pipeline(plain))
                # Each cold run's engine stop is counted: A's flushes the remote
                # cache, and both remove the step network and wait for their tasks.
                plain_stops.append(stopped(plain))

            a_marker = uuid.uuid4().hex

            def cold_cache_run() -> Engine:
                (src / "bench_marker.txt").write_text(a_marker)
                a = self.engine(f"cache-a-{case}-{i}", runtime=runtime, extra_args=cache)
                a.start()
                os.sync()
                cold_cache.append(pipeline(a))
                flushes.append(stopped(a))
                return a

            if i % 2 == 0:
                cold_plain_run()
                a = cold_cache_run()
            else:
                a = cold_cache_run()
                cold_plain_run()
            # B and the warm run load A's source: their pipeline is the one A ran.
            (src / "bench_marker.txt").write_text(a_marker)
            b = self.engine(f"cache-b-{case}-{i}", runtime=runtime, extra_args=cache)
            b.start()
            cached_b.append(pipeline(b))
            b.stop()
            b_bytes.append(tree_bytes(b.state_dir))
            # Machine A again, without the remote cache: its local cache, warm on disk.
            warm = self.engine(f"cache-warm-{case}-{i}", state_dir=a.state_dir, runtime=runtime)
            warm.start()
            warm_local.append(pipeline(warm))
            warm.stop()
            if kind == "layout":
                shutil.rmtree(repo.removeprefix("oci-layout:"), ignore_errors=True)
            log(f"round {i + 1}: A cold {cold_cache[-1]:.2f} s (+{flushes[-1]:.2f} s flushing "
                f"at stop), no cache {cold_plain[-1]:.2f} s (+{plain_stops[-1]:.2f} s at stop), B cached {cached_b[-1]:.2f} s, "
                f"A warm local {warm_local[-1]:.2f} s, B's state dir {b_bytes[-1] / MB:.1f} MB")
        vs_cold = summary([b / a for a, b in zip(cold_cache, cached_b)])
        vs_warm = summary([b / w for w, b in zip(warm_local, cached_b)])
        push = summary([(a + f) / (p + s) for a, f, p, s in
                        zip(cold_cache, flushes, cold_plain, plain_stops)])
        self.record(f"13a-{case}", f"remote cache: machine B fully cached vs machine A cold ({case})",
                    gantry=summary(cached_b), baseline_name="machine A, cold",
                    baseline=summary(cold_cache), ratio=vs_cold, ratio_of="B / A cold",
                    target="<= 0.1x", met=vs_cold["median"] <= 0.1,
                    extra={"b_state_dir_bytes": b_bytes})
        self.record(f"13b-{case}", f"remote cache: machine B vs a warm local cache ({case})",
                    gantry=summary(cached_b), baseline_name="machine A again, warm local cache",
                    baseline=summary(warm_local), ratio=vs_warm, ratio_of="B / warm local",
                    target="<= 3x", met=vs_warm["median"] <= 3)
        self.record(f"13c-{case}", f"remote cache: push overhead on a cold run ({case})",
                    gantry=summary([a + f for a, f in zip(cold_cache, flushes)]),
                    baseline_name="the same cold run without --cache",
                    baseline=summary([p + s for p, s in zip(cold_plain, plain_stops)]), ratio=push,
                    ratio_of="with --cache / without, each with its engine's stop (A's flushes)",
                    target="<= 1.1x", met=push["median"] <= 1.1)

    # -- driver

    def run_all(self) -> None:
        only = set(self.args.only.split(",")) if self.args.only else None

        def want(key: str) -> bool:
            return only is None or key in only

        if want("1"):
            self.bench_start()
        self.main = self.engine("main")
        self.main.start()
        self.main.query("{ version }")
        time.sleep(0.5)
        self.rss["idle"] = proc_status(self.main.pid).get("VmRSS", 0)
        log(f"(main engine pid {self.main.pid}: idle RSS {self.rss['idle'] / MB:.1f} MB)")
        log()
        steps = [("2", self.bench_steps), ("3", self.bench_seed), ("4", self.bench_parallel),
                 ("5", self.bench_host_dir), ("6", self.bench_throughput),
                 ("9", self.bench_python_sdk), ("10", self.bench_modules), ("7", self.bench_memory),
                 ("12", self.bench_native), ("13", self.bench_remote_cache)]
        for key, fn in steps:
            if want(key):
                fn()
        if want("8") and want("3"):
            self.bench_cache_size()

    def write(self) -> None:
        out_dir = BENCH / "results"
        out_dir.mkdir(exist_ok=True)
        machine = machine_info()
        doc = {
            "generated": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "machine": machine,
            "quick": self.quick,
            "suite_seconds": round(time.perf_counter() - self.started, 1),
            "results": self.results,
        }
        stem = "latest" if not self.args.only and not self.quick else "partial"
        (out_dir / f"{stem}.json").write_text(json.dumps(doc, indent=2) + "\n")
        (out_dir / f"{stem}.md").write_text(markdown(doc))
        log(f"wrote {out_dir / (stem + '.json')} and {stem}.md")


def verdict_word(met: bool | None, md: bool = False) -> str:
    if met is None:
        return "not measured"
    if met:
        return "met"
    return "**missed**" if md else "MISSED"


def machine_info() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in open("/proc/cpuinfo", encoding="ascii", errors="replace"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = 0
    try:
        for line in open("/proc/meminfo", encoding="ascii"):
            if line.startswith("MemTotal"):
                mem = int(line.split()[1]) * 1024
    except OSError:
        pass
    docker = subprocess.run(["docker", "version", "-f", "{{.Server.Version}}"],
                            stdout=subprocess.PIPE, text=True, check=False).stdout.strip()
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            stdout=subprocess.PIPE, text=True, check=False).stdout.strip()
    return {
        "cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem / 2**30, 1),
        "kernel": platform.release(), "docker": docker, "commit": commit,
        "load_average_at_end": os.getloadavg(),
    }


def markdown(doc: dict[str, Any]) -> str:
    m = doc["machine"]
    lines = [
        "# gantry benchmarks: latest run",
        "",
        f"Generated {doc['generated']} by `make bench` (bench/bench.py) at commit `{m['commit']}`, "
        f"in {doc['suite_seconds']:.0f} s.",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, Linux {m['kernel']}, "
        f"Docker {m['docker']}; load average at the end {', '.join(f'{x:.2f}' for x in m['load_average_at_end'])} "
        "(the machine is shared: read medians and ratios, not single times).",
        "",
        "Median (min–max) of the runs; ratio = gantry / baseline pair by pair unless the "
        "column says otherwise. See bench/README.md.",
        "",
        "| # | benchmark | gantry | baseline | ratio | target |",
        "| --- | --- | --- | --- | --- | --- |",
    ]

    def cell(stats: dict[str, Any] | None, unit: str) -> str:
        if not stats:
            return "n/a"
        if unit == "s":
            text = f"{stats['median']:.3f} s"
            rng = f" ({stats['min']:.3f}–{stats['max']:.3f})"
        elif unit == "q/s":
            text, rng = f"{stats['median']:,.0f} q/s", ""
        else:
            text, rng = f"{stats['median']:.1f} {unit}", ""
        return text + (rng if stats.get("runs", 1) > 1 else "")

    for row in doc["results"]:
        g = cell(row["gantry"], row["unit"])
        if row["unit"] == "q/s" and row.get("p99_ms") is not None:
            g += f", p99 {row['p99_ms']:.2f} ms"
        if row.get("ms_per_step") is not None:
            g += f" = {row['ms_per_step']:.0f} ms/step"
        if row.get("not_measurable"):
            g = f"not yet measurable: {row['not_measurable']}"
        b = cell(row["baseline"], row["unit"])
        if row["baseline_name"]:
            b = f"{row['baseline_name']}: {b}"
        if row["unit"] == "q/s" and row.get("baseline_p99_ms") is not None:
            b += f", p99 {row['baseline_p99_ms']:.2f} ms"
        r = row["ratio"]
        ratio = "n/a" if not r else (
            f"**{r['median']:.3f}x**" + (f" ({r['min']:.3f}–{r['max']:.3f})" if r.get("runs", 1) > 1 else "")
            + f" {row['ratio_of']}")
        target = "" if row["target"] is None else f"{row['target']}: {verdict_word(row['met'], md=True)}"
        cells = [row["bench"], row["name"], g, b, ratio, target]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    lines += ["", "## Details", ""]
    for row in doc["results"]:
        bits = []
        for side, ph in (row.get("phases_ms") or {}).items():
            bits.append(f"{side}, mean per container from the daemon's events: "
                        + ", ".join(f"{k} {v:.0f} ms" for k, v in ph.items()))
        if row.get("native_phases_ms"):
            bits.append("native, mean per step from the engine's own timings: " + ", ".join(
                f"{k.removesuffix('_ms')} {v:.1f} ms" for k, v in row["native_phases_ms"].items()))
        if row.get("docker_runtime_same_query"):
            d = row["docker_runtime_same_query"]
            bits.append(f"the same query on the Docker runtime: {d['median']:.3f} s")
        if row.get("first_run_s"):
            f = row["first_run_s"]
            bits.append(f"first (uncached) run: gantry {f['gantry']:.2f} s, docker build {f['baseline']:.2f} s")
        if row.get("in_engine"):
            bits.append(f"the two queries from a client already connected: {row['in_engine']['median'] * 1000:.1f} ms")
        if row.get("progress_quiet"):
            bits.append(f"the re-run with GANTRY_PROGRESS=quiet: {row['progress_quiet']['median']:.3f} s")
        if row.get("docker_images_committed") is not None:
            bits.append(f"in Docker, {row['docker_images_committed']} images gantry committed add "
                        f"{row['docker_layers_added_mb']:.1f} MB of layers to the golang image "
                        f"(docker build's results add {row['docker_build_layers_added_mb']:.1f} MB)")
        if row.get("import_s") is not None:
            bits.append(f"python startup {row['python_startup_s']:.3f} s; python + `import gantry` {row['import_s']:.3f} s")
        if row.get("unit") == "q/s" and row.get("p50_ms") is not None:
            bits.append(f"p50 {row['p50_ms']:.2f} ms, max {row['max_ms']:.1f} ms, errors {row['errors']}")
        if bits:
            lines.append(f"- **{row['bench']}**: " + "; ".join(bits))
    lines.append("")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="fewer runs (a smoke test of the suite); writes results/partial.*")
    parser.add_argument("--only", default="",
                        help="comma-separated benchmark numbers (1-13; 10 runs 10 and 11); writes results/partial.*")
    parser.add_argument("--cache-cases", default="",
                        help="benchmark 13's cases, comma-separated: docker-registry, docker-layout, "
                             "native-registry, native-layout (default: all)")
    args = parser.parse_args()
    for tool, path in (("gantry", GANTRY), ("loadgen", LOADGEN)):
        if not path.exists():
            print(f"bench: {tool} not found at {path}; run `make bench`", file=sys.stderr)
            return 2
    # The existing benchmarks measure the Docker runtime (their baselines are Docker's);
    # benchmark 10 starts its engines with --runtime=native.
    os.environ.setdefault("GANTRY_RUNTIME", "docker")
    suite = Suite(args)
    try:
        suite.run_all()
    finally:
        suite.write()
        suite.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
