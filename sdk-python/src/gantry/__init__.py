"""gantry: the Python SDK for the gantry CI/CD pipeline engine.

    import asyncio
    import gantry

    async def main() -> None:
        async with gantry.Connection() as client:
            out = await (
                client.container()
                .from_("127.0.0.1:5000/gantry-fixtures/busybox:latest")
                .with_exec(["echo", "hello"])
                .stdout()
            )
            print(out)

    asyncio.run(main())

Chained calls build one query and send nothing; awaiting a leaf (`stdout()`,
`sync()`, `publish()`, ...) sends it. The classes `Client`, `Container`,
`Directory`, ... are generated from the engine's schema (`gantry._gen`); the
connection rules are in `Connection`, the errors in `GantryError`'s subclasses.
"""

from ._connection import Connection
from ._env import VERSION
from ._errors import (
    ConnectError,
    ExecError,
    GantryError,
    QueryError,
    TransportError,
)
from ._gen import *  # noqa: F403
from ._gen import __all__ as _generated

#: The version of gantry this SDK belongs to (generated from the engine's Cargo.toml).
__version__ = VERSION

__all__ = [
    "ConnectError",
    "Connection",
    "ExecError",
    "GantryError",
    "QueryError",
    "TransportError",
]
__all__ += _generated
