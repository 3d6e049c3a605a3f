import asyncio

import gantry
from common import BUSYBOX, MARKER


async def main() -> None:
    async with gantry.Connection() as client:
        ctr = (
            client.container()
            .from_(BUSYBOX)
            .with_env_variable("MARKER", MARKER)
            .with_exec(["echo", "hello from gantry"])
        )
        print("stdout:", (await ctr.stdout()).strip())
        print("exit code:", await ctr.exit_code())


asyncio.run(main())
