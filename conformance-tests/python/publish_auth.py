import asyncio

import gantry
from common import AUTH_PASSWORD, AUTH_REGISTRY, AUTH_USER, BUSYBOX, MARKER


async def main() -> None:
    async with gantry.Connection() as client:
        password = client.set_secret("registry-password", AUTH_PASSWORD)
        image = client.container().from_(BUSYBOX).with_new_file("/marker.txt", MARKER)
        address = f"{AUTH_REGISTRY}/gantry-conformance/publish:{MARKER}"
        try:
            await image.publish(address)
            print("without credentials: published?!")
        except gantry.QueryError as error:
            print("without credentials:", error.code)
        ref = await image.with_registry_auth(AUTH_REGISTRY, AUTH_USER, password).publish(address)
        print("published:", ref)
        pulled = await (
            client.container()
            .with_registry_auth(AUTH_REGISTRY, AUTH_USER, password)
            .from_(ref)
            .with_exec(["cat", "/marker.txt"])
            .stdout()
        )
        print("pulled back:", pulled)


asyncio.run(main())
