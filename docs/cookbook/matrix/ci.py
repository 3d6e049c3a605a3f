"""Matrix builds: one Go program built for four platforms at once. Each build is its own
branch of the pipeline; awaiting them together lets the engine run them in parallel.
Run from this folder: gantry run -- python ci.py"""

import asyncio
import os

import gantry

GOLANG = os.environ.get("GOLANG_IMAGE", "golang:1.24")
PLATFORMS = [("linux", "amd64"), ("linux", "arm64"), ("darwin", "arm64"), ("windows", "amd64")]


async def main() -> None:
    async with gantry.Connection() as client:
        src = client.host().directory("../../../examples/seed-app")
        go = (
            client.container()
            .from_(GOLANG)
            .with_directory("/src", src)
            .with_workdir("/src")
            .with_mounted_cache("/go/pkg/mod", client.cache_volume("go-mod"))
            .with_mounted_cache("/root/.cache/go-build", client.cache_volume("go-build"))
            .with_env_variable("CGO_ENABLED", "0")
        )

        async def build(goos: str, goarch: str) -> str:
            name = f"server-{goos}-{goarch}" + (".exe" if goos == "windows" else "")
            binary = (
                go.with_env_variable("GOOS", goos)
                .with_env_variable("GOARCH", goarch)
                .with_exec(["go", "build", "-trimpath", "-o", f"/out/{name}", "./cmd/server"])
                .file(f"/out/{name}")
            )
            await binary.export(f"build/{name}")
            return f"build/{name}: {await binary.size()} bytes"

        for line in await asyncio.gather(*(build(*platform) for platform in PLATFORMS)):
            print(line)


asyncio.run(main())
