"""Finding the engine: `Connection` and the session it opens.

The order (the same in every gantry SDK):

1. Inside `gantry run`: `GANTRY_SESSION_PORT` and `GANTRY_SESSION_TOKEN` name a
   loopback HTTP session; the token is the basic-auth username.
2. Otherwise the engine's Unix socket: `GANTRY_SOCKET`, else
   `$XDG_RUNTIME_DIR/gantry/engine.sock`, else `/tmp/gantry-$UID/engine.sock`.
   Requests carry `X-Gantry-Workdir` so relative host paths resolve against the
   script's working directory, not the engine's.
3. If nothing answers on the socket: start `gantry serve --socket PATH` (the
   binary from `GANTRY_BIN`, else `gantry` on PATH) in its own session, log to
   `engine.log` beside the socket, wait for it to answer and leave it running
   for the next script. It stops by itself after `GANTRY_IDLE_TIMEOUT` (default
   30m) with no client. Starting one says so, once, on stderr:
   `gantry: started engine (pid N) on SOCKET; log: PATH`; reusing one says nothing.

Every request names the SDK (`X-Gantry-Client: python/VERSION`) and every
response the engine's version (`X-Gantry-Version`). When they do not match
(from 1.0 on: major and minor; before 1.0: the whole version), the first
response says so, once per process, on stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from types import TracebackType
from typing import Any

from . import _env, _http
from ._core import Context
from ._errors import ConnectError, TransportError, raise_for_errors
from ._gen import Client

__all__ = ["Connection"]

#: How long an engine the SDK starts waits with no client before it stops,
#: unless `GANTRY_IDLE_TIMEOUT` says otherwise (the same in every gantry SDK).
DEFAULT_IDLE_TIMEOUT = "30m"

_INSTALL_HINT = (
    "build it with `cargo build --release -p gantry` in the gantry repository and "
    f"put target/release/gantry on PATH, or set {_env.BIN} to the binary's path"
)


#: Whether this process has compared the engine's version with its own yet.
_version_checked = False


def _check_version(headers: dict[str, str]) -> None:
    """Warns once per process when the engine's version does not match the SDK's."""
    global _version_checked
    engine = headers.get(_env.VERSION_HEADER.lower())
    if _version_checked or engine is None:
        return
    _version_checked = True
    warning = _env.version_warning(_env.sdk_version(), engine)
    if warning is not None:
        print(warning, file=sys.stderr, flush=True)


def _client_header() -> dict[str, str]:
    return {_env.CLIENT_HEADER: f"python/{_env.sdk_version()}"}


class _HttpSession:
    """Sends GraphQL documents to one engine endpoint."""

    def __init__(self, endpoint: _http.Endpoint) -> None:
        self.endpoint = endpoint

    async def query(self, document: str) -> dict[str, Any]:
        body = json.dumps({"query": document}, ensure_ascii=False).encode()
        status, headers, payload = await _http.post(self.endpoint, "/query", body)
        _check_version(headers)
        try:
            response = json.loads(payload)
        except ValueError:
            response = None
        if status != 200:
            message = _first_message(response) or payload[:200].decode(
                "utf-8", "replace"
            )
            raise TransportError(
                f"the gantry engine at {self.endpoint.describe()} answered "
                f"HTTP {status}: {message}",
                status=status,
            )
        if not isinstance(response, dict):
            raise TransportError("the gantry engine's response is not a JSON object")
        raise_for_errors(response)
        data = response.get("data")
        if not isinstance(data, dict):
            raise TransportError("the gantry engine's response has no data")
        return data


def _first_message(response: object) -> str | None:
    if isinstance(response, dict):
        errors = response.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            message = errors[0].get("message")
            return str(message) if message is not None else None
    return None


class Connection:
    """Connects to a gantry engine; `async with` yields the root `Client`.

        async with gantry.Connection() as client:
            print(await client.container().from_(addr).with_exec(["ls"]).stdout())

    Args:
        socket: Unix socket to use instead of `GANTRY_SOCKET` or the default path.
            Given explicitly, it also takes precedence over a `gantry run` session.
        workdir: Directory that relative host paths resolve against
            (default: the current working directory). Unix socket only; a
            `gantry run` session resolves them against its own directory.
        start_engine: Start `gantry serve` when no engine answers (default True).
        start_timeout: Seconds to wait for a started engine to answer.
    """

    def __init__(
        self,
        *,
        socket: str | os.PathLike[str] | None = None,
        workdir: str | os.PathLike[str] | None = None,
        start_engine: bool = True,
        start_timeout: float = 20.0,
    ) -> None:
        self._socket = os.fspath(socket) if socket is not None else None
        self._workdir = os.fspath(workdir) if workdir is not None else None
        self._start_engine = start_engine
        self._start_timeout = start_timeout

    async def __aenter__(self) -> Client:
        endpoint = await self._endpoint()
        return Client(Context(_HttpSession(endpoint)))

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # Every request has its own HTTP connection: nothing stays open.
        return None

    async def _endpoint(self) -> _http.Endpoint:
        port = os.environ.get(_env.SESSION_PORT)
        if port and self._socket is None:
            token = os.environ.get(_env.SESSION_TOKEN)
            if not token:
                raise ConnectError(
                    f"{_env.SESSION_PORT} is set but {_env.SESSION_TOKEN} is not: "
                    "run the script with `gantry run -- ...`, or unset both to use "
                    "the engine's socket"
                )
            if not port.isdigit():
                raise ConnectError(f"{_env.SESSION_PORT}={port!r} is not a port number")
            import binascii

            credentials = binascii.b2a_base64(f"{token}:".encode(), newline=False)
            headers = {"Authorization": "Basic " + credentials.decode("ascii")}
            return _http.Endpoint(port=int(port), headers=headers | _client_header())

        path = self._socket or _env.socket_path()
        endpoint = _http.Endpoint(
            socket=path, headers=self._workdir_header() | _client_header()
        )
        if await _answers(path):
            return endpoint
        if not self._start_engine:
            raise ConnectError(
                f"no gantry engine answers on {path}: start one with `gantry serve`"
            )
        await _start_engine(path, self._start_timeout)
        return endpoint

    def _workdir_header(self) -> dict[str, str]:
        workdir = os.path.abspath(self._workdir) if self._workdir else os.getcwd()
        # Percent-encoded: any directory name (`café` too) reaches the engine, which
        # refuses relative host paths from a client that sends none.
        return {_env.WORKDIR_HEADER: _env.encode_workdir(workdir)}


async def _answers(path: str) -> bool:
    """Whether an engine accepts connections on the socket."""
    try:
        _reader, writer = await asyncio.open_unix_connection(path)
    except OSError:
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


def _find_binary() -> str:
    explicit = os.environ.get(_env.BIN)
    if explicit:
        if os.path.isfile(explicit) and os.access(explicit, os.X_OK):
            return explicit
        raise ConnectError(
            f"{_env.BIN}={explicit} is not an executable file: {_INSTALL_HINT}"
        )
    import shutil

    found = shutil.which("gantry")
    if found is None:
        raise ConnectError(
            "no gantry engine is running and no `gantry` binary was found to "
            "start one: " + _INSTALL_HINT
        )
    return found


def _tail(path: str, lines: int = 20) -> str:
    try:
        with open(path, "rb") as log:
            log.seek(0, os.SEEK_END)
            log.seek(max(0, log.tell() - 8192))
            text = log.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


async def _start_engine(path: str, timeout: float) -> None:
    """Starts `gantry serve --socket path` detached and waits until it answers."""
    binary = _find_binary()
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, mode=0o700, exist_ok=True)
    log_path = os.path.join(directory, "engine.log")
    import fcntl

    # One starter at a time: scripts launched together share one engine.
    lock_fd = os.open(
        os.path.join(directory, "engine.start.lock"), os.O_CREAT | os.O_RDWR, 0o600
    )
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if loop.time() > deadline:
                    raise ConnectError(
                        "another process is still starting the gantry engine on "
                        + path,
                        log_path=log_path,
                    ) from None
                await asyncio.sleep(0.05)
        if await _answers(path):
            return
        log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        environment = dict(os.environ)
        if not environment.get(_env.IDLE_TIMEOUT):
            environment[_env.IDLE_TIMEOUT] = DEFAULT_IDLE_TIMEOUT
        try:
            # posix_spawn + setsid: the engine outlives this script, gets no
            # terminal signals from it, and leaves no Popen object to warn about.
            pid = os.posix_spawn(
                binary,
                [binary, "serve", "--socket", path],
                environment,
                file_actions=[
                    (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                    (os.POSIX_SPAWN_DUP2, log_fd, 1),
                    (os.POSIX_SPAWN_DUP2, log_fd, 2),
                ],
                setsid=True,
            )
        except OSError as error:
            raise ConnectError(
                f"could not start {binary} serve: {error}", log_path=log_path
            ) from error
        finally:
            os.close(log_fd)
        while True:
            if await _answers(path):
                print(
                    f"gantry: started engine (pid {pid}) on {path}; log: {log_path}",
                    file=sys.stderr,
                    flush=True,
                )
                return
            exited, status = os.waitpid(pid, os.WNOHANG)
            if exited:
                if await _answers(path):  # another engine won the race
                    return
                code = os.waitstatus_to_exitcode(status)
                raise ConnectError(
                    f"the gantry engine started from {binary} exited with status "
                    f"{code} before answering on {path}; its log ({log_path}) "
                    "ends with:\n"
                    f"{_tail(log_path)}",
                    log_path=log_path,
                )
            if loop.time() > deadline:
                raise ConnectError(
                    f"the gantry engine started from {binary} (pid {pid}) did not "
                    f"answer on {path} within {timeout:g} s; see its log: {log_path}",
                    log_path=log_path,
                )
            await asyncio.sleep(0.05)
    finally:
        os.close(lock_fd)
