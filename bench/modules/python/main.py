"""Benchmark module: one step, cached after the first call. Also a script."""

import asyncio
import os

import gantry


class Bench:
    """One step."""

    async def step(self) -> str:
        """Runs `echo cached step`."""
        async with gantry.Connection() as client:
            return await (
                client.container()
                .from_(os.environ["BENCH_IMAGE"])
                .with_exec(["echo", "cached step"])
                .stdout()
            )


if __name__ == "__main__":
    print(asyncio.run(Bench().step()), end="")
