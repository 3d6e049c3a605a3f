"""A registry that runs as a service: an image published to it and pulled back from it,
both named by the service's hostname (`registryService`)."""

import asyncio
import os

import gantry
from common import BUSYBOX, MARKER

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
    async with gantry.Connection() as client:
        registry = client.container().from_(BUSYBOX)
        for target, source in FILES.items():
            registry = registry.with_file(target, client.host().file(os.path.realpath(source)))
        # Started, so that its storage (the container's own) outlives the push.
        service = await (
            registry.with_new_file("/etc/registry.yml", CONFIG)
            .with_exposed_port(5000)
            .as_service(args=["/usr/bin/registry", "serve", "/etc/registry.yml"])
            .start()
        )
        address = f"{await service.hostname()}:5000/conformance/app:{MARKER}"
        published = await (
            client.container()
            .from_(BUSYBOX)
            .with_new_file("/marker", MARKER)
            .publish(address, registry_service=service)
        )
        print(
            "published as HOSTNAME:5000/conformance/app:MARKER@sha256:…:",
            str(published.startswith(f"{address}@sha256:")).lower(),
        )
        pulled = await (
            client.container().from_(address, registry_service=service).file("/marker").contents()
        )
        print("pulled back what was published:", str(pulled == MARKER).lower())
        await service.stop()


asyncio.run(main())
