"""The seed pipeline: go test, go build into a minimal non-root image, publish, then
run the published image."""

import os
import sys

import anyio
import dagger
from dagger import dag

GOLANG = "127.0.0.1:5000/gantry-fixtures/golang:latest"
RUNTIME = "127.0.0.1:5000/gantry-fixtures/static:nonroot"
REGISTRY = os.environ.get("GANTRY_TEST_REGISTRY", "127.0.0.1:5000")


def go_base(src: dagger.Directory) -> dagger.Container:
    return (
        dag.container()
        .from_(GOLANG)
        .with_directory("/src", src)
        .with_workdir("/src")
        .with_mounted_cache("/root/go/pkg/mod", dag.cache_volume("go-mod"))
        .with_mounted_cache("/root/.cache/go-build", dag.cache_volume("go-build"))
    )


async def test(src: dagger.Directory) -> str:
    return await go_base(src).with_exec(["go", "test", "./..."]).stdout()


def build(src: dagger.Directory) -> dagger.Container:
    binary = (
        go_base(src)
        .with_env_variable("CGO_ENABLED", "0")
        .with_env_variable("GOOS", "linux")
        .with_exec(["go", "build", "-ldflags=-s -w", "-o", "/out/server", "./cmd/server"])
        .file("/out/server")
    )
    return (
        dag.container()
        .from_(RUNTIME)
        .with_file("/server", binary)
        .with_entrypoint(["/server"])
    )


async def main() -> None:
    async with dagger.connection(dagger.Config(log_output=sys.stderr)):
        src = dag.host().directory("../../../examples/seed-app")
        out = await test(src)
        assert "ok" in out, repr(out)
        ref = await build(src).publish(f"{REGISTRY}/gantry-dagger-sdk/python-seed:latest")
        assert "@sha256:" in ref, ref
        greeting = await (
            dag.container().from_(ref).with_exec([], use_entrypoint=True).stdout()
        )
        assert greeting.startswith("hello from seed-app (uid "), repr(greeting)
        assert "(uid 0)" not in greeting, greeting
    print(f"seed: ok ({ref})")


anyio.run(main)
