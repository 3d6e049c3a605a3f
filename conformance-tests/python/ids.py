import asyncio

import gantry
from common import BUSYBOX, MARKER


async def main() -> None:
    async with gantry.Connection() as client:
        ctr = client.container().from_(BUSYBOX).with_new_file("/marker.txt", MARKER)
        ctr_id = await ctr.id()
        print(
            "container id:",
            "non-empty string" if isinstance(ctr_id, str) and ctr_id else repr(ctr_id),
        )
        loaded = client.load_container_from_id(ctr_id)
        print("loaded container:", await loaded.with_exec(["cat", "/marker.txt"]).stdout())
        dir_id = await client.directory().with_new_file("m.txt", MARKER).id()

    async with gantry.Connection() as second:
        loaded_dir = second.load_directory_from_id(dir_id)
        print("loaded directory in a second connection:", await loaded_dir.file("m.txt").contents())
        out = await (
            second.container()
            .from_(BUSYBOX)
            .with_directory("/d", loaded_dir)
            .with_exec(["cat", "/d/m.txt"])
            .stdout()
        )
        print("loaded directory as an argument:", out)


asyncio.run(main())
