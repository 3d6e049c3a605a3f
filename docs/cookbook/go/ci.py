"""Go: vet, test and build a static binary, with the module and build caches in cache
volumes that every run shares. Run from this folder: gantry run -- python ci.py"""

import asyncio
import os

import gantry

GOLANG = os.environ.get("GOLANG_IMAGE", "golang:1.24")


async def main() -> None:
    async with gantry.Connection() as client:
        src = client.host().directory("../../../examples/seed-app")
        go = (
            client.container()
            .from_(GOLANG)
            .with_directory("/src", src)
            .with_workdir("/src")
            # Downloaded modules and compiled packages survive between runs, so a run
            # after a one-line change recompiles one package, not the world.
            .with_mounted_cache("/go/pkg/mod", client.cache_volume("go-mod"))
            .with_mounted_cache("/root/.cache/go-build", client.cache_volume("go-build"))
            .with_env_variable("GOMODCACHE", "/go/pkg/mod")
            .with_env_variable("GOCACHE", "/root/.cache/go-build")
        )
        await go.with_exec(["go", "vet", "./..."]).sync()
        print(await go.with_exec(["go", "test", "./..."]).stdout(), end="")
        binary = (
            go.with_env_variable("CGO_ENABLED", "0")
            .with_exec(["go", "build", "-trimpath", "-o", "/out/server", "./cmd/server"])
            .file("/out/server")
        )
        await binary.export("build/server")
        print("wrote build/server")


asyncio.run(main())
