"""In-memory dispatch: an asyncio queue standing in for RabbitMQ in unit tests and `tasks dev`."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from application.model import Dispatch


class InMemoryDispatchQueue:
    """The publisher port over one asyncio queue; `published` keeps every message sent."""

    name = "broker"

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Dispatch] = asyncio.Queue()
        self.published: list[Dispatch] = []

    async def publish(self, dispatches: Sequence[Dispatch]) -> None:
        for dispatch in dispatches:
            self.published.append(dispatch)
            self.queue.put_nowait(dispatch)

    async def check(self) -> None:
        return None
