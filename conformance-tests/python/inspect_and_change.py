import asyncio

import gantry
from common import BUSYBOX, MARKER


async def main() -> None:
    async with gantry.Connection() as client:
        old = client.directory().with_new_file("a.txt", "alpha\n").with_new_file("b/c.txt", "beta\n")
        new = (
            old.with_new_file("a.txt", "alpha\nalphabet\n")
            .without_directory("b")
            .with_symlink("a.txt", "link")
        )
        changes = new.changes(old)
        print("added:", " ".join(await changes.added_paths()))
        print("modified:", " ".join(await changes.modified_paths()))
        print("removed:", " ".join(await changes.removed_paths()))
        link = await new.exists("link", expected_type=gantry.ExistsType.SYMLINK_TYPE, do_not_follow_symlinks=True)
        print("link is a symlink:", str(link).lower())
        stat = new.stat("link")
        print("link stat:", (await stat.file_type()).value, await stat.size())
        found = [f"{await r.file_path()}:{await r.line_number()}" for r in await new.search("alpha")]
        print("search alpha:", " ".join(found))
        patched = old.with_patch(await changes.as_patch().contents())
        print("patch reproduces the new directory:", str(await patched.digest() == await new.digest()).lower())

        items = await client.json().with_contents('{"k": [1, 2]}').field(["k"]).as_array()
        print(f"json: {len(items)} items, last {await items[-1].as_integer()}")
        env = client.env_file().with_variable("A", "1").with_variable("B", "${A}-2")
        print("env B:", await env.get("B"))

        ctr = (
            client.container()
            .from_(BUSYBOX)
            .with_env_variable("MARKER", MARKER)
            .with_exec(["sh", "-c", "echo x > /made"])
            .without_file("/made")
        )
        print("removed from the image:", str(not await ctr.exists("/made")).lower())
        out = await ctr.with_exec(["sh", "-c", "echo out; sleep 0.2; echo err >&2"]).combined_output()
        print("combined:", " ".join(out.split()))
        print("default platform is linux:", str((await client.default_platform()).startswith("linux/")).lower())


asyncio.run(main())
