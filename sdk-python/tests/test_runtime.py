"""The runtime without an engine: laziness, query text, IDs, errors, names."""

from __future__ import annotations

import dataclasses
import inspect
import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

import gantry
from conftest import run
from gantry._core import Context
from gantry._errors import raise_for_errors

Responder = Callable[[str], dict[str, Any]]


class FakeSession:
    """Records documents; answers with `respond(document)`."""

    def __init__(self, respond: Responder | None = None) -> None:
        self.documents: list[str] = []
        self.respond = respond or (lambda _doc: {})

    async def query(self, document: str) -> dict[str, Any]:
        self.documents.append(document)
        return self.respond(document)


def client_with(session: FakeSession) -> gantry.Client:
    return gantry.Client(Context(session))


IMAGE = "127.0.0.1:5000/img:latest"


def test_chained_calls_send_nothing() -> None:
    session = FakeSession()
    client = client_with(session)
    ctr = (
        client.container()
        .from_(IMAGE)
        .with_env_variable("A", "1")
        .with_exec(["echo", "hi"])
        .with_workdir("/src")
    )
    assert isinstance(ctr, gantry.Container)
    assert session.documents == []


def test_object_parameters_take_their_own_type() -> None:
    """Object parameters are typed with the object the schema expects
    (`@expectedType`): mypy, which checks this file, rejects another type
    (and `warn_unused_ignores` fails it if an ignore below finds no error)."""
    client = client_with(FakeSession())
    ctr = client.container()
    cache = client.cache_volume("c")
    secret = client.set_secret("s", "v")
    assert isinstance(ctr.with_mounted_cache("/cache", cache), gantry.Container)
    assert isinstance(ctr.with_mounted_secret("/secret", secret), gantry.Container)

    def mistakes() -> None:  # type-checked, never called
        ctr.with_mounted_cache("/cache", secret)  # type: ignore[arg-type]
        ctr.with_mounted_secret("/secret", cache)  # type: ignore[arg-type]
        ctr.with_directory("/src", client.container())  # type: ignore[arg-type]

    assert callable(mistakes)


def test_awaiting_a_leaf_sends_exactly_one_query() -> None:
    session = FakeSession(
        lambda _doc: {"container": {"from": {"withExec": {"stdout": "hi\n"}}}}
    )
    client = client_with(session)
    out = run(client.container().from_(IMAGE).with_exec(["echo", "hi"]).stdout())
    assert out == "hi\n"
    assert session.documents == [
        'query{container{from(address:"127.0.0.1:5000/img:latest")'
        '{withExec(args:["echo","hi"]){stdout}}}}'
    ]


def test_optional_arguments_are_keywords_and_omitted_when_none() -> None:
    session = FakeSession(lambda _doc: {"container": {"withExec": {"stdout": ""}}})
    client = client_with(session)
    ctr = client.container().with_exec(
        ["true"], use_entrypoint=True, expect=gantry.ReturnType.ANY, stdin=None
    )
    run(ctr.stdout())
    assert session.documents == [
        'query{container{withExec(args:["true"],useEntrypoint:true,expect:ANY)'
        "{stdout}}}"
    ]
    params = inspect.signature(gantry.Container.with_exec).parameters
    assert params["args"].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    assert params["use_entrypoint"].kind is inspect.Parameter.KEYWORD_ONLY
    assert params["use_entrypoint"].default is None


def test_strings_are_escaped() -> None:
    session = FakeSession(lambda _doc: {"container": {"withExec": {"stdout": ""}}})
    client = client_with(session)
    tricky = 'quote " backslash \\ newline \n tab \t unicode é ✓'
    run(client.container().with_exec(["echo", tricky]).stdout())
    document = session.documents[0]
    literal = document[
        document.index('"echo",') + len('"echo",') : document.index("])")
    ]
    assert json.loads(literal) == tricky


def test_object_arguments_are_passed_by_id_fetched_once() -> None:
    def respond(document: str) -> dict[str, Any]:
        if document.endswith("{id}}}"):
            return {"directory": {"withNewFile": {"id": "Directory:abc"}}}
        return {"container": {"withDirectory": {"stdout": "ok"}}}

    session = FakeSession(respond)
    client = client_with(session)
    src = client.directory().with_new_file("a.txt", "a")
    ctr = client.container().with_directory("/src", src)
    assert session.documents == []
    run(ctr.stdout())
    assert session.documents == [
        'query{directory{withNewFile(path:"a.txt",contents:"a"){id}}}',
        'query{container{withDirectory(path:"/src",source:"Directory:abc"){stdout}}}',
    ]
    run(ctr.stdout())
    assert len(session.documents) == 3, "the ID is remembered on the object"


def test_sync_continues_from_the_returned_id() -> None:
    def respond(document: str) -> dict[str, Any]:
        if document.endswith("{sync}}}"):
            return {"container": {"from": {"sync": "Container:1"}}}
        return {"node": {"stdout": "from node"}}

    session = FakeSession(respond)
    client = client_with(session)
    synced = run(client.container().from_(IMAGE).sync())
    assert isinstance(synced, gantry.Container)
    assert run(synced.id()) == "Container:1"
    assert len(session.documents) == 1, "the synced object's ID is already known"
    assert run(synced.stdout()) == "from node"
    assert session.documents[-1] == (
        'query{node(id:"Container:1"){... on Container{stdout}}}'
    )


def test_object_lists_are_loaded_by_id() -> None:
    def respond(document: str) -> dict[str, Any]:
        if "envVariables" in document:
            return {
                "container": {
                    "envVariables": [{"id": "EnvVariable:a"}, {"id": "EnvVariable:b"}]
                }
            }
        return {"node": {"name": "A"}}

    session = FakeSession(respond)
    variables = run(client_with(session).container().env_variables())
    assert [type(v) for v in variables] == [gantry.EnvVariable, gantry.EnvVariable]
    assert session.documents == ["query{container{envVariables{id}}}"]
    assert run(variables[0].name()) == "A"
    assert (
        session.documents[-1]
        == 'query{node(id:"EnvVariable:a"){... on EnvVariable{name}}}'
    )


def test_exec_errors_carry_the_process_fields() -> None:
    response = {
        "data": None,
        "errors": [
            {
                "message": 'process "sh -c exit 3" did not complete successfully: '
                "exit code: 3",
                "path": ["container", "withExec", "sync"],
                "extensions": {
                    "_type": "EXEC_ERROR",
                    "code": "EXEC_ERROR",
                    "cmd": ["sh", "-c", "exit 3"],
                    "exitCode": 3,
                    "stdout": "out\n",
                    "stderr": "err\n",
                },
            }
        ],
    }
    with pytest.raises(gantry.ExecError) as caught:
        raise_for_errors(response)
    error = caught.value
    assert isinstance(error, gantry.QueryError)
    assert (error.exit_code, error.stdout, error.stderr) == (3, "out\n", "err\n")
    assert error.cmd == ["sh", "-c", "exit 3"]
    assert error.code == "EXEC_ERROR"
    assert error.path == ["container", "withExec", "sync"]
    assert "stderr:\nerr" in str(error)
    assert str(error).count("exit code: 3") == 1


def test_other_graphql_errors_are_query_errors_with_a_code() -> None:
    response = {
        "errors": [
            {"message": "unknown ID", "extensions": {"code": "NOT_FOUND"}},
            {"message": "second"},
        ]
    }
    with pytest.raises(gantry.QueryError) as caught:
        raise_for_errors(response)
    assert not isinstance(caught.value, gantry.ExecError)
    assert caught.value.code == "NOT_FOUND"
    assert str(caught.value) == "unknown ID (and 1 more errors)"
    raise_for_errors({"data": {"x": 1}})  # no errors: no exception


def test_error_types_are_distinct() -> None:
    assert issubclass(gantry.ConnectError, gantry.GantryError)
    assert issubclass(gantry.ConnectError, ConnectionError)
    assert issubclass(gantry.TransportError, gantry.GantryError)
    assert not issubclass(gantry.TransportError, gantry.QueryError)
    assert issubclass(gantry.ExecError, gantry.QueryError)


def test_generated_surface_follows_python_naming() -> None:
    assert callable(gantry.Container.from_)
    assert callable(gantry.Container.import_)
    assert callable(gantry.Container.with_mounted_cache)
    assert callable(gantry.Client.load_container_from_id)
    assert not hasattr(gantry.Client, "node"), "node(id:) is internal"
    assert issubclass(gantry.CacheSharingMode, __import__("enum").Enum)
    assert gantry.CacheSharingMode.LOCKED.value == "LOCKED"
    assert inspect.iscoroutinefunction(gantry.Container.stdout)
    assert not inspect.iscoroutinefunction(gantry.Container.with_exec)
    assert gantry.Container.with_exec.__doc__
    assert "Execute a command" in gantry.Container.with_exec.__doc__


def test_import_pulls_in_only_the_standard_library() -> None:
    code = (
        "import sys, sysconfig\n"
        "stdlib = sysconfig.get_paths()['stdlib']\n"
        "before = set(sys.modules)\n"
        "import gantry\n"
        "extra = [m for m, mod in sys.modules.items() if m not in before\n"
        "         and not m.startswith('gantry')\n"
        "         and getattr(mod, '__file__', None)\n"
        "         and not mod.__file__.startswith(stdlib)]\n"
        "print(extra)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_input_objects_are_object_literals() -> None:
    session = FakeSession(lambda _doc: {"directory": {"dockerBuild": {"sync": "x"}}})
    client = client_with(session)
    build = client.directory().docker_build(
        build_args=[
            gantry.BuildArg(name="A", value='quote " and \\ é'),
            gantry.BuildArg(name="B", value=""),
        ],
    )
    run(build.sync())
    assert session.documents == [
        "query{directory{dockerBuild(buildArgs:["
        '{name:"A",value:"quote \\" and \\\\ é"},{name:"B",value:""}]){sync}}}'
    ]


def test_input_object_optional_fields_are_left_out_when_none() -> None:
    session = FakeSession(lambda _doc: {"host": {"service": {"hostname": "h"}}})
    client = client_with(session)
    ports = [
        gantry.PortForward(backend=80),
        gantry.PortForward(
            backend=53, frontend=5353, protocol=gantry.NetworkProtocol.UDP
        ),
    ]
    assert run(client.host().service(ports).hostname()) == "h"
    assert session.documents == [
        "query{host{service(ports:[{backend:80},"
        "{frontend:5353,backend:53,protocol:UDP}]){hostname}}}"
    ]


def test_input_objects_are_frozen_keyword_dataclasses() -> None:
    arg = gantry.BuildArg(name="A", value="1")
    assert arg == gantry.BuildArg(value="1", name="A")
    with pytest.raises(dataclasses.FrozenInstanceError):
        arg.name = "B"  # type: ignore[misc]
    with pytest.raises(TypeError):
        gantry.BuildArg("A", "1")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        gantry.PortForward()  # type: ignore[call-arg]
