"""The seed pipeline, written for Dagger's Python SDK (`dagger call` or `gantry call`).

Only the image names point at the local test registry.
"""

from typing import Annotated

import dagger
from dagger import Doc, dag, function, object_type

GOLANG = "127.0.0.1:5000/gantry-fixtures/golang:latest"
RUNTIME = "127.0.0.1:5000/gantry-fixtures/static:nonroot"


def go_base(src: dagger.Directory) -> dagger.Container:
    return (
        dag.container()
        .from_(GOLANG)
        .with_directory("/src", src)
        .with_workdir("/src")
        .with_mounted_cache("/root/go/pkg/mod", dag.cache_volume("go-mod"))
        .with_mounted_cache("/root/.cache/go-build", dag.cache_volume("go-build"))
    )


@object_type
class Pipeline:
    """Tests, builds and publishes a Go web service."""

    @function
    async def test(self, src: Annotated[dagger.Directory, Doc("The Go module to test")]) -> str:
        """Runs the unit tests and returns their output."""
        return await go_base(src).with_exec(["go", "test", "./..."]).stdout()

    @function
    def build(self, src: dagger.Directory) -> dagger.Container:
        """Builds the server into a minimal non-root image."""
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

    @function
    async def publish(
        self,
        src: dagger.Directory,
        registry: str,
        tag: str,
        registry_user: str,
        registry_token: dagger.Secret,
    ) -> str:
        """Tests, builds and publishes registry:tag; returns the reference with its digest."""
        try:
            await self.test(src)
        except dagger.ExecError as error:
            raise RuntimeError(f"tests failed: {error}") from error
        return await (
            self.build(src)
            .with_registry_auth(registry, registry_user, registry_token)
            .publish(f"{registry}:{tag}")
        )

    def helper(self) -> str:
        """Not a function: no @function."""
        return "hidden"
