"""A small Server-Sent Events reader for the tests: events as they arrive, with arrival time."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class Received:
    id: str | None
    event: str
    data: dict[str, Any]
    at: float = field(default_factory=time.monotonic)  # when it arrived, monotonic seconds


@dataclass
class Stream:
    """What one open stream has received so far; `ended` once the server closed it."""

    status: int
    headers: httpx.Headers
    events: list[Received] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    async def until(self, count: int, timeout: float = 15) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.events) < count:
            if self.ended.is_set() or time.monotonic() > deadline:
                raise AssertionError(f"got {len(self.events)} of {count} events "
                                     f"(ended: {self.ended.is_set()}): {self.events}")
            await asyncio.sleep(0.02)
        return self.events[:count]


@asynccontextmanager
async def open_stream(base_url: str, path: str, headers: dict[str, str] | None = None,
                      params: Any = None) -> AsyncIterator[Stream]:
    """Reads `path` in the background while the block runs; closes the connection after."""
    client = httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(10, read=None))
    request = client.build_request("GET", path, headers=headers, params=params)
    response = await client.send(request, stream=True)
    stream = Stream(response.status_code, response.headers)

    async def read() -> None:
        event: dict[str, Any] = {}
        try:
            async for line in response.aiter_lines():
                if line.startswith(":"):
                    stream.comments.append(line[1:].strip())
                elif line == "":
                    if "data" in event:
                        stream.events.append(Received(event.get("id"),
                                                      event.get("event", "message"),
                                                      json.loads(event["data"])))
                    event = {}
                else:
                    name, _, value = line.partition(":")
                    event[name] = value.removeprefix(" ")
        except httpx.HTTPError:
            pass
        finally:
            stream.ended.set()

    reader = asyncio.create_task(read()) if response.status_code == 200 else None
    if reader is None:
        await response.aread()
        stream.ended.set()
    try:
        yield stream
    finally:
        if reader is not None:
            reader.cancel()
        await response.aclose()
        await client.aclose()
