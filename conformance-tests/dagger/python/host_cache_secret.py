"""Host directory (include/exclude), a cache volume shared by two containers, and a
secret read from the environment (its value is never printed)."""

import os
import sys
import time

import anyio
import dagger
from dagger import dag

BUSYBOX = "127.0.0.1:5000/gantry-fixtures/busybox:latest"


async def main() -> None:
    nonce = f"{os.getpid()}-{time.time_ns()}"
    async with dagger.connection(dagger.Config(log_output=sys.stderr)):
        src = dag.host().directory("../fixtures/hostdir", exclude=["*.log"])
        entries = await src.entries()
        assert sorted(entries) == ["a.txt", "sub/"], entries

        cache = dag.cache_volume("gantry-dagger-sdk-python")
        base = dag.container().from_(BUSYBOX).with_mounted_cache("/cache", cache)
        await (
            base.with_directory("/src", src)
            .with_exec(["sh", "-c", f"cat /src/a.txt /src/sub/b.txt > /cache/{nonce}"])
            .sync()
        )
        seen = await (
            base.with_env_variable("NONCE", nonce)
            .with_exec(["sh", "-c", "cat /cache/$NONCE"])
            .stdout()
        )
        assert seen == "alpha\nbeta\n", repr(seen)

        secret = dag.secret("env://GANTRY_DAGGER_SECRET")
        out = await (
            dag.container()
            .from_(BUSYBOX)
            .with_secret_variable("TOKEN", secret)
            .with_exec(["sh", "-c", 'echo "token=$TOKEN"; test "${#TOKEN}" -gt 8'])
            .stdout()
        )
        assert out == "token=***\n", "secret was not scrubbed from stdout"
        assert os.environ["GANTRY_DAGGER_SECRET"] not in out
    print("host_cache_secret: ok")


anyio.run(main)
