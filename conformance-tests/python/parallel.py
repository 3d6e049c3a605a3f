import asyncio

import gantry
from common import BUSYBOX, MARKER

# Each branch marks itself in a shared cache volume, then waits (at most 60 s) until
# all four have: only branches that run at the same time can all see four. This
# proves parallelism from inside the containers, whatever the machine's load.
SCRIPT = 'touch /sync/$N; i=0; while [ $(ls /sync | wc -l) -lt 4 ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; echo "branch $N: $(ls /sync | wc -l) of 4 running at once"'


async def main() -> None:
    async with gantry.Connection() as client:
        base = (
            client.container()
            .from_(BUSYBOX)
            .with_env_variable("MARKER", MARKER)
            .with_mounted_cache("/sync", client.cache_volume(f"conformance-parallel-{MARKER}"))
        )
        branches = [
            base.with_env_variable("N", str(n)).with_exec(["sh", "-c", SCRIPT]).stdout()
            for n in range(1, 5)
        ]
        for out in await asyncio.gather(*branches):
            print(out.strip())


asyncio.run(main())
