"""hello exec: one container, one command, its stdout back."""

import sys

import anyio
import dagger
from dagger import dag

BUSYBOX = "127.0.0.1:5000/gantry-fixtures/busybox:latest"


async def main() -> None:
    async with dagger.connection(dagger.Config(log_output=sys.stderr)):
        out = await (
            dag.container()
            .from_(BUSYBOX)
            .with_exec(["echo", "hello from dagger-io"])
            .stdout()
        )
    assert out == "hello from dagger-io\n", repr(out)
    print("hello: ok")


anyio.run(main)
