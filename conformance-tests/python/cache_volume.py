import asyncio

import gantry
from common import BUSYBOX, MARKER, RUN


async def main() -> None:
    async with gantry.Connection() as client:
        out = await (
            client.container()
            .from_(BUSYBOX)
            .with_mounted_cache("/cache", client.cache_volume("conformance-cache"))
            .with_env_variable("MARKER", MARKER)
            .with_env_variable("RUN", RUN)
            .with_exec(["sh", "-c", 'echo "run $RUN" >> "/cache/$MARKER"; cat "/cache/$MARKER"'])
            .stdout()
        )
        print(f"run {RUN} sees:", ", ".join(out.splitlines()))


asyncio.run(main())
