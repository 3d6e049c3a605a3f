"""A failing exec raises dagger.ExecError with the command, exit code, stdout, stderr."""

import sys

import anyio
import dagger
from dagger import dag

BUSYBOX = "127.0.0.1:5000/gantry-fixtures/busybox:latest"


async def main() -> None:
    cmd = ["sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 3"]
    async with dagger.connection(dagger.Config(log_output=sys.stderr)):
        try:
            await dag.container().from_(BUSYBOX).with_exec(cmd).sync()
        except dagger.ExecError as e:
            assert e.exit_code == 3, e.exit_code
            assert e.stdout.strip() == "to-stdout", repr(e.stdout)
            assert e.stderr.strip() == "to-stderr", repr(e.stderr)
            assert e.command == cmd, e.command
        else:
            raise AssertionError("expected dagger.ExecError")

        code = await (
            dag.container()
            .from_(BUSYBOX)
            .with_exec(cmd, expect=dagger.ReturnType.ANY)
            .exit_code()
        )
        assert code == 3, code
    print("exec_error: ok")


anyio.run(main)
