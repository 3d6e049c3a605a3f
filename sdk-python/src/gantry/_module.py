"""The Python module runtime of `gantry call` (see gantry's docs/modules.md).

    python _module.py describe SPEC RESULT
    python _module.py invoke SPEC RESULT      (request JSON on stdin)

SPEC is a JSON object naming the module (`source`, `name`, `object`, `format`).
`describe` writes the main object's functions as JSON to RESULT; `invoke` calls
one with JSON arguments inside the engine session named by the environment
(`gantry call` sets the same variables as `gantry run`) and writes
`{"type", "value"}` or `{"type", "id"}` to RESULT.

Functions are the public methods of the main class (`format: gantry`) or the
`@function` methods of an `@object_type` class (`format: dagger`, modules
written for Dagger's Python SDK, run with `dag` connected to the session).
Parameter types may be gantry's (`gantry.Directory`) or Dagger's
(`dagger.Directory`); objects are loaded by ID into the client each needs.

The file is self-contained (it imports `gantry` and `dagger` only when a
module uses them): the gantry binary embeds it and runs it with the module's
interpreter. Exit status: 0 done, 1 the function raised, 3 the module could
not be loaded.
"""

from __future__ import annotations

import asyncio
import enum
import importlib
import inspect
import json
import re
import sys
import traceback
import types
import typing
from pathlib import Path
from typing import Any

LOAD_FAILED = 3
OBJECTS = ("Directory", "File", "Secret", "Container", "CacheVolume")
SCALARS: dict[type, str] = {str: "String", int: "Int", float: "Float", bool: "Boolean"}


class LoadError(Exception):
    """The module cannot be loaded or described."""


def snake(name: str) -> str:
    return re.sub(r"[^0-9a-zA-Z]+", "_", name).strip("_").lower()


def load_class(spec: dict[str, Any]) -> type:
    """Imports the module's code and returns its main class."""
    source = Path(spec["source"])
    package = snake(spec["name"])
    object_name = spec["object"]
    candidates: list[tuple[Path, str]] = []
    if (source / "src" / package / "__init__.py").is_file():
        candidates.append((source / "src", package))
    if (source / package / "__init__.py").is_file():
        candidates.append((source, package))
    if (source / "main.py").is_file():
        candidates.append((source, "main"))
    if not candidates:
        raise LoadError(
            f"no Python code found in {source}: expected main.py, "
            f"{package}/__init__.py or src/{package}/__init__.py"
        )
    path, name = candidates[0]
    sys.path.insert(0, str(path))
    module = importlib.import_module(name)
    found = getattr(module, object_name, None)
    if found is None and name != "main":
        try:
            main = importlib.import_module(f"{name}.main")
        except ModuleNotFoundError:
            main = None
        found = getattr(main, object_name, None) if main else None
    if not inspect.isclass(found):
        raise LoadError(
            f"{path / name}: no class {object_name} (the module's main object)"
        )
    return found


def functions(cls: type, dagger_format: bool) -> list[tuple[str, Any]]:
    """The (name, function) pairs the class exports, in source order."""
    out = []
    for attr, member in cls.__dict__.items():
        fn = (
            member.__func__
            if isinstance(member, (staticmethod, classmethod))
            else member
        )
        if not callable(fn) or not inspect.isfunction(fn):
            continue
        meta = getattr(fn, "__dagger_function__", None)
        if dagger_format:
            if meta is None:
                continue
            out.append((getattr(meta, "name", None) or attr, fn))
        elif not attr.startswith("_"):
            out.append((attr, fn))
    return out


def unwrap_annotated(hint: Any) -> tuple[Any, str]:
    """`Annotated[T, Doc("...")]` → (T, "...")."""
    doc = ""
    if typing.get_origin(hint) is typing.Annotated:
        base, *extras = typing.get_args(hint)
        for extra in extras:
            text = getattr(extra, "documentation", None) or getattr(extra, "doc", None)
            if isinstance(text, str):
                doc = text
        return base, doc
    return hint, doc


def type_of(hint: Any) -> tuple[str, bool, list[str] | None]:
    """A hint as (type name, optional, enum values)."""
    hint, _ = unwrap_annotated(hint)
    if hint is None or hint is type(None):
        return "Void", True, None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(members) == 1:
            name, _, values = type_of(members[0])
            return name, True, values
        raise LoadError(f"unsupported union type {hint!r}")
    if origin is typing.Literal:
        return "String", False, [str(v) for v in typing.get_args(hint)]
    if origin in (list, tuple, typing.Sequence) or (
        origin is not None and getattr(origin, "__name__", "") in ("Sequence", "list")
    ):
        args = typing.get_args(hint)
        inner, _, _ = type_of(args[0] if args else str)
        return f"[{inner}]", False, None
    if inspect.isclass(hint):
        if hint in SCALARS:
            return SCALARS[hint], False, None
        if issubclass(hint, enum.Enum):
            return "String", False, [m.name for m in hint]
        if hint.__name__ in OBJECTS and hint.__module__.split(".")[0] in (
            "gantry",
            "dagger",
        ):
            return hint.__name__, False, None
    raise LoadError(
        f"unsupported type {hint!r}: use str, int, float, bool, list, Directory, File, "
        "Secret, Container or CacheVolume"
    )


def split_doc(doc: str) -> tuple[str, dict[str, str]]:
    """A docstring without its `Args:` section, and that section's entries."""
    lines = doc.splitlines()
    body: list[str] = []
    params: dict[str, str] = {}
    in_args = False
    current = ""
    for line in lines:
        stripped = line.strip()
        if stripped in ("Args:", "Arguments:", "Parameters:"):
            in_args = True
            continue
        if in_args:
            match = re.match(r"^(\w+)(?:\s*\([^)]*\))?\s*:\s*(.*)$", stripped)
            if match and line.startswith((" ", "\t")):
                current = match.group(1)
                params[current] = match.group(2)
                continue
            if stripped and current and line.startswith((" ", "\t")):
                params[current] += " " + stripped
                continue
            if not stripped:
                continue
            in_args = False
        body.append(line)
    return "\n".join(body).strip(), params


def json_default(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.name
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (list, tuple)) and all(
        isinstance(v, (str, int, float, bool)) for v in value
    ):
        return list(value)
    return None


def describe_function(name: str, fn: Any) -> dict[str, Any]:
    hints = typing.get_type_hints(fn, include_extras=True)
    doc, param_docs = split_doc(inspect.getdoc(fn) or "")
    args = []
    for param in list(inspect.signature(fn).parameters.values())[1:]:
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        hint = hints.get(param.name, str)
        type_name, optional, values = type_of(hint)
        _, annotated_doc = unwrap_annotated(hint)
        default = None
        if param.default is not inspect.Parameter.empty:
            optional = True
            default = json_default(param.default)
        args.append(
            {
                "name": param.name,
                "type": type_name,
                "optional": optional,
                "default": default,
                "description": annotated_doc or param_docs.get(param.name, ""),
                "enum": values,
            }
        )
    returns, _, _ = type_of(hints.get("return", type(None)))
    return {"name": name, "description": doc, "args": args, "returns": returns}


def describe(spec: dict[str, Any]) -> dict[str, Any]:
    cls = load_class(spec)
    dagger_format = spec.get("format") == "dagger"
    return {
        "object": spec["object"],
        "description": inspect.getdoc(cls) or "",
        "functions": [
            describe_function(name, fn) for name, fn in functions(cls, dagger_format)
        ],
    }


class Clients:
    """The gantry and Dagger clients that arguments are loaded into, on demand."""

    def __init__(self) -> None:
        self.gantry: Any = None
        self.gantry_connection: Any = None
        self.dagger = False

    async def gantry_client(self) -> Any:
        if self.gantry is None:
            import gantry

            self.gantry_connection = gantry.Connection()
            self.gantry = await self.gantry_connection.__aenter__()
        return self.gantry

    async def dagger_client(self) -> Any:
        dagger: Any = importlib.import_module("dagger")
        if not self.dagger:
            await dagger.connect()
            self.dagger = True
        return dagger.dag

    async def close(self) -> None:
        if self.gantry_connection is not None:
            await self.gantry_connection.__aexit__(None, None, None)
        if self.dagger:
            await importlib.import_module("dagger").close()


async def convert(clients: Clients, hint: Any, value: Any) -> Any:
    """A JSON argument as the Python value the parameter's hint asks for."""
    hint, _ = unwrap_annotated(hint)
    origin = typing.get_origin(hint)
    if value is None:
        return None
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(hint) if a is not type(None)]
        return await convert(clients, members[0], value)
    if origin in (list, tuple) or (
        origin is not None and getattr(origin, "__name__", "") == "Sequence"
    ):
        args = typing.get_args(hint)
        items = [await convert(clients, args[0] if args else str, v) for v in value]
        return tuple(items) if origin is tuple else items
    if inspect.isclass(hint):
        if issubclass(hint, enum.Enum):
            return hint[value] if value in hint.__members__ else hint(value)
        if hint.__name__ in OBJECTS:
            loader = (
                "load_"
                + snake(re.sub(r"(?<!^)(?=[A-Z])", "_", hint.__name__))
                + "_from_id"
            )
            if hint.__module__.split(".")[0] == "dagger":
                dagger: Any = importlib.import_module("dagger")
                dag = await clients.dagger_client()
                id_type = getattr(dagger, f"{hint.__name__}ID")
                return getattr(dag, loader)(id_type(value))
            client = await clients.gantry_client()
            return getattr(client, loader)(value)
        if hint is float:
            return float(value)
    return value


async def result_of(value: Any, declared: str) -> dict[str, Any]:
    if value is None:
        return {"type": "Void"}
    name = type(value).__name__
    if name in OBJECTS and hasattr(value, "id"):
        object_id = await value.id()
        return {"type": name, "id": str(object_id)}
    if isinstance(value, enum.Enum):
        value = value.name
    if isinstance(value, (list, tuple)):
        value = [v.name if isinstance(v, enum.Enum) else v for v in value]
    return {"type": declared, "value": value}


def print_failure(error: BaseException) -> None:
    """A failed exec as command, exit code and output tails; else a traceback."""
    if all(hasattr(error, a) for a in ("exit_code", "stdout", "stderr", "cmd")):
        failed: Any = error
        cmd = failed.cmd
        print(
            f"exec failed: {' '.join(cmd) if isinstance(cmd, list) else cmd}",
            file=sys.stderr,
        )
        print(f"  exit code: {failed.exit_code}", file=sys.stderr)
        for stream in ("stdout", "stderr"):
            text = str(getattr(failed, stream) or "").rstrip()
            if text:
                print(f"  --- {stream} (last lines) ---", file=sys.stderr)
                for line in text.splitlines()[-20:]:
                    print(f"  {line}", file=sys.stderr)
        return
    traceback.print_exception(error, file=sys.stderr)
    if isinstance(error, ModuleNotFoundError) and error.name in ("dagger", "gantry"):
        package = (
            "dagger-io==0.21.9"
            if error.name == "dagger"
            else "gantry-sdk (sdk-python/)"
        )
        print(
            f"hint: install {package} into {sys.executable}, or set GANTRY_PYTHON "
            "to an interpreter that has it",
            file=sys.stderr,
        )


async def invoke(spec: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    try:
        cls = load_class(spec)
    except LoadError:
        raise
    except Exception as error:
        print_failure(error)
        raise LoadError("the module's code could not be imported") from error
    dagger_format = spec.get("format") == "dagger"
    found = dict(functions(cls, dagger_format))
    name = request["function"]
    if name not in found:
        raise LoadError(f"{spec['object']} has no function {name!r}")
    fn = found[name]
    hints = typing.get_type_hints(fn, include_extras=True)
    clients = Clients()
    try:
        if dagger_format:
            await clients.dagger_client()
        kwargs = {
            arg: await convert(clients, hints.get(arg, str), value)
            for arg, value in request.get("args", {}).items()
        }
        instance = cls()
        attr = next(
            a for a, m in cls.__dict__.items() if getattr(m, "__func__", m) is fn
        )
        value = getattr(instance, attr)(**kwargs)
        if inspect.isawaitable(value):
            value = await value
        declared, _, _ = type_of(hints.get("return", type(None)))
        return await result_of(value, declared)
    finally:
        await clients.close()


def main(argv: list[str]) -> int:
    if len(argv) != 4 or argv[1] not in ("describe", "invoke"):
        print("usage: _module.py describe|invoke SPEC RESULT", file=sys.stderr)
        return 2
    verb, spec, result = argv[1], json.loads(argv[2]), Path(argv[3])
    if verb == "describe":
        try:
            result.write_text(json.dumps(describe(spec)))
        except Exception as error:
            print_failure(error)
            return LOAD_FAILED
        return 0
    request = json.loads(sys.stdin.read() or "{}")
    try:
        answer = asyncio.run(invoke(spec, request))
    except LoadError as error:
        print(f"error: {error}", file=sys.stderr)
        return LOAD_FAILED
    except Exception as error:
        print_failure(error)
        return 1
    result.write_text(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
