"""Dockerfile builds as Dagger scripts write them: `docker_build` with
`dagger.BuildArg` build arguments and a target stage, on the fixture busybox."""

import sys

import anyio
import dagger
from dagger import dag

BUSYBOX = "127.0.0.1:5000/gantry-fixtures/busybox:latest"
CONTEXT = "../../fixtures/dockerbuild"


async def main() -> None:
    async with dagger.connection(dagger.Config(log_output=sys.stderr)):
        context = dag.host().directory(CONTEXT)
        final = context.docker_build(
            build_args=[
                dagger.BuildArg(name="BASE", value=BUSYBOX),
                dagger.BuildArg(name="GREETING", value="hi"),
                dagger.BuildArg(name="MARKER", value="dagger-python"),
            ],
            target="final",
        )
        assert await final.file("greeting.txt").contents() == "hi from the build stage\n"
        assert await final.workdir() == "/app"
        assert await final.env_variable("STAGE") == "final"
        out = await final.with_exec(["cat", "marker.txt"]).stdout()
        assert out == "marker: dagger-python\n", repr(out)
        stage = context.docker_build(
            build_args=[dagger.BuildArg(name="BASE", value=BUSYBOX)], target="build"
        )
        greeting = await stage.file("/out/greeting.txt").contents()
        assert greeting == "hello from the build stage\n", repr(greeting)
    print("docker_build: ok")


anyio.run(main)
