"""The dispatch queue of the in-memory broker, as the redispatch sweep looks at it."""

from __future__ import annotations

import uuid

from adapters.memory.broker import InMemoryBroker
from adapters.queues import DISPATCH
from application.messaging import QueueLook


class InMemoryDispatchQueue:
    """DispatchQueue port on the one in-memory dispatch queue (`tasks dev` splits nothing):
    what waits in it (a consumer's held messages are taken)."""

    def __init__(self, broker: InMemoryBroker) -> None:
        self._broker = broker

    async def ready(self) -> int:
        return self._broker.queue(DISPATCH).qsize()

    async def look(self, task_id: uuid.UUID) -> QueueLook:
        return QueueLook(await self.ready(), self._broker.consuming[DISPATCH])

    async def looks(self) -> dict[str, QueueLook]:
        return {DISPATCH: QueueLook(await self.ready(), self._broker.consuming[DISPATCH])}
