import asyncio
import os
from pathlib import Path

import gantry
from common import BUSYBOX, MARKER, OUT

HOSTDIR = "../fixtures/hostdir"


def tree(root: str, skip_suffix: str = "") -> dict[str, bytes]:
    """Relative path -> contents of every file under root."""
    files = {}
    for folder, _, names in os.walk(root):
        for name in names:
            if skip_suffix and name.endswith(skip_suffix):
                continue
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                files[os.path.relpath(path, root)] = f.read()
    return files


async def main() -> None:
    async with gantry.Connection() as client:
        src = client.host().directory(HOSTDIR, exclude=["**/*.log"])
        print("exclude **/*.log:", " ".join(sorted(await src.glob("**"))))
        txt = client.host().directory(HOSTDIR, include=["**/*.txt"])
        print("include **/*.txt:", " ".join(sorted(await txt.glob("**"))))

        ctr = (
            client.container()
            .from_(BUSYBOX)
            .with_env_variable("MARKER", MARKER)
            .with_directory("/src", src)
            .with_exec(
                [
                    "sh",
                    "-c",
                    (
                        "mkdir -p /out && cat /src/a.txt /src/sub/c.txt > /out/combined.txt"
                        " && ls -R /src > /out/listing.txt"
                    ),
                ]
            )
        )
        combined = await ctr.file("/out/combined.txt").contents()
        print("combined.txt:", " ".join(combined.split()))

        await ctr.directory("/out").export(f"{OUT}/out")
        print("exported /out:", " ".join(sorted(os.listdir(f"{OUT}/out"))))
        await ctr.file("/out/combined.txt").export(f"{OUT}/combined.txt")
        host = Path(HOSTDIR, "a.txt").read_bytes() + Path(HOSTDIR, "sub/c.txt").read_bytes()
        same = Path(OUT, "combined.txt").read_bytes() == host
        print("exported combined.txt equals the host files:", str(same).lower())

        await src.export(f"{OUT}/src")
        same = tree(f"{OUT}/src") == tree(HOSTDIR, skip_suffix=".log")
        print("exported source equals the host directory without *.log:", str(same).lower())


asyncio.run(main())
