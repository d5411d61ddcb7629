"""The service's FastStream endpoints on its one broker: a subscriber for each queue a process may
consume and a publisher for each queue it sends to. The AsyncAPI document is made from them."""

from __future__ import annotations

from typing import Annotated, Any

from faststream.middlewares import AckPolicy
from faststream.rabbit import Channel, RabbitBroker, RabbitQueue
from faststream.rabbit.publisher import RabbitPublisher
from faststream.rabbit.subscriber import RabbitSubscriber
from pydantic import WithJsonSchema

from adapters.queues import CREATE, CREATE_DLQ, REASON_HEADER
from adapters.rabbitmq.topology import Topology

#: What a dead letter's body is: whatever the refused message carried.
REJECTED = Annotated[Any, WithJsonSchema({
    "title": "Rejected", "description": "The rejected message's body as it came (it may not "
    "even be JSON)."})]


class Endpoints:
    """Declared when the adapter is made (nothing connects); a subscriber starts only once its
    process consumes the queue. Each subscriber has a channel of its own, whose prefetch is
    set when consuming begins. Only the AMQP contract is in the document: `tasks.create` and
    its dead-letter queue; the dispatch queues are internal."""

    def __init__(self, broker: RabbitBroker, topology: Topology) -> None:
        self._broker = broker
        self.subscribers: dict[str, tuple[RabbitSubscriber, Channel]] = {}
        self.publishers: dict[str, RabbitPublisher] = {}
        self._subscriber(topology.create, title=CREATE, description=(
            "Create a task: the body is the same JSON as `POST /tasks`. A message is "
            "acknowledged once its task is stored; one that cannot become a task goes to "
            f"`{CREATE_DLQ}`."))
        for queue in topology.dispatch_queues:
            self._subscriber(queue, include_in_schema=False)
            self._publisher(queue, include_in_schema=False)
        self._publisher(topology.create_dlq, title=CREATE_DLQ, schema=REJECTED, description=(
            f"Messages of `{CREATE}` that could not become a task, with the reason in the "
            f"`{REASON_HEADER}` header."))
        self._publisher(topology.dispatch_dlq, include_in_schema=False)

    def subscriber(self, queue: str) -> tuple[RabbitSubscriber, Channel]:
        """The subscriber of `queue`; one made now (not documented) for a queue the service does
        not declare, which must then exist already."""
        if queue not in self.subscribers:
            self._subscriber(RabbitQueue(queue, declare=False), include_in_schema=False)
        return self.subscribers[queue]

    def _subscriber(self, queue: RabbitQueue, **spec: Any) -> None:
        channel = Channel()
        self.subscribers[queue.name] = self._broker.subscriber(
            queue, channel=channel, ack_policy=AckPolicy.MANUAL, no_reply=True, **spec), channel

    def _publisher(self, queue: RabbitQueue, **spec: Any) -> None:
        self.publishers[queue.name] = self._broker.publisher(queue, persist=True, **spec)
