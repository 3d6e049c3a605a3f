"""Rust: cargo test and a release build, with the crate registry and the target folder in
cache volumes. Run from this folder: gantry run -- python ci.py"""

import asyncio
import os

import gantry

RUST = os.environ.get("RUST_IMAGE", "rust:1.95-slim")


async def main() -> None:
    async with gantry.Connection() as client:
        src = client.host().directory("app", exclude=["target"])
        rust = (
            client.container()
            .from_(RUST)
            .with_directory("/app", src)
            .with_workdir("/app")
            # Downloaded crates, and compiled dependencies: a change to one file
            # recompiles that crate only.
            .with_mounted_cache("/usr/local/cargo/registry", client.cache_volume("cargo-registry"))
            .with_mounted_cache("/cache/target", client.cache_volume("cargo-target"))
            .with_env_variable("CARGO_TARGET_DIR", "/cache/target")
        )
        tests = rust.with_exec(["cargo", "test", "--locked"])
        print(await tests.stdout(), end="")
        # `cargo install --root` puts the binary at the same path whatever the target is.
        binary = tests.with_exec(
            ["cargo", "install", "--locked", "--path", ".", "--root", "/out"]
        ).file("/out/bin/greet")
        await binary.export("build/greet")
        print("wrote build/greet")


asyncio.run(main())
