"""The dispatch queue on RabbitMQ, as the redispatch sweep looks at it (DispatchQueue port)."""

from __future__ import annotations

import asyncio

from aio_pika.exceptions import AMQPError, ChannelNotFoundEntity

from adapters.queues import DISPATCH
from adapters.rabbitmq.broker import RabbitMQ
from application.messaging import QueueLook
from domain.errors import ServiceUnavailable


class RabbitDispatchQueue:
    """Asks RabbitMQ through a passive declare on a short-lived channel: its message count is
    the messages ready for a consumer, not those delivered and not yet acknowledged."""

    def __init__(self, broker: RabbitMQ, timeout: float = 10.0) -> None:
        self._broker = broker
        self._timeout = timeout

    async def ready(self) -> int:
        """A missing queue is an outage for the sweep: what it sent there would be lost too."""
        return (await self.look()).ready

    async def look(self) -> QueueLook:
        try:
            async with asyncio.timeout(self._timeout), self._broker.channel() as channel:
                queue = await channel.declare_queue(DISPATCH, passive=True)
        except ChannelNotFoundEntity as exc:
            raise ServiceUnavailable(f"the queue {DISPATCH} is missing") from exc
        except (AMQPError, TimeoutError) as exc:
            raise ServiceUnavailable(f"broker: {type(exc).__name__}") from exc
        result = queue.declaration_result
        return QueueLook(result.message_count or 0, result.consumer_count or 0)
