"""A minimal HTTP/1.1 client for one `POST /query` over asyncio streams.

Why not a library: the engine speaks plain HTTP/1.1 on a Unix socket or on
loopback TCP, and the SDK sends one kind of request. asyncio's streams do both
transports; a general client (httpx, aiohttp) would add dependencies and tens
of milliseconds to `import gantry` for features never used here (TLS, proxies,
cookies, HTTP/2). Each request uses its own connection (`Connection: close`),
so concurrent queries need no pooling and a dead engine is noticed at once.
"""

from __future__ import annotations

import asyncio
import contextlib

from ._errors import TransportError

# Bodies larger than this are refused rather than buffered (stdout of a step
# is returned inline, so this is generous).
_MAX_BODY = 1 << 30
_STREAM_LIMIT = 1 << 20


class Endpoint:
    """Where the engine listens: a Unix socket path, or a loopback TCP port."""

    __slots__ = ("headers", "host", "port", "socket")

    def __init__(
        self,
        *,
        socket: str | None = None,
        port: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.socket = socket
        self.host = "127.0.0.1"
        self.port = port
        self.headers = headers or {}

    def describe(self) -> str:
        if self.socket is not None:
            return f"unix://{self.socket}"
        return f"http://{self.host}:{self.port}"

    async def open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.socket is not None:
            return await asyncio.open_unix_connection(self.socket, limit=_STREAM_LIMIT)
        return await asyncio.open_connection(self.host, self.port, limit=_STREAM_LIMIT)


async def post(
    endpoint: Endpoint, path: str, body: bytes
) -> tuple[int, dict[str, str], bytes]:
    """Sends `POST path` with a JSON body; returns (status, response headers with
    lowercase names, response body)."""
    try:
        reader, writer = await endpoint.open()
    except OSError as error:
        raise TransportError(
            f"cannot reach the gantry engine at {endpoint.describe()}: {error}"
        ) from error
    try:
        head = [
            f"POST {path} HTTP/1.1",
            "Host: gantry",
            "Content-Type: application/json",
            "Accept: application/json",
            f"Content-Length: {len(body)}",
            "Connection: close",
        ]
        head.extend(f"{name}: {value}" for name, value in endpoint.headers.items())
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        await writer.drain()
        return await _read_response(reader)
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as error:
        raise TransportError(
            f"the connection to the gantry engine at {endpoint.describe()} "
            f"failed mid-request: {error!r}"
        ) from error
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def _read_response(
    reader: asyncio.StreamReader,
) -> tuple[int, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise TransportError(
            f"the engine sent a malformed HTTP status line: {lines[0]!r}"
        )
    status = int(parts[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return status, headers, await _read_chunked(reader)
    length = headers.get("content-length")
    if length is not None:
        size = int(length)
        if size > _MAX_BODY:
            raise TransportError(f"the engine's response is too large ({size} bytes)")
        return status, headers, await reader.readexactly(size)
    return status, headers, await reader.read()


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            # Trailers (normally none) end with an empty line.
            while (await reader.readuntil(b"\r\n")) != b"\r\n":
                pass
            return b"".join(chunks)
        total += size
        if total > _MAX_BODY:
            raise TransportError("the engine's response is too large")
        chunks.append(await reader.readexactly(size))
        await reader.readexactly(2)
