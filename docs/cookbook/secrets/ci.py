"""Secrets from CI: the job puts the secret in an environment variable; the pipeline hands
it to one step as a secret, which gantry keeps out of cache keys, logs and output.
Run from this folder: API_TOKEN=... gantry run -- python ci.py"""

import asyncio
import os

import gantry

BUSYBOX = os.environ.get("BUSYBOX_IMAGE", "busybox:1.37")


async def main() -> None:
    async with gantry.Connection() as client:
        # Either read by the engine from the environment...
        token = client.secret("env://API_TOKEN")
        # ...or passed in by the script (the value is sent once, kept in memory only).
        same_token = client.set_secret("api-token", os.environ["API_TOKEN"])

        step = (
            client.container()
            .from_(BUSYBOX)
            .with_secret_variable("API_TOKEN", token)
            .with_mounted_secret("/run/secrets/api-token", same_token)
            .with_exec(
                [
                    "sh",
                    "-c",
                    'echo "token has ${#API_TOKEN} characters";'
                    ' [ "$(cat /run/secrets/api-token)" = "$API_TOKEN" ] && echo "file and variable agree";'
                    ' echo "a careless echo: $API_TOKEN"',
                ]
            )
        )
        print(await step.stdout(), end="")


asyncio.run(main())
