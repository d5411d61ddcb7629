"""Many open SSE streams from one child process over raw asyncio sockets; a few of them timed.

Every stream counts the events it receives (a byte search, cheap enough for a thousand
streams); the first `probes` streams also read each event's `at` (the history row's time)
and keep the delay from it to the moment the bytes arrived, on the same clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import resource
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bench.infra import BenchError
from bench.rawhttp import read_head, split

MARK = b"event: transition"
AT = b'"at":"'
CREATED = b'"from_status":null'


@dataclass
class Received:
    streams: int
    events: list[int]  # per stream
    #: from the timed streams: (delay, whether the change is a creation)
    delays: list[tuple[float, bool]] = field(default_factory=list)
    cpu: float = 0.0  # CPU seconds of the client process while the streams were open
    seconds: float = 0.0  # how long they were open
    closed: int = 0  # streams the server ended or broke
    marked: list[int] = field(default_factory=list)  # per stream, when `mark()` was called


async def _open(host: str, port: int, path: str) -> tuple[asyncio.StreamReader, Any]:
    reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                 "Accept: text/event-stream\r\n\r\n".encode())
    status, _ = await read_head(reader)
    if status != 200:
        raise BenchError(f"GET {path} answered {status}")
    return reader, writer


async def _read(reader: asyncio.StreamReader, got: Received, index: int, probe: bool) -> None:
    tail = b""
    while chunk := await reader.read(1 << 16):
        arrived = time.time()
        data = tail + chunk
        if not probe:
            got.events[index] += data.count(MARK)
            tail = data[-(len(MARK) - 1):]
            continue
        *done, tail = data.split(b"\n\n")
        for message in done:
            if MARK not in message:
                continue
            got.events[index] += 1
            start = message.find(AT) + len(AT)
            at = datetime.fromisoformat(message[start:message.index(b'"', start)].decode())
            got.delays.append((arrived - at.timestamp(), CREATED in message))
    got.closed += 1


async def _hold(base_url: str, path: str, count: int, probes: int,
                ready: Any, timed_events: Any, mark: Any, stop: Any, out: Any) -> None:
    host, port = split(base_url)
    got = Received(count, [0] * count)
    opened: list[tuple[asyncio.StreamReader, Any]] = []
    for first in range(0, count, 100):  # not a thousand connects at once
        opened += await asyncio.gather(
            *(_open(host, port, path) for _ in range(first, min(first + 100, count))))
    readers = [asyncio.ensure_future(_read(r, got, i, i < probes))
               for i, (r, _) in enumerate(opened)]
    cpu, begin = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    ready.set()
    while not stop.is_set() and not mark.is_set():
        await asyncio.sleep(0.05)
        timed_events.value = sum(got.events[:probes])
    used = resource.getrusage(resource.RUSAGE_SELF)
    got.cpu = used.ru_utime + used.ru_stime - cpu.ru_utime - cpu.ru_stime
    got.seconds = time.monotonic() - begin
    got.marked, timed = list(got.events), len(got.delays)
    await asyncio.to_thread(stop.wait)
    got.delays = got.delays[:timed]
    for reading in readers:
        reading.cancel()
    for _, writer in opened:
        with contextlib.suppress(OSError):
            writer.close()
    out.put(got)


def _child(base_url: str, path: str, count: int, probes: int,
           ready: Any, timed_events: Any, mark: Any, stop: Any, out: Any) -> None:
    asyncio.run(_hold(base_url, path, count, probes, ready, timed_events, mark, stop, out))


class Streams:
    """`count` streams of `path` held open by a child process until `close()`."""

    def __init__(self, base_url: str, path: str, count: int, probes: int) -> None:
        context = multiprocessing.get_context("fork")  # no threads or loop run in the parent now
        self._ready, self._mark, self._stop = context.Event(), context.Event(), context.Event()
        self._out: Any = context.Queue()
        self._timed: Any = context.Value("q", 0)
        self._process = context.Process(
            target=_child, args=(base_url, path, count, probes, self._ready, self._timed,
                                 self._mark, self._stop, self._out), daemon=True)
        self._process.start()

    def wait_open(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.2):
            if not self._process.is_alive() or time.monotonic() > deadline:
                self._process.kill()
                raise BenchError("the SSE client could not open its streams")

    def timed_events(self) -> int:
        """Events received so far by the timed streams (updated every 0.05 s)."""
        return int(self._timed.value)

    def mark(self) -> None:
        """What was received so far, and the CPU used so far, is what `close()` reports as
        `marked`, `delays`, `cpu` and `seconds`."""
        self._mark.set()
        time.sleep(0.2)  # the child looks every 0.05 s

    def close(self) -> Received:
        self._stop.set()
        try:
            got: Received = self._out.get(timeout=60)
        finally:
            self._process.join(10)
            if self._process.is_alive():
                self._process.kill()
        return got
