"""Publish: build a static Go binary into a minimal image and push it to a registry that
needs a login, the password coming from the environment as a secret.
Run from this folder: gantry run -- python ci.py"""

import asyncio
import os

import gantry

GOLANG = os.environ.get("GOLANG_IMAGE", "golang:1.24")
RUNTIME = os.environ.get("RUNTIME_IMAGE", "gcr.io/distroless/static-debian12:nonroot")
REGISTRY = os.environ["REGISTRY"]  # where to push, e.g. ghcr.io/your-org
USER = os.environ["REGISTRY_USER"]


async def main() -> None:
    async with gantry.Connection() as client:
        src = client.host().directory("../../../examples/seed-app")
        binary = (
            client.container()
            .from_(GOLANG)
            .with_directory("/src", src)
            .with_workdir("/src")
            .with_mounted_cache("/go/pkg/mod", client.cache_volume("go-mod"))
            .with_mounted_cache("/root/.cache/go-build", client.cache_volume("go-build"))
            .with_env_variable("CGO_ENABLED", "0")
            .with_exec(["go", "build", "-trimpath", "-o", "/out/server", "./cmd/server"])
            .file("/out/server")
        )
        image = (
            client.container()
            .from_(RUNTIME)
            .with_file("/server", binary)
            .with_entrypoint(["/server"])
            .with_label("org.opencontainers.image.source", "https://example.com/seed-app")
        )
        # The password is a secret: it is never part of a cache key, a log or an error.
        password = client.secret("env://REGISTRY_PASSWORD")
        ref = await image.with_registry_auth(REGISTRY.split("/")[0], USER, password).publish(
            f"{REGISTRY}/seed-app:latest"
        )
        print(f"published {ref}")


asyncio.run(main())
