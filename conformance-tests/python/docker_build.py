import asyncio

import gantry
from common import BUSYBOX, MARKER

CONTEXT = "../fixtures/dockerbuild"


async def main() -> None:
    async with gantry.Connection() as client:
        context = client.host().directory(CONTEXT)
        final = context.docker_build(
            build_args=[
                gantry.BuildArg(name="BASE", value=BUSYBOX),
                gantry.BuildArg(name="GREETING", value="hi"),
                gantry.BuildArg(name="MARKER", value=MARKER),
            ],
            target="final",
        )
        print("final greeting:", (await final.file("greeting.txt").contents()).strip())
        print("final message:", (await final.file("/app/message.txt").contents()).strip())
        print("final workdir:", await final.workdir())
        print("final STAGE:", await final.env_variable("STAGE"))
        print("final run:", (await final.with_exec(["cat", "marker.txt"]).stdout()).strip())
        print("final default args:", " ".join(await final.default_args()))

        stage = context.docker_build(
            build_args=[gantry.BuildArg(name="BASE", value=BUSYBOX)],
            target="build",
        )
        greeting = await stage.file("/out/greeting.txt").contents()
        print("build stage greeting:", greeting.strip())
        print("build stage has /app:", str(await stage.exists("/app")).lower())

        last = context.docker_build(
            build_args=[gantry.BuildArg(name="BASE", value=BUSYBOX)],
        )
        print("no target:", (await last.file("/last.txt").contents()).strip())


asyncio.run(main())
