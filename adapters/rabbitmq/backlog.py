"""The dispatch queues on RabbitMQ, as the sweep, the diagnosis and the gauges look at them
(DispatchQueue port)."""

from __future__ import annotations

import asyncio
import uuid

from aio_pika.exceptions import AMQPError, ChannelNotFoundEntity

from adapters.queues import queue_of
from adapters.rabbitmq.broker import RabbitMQ
from application.messaging import QueueLook
from domain.errors import ServiceUnavailable


class RabbitDispatchQueue:
    """Asks RabbitMQ through passive declares on a short-lived channel: a queue's message count
    is the messages ready for a consumer, not those delivered and not yet acknowledged. Only
    the queues this deployment consumes are looked at: a queue left over from a larger
    TASKS_DISPATCH_QUEUES is nobody's, and what waits there is found by the sweep."""

    def __init__(self, broker: RabbitMQ, timeout: float = 10.0) -> None:
        self._broker = broker
        self._timeout = timeout

    async def ready(self) -> int:
        """A missing queue is an outage for the sweep: what it sent there would be lost too."""
        return sum(look.ready for look in (await self.looks()).values())

    async def look(self, task_id: uuid.UUID) -> QueueLook:
        return (await self._looks((queue_of(task_id, self._broker.dispatch),)))[0]

    async def looks(self) -> dict[str, QueueLook]:
        queues = self._broker.dispatch
        return dict(zip(queues, await self._looks(queues), strict=True))

    async def _looks(self, queues: tuple[str, ...]) -> list[QueueLook]:
        found: list[QueueLook] = []
        try:
            async with asyncio.timeout(self._timeout), self._broker.channel() as channel:
                for name in queues:
                    try:
                        queue = await channel.declare_queue(name, passive=True)
                    except ChannelNotFoundEntity as exc:
                        raise ServiceUnavailable(f"the queue {name} is missing") from exc
                    result = queue.declaration_result
                    found.append(QueueLook(result.message_count or 0,
                                           result.consumer_count or 0))
        except (AMQPError, TimeoutError) as exc:
            raise ServiceUnavailable(f"broker: {type(exc).__name__}") from exc
        return found
