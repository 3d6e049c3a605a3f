import asyncio

import gantry
from common import BUSYBOX, MARKER, RUN


async def main() -> None:
    async with gantry.Connection() as client:
        out = await client.container().from_(BUSYBOX).with_exec(["echo", f"step {MARKER}"]).stdout()
        print(f"run {RUN}:", out.strip())


asyncio.run(main())
