import asyncio

import gantry
from common import BUSYBOX, MARKER

SCRIPT = "echo out; echo err >&2; exit 3"


async def main() -> None:
    async with gantry.Connection() as client:
        base = client.container().from_(BUSYBOX).with_env_variable("MARKER", MARKER)
        try:
            await base.with_exec(["sh", "-c", SCRIPT]).sync()
            print("no error")
        except gantry.ExecError as error:
            print("caught ExecError")
            print("exit code:", error.exit_code)
            print("stdout:", error.stdout.strip())
            print("stderr:", error.stderr.strip())
            print("cmd:", " ".join(error.cmd))
        code = await base.with_exec(["sh", "-c", SCRIPT], expect=gantry.ReturnType.ANY).exit_code()
        print("expect ANY, exit code:", code)


asyncio.run(main())
