"""Services as Dagger scripts use them: an HTTP server bound by alias, its ports,
hostname and endpoint, a tunnel to the host, a service that exits early, and a command
and a service with root's capabilities."""

import sys
import urllib.request

import anyio
import dagger
from dagger import dag

BUSYBOX = "127.0.0.1:5000/gantry-fixtures/busybox:latest"
HTTPD = ["httpd", "-f", "-p", "8080", "-h", "/www"]
# Mounting a filesystem needs root's capabilities (insecureRootCapabilities).
MOUNT = "mkdir -p /m && mount -t tmpfs tmpfs /m && echo mounted || echo refused"


async def main() -> None:
    async with dagger.connection(dagger.Config(log_output=sys.stderr)):
        web = (
            dag.container()
            .from_(BUSYBOX)
            .with_new_file("/www/index.html", "hello from the service\n")
            .with_exposed_port(8080)
            .as_service(args=HTTPD)
        )
        page = await (
            dag.container()
            .from_(BUSYBOX)
            .with_service_binding("www", web)
            .with_exec(["wget", "-qO-", "http://www:8080/"])
            .stdout()
        )
        assert page == "hello from the service\n", repr(page)
        ports = [(await p.port(), await p.protocol()) for p in await web.ports()]
        assert ports == [(8080, dagger.NetworkProtocol.TCP)], ports
        hostname = await web.hostname()
        assert await web.endpoint(scheme="http") == f"http://{hostname}:8080"

        # A tunnel makes the service reachable from this process.
        tunnel = await dag.host().tunnel(web).start()
        endpoint = await tunnel.endpoint(scheme="http")
        body = await anyio.to_thread.run_sync(
            lambda: urllib.request.urlopen(endpoint, timeout=10).read()
        )
        assert body == b"hello from the service\n", body
        await tunnel.stop()

        broken = (
            dag.container()
            .from_(BUSYBOX)
            .with_exposed_port(8080)
            .as_service(args=["sh", "-c", "echo broken service; exit 3"])
        )
        try:
            await dag.container().from_(BUSYBOX).with_service_binding("db", broken).with_exec(
                ["true"]
            ).sync()
        except dagger.ExecError as e:
            assert e.exit_code == 3, e.exit_code
            assert e.stdout.strip() == "broken service", repr(e.stdout)
        else:
            raise AssertionError("expected dagger.ExecError")

        ctr = dag.container().from_(BUSYBOX)
        mount = ["sh", "-c", MOUNT]
        privileged = await ctr.with_exec(mount, insecure_root_capabilities=True).stdout()
        assert privileged == "mounted\n", repr(privileged)
        assert await ctr.with_exec(mount).stdout() == "refused\n"
        capable = (
            ctr.with_exposed_port(8080)
            .as_service(
                args=["sh", "-c", f"mkdir -p /www; ({MOUNT}) > /www/index.html; exec {' '.join(HTTPD)}"],
                insecure_root_capabilities=True,
            )
        )
        answer = await (
            ctr.with_service_binding("capable", capable)
            .with_exec(["wget", "-qO-", "http://capable:8080/"])
            .stdout()
        )
        assert answer == "mounted\n", repr(answer)
    print("services: ok")


anyio.run(main)
