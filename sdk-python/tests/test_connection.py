"""Connection rules: session variables, socket, auto-start, clear errors."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import gantry
from conftest import BUSYBOX, Engine, gantry_bin, run, script_env, socket_answers, tail


async def connect(**options: object) -> gantry.Client:
    async with gantry.Connection(**options) as client:  # type: ignore[arg-type]
        return client


ONE_STEP = textwrap.dedent(
    f"""
    import asyncio, os, sys
    import gantry

    async def main() -> None:
        async with gantry.Connection() as client:
            out = await (
                client.container()
                .from_("{BUSYBOX}")
                .with_exec(["echo", sys.argv[1]])
                .stdout()
            )
            print(out, end="")

    asyncio.run(main())
    """
)


def test_session_port_needs_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GANTRY_SESSION_PORT", "41234")
    with pytest.raises(gantry.ConnectError, match="GANTRY_SESSION_TOKEN is not"):
        run(connect())


def test_missing_binary_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GANTRY_SOCKET", str(tmp_path / "run" / "engine.sock"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(gantry.ConnectError) as caught:
        run(connect())
    message = str(caught.value)
    assert "no `gantry` binary was found" in message
    assert "cargo build --release -p gantry" in message
    assert "GANTRY_BIN" in message


def test_gantry_bin_must_be_an_executable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GANTRY_SOCKET", str(tmp_path / "run" / "engine.sock"))
    monkeypatch.setenv("GANTRY_BIN", str(tmp_path / "nope"))
    with pytest.raises(
        gantry.ConnectError, match=r"GANTRY_BIN=.* is not an executable"
    ):
        run(connect())


def test_no_auto_start_when_disabled(tmp_path: Path) -> None:
    with pytest.raises(gantry.ConnectError, match="no gantry engine answers"):
        run(connect(socket=tmp_path / "engine.sock", start_engine=False))


def test_engine_that_fails_to_start_points_at_its_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "gantry"
    fake.write_text("#!/bin/sh\necho 'cannot start: docker is gone' >&2\nexit 7\n")
    fake.chmod(0o755)
    monkeypatch.setenv("GANTRY_BIN", str(fake))
    sock = tmp_path / "run" / "engine.sock"
    with pytest.raises(gantry.ConnectError) as caught:
        run(connect(socket=sock))
    assert caught.value.log_path == str(sock.parent / "engine.log")
    assert "exited with status 7" in str(caught.value)
    assert "cannot start: docker is gone" in str(caught.value)


def test_unix_socket_from_environment(engine: Engine) -> None:
    async def version() -> str:
        async with gantry.Connection() as client:
            return await client.version()

    assert run(version())


TWO_CONNECTIONS = textwrap.dedent(
    """
    import asyncio
    import gantry

    async def main() -> None:
        for _ in range(2):
            async with gantry.Connection() as client:
                await client.version()

    asyncio.run(main())
    """
)


def test_a_version_mismatch_warns_once_and_a_match_says_nothing(
    engine: Engine, tmp_path: Path
) -> None:
    """The real engine's version against the SDK's: GANTRY_TEST_SDK_VERSION makes
    the SDK claim another one (a test-only override)."""
    from gantry import _env

    script = tmp_path / "two_connections.py"
    script.write_text(TWO_CONNECTIONS)

    def run_script(**extra: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, str(script)],
            env=script_env(**extra),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return result

    assert run_script().stderr == "", "a matching engine says nothing"
    stderr = run_script(GANTRY_TEST_SDK_VERSION="0.0.1-test").stderr
    warnings = [line for line in stderr.splitlines() if "warning" in line]
    assert warnings == [
        f"gantry: warning: this SDK is version 0.0.1-test but the engine is version "
        f"{_env.VERSION}; upgrade the SDK to {_env.VERSION}, or use a 0.0.1-test "
        "engine: stop this one (`gantry engine stop`) and set GANTRY_BIN to a "
        "gantry 0.0.1-test binary"
    ], stderr
    # The engine logged the odd client once, though it connected twice.
    log = engine.log.read_text()
    assert log.count("client=python/0.0.1-test") == 1, tail(engine.log)
    assert "client version does not match" in log


def test_version_rule() -> None:
    from gantry import _env

    assert _env.versions_match("1.4.0", "1.4.9")
    assert not _env.versions_match("1.4.0", "1.5.0")
    assert not _env.versions_match("0.9.0", "0.9.1"), "before 1.0, any difference"
    assert _env.version_warning("0.9.0", "0.9.0") is None


def test_auto_start_leaves_the_engine_running(tmp_path: Path) -> None:
    """No engine on the socket: the script starts `gantry serve` and leaves it."""
    sock = tmp_path / "auto" / "engine.sock"
    script = tmp_path / "one_step.py"
    script.write_text(ONE_STEP)
    env = script_env(
        GANTRY_SOCKET=str(sock),
        GANTRY_BIN=gantry_bin(),
        GANTRY_STATE_DIR=str(tmp_path / "state"),
        GANTRY_IDLE_TIMEOUT="",
    )
    try:
        first = subprocess.run(
            [sys.executable, str(script), "first"],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert first.returncode == 0, first.stderr + tail(sock.parent / "engine.log")
        assert first.stdout == "first\n"
        assert socket_answers(sock), "the engine keeps running after the script"
        log_path = sock.parent / "engine.log"
        started = [
            line for line in first.stderr.splitlines() if "started engine" in line
        ]
        assert len(started) == 1, first.stderr
        assert re.fullmatch(
            rf"gantry: started engine \(pid \d+\) on {re.escape(str(sock))}; "
            rf"log: {re.escape(str(log_path))}",
            started[0],
        ), started
        second = subprocess.run(
            [sys.executable, str(script), "second"],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert second.returncode == 0, second.stderr
        assert second.stdout == "second\n"
        assert "started engine" not in second.stderr, "a reused engine says nothing"
        log = log_path.read_text()
        assert log.count("serving on unix://") == 1, "the second script reused it"
        assert "idle_timeout=30m" in log, "started with the SDKs' idle timeout"
    finally:
        stop_engine_on(sock)
        subprocess.run(
            [gantry_bin(), "prune", "--state-dir", str(tmp_path / "state")],
            capture_output=True,
            timeout=120,
            check=False,
        )


def stop_engine_on(sock: Path) -> None:
    """Stops the `gantry serve --socket sock` this test's script started."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if [a.decode(errors="replace") for a in args[1:4]] == [
            "serve",
            "--socket",
            str(sock),
        ]:
            pid = int(entry.name)
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 20
            while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
                time.sleep(0.05)


def test_gantry_run_session(engine: Engine, tmp_path: Path) -> None:
    """`gantry run -- python script.py`: the SDK uses the session, not the socket."""
    (tmp_path / "hello.txt").write_text("from the run directory\n")
    script = tmp_path / "in_session.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import asyncio, os
            import gantry

            async def main() -> None:
                assert os.environ["GANTRY_SESSION_PORT"]
                async with gantry.Connection() as client:
                    out = await (
                        client.container()
                        .from_("{BUSYBOX}")
                        .with_file("/hello.txt", client.host().file("hello.txt"))
                        .with_exec(["cat", "/hello.txt"])
                        .stdout()
                    )
                    print(out, end="")
                os.environ["GANTRY_SESSION_TOKEN"] = "wrong-token"
                try:
                    async with gantry.Connection() as client:
                        await client.version()
                except gantry.TransportError as error:
                    print("wrong token:", error.status)

            asyncio.run(main())
            """
        )
    )
    state = tmp_path / "state"
    # A socket nobody serves: the script must not fall back to it.
    env = script_env(GANTRY_SOCKET=str(tmp_path / "unused.sock"))
    try:
        result = subprocess.run(
            [
                engine.binary,
                "run",
                "--state-dir",
                str(state),
                "--",
                sys.executable,
                str(script),
            ],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
    finally:
        subprocess.run(
            [engine.binary, "prune", "--state-dir", str(state)],
            capture_output=True,
            timeout=120,
            check=False,
        )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "from the run directory\nwrong token: 401\n"
