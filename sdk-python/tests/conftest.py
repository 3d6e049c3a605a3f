"""Shared fixtures: a private engine for the whole test session.

Tests never use a developer's engine: the session starts `gantry serve` on its
own temporary socket and state directory, points `GANTRY_SOCKET` at it, clears
the `gantry run` session variables, and removes what the engine cached when
the session ends. The binary is `GANTRY_BIN`, else `target/debug/gantry`
(`make python-test` builds it first).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

REPO = Path(__file__).resolve().parents[2]
SDK = REPO / "sdk-python"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
REGISTRY = os.environ.get("GANTRY_TEST_REGISTRY", "127.0.0.1:5000")
AUTH_REGISTRY = os.environ.get("GANTRY_TEST_AUTH_REGISTRY", "127.0.0.1:5001")
AUTH_USER = os.environ.get("GANTRY_TEST_AUTH_REGISTRY_USER", "gantry")
AUTH_PASSWORD = os.environ.get(
    "GANTRY_TEST_AUTH_REGISTRY_PASSWORD", "gantry-test-password"
)
FIXTURE_IMAGES = os.environ.get("GANTRY_TEST_FIXTURES", f"{REGISTRY}/gantry-fixtures")
BUSYBOX = f"{FIXTURE_IMAGES}/busybox:latest"
# Read once: the session fixture below removes GANTRY_BIN from the environment.
GANTRY_BIN = os.environ.get("GANTRY_BIN")

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Runs a coroutine to completion (no pytest plugin needed)."""
    return asyncio.run(coro)


def gantry_bin() -> str:
    binary = GANTRY_BIN or str(REPO / "target" / "debug" / "gantry")
    if not os.access(binary, os.X_OK):
        pytest.fail(f"no gantry binary at {binary}: run `cargo build -p gantry` first")
    return binary


def socket_answers(path: str | os.PathLike[str]) -> bool:
    with socket.socket(socket.AF_UNIX) as probe:
        try:
            probe.connect(os.fspath(path))
        except OSError:
            return False
    return True


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class Engine:
    binary: str
    socket: Path
    state_dir: Path
    log: Path
    pid: int


@contextlib.contextmanager
def serve(base: Path, extra_env: dict[str, str]) -> Iterator[Engine]:
    """`gantry serve` on a socket and state dir under `base`, with `extra_env`.

    `GANTRY_SOCKET` names it while the context lasts.
    """
    binary = gantry_bin()
    sock = base / "engine.sock"
    state = base / "state"
    log = base / "engine.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GANTRY_SESSION_")}
    env.update(extra_env)
    with open(log, "wb") as log_file:
        proc = subprocess.Popen(
            [binary, "serve", "--socket", str(sock), "--state-dir", str(state)],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        deadline = time.monotonic() + 60
        while not socket_answers(sock):
            if proc.poll() is not None:
                pytest.fail(f"gantry serve exited with {proc.returncode}:\n{tail(log)}")
            if time.monotonic() > deadline:
                pytest.fail(f"gantry serve did not answer within 60 s:\n{tail(log)}")
            time.sleep(0.05)
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("GANTRY_SOCKET", str(sock))
            yield Engine(
                binary=binary, socket=sock, state_dir=state, log=log, pid=proc.pid
            )
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        # Remove the images this engine cached, then its state (cache volumes).
        subprocess.run(
            [binary, "prune", "--state-dir", str(state)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=120,
            check=False,
            env=env,
        )
        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture(scope="session")
def engine(
    _isolated_env: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    """`gantry serve` on the default runtime (`auto`: native where it can run)."""
    with serve(tmp_path_factory.mktemp("engine"), {}) as started:
        yield started


@pytest.fixture(scope="module")
def docker_engine(
    _isolated_env: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    """An engine pinned to the Docker runtime, for one module's tests.

    The services tests pin it whatever the machine's default (services run
    on both runtimes; these tests have not been unpinned yet). Module-scoped: when
    the module is done, `GANTRY_SOCKET` names the session's engine again.
    """
    extra = {"GANTRY_RUNTIME": "docker"}
    with serve(tmp_path_factory.mktemp("docker-engine"), extra) as started:
        yield started


@pytest.fixture(scope="session", autouse=True)
def _isolated_env() -> Iterator[None]:
    """No test reaches a developer's engine or a `gantry run` session by accident.

    `GANTRY_SOCKET` names a socket nobody serves until the `engine` fixture
    points it at the session's engine.
    """
    with pytest.MonkeyPatch.context() as patch:
        for name in ("GANTRY_SESSION_PORT", "GANTRY_SESSION_TOKEN", "GANTRY_BIN"):
            patch.delenv(name, raising=False)
        patch.setenv("GANTRY_SOCKET", "/nonexistent/gantry-tests-without-engine.sock")
        yield


def script_env(**extra: str) -> dict[str, str]:
    """The environment for a child Python script (current test's variables)."""
    env = dict(os.environ)
    env.update(extra)
    return env


@contextlib.contextmanager
def chdir(path: Path) -> Iterator[None]:
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)
