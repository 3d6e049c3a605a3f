"""Environment variables the SDK reads: the same names as the engine's own.

Mirrors `server/cli/src/env.rs`; keep the two in step.
"""

from __future__ import annotations

import os

#: Set by `gantry run` for the command it runs: loopback port of the session.
SESSION_PORT = "GANTRY_SESSION_PORT"
#: Set by `gantry run`: the token sent as the HTTP basic-auth username.
SESSION_TOKEN = "GANTRY_SESSION_TOKEN"
#: Path of the engine's Unix socket.
SOCKET = "GANTRY_SOCKET"
#: The `gantry` binary to start when no engine answers (else `gantry` on PATH).
BIN = "GANTRY_BIN"


def default_socket() -> str:
    """`$XDG_RUNTIME_DIR/gantry/engine.sock`, else `/tmp/gantry-$UID/engine.sock`."""
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR")
    if runtime_dir:
        return os.path.join(runtime_dir, "gantry", "engine.sock")
    return f"/tmp/gantry-{os.getuid()}/engine.sock"


def socket_path() -> str:
    """The socket to use: `GANTRY_SOCKET` if set and not empty, else the default."""
    return os.environ.get(SOCKET) or default_socket()
