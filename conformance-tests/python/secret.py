import asyncio
import os

import gantry
from common import BUSYBOX


async def main() -> None:
    async with gantry.Connection() as client:
        token = client.set_secret("conformance-token", os.environ["CONFORMANCE_SECRET"])
        out = await (
            client.container()
            .from_(BUSYBOX)
            .with_secret_variable("TOKEN", token)
            .with_exec(["sh", "-c", 'echo "token=$TOKEN"; echo "length=${#TOKEN}"'])
            .stdout()
        )
        print(out, end="")


asyncio.run(main())
