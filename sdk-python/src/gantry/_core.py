"""Lazy query building: the runtime under the generated classes in `_gen`.

An object (`Container`, `Directory`, ...) holds a `Context`: the chain of field
selections from the root that produces it. Calling a method that returns an
object only extends the chain; nothing is sent. Awaiting a leaf (`stdout()`,
`sync()`, `publish()`, ...) renders the whole chain as one GraphQL document,
sends it, and walks the response back down the chain.

Object arguments are passed by ID: before sending, each object argument's
`id` is fetched (one request per object, remembered on the object), so the
engine receives `withDirectory(path:"/src", source:"Directory:…")`. Input
objects (`BuildArg`, `PortForward`) are written inline as object literals,
`{name:"A",value:"B"}`, leaving out the fields that are `None`.
"""

from __future__ import annotations

import asyncio
import enum
import json
from collections.abc import Sequence
from typing import Any, Protocol

__all__ = ["Arg", "Context", "Input", "Object", "Session"]


class Session(Protocol):
    """What a `Context` sends documents through (see `_connection`)."""

    async def query(self, document: str) -> dict[str, Any]:
        """Sends one document and returns its `data`, raising on errors."""
        ...


class Arg:
    """One argument of a field selection; `None` values are left out."""

    __slots__ = ("name", "value")

    def __init__(self, name: str, value: object) -> None:
        self.name = name
        self.value = value


class Input:
    """Base of every generated input object (a frozen dataclass).

    `_fields` lists its fields under their GraphQL names, in schema order.
    """

    __slots__ = ()

    def _fields(self) -> list[Arg]:
        raise NotImplementedError


class _Selection:
    __slots__ = ("args", "name", "on")

    def __init__(self, name: str, args: Sequence[Arg], on: str | None = None) -> None:
        self.name = name
        self.args = tuple(arg for arg in args if arg.value is not None)
        # Type condition for an inline fragment (`node(id:) { ... on T { … } }`).
        self.on = on


class Context:
    """An immutable chain of selections from the root, plus the session."""

    __slots__ = ("_chain", "_id", "_session")

    def __init__(
        self,
        session: Session,
        chain: tuple[_Selection, ...] = (),
        known_id: str | None = None,
    ) -> None:
        self._session = session
        self._chain = chain
        # The ID of the object this chain produces, once known.
        self._id = known_id

    def select(self, name: str, args: Sequence[Arg] = ()) -> Context:
        """A new context with one more field selected; sends nothing."""
        return Context(self._session, (*self._chain, _Selection(name, args)))

    def load(self, type_name: str, object_id: str) -> Context:
        """A context addressing an object of `type_name` by ID, from the root."""
        node = _Selection("node", [Arg("id", object_id)], on=type_name)
        return Context(self._session, (node,), known_id=object_id)

    async def id(self) -> str:
        """The ID of the object this chain produces (fetched once, remembered)."""
        if self._id is None:
            value = await self.select("id").execute()
            if not isinstance(value, str):
                raise TypeError(f"the engine returned a non-string ID: {value!r}")
            self._id = value
        return self._id

    def document(self) -> str:
        """The GraphQL document for this chain. Object arguments must be resolved."""
        parts = ["query"]
        depth = 0
        for selection in self._chain:
            parts.append("{")
            parts.append(selection.name)
            depth += 1
            if selection.args:
                rendered = ",".join(
                    f"{arg.name}:{_literal(arg.value)}" for arg in selection.args
                )
                parts.append(f"({rendered})")
            if selection.on is not None:
                parts.append("{... on " + selection.on)
                depth += 1
        parts.append("}" * depth)
        return "".join(parts)

    async def execute(self) -> Any:
        """Sends the chain as one query and returns the value at its end."""
        await self._resolve_object_args()
        data = await self._session.query(self.document())
        return _walk(data, self._chain)

    async def _resolve_object_args(self) -> None:
        objects: dict[int, Object] = {}
        for selection in self._chain:
            for arg in selection.args:
                _collect_objects(arg.value, objects)
        pending = [obj for obj in objects.values() if obj._ctx._id is None]
        if len(pending) == 1:
            await pending[0]._id()
        elif pending:
            await asyncio.gather(*(obj._id() for obj in pending))


class Object:
    """Base of every generated object class: wraps a `Context`."""

    __slots__ = ("_ctx",)

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def _select(self, name: str, args: Sequence[Arg] = ()) -> Context:
        return self._ctx.select(name, args)

    def _load(self, type_name: str, object_id: str) -> Context:
        return self._ctx.load(type_name, object_id)

    async def _id(self) -> str:
        return await self._ctx.id()

    def __repr__(self) -> str:
        known = f" {self._ctx._id}" if self._ctx._id else ""
        return f"<gantry.{type(self).__name__}{known}>"


def _collect_objects(value: object, found: dict[int, Object]) -> None:
    if isinstance(value, Object):
        found[id(value)] = value
    elif isinstance(value, Input):
        for field in value._fields():
            _collect_objects(field.value, found)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _collect_objects(item, found)
    elif isinstance(value, dict):
        for item in value.values():
            _collect_objects(item, found)


def _literal(value: object) -> str:
    """A GraphQL literal for an argument value (arguments are inlined)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"{value} cannot be sent to the engine")
        return repr(value)
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, Object):
        if value._ctx._id is None:
            raise RuntimeError("an object argument was not resolved to its ID")
        return json.dumps(value._ctx._id, ensure_ascii=False)
    if isinstance(value, Input):
        fields = ",".join(
            f"{field.name}:{_literal(field.value)}"
            for field in value._fields()
            if field.value is not None
        )
        return "{" + fields + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_literal(item) for item in value) + "]"
    if isinstance(value, dict):
        fields = ",".join(
            f"{key}:{_literal(item)}" for key, item in value.items() if item is not None
        )
        return "{" + fields + "}"
    if value is None:
        return "null"
    raise TypeError(f"cannot send a {type(value).__name__} as a GraphQL argument")


def _walk(data: Any, chain: tuple[_Selection, ...]) -> Any:
    """Follows the chain's field names down the response `data`."""
    for index, selection in enumerate(chain):
        if data is None:
            return None
        if isinstance(data, list):
            rest = chain[index:]
            return [_walk(item, rest) for item in data]
        data = data[selection.name]
    return data
