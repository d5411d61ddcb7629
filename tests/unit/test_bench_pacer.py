"""The benchmark's pacer sends on time, reads answers split across reads, and counts each."""

from __future__ import annotations

import asyncio
import contextlib
import io
import sys

import pytest

from bench.pacer import Pacer


async def _server(statuses: list[int]) -> tuple[asyncio.Server, list[bytes]]:
    """Answers each request with the next status, its head and body in separate writes."""
    bodies: list[bytes] = []
    answers = iter(statuses)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError):
            await answer(reader, writer)
        writer.close()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while head := await reader.readuntil(b"\r\n\r\n"):
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            bodies.append(await reader.readexactly(length))
            status = next(answers)
            writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: 2\r\n\r\n".encode())
            await writer.drain()
            await asyncio.sleep(0.001)
            writer.write(b"{}")
            await writer.drain()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, bodies


async def test_the_pacer_sends_rate_times_seconds_and_counts_answers_by_status(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("go\n"))
    server, bodies = await _server([201] * 18 + [500, 503])
    port = server.sockets[0].getsockname()[1]
    async with server:
        started = asyncio.get_running_loop().time()
        paced = await Pacer("127.0.0.1", port, "t").run(rate=50, seconds=0.4, connections=4)
        took = asyncio.get_running_loop().time() - started
    assert (paced.sent, paced.created, paced.failed) == (20, 18, 2)
    assert bodies == [b'{"title": "t"}'] * 20
    assert 0.38 <= took < 2.0  # open loop: the last request is due at 0.38 s
