import asyncio
import sys
import time

import gantry
from common import BUSYBOX, MARKER


async def main() -> None:
    async with gantry.Connection() as client:
        base = client.container().from_(BUSYBOX).with_env_variable("MARKER", MARKER)
        branches = [
            base.with_exec(["sh", "-c", f"sleep 2; echo branch {n}: done"]).stdout()
            for n in range(1, 5)
        ]
        start = time.monotonic()
        outputs = await asyncio.gather(*branches)
        elapsed = time.monotonic() - start
        for out in outputs:
            print(out.strip())
        print(f"elapsed: {elapsed:.2f} s", file=sys.stderr)
        print("4 x sleep 2 finished in under 8 s:", str(elapsed < 8).lower())


asyncio.run(main())
