import asyncio

import gantry
from common import BUSYBOX, MARKER

HTTPD = ["httpd", "-f", "-p", "8080", "-h", "/www"]
# Mounting a filesystem needs root's capabilities (insecureRootCapabilities).
MOUNT = "mkdir -p /m && mount -t tmpfs tmpfs /m && echo mounted || echo refused"


async def main() -> None:
    async with gantry.Connection() as client:
        web = (
            client.container()
            .from_(BUSYBOX)
            .with_new_file("/www/index.html", "hello from the service\n")
            .with_exposed_port(8080)
            .as_service(args=HTTPD)
        )
        client_ctr = client.container().from_(BUSYBOX).with_env_variable("MARKER", MARKER)
        page = await (
            client_ctr.with_service_binding("www", web)
            .with_exec(["wget", "-qO-", "http://www:8080/"])
            .stdout()
        )
        print("page:", page.strip())
        for port in await web.ports():
            print(f"port: {await port.port()}/{(await port.protocol()).value}")
        hostname = await web.hostname()
        endpoint = await web.endpoint(scheme="http")
        print("endpoint is http://HOSTNAME:8080:", str(endpoint == f"http://{hostname}:8080").lower())
        broken = (
            client.container()
            .from_(BUSYBOX)
            .with_exposed_port(8080)
            .as_service(args=["sh", "-c", "echo broken service; exit 3"])
        )
        try:
            await client_ctr.with_service_binding("db", broken).with_exec(["true"]).sync()
            print("no error")
        except gantry.ExecError as error:
            print("caught ExecError")
            print("exit code:", error.exit_code)
            print("stdout:", error.stdout.strip())
        mount = ["sh", "-c", MOUNT]
        privileged = await client_ctr.with_exec(mount, insecure_root_capabilities=True).stdout()
        print("privileged exec:", privileged.strip())
        print("plain exec:", (await client_ctr.with_exec(mount).stdout()).strip())
        capable = (
            client.container()
            .from_(BUSYBOX)
            .with_exposed_port(8080)
            .as_service(
                args=["sh", "-c", f"mkdir -p /www; ({MOUNT}) > /www/index.html; exec {' '.join(HTTPD)}"],
                insecure_root_capabilities=True,
            )
        )
        answer = await (
            client_ctr.with_service_binding("capable", capable)
            .with_exec(["wget", "-qO-", "http://capable:8080/"])
            .stdout()
        )
        print("privileged service:", answer.strip())


asyncio.run(main())
