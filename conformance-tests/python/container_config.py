import asyncio

import gantry
from common import BUSYBOX, MARKER


async def main() -> None:
    async with gantry.Connection() as client:
        ctr = (
            client.container()
            .from_(BUSYBOX)
            .with_env_variable("MARKER", MARKER)
            .with_env_variable("GREETING", "hi")
            .with_workdir("/work")
            .with_user("nobody")
            .with_entrypoint(["sh", "-c"])
        )
        print("envVariable GREETING:", await ctr.env_variable("GREETING"))
        print("workdir:", await ctr.workdir())
        print("user:", await ctr.user())
        print("entrypoint:", " ".join(await ctr.entrypoint()))
        out = await ctr.with_exec(
            ['echo "$GREETING from $(pwd) as uid $(id -u)"'], use_entrypoint=True
        ).stdout()
        print("exec:", out.strip())


asyncio.run(main())
