"""Services (examples/services.py) against a real engine on the Docker runtime.

These tests use `docker_engine`, which pins the Docker runtime whatever the
machine's default (services run on both runtimes; the Rust end-to-end suite
covers each, and these tests have not been unpinned yet).
"""

from __future__ import annotations

import importlib.util
import uuid
from types import ModuleType

import pytest

import gantry
from conftest import BUSYBOX, SDK, Engine, run


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "services_example", SDK / "examples" / "services.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


services = load_example()


def test_a_bound_service_answers_its_client(docker_engine: Engine) -> None:
    page = f"page {uuid.uuid4().hex}\n"

    async def main() -> tuple[str, list[tuple[int, gantry.NetworkProtocol]], bool]:
        async with gantry.Connection() as client:
            got = await services.fetch_page(client, page)
            web = services.web_server(client, page)
            ports = [(await p.port(), await p.protocol()) for p in await web.ports()]
            hostname = await web.hostname()
            endpoint = await web.endpoint(scheme="http")
            return got, ports, endpoint == f"http://{hostname}:8080"

    got, ports, endpoint_ok = run(main())
    assert got == page
    assert ports == [(8080, gantry.NetworkProtocol.TCP)]
    assert endpoint_ok


def test_a_service_that_exits_fails_its_client(docker_engine: Engine) -> None:
    async def main() -> None:
        async with gantry.Connection() as client:
            broken = (
                client.container()
                .from_(BUSYBOX)
                .with_exposed_port(8080)
                .as_service(args=["sh", "-c", "echo no config; exit 4"])
            )
            await (
                client.container()
                .from_(BUSYBOX)
                .with_env_variable("RUN", uuid.uuid4().hex)
                .with_service_binding("db", broken)
                .with_exec(["true"])
                .sync()
            )

    with pytest.raises(gantry.ExecError) as caught:
        run(main())
    assert caught.value.exit_code == 4
    assert caught.value.stdout == "no config\n"
    assert "aliased as db" in str(caught.value)
