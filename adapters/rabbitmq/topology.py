"""Every queue the service uses, declared here and only here, identically by every process."""

from __future__ import annotations

from typing import Any, cast

from aio_pika.abc import AbstractChannel
from faststream.rabbit import QueueType, RabbitQueue

from adapters.queues import CREATE, CREATE_DLQ, DISPATCH_DLQ, dispatch_queues

#: How often a dispatch may be delivered before RabbitMQ dead-letters it as poison.
DISPATCH_DELIVERY_LIMIT = 20


def _to(dlq: str) -> dict[str, str]:
    return {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq}


class Topology:
    """The queues of one deployment: `dispatch` quorum queues and, on a cluster (several nodes
    named), the intake and dead-letter queues as quorum queues too, so that they survive the
    loss of a node; on one node they stay classic queues, as they always were.

    Where a quorum queue's leader goes: RabbitMQ 3.10 and later place it by the queue's
    `x-queue-leader-locator`, `client-local` (the node declaring it) by default on 3.x and
    `balanced` (the node leading the fewest) on 4.x. The first dispatch queue keeps the
    arguments it was always declared with (a queue declared again with another argument is
    refused); the others ask for `balanced`, and the dispatch queues are declared first, in
    order: the first lands where the declaring process is connected, each next one on a node
    that leads fewer, so their leaders spread over the nodes.
    """

    def __init__(self, dispatch: int = 1, *, cluster: bool = False) -> None:
        self.dispatch = dispatch_queues(dispatch)
        kind: Any = QueueType.QUORUM if cluster else QueueType.CLASSIC
        self.create = RabbitQueue(CREATE, kind, durable=True, arguments=cast(Any, _to(CREATE_DLQ)))
        self.create_dlq = RabbitQueue(CREATE_DLQ, kind, durable=True)
        self.dispatch_dlq = RabbitQueue(DISPATCH_DLQ, kind, durable=True)
        self.dispatch_queues = tuple(
            RabbitQueue(name, queue_type=QueueType.QUORUM, durable=True, arguments=cast(Any, {
                "x-delivery-limit": DISPATCH_DELIVERY_LIMIT, **_to(DISPATCH_DLQ),
                **({"x-queue-leader-locator": "balanced"} if i else {})}))
            for i, name in enumerate(self.dispatch))

    @property
    def all(self) -> tuple[RabbitQueue, ...]:
        """In the order they are declared: the dispatch queues first (see above)."""
        return (*self.dispatch_queues, self.create, self.create_dlq, self.dispatch_dlq)

    async def declare(self, channel: AbstractChannel) -> None:
        """On a channel of the topology's own. Not through FastStream's declarer: it keeps one
        queue object per queue, and a subscriber starting later would be handed this channel's
        instead of consuming on its own channel with its own prefetch."""
        for queue in self.all:
            await channel.declare_queue(queue.name, durable=queue.durable,
                                        arguments=queue.arguments)
