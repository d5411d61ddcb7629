"""Paced POSTs over raw asyncio HTTP/1.1 connections: an open loop an httpx client cannot pace."""

from __future__ import annotations

import asyncio
import itertools
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field

from bench.infra import BenchError


@dataclass
class Paced:
    """What an open-loop run sent and got back. Latencies are from each request's actual
    send: a server that cannot keep up shows as a `sent_rate` below the plan (requests wait
    for a free connection) rather than as an ever-growing queue counted as latency."""

    planned: int
    ok: int = 0
    latencies: list[float] = field(default_factory=list)
    sent_at: list[float] = field(default_factory=list)  # perf_counter, per latency
    failures: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0  # from the first planned send to the last actual one
    cpu: float = 0.0  # CPU seconds of this (client) process over the run

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    def between(self, start: float, end: float) -> list[float]:
        """Latencies of the requests sent between two perf_counter times."""
        return [lat for lat, at in zip(self.latencies, self.sent_at, strict=True)
                if start <= at <= end]

    @property
    def sent_rate(self) -> float:
        return (self.ok + self.failed) / self.seconds if self.seconds else 0.0


def split(base_url: str) -> tuple[str, int]:
    parts = urllib.parse.urlsplit(base_url)
    if not parts.hostname or not parts.port:
        raise BenchError(f"need host and port in {base_url!r}")
    return parts.hostname, parts.port


async def read_head(reader: asyncio.StreamReader) -> tuple[int, dict[bytes, bytes]]:
    """The status code and the (lower-cased) headers of one response."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> int:
    writer.write(request)
    status, headers = await read_head(reader)
    if b"content-length" not in headers:
        raise BenchError(f"answer without Content-Length: {headers!r}")
    await reader.readexactly(int(headers[b"content-length"]))
    return status


async def paced_posts(
    base_url: str, path: str, body: bytes, per_second: float, seconds: float,
    connections: int = 64, stop: asyncio.Event | None = None,
) -> Paced:
    """POST `body` to `path`, request i planned at i / per_second, on whichever of the
    keep-alive `connections` is free; for `seconds`, or until `stop` is set. What a slow
    server leaves unsent by then is not sent (`sent_rate` says how much went)."""
    host, port = split(base_url)
    request = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    result = Paced(planned=max(1, round(per_second * seconds)))
    numbers = itertools.count()
    cpu = time.process_time()
    begin = time.perf_counter() + 0.2  # the connections open first
    end = begin + seconds

    async def one_connection() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while ((i := next(numbers)) < result.planned and time.perf_counter() < end
                   and not (stop and stop.is_set())):
                planned = begin + i / per_second
                await asyncio.sleep(max(0.0, planned - time.perf_counter()))
                sent = time.perf_counter()
                result.seconds = max(result.seconds, sent - begin)
                try:
                    status = await _exchange(reader, writer, request)
                except (OSError, asyncio.IncompleteReadError) as exc:
                    result.failures[type(exc).__name__] += 1
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                    continue
                if 200 <= status < 300:
                    result.ok += 1
                    result.latencies.append(time.perf_counter() - sent)
                    result.sent_at.append(sent)
                else:
                    result.failures[f"HTTP {status}"] += 1
        finally:
            writer.close()

    await asyncio.gather(*(one_connection() for _ in range(connections)))
    result.cpu = time.process_time() - cpu
    return result
