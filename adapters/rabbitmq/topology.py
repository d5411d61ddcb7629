"""Every queue the service uses, declared here and only here, identically by every process."""

from __future__ import annotations

from typing import Any, cast

from aio_pika.abc import AbstractChannel
from faststream.rabbit import QueueType, RabbitQueue

from adapters.queues import CREATE, CREATE_DLQ, DISPATCH, DISPATCH_DLQ

#: How often a dispatch may be delivered before RabbitMQ dead-letters it as poison.
DISPATCH_DELIVERY_LIMIT = 20


def _to(dlq: str) -> dict[str, str]:
    return {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq}


CREATE_QUEUE = RabbitQueue(CREATE, durable=True, arguments=cast(Any, _to(CREATE_DLQ)))
CREATE_DLQ_QUEUE = RabbitQueue(CREATE_DLQ, durable=True)
DISPATCH_QUEUE = RabbitQueue(
    DISPATCH,
    queue_type=QueueType.QUORUM,
    durable=True,
    arguments=cast(Any, {"x-delivery-limit": DISPATCH_DELIVERY_LIMIT, **_to(DISPATCH_DLQ)}),
)
DISPATCH_DLQ_QUEUE = RabbitQueue(DISPATCH_DLQ, durable=True)

ALL = (CREATE_QUEUE, CREATE_DLQ_QUEUE, DISPATCH_QUEUE, DISPATCH_DLQ_QUEUE)


async def declare(channel: AbstractChannel) -> None:
    """On a channel of the topology's own, kept open so that the robust connection declares
    them again after a reconnect. Not through FastStream's declarer: it keeps one queue object
    per queue, and a subscriber starting later would be handed this channel's instead of
    consuming on its own channel with its own prefetch."""
    for queue in ALL:
        await channel.declare_queue(queue.name, durable=queue.durable, arguments=queue.arguments)
