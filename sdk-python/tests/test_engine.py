"""The SDK against a real engine: leaves, errors, host paths, secrets."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

import gantry
from conftest import BUSYBOX, Engine, chdir, run


def busybox(client: gantry.Client) -> gantry.Container:
    return client.container().from_(BUSYBOX)


def test_stdout_and_chaining(engine: Engine) -> None:
    async def main() -> tuple[str, str, list[str]]:
        async with gantry.Connection() as client:
            ctr = (
                busybox(client).with_env_variable("GREETING", "hi").with_workdir("/tmp")
            )
            out = await ctr.with_exec(
                ["sh", "-c", 'echo "$GREETING from $(pwd)"']
            ).stdout()
            names = [await v.name() for v in await ctr.env_variables()]
            return out, await client.version(), names

    out, version, names = run(main())
    assert out == "hi from /tmp\n"
    assert version
    assert "GREETING" in names


def test_exec_error_has_exit_code_output_and_command(engine: Engine) -> None:
    async def main() -> None:
        async with gantry.Connection() as client:
            await (
                busybox(client)
                .with_exec(["sh", "-c", "echo to-out; echo to-err >&2; exit 3"])
                .sync()
            )

    with pytest.raises(gantry.ExecError) as caught:
        run(main())
    error = caught.value
    assert error.exit_code == 3
    assert error.stdout == "to-out\n"
    assert error.stderr == "to-err\n"
    assert error.cmd == ["sh", "-c", "echo to-out; echo to-err >&2; exit 3"]
    assert "to-err" in str(error)


def test_expected_failure_is_not_an_error(engine: Engine) -> None:
    async def main() -> int:
        async with gantry.Connection() as client:
            ctr = busybox(client).with_exec(
                ["sh", "-c", "exit 5"], expect=gantry.ReturnType.FAILURE
            )
            return await ctr.exit_code()

    assert run(main()) == 5


def test_other_errors_are_query_errors(engine: Engine) -> None:
    async def main() -> str:
        async with gantry.Connection() as client:
            return await client.load_container_from_id("Container:" + "0" * 64).stdout()

    with pytest.raises(gantry.QueryError) as caught:
        run(main())
    assert not isinstance(caught.value, gantry.ExecError)
    assert caught.value.code, "the engine sets extensions.code"


def test_relative_host_paths_resolve_against_the_script_directory(
    engine: Engine, tmp_path: Path
) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.txt").write_text("alpha\n")

    async def main() -> tuple[str, list[str]]:
        async with gantry.Connection() as client:
            contents = await client.host().file("data/a.txt").contents()
            entries = await client.host().directory("data").entries()
            return contents, entries

    with chdir(tmp_path):
        assert run(main()) == ("alpha\n", ["a.txt"])


def test_secret_values_never_appear_in_output(engine: Engine) -> None:
    value = "gantry-sdk-secret-" + secrets.token_hex(8)

    async def main() -> tuple[str, str, str, gantry.ExecError]:
        async with gantry.Connection() as client:
            secret = client.set_secret("api-token", value)
            ctr = busybox(client).with_secret_variable("TOKEN", secret)
            out = ctr.with_exec(["sh", "-c", "echo out=$TOKEN; echo err=$TOKEN >&2"])
            stdout, stderr = await out.stdout(), await out.stderr()
            try:
                await ctr.with_exec(
                    ["sh", "-c", "echo $TOKEN; echo $TOKEN >&2; exit 1"]
                ).sync()
            except gantry.ExecError as error:
                failure = error
            else:
                raise AssertionError("the command should fail")
            return stdout, stderr, await secret.id(), failure

    stdout, stderr, secret_id, failure = run(main())
    for text in (
        stdout,
        stderr,
        secret_id,
        str(failure),
        failure.stdout,
        failure.stderr,
    ):
        assert value not in text
    assert stdout.startswith("out=") and stderr.startswith("err=")
    assert value.encode() not in engine.log.read_bytes()
