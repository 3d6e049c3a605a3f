"""The seed pipeline (shared/reference/seed-pipeline.md): test, build, publish."""

import asyncio

import gantry
from common import AUTH_PASSWORD, AUTH_REGISTRY, AUTH_USER, GOLANG, MARKER, STATIC


def go_base(client: gantry.Client, src: gantry.Directory) -> gantry.Container:
    return (
        client.container()
        .from_(GOLANG)
        .with_directory("/src", src)
        .with_workdir("/src")
        .with_mounted_cache("/root/go/pkg/mod", client.cache_volume("go-mod"))
        .with_mounted_cache("/root/.cache/go-build", client.cache_volume("go-build"))
        .with_env_variable("GOMODCACHE", "/root/go/pkg/mod")
        .with_env_variable("GOCACHE", "/root/.cache/go-build")
        # A new value each run, so test and build really run (on warm Go caches).
        .with_env_variable("CONFORMANCE_MARKER", MARKER)
    )


async def test(client: gantry.Client, src: gantry.Directory) -> str:
    return await go_base(client, src).with_exec(["go", "test", "-count=1", "./..."]).stdout()


def build(client: gantry.Client, src: gantry.Directory) -> gantry.Container:
    binary = (
        go_base(client, src)
        .with_env_variable("CGO_ENABLED", "0")
        .with_env_variable("GOOS", "linux")
        .with_exec(["go", "build", "-ldflags=-s -w", "-o", "/out/server", "./cmd/server"])
        .file("/out/server")
    )
    return (
        client.container().from_(STATIC).with_file("/server", binary).with_entrypoint(["/server"])
    )


async def publish(
    client: gantry.Client, src: gantry.Directory, repo: str, tag: str, token: gantry.Secret
) -> str:
    try:
        await test(client, src)
    except gantry.ExecError as error:
        raise SystemExit(f"tests failed: {error.stdout}{error.stderr}") from error
    return await (
        build(client, src)
        .with_registry_auth(AUTH_REGISTRY, AUTH_USER, token)
        .publish(f"{repo}:{tag}")
    )


async def main() -> None:
    async with gantry.Connection() as client:
        src = client.host().directory("../../examples/seed-app")
        for line in (await test(client, src)).splitlines():
            print("test:", " ".join(line.split()[:2]))
        token = client.set_secret("registry-token", AUTH_PASSWORD)
        ref = await publish(
            client, src, f"{AUTH_REGISTRY}/gantry-conformance/seed-app", MARKER, token
        )
        print("published:", ref)
        out = await (
            client.container()
            .with_registry_auth(AUTH_REGISTRY, AUTH_USER, token)
            .from_(ref)
            .with_exec([], use_entrypoint=True)
            .stdout()
        )
        print("run:", out.strip())


asyncio.run(main())
