"""Benchmark 9: a script that runs one (cached) step through gantry's Python SDK.

The suite times this whole process: interpreter start, `import gantry`, the
connection to the engine on GANTRY_SOCKET, one query, exit.
"""

import asyncio
import os

import gantry


async def main() -> None:
    async with gantry.Connection() as client:
        out = await (
            client.container()
            .from_(os.environ["BENCH_IMAGE"])
            .with_exec(["echo", "cached step"])
            .stdout()
        )
    print(out, end="")


asyncio.run(main())
