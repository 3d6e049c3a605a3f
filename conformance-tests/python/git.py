import asyncio
import os
import re

import gantry
from common import BUSYBOX, MARKER

URL = os.environ["CONFORMANCE_GIT_URL"]


async def main() -> None:
    async with gantry.Connection() as client:
        repo = client.git(URL)
        print("branches:", " ".join(await repo.branches()))
        print("tags:", " ".join(await repo.tags()))
        main_tree = repo.branch("main").tree(discard_git_dir=True)
        print("main README:", (await main_tree.file("README.md").contents()).strip())
        print("main entries:", " ".join(await main_tree.entries()))
        tag = repo.tag("v1.0.0")
        print("tag ref:", await tag.ref())
        print("tag README:", (await tag.tree().file("README.md").contents()).strip())
        commit = await tag.commit()
        print("tag commit is 40 hex:", str(bool(re.fullmatch("[0-9a-f]{40}", commit))).lower())
        by_commit = repo.commit(commit).tree(discard_git_dir=True)
        print("commit app:", (await by_commit.file("src/app.txt").contents()).strip())
        print("commit entries:", " ".join(await by_commit.entries()))
        feature = repo.branch("feature").tree(discard_git_dir=True)
        print("feature entries:", " ".join(await feature.entries()))
        head = await repo.head().commit()
        main_commit = await repo.branch("main").commit()
        print("head is main:", str(head == main_commit).lower())
        out = await (
            client.container()
            .from_(BUSYBOX)
            .with_env_variable("MARKER", MARKER)
            .with_directory("/src", feature)
            .with_exec(["cat", "/src/feature.txt", "/src/README.md"])
            .stdout()
        )
        print("in a container:", " | ".join(out.strip().splitlines()))


asyncio.run(main())
