"""More of the core API as Dagger scripts use it: env/workdir/user/entrypoint, lists of
objects, IDs handed back to the engine, files exported to the host, parallel branches
and publishing with registry auth."""

import os
import sys
import tempfile
from pathlib import Path

import anyio
import dagger
from dagger import dag

BUSYBOX = "127.0.0.1:5000/gantry-fixtures/busybox:latest"
AUTH_REGISTRY = os.environ.get("GANTRY_TEST_AUTH_REGISTRY", "127.0.0.1:5001")
AUTH_USER = os.environ.get("GANTRY_TEST_AUTH_REGISTRY_USER", "gantry")


async def main() -> None:
    async with dagger.connection(dagger.Config(log_output=sys.stderr)):
        ctr = (
            dag.container()
            .from_(BUSYBOX)
            .with_env_variable("GREETING", "hi")
            .with_workdir("/work")
            .with_user("1000:1000")
            .with_entrypoint(["sh", "-c"])
            .with_default_args(['echo "$GREETING from $(pwd) as $(id -u)"'])
            .with_label("org.example.scenario", "more-api")
        )
        out = await ctr.with_exec([], use_entrypoint=True).stdout()
        assert out == "hi from /work as 1000\n", repr(out)
        assert await ctr.workdir() == "/work"
        assert await ctr.user() == "1000:1000"
        assert await ctr.entrypoint() == ["sh", "-c"]
        assert await ctr.env_variable("GREETING") == "hi"
        assert await ctr.label("org.example.scenario") == "more-api"
        names = {await v.name(): await v.value() for v in await ctr.env_variables()}
        assert names.get("GREETING") == "hi", names

        # An ID handed back to the engine: sync, id, load_*_from_id.
        built = await (
            dag.container()
            .from_(BUSYBOX)
            .with_new_file("/data/msg.txt", "from a file\n")
            .with_exec(["sh", "-c", "cp /data/msg.txt /data/copy.txt"])
            .sync()
        )
        cid = await built.id()
        again = dag.load_container_from_id(dagger.ContainerID(cid))
        assert await again.file("/data/copy.txt").contents() == "from a file\n"
        assert sorted(await again.directory("/data").entries()) == ["copy.txt", "msg.txt"]
        f = await again.file("/data/msg.txt").sync()
        assert await dag.load_file_from_id(dagger.FileID(await f.id())).size() == 12

        # Exports to the host.
        with tempfile.TemporaryDirectory() as tmp:
            path = await again.file("/data/msg.txt").export(f"{tmp}/out/msg.txt")
            assert Path(path).read_text() == "from a file\n", path
            await again.directory("/data").export(f"{tmp}/dir")
            assert sorted(os.listdir(f"{tmp}/dir")) == ["copy.txt", "msg.txt"]

        # Parallel branches.
        results: dict[int, str] = {}

        async def branch(i: int) -> None:
            results[i] = await (
                dag.container().from_(BUSYBOX).with_exec(["echo", f"branch {i}"]).stdout()
            )

        async with anyio.create_task_group() as tg:
            for i in range(3):
                tg.start_soon(branch, i)
        assert results == {i: f"branch {i}\n" for i in range(3)}, results

        # Publish with registry auth (the password comes from the environment).
        password = dag.set_secret(
            "registry-password", os.environ["GANTRY_TEST_AUTH_REGISTRY_PASSWORD"]
        )
        ref = await (
            dag.container()
            .from_(BUSYBOX)
            .with_new_file("/hello.txt", "published\n")
            .with_registry_auth(AUTH_REGISTRY, AUTH_USER, password)
            .publish(f"{AUTH_REGISTRY}/gantry-dagger-sdk/python-auth:latest")
        )
        assert "@sha256:" in ref, ref
    print("more_api: ok")


anyio.run(main)
