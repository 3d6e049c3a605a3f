"""Node.js: npm ci with npm's cache in a cache volume, the tests, then the build output
exported to the host. Run from this folder: gantry run -- python ci.py"""

import asyncio
import os

import gantry

NODE = os.environ.get("NODE_IMAGE", "node:22")


async def main() -> None:
    async with gantry.Connection() as client:
        # node_modules is rebuilt by npm ci in the container, so leave the host's out.
        src = client.host().directory("app", exclude=["node_modules", "dist"])
        node = (
            client.container()
            .from_(NODE)
            .with_directory("/app", src)
            .with_workdir("/app")
            # npm's download cache: packages are fetched once, whatever changed.
            .with_mounted_cache("/root/.npm", client.cache_volume("npm"))
            .with_exec(["npm", "ci", "--no-audit", "--no-fund"])
        )
        print(await node.with_exec(["npm", "test"]).stdout(), end="")
        built = node.with_exec(["npm", "run", "build"]).directory("/app/dist")
        await built.export("build/dist")
        print("wrote build/dist:", ", ".join(await built.entries()))


asyncio.run(main())
