"""The HTTP/1.1 client against small local servers (no engine)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest

import gantry
from conftest import run
from gantry import _http

Handler = Callable[[bytes], bytes]
T = TypeVar("T")


async def serve_once(
    path: Path, reply: Handler, call: Callable[[], Awaitable[T]]
) -> tuple[T, list[bytes]]:
    seen: list[bytes] = []

    async def handle(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(
            next(
                line.split(b":")[1]
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
        )
        request = head + await reader.readexactly(length)
        seen.append(request)
        writer.write(reply(request))
        await writer.drain()
        writer.close()

    server = await asyncio.start_unix_server(handle, path=str(path))
    async with server:
        result = await call()
    return result, seen


def test_content_length_and_headers(tmp_path: Path) -> None:
    endpoint = _http.Endpoint(
        socket=str(tmp_path / "s"), headers={"X-Gantry-Workdir": "/w"}
    )

    def reply(_request: bytes) -> bytes:
        return (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"X-Gantry-Version: 1.2.3\r\nContent-Length: 2\r\n\r\n{}"
        )

    result, seen = run(
        serve_once(tmp_path / "s", reply, lambda: _http.post(endpoint, "/query", b"{}"))
    )
    status, headers, body = result
    assert (status, body) == (200, b"{}")
    assert headers["x-gantry-version"] == "1.2.3", "names are lowercased"
    assert seen[0].startswith(b"POST /query HTTP/1.1\r\n")
    assert b"\r\nX-Gantry-Workdir: /w\r\n" in seen[0]
    assert seen[0].endswith(b"\r\n\r\n{}")


def test_chunked_body(tmp_path: Path) -> None:
    endpoint = _http.Endpoint(socket=str(tmp_path / "s"))

    def reply(_request: bytes) -> bytes:
        return (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n"
        )

    result, _ = run(
        serve_once(tmp_path / "s", reply, lambda: _http.post(endpoint, "/q", b"x"))
    )
    assert (result[0], result[2]) == (200, b"hello world")


def test_http_errors_become_transport_errors(tmp_path: Path) -> None:
    from gantry._connection import _HttpSession

    session = _HttpSession(_http.Endpoint(socket=str(tmp_path / "s")))

    def reply(_request: bytes) -> bytes:
        body = b'{"errors":[{"message":"missing or wrong session token"}]}'
        return b"HTTP/1.1 401 Unauthorized\r\nContent-Length: %d\r\n\r\n%s" % (
            len(body),
            body,
        )

    with pytest.raises(gantry.TransportError) as caught:
        run(serve_once(tmp_path / "s", reply, lambda: session.query("{version}")))
    assert caught.value.status == 401
    assert "HTTP 401: missing or wrong session token" in str(caught.value)


def test_unreachable_socket_is_a_transport_error(tmp_path: Path) -> None:
    endpoint = _http.Endpoint(socket=str(tmp_path / "missing.sock"))
    with pytest.raises(gantry.TransportError, match="cannot reach the gantry engine"):
        run(_http.post(endpoint, "/query", b"{}"))
