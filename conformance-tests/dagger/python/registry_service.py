"""A registry that runs as a service, as Dagger scripts use one: an image published to
it and pulled back from it, both named by the service's hostname (registry_service)."""

import os
import secrets
import sys

import anyio
import dagger
from dagger import dag

BUSYBOX = "127.0.0.1:5000/gantry-fixtures/busybox:latest"
# Debian's build of the distribution registry (`make setup` installs it) and the C
# library it loads, in the busybox image.
FILES = {
    "/usr/bin/registry": "/usr/bin/docker-registry",
    "/lib/x86_64-linux-gnu/libc.so.6": "/lib/x86_64-linux-gnu/libc.so.6",
    "/lib64/ld-linux-x86-64.so.2": "/lib64/ld-linux-x86-64.so.2",
}
CONFIG = (
    "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /var/lib/registry\n"
    "http:\n  addr: :5000\n"
)


async def main() -> None:
    marker = f"python-{secrets.token_hex(6)}"
    async with dagger.connection(dagger.Config(log_output=sys.stderr)):
        registry = dag.container().from_(BUSYBOX)
        for target, source in FILES.items():
            registry = registry.with_file(target, dag.host().file(os.path.realpath(source)))
        # Started, so that its storage (the container's own) outlives the push.
        service = await (
            registry.with_new_file("/etc/registry.yml", CONFIG)
            .with_exposed_port(5000)
            .as_service(args=["/usr/bin/registry", "serve", "/etc/registry.yml"])
            .start()
        )
        address = f"{await service.hostname()}:5000/conformance/app:{marker}"
        published = await (
            dag.container()
            .from_(BUSYBOX)
            .with_new_file("/marker", marker)
            .publish(address, registry_service=service)
        )
        assert published.startswith(f"{address}@sha256:"), published
        pulled = await (
            dag.container().from_(address, registry_service=service).file("/marker").contents()
        )
        assert pulled == marker, (pulled, marker)
        await service.stop()
    print("registry_service: ok")


anyio.run(main)
