"""A service in Python: test a client against a web server the pipeline starts.

    python services.py

The server (busybox httpd) runs as a service bound to the client container
under the alias `www`; gantry starts it when the client's step runs, waits
until its exposed port accepts connections, and stops it when no step needs
it any more. Services run on both runtimes (native and Docker).
"""

from __future__ import annotations

import asyncio
import os

import gantry

BUSYBOX = os.environ.get(
    "SERVICES_IMAGE", "127.0.0.1:5000/gantry-fixtures/busybox:latest"
)


def web_server(client: gantry.Client, page: str) -> gantry.Service:
    """An HTTP server on port 8080 serving `page` at /."""
    return (
        client.container()
        .from_(BUSYBOX)
        .with_new_file("/www/index.html", page)
        .with_exposed_port(8080)
        .as_service(args=["httpd", "-f", "-p", "8080", "-h", "/www"])
    )


async def fetch_page(client: gantry.Client, page: str) -> str:
    """What a client container reads from the server, by its alias."""
    return await (
        client.container()
        .from_(BUSYBOX)
        .with_service_binding("www", web_server(client, page))
        .with_exec(["wget", "-qO-", "http://www:8080/"])
        .stdout()
    )


async def main() -> None:
    async with gantry.Connection() as client:
        print(await fetch_page(client, "hello from a service\n"), end="")


if __name__ == "__main__":
    asyncio.run(main())
