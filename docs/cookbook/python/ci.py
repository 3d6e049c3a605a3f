"""Python: the tests, then the package as a runnable zipapp exported to the host, with the
bytecode cache in a cache volume. Run from this folder: gantry run -- python ci.py"""

import asyncio
import os

import gantry

PYTHON = os.environ.get("PYTHON_IMAGE", "python:3.12-slim")


async def main() -> None:
    async with gantry.Connection() as client:
        src = client.host().directory("app", exclude=["**/__pycache__"])
        python = (
            client.container()
            .from_(PYTHON)
            .with_directory("/app", src)
            .with_workdir("/app")
            # Compiled bytecode outside the source tree, kept between runs.
            .with_mounted_cache("/cache/pycache", client.cache_volume("pycache"))
            .with_env_variable("PYTHONPYCACHEPREFIX", "/cache/pycache")
        )
        tests = python.with_exec(["python3", "-m", "unittest", "-v"])
        print(await tests.stderr(), end="")
        # Files copied from the host carry a fixed timestamp (1970), which keeps cache keys
        # independent of mtimes; zip files need dates from 1980 on, so touch them first.
        zipapp = "find . -exec touch {} + && python3 -m zipapp . -m greet:main -o /tmp/greet.pyz"
        app = tests.with_exec(["sh", "-c", zipapp]).file("/tmp/greet.pyz")
        await app.export("build/greet.pyz")
        ran = python.with_file("/greet.pyz", app).with_exec(["python3", "/greet.pyz", "zipapp"])
        print(await ran.stdout(), end="")


asyncio.run(main())
