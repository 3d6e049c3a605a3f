"""The seed pipeline as a gantry module: `gantry call test --src=../../seed-app`."""

from __future__ import annotations

import os

import gantry

FIXTURES = os.environ.get("GANTRY_TEST_FIXTURES", "127.0.0.1:5000/gantry-fixtures")
GOLANG = f"{FIXTURES}/golang:latest"
RUNTIME = f"{FIXTURES}/static:nonroot"


def go_base(client: gantry.Client, src: gantry.Directory) -> gantry.Container:
    return (
        client.container()
        .from_(GOLANG)
        .with_directory("/src", src)
        .with_workdir("/src")
        .with_mounted_cache("/root/go/pkg/mod", client.cache_volume("go-mod"))
        .with_mounted_cache("/root/.cache/go-build", client.cache_volume("go-build"))
    )


class Pipeline:
    """Tests, builds and publishes the seed Go service."""

    async def test(self, src: gantry.Directory) -> str:
        """Runs `go test ./...` and returns its output.

        Args:
            src: The Go module to test.
        """
        async with gantry.Connection() as client:
            return await go_base(client, src).with_exec(["go", "test", "./..."]).stdout()

    async def build(self, src: gantry.Directory) -> gantry.Container:
        """Builds the server into a minimal non-root image.

        Args:
            src: The Go module to build.
        """
        async with gantry.Connection() as client:
            binary = (
                go_base(client, src)
                .with_env_variable("CGO_ENABLED", "0")
                .with_env_variable("GOOS", "linux")
                .with_exec(["go", "build", "-ldflags=-s -w", "-o", "/out/server", "./cmd/server"])
                .file("/out/server")
            )
            return (
                client.container()
                .from_(RUNTIME)
                .with_file("/server", binary)
                .with_entrypoint(["/server"])
            )

    async def publish(
        self,
        src: gantry.Directory,
        registry: str,
        tag: str,
        registry_user: str,
        registry_token: gantry.Secret,
    ) -> str:
        """Tests, builds and publishes REGISTRY:TAG; returns the reference with its digest.

        Args:
            src: The Go module.
            registry: The repository to publish to, e.g. 127.0.0.1:5001/app.
            tag: The image tag.
            registry_user: The registry user name.
            registry_token: The registry password or token.
        """
        try:
            await self.test(src)
        except gantry.ExecError as error:
            raise RuntimeError(f"tests failed: {error}") from error
        image = await self.build(src)
        host = registry.split("/")[0]
        return await image.with_registry_auth(host, registry_user, registry_token).publish(
            f"{registry}:{tag}"
        )
