"""The seed pipeline in Python: test, build and publish a Go web service.

    python pipeline.py test --src=path/to/app
    python pipeline.py publish --src=. --registry=127.0.0.1:5000/app --tag=v1 \\
        --registry-user=USER --registry-token=env:REGISTRY_TOKEN

Runs the same way from a terminal, in CI, or under `gantry run -- python ...`.
Secrets are named by source (`env:NAME` or `file:PATH`); their values go to
the engine as secrets and never appear in output.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

import gantry

# Local stand-ins for golang:1.22-alpine and distroless/static:nonroot.
GO_IMAGE = os.environ.get(
    "SEED_GO_IMAGE", "127.0.0.1:5000/gantry-fixtures/golang:latest"
)
RUNTIME_IMAGE = os.environ.get(
    "SEED_RUNTIME_IMAGE", "127.0.0.1:5000/gantry-fixtures/static:nonroot"
)
GO_MOD_CACHE = "/root/go/pkg/mod"
GO_BUILD_CACHE = "/root/.cache/go-build"


class PipelineError(Exception):
    """A pipeline step failed; the message says which and why."""


def go_base(client: gantry.Client, src: gantry.Directory) -> gantry.Container:
    """The Go toolchain with the source at /src and the shared Go caches."""
    return (
        client.container()
        .from_(GO_IMAGE)
        .with_directory("/src", src)
        .with_workdir("/src")
        .with_mounted_cache(GO_MOD_CACHE, client.cache_volume("go-mod"))
        .with_mounted_cache(GO_BUILD_CACHE, client.cache_volume("go-build"))
        .with_env_variable("GOMODCACHE", GO_MOD_CACHE)
        .with_env_variable("GOCACHE", GO_BUILD_CACHE)
    )


async def test(client: gantry.Client, src: gantry.Directory) -> str:
    """Runs `go test ./...` and returns its output."""
    return (
        await go_base(client, src)
        .with_exec(["go", "test", "-count=1", "./..."])
        .stdout()
    )


def build(client: gantry.Client, src: gantry.Directory) -> gantry.Container:
    """A minimal runtime image holding the static server binary at /server."""
    binary = (
        go_base(client, src)
        .with_env_variable("CGO_ENABLED", "0")
        .with_env_variable("GOOS", "linux")
        .with_exec(
            ["go", "build", "-ldflags=-s -w", "-o", "/out/server", "./cmd/server"]
        )
        .file("/out/server")
    )
    return (
        client.container()
        .from_(RUNTIME_IMAGE)
        .with_file("/server", binary)
        .with_entrypoint(["/server"])
    )


async def publish(
    client: gantry.Client,
    src: gantry.Directory,
    registry: str,
    tag: str,
    registry_user: str,
    registry_token: gantry.Secret,
) -> str:
    """Tests, builds and publishes `registry:tag`; returns the reference with digest."""
    try:
        await test(client, src)
    except gantry.ExecError as error:
        raise PipelineError(f"tests failed: {error.stdout}{error.stderr}") from error
    return await (
        build(client, src)
        .with_registry_auth(registry, registry_user, registry_token)
        .publish(f"{registry}:{tag}")
    )


def secret_from(client: gantry.Client, name: str, source: str) -> gantry.Secret:
    """A secret from `env:NAME` or `file:PATH`."""
    kind, _, where = source.partition(":")
    if kind == "env":
        value = os.environ.get(where)
        if value is None:
            raise PipelineError(f"environment variable {where} is not set")
    elif kind == "file":
        with open(where, encoding="utf-8") as file:
            value = file.read().rstrip("\n")
    else:
        raise PipelineError(f"secret source {source!r}: use env:NAME or file:PATH")
    return client.set_secret(name, value)


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    test_cmd = commands.add_parser("test", help="run the Go tests")
    test_cmd.add_argument("--src", default=".")
    pub_cmd = commands.add_parser("publish", help="test, build and publish")
    pub_cmd.add_argument("--src", default=".")
    for flag in ("--registry", "--tag", "--registry-user", "--registry-token"):
        pub_cmd.add_argument(flag, required=True)
    args = parser.parse_args(argv)

    async with gantry.Connection() as client:
        src = client.host().directory(args.src)
        try:
            if args.command == "test":
                print(await test(client, src), end="")
            else:
                token = secret_from(client, "registry-token", args.registry_token)
                print(
                    await publish(
                        client, src, args.registry, args.tag, args.registry_user, token
                    )
                )
        except PipelineError as error:
            print(f"pipeline: {error}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
