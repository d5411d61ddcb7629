"""Ports to the message broker: publishing dispatches, looking at the dispatch queue, and
consuming deliveries that are settled once."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Protocol, runtime_checkable

import msgspec

from application.model import Dispatch
from application.ports import HealthProbe


class DispatchPublisher(Protocol):
    async def publish(self, dispatches: Sequence[Dispatch]) -> None:
        """Return only once the broker has confirmed every message; raise otherwise."""
        ...


class QueueLook(msgspec.Struct, frozen=True):
    """A dispatch queue at a glance: messages ready for a worker, and workers consuming."""

    ready: int
    consumers: int


@runtime_checkable  # a handler's dependency: Litestar checks what it is given
class DispatchQueue(Protocol):
    """The dispatch queues: one, or the N that dispatch is split over."""

    async def ready(self) -> int:
        """Dispatches waiting for a worker to take them, in all the queues together (not those
        a worker holds already); ServiceUnavailable when a queue cannot be looked at, or is
        missing."""
        ...

    async def look(self, task_id: uuid.UUID) -> QueueLook:
        """The queue that task's dispatches go to."""
        ...

    async def looks(self) -> dict[str, QueueLook]:
        """Every dispatch queue, by name."""
        ...


class Dispatcher(Protocol):
    """What moves committed dispatches to the broker (application/relay.py)."""

    def send(self, entry: int, dispatch: Dispatch) -> None:
        """Publish this committed dispatch now, in the background. Its outbox `entry` is held
        for this process meanwhile: removed once the broker confirmed it, handed back if not."""
        ...

    def notify(self) -> None:
        """Dispatches were put in the outbox: relay them now."""
        ...


class Delivery(Protocol):
    """One message taken from a queue. It is settled once: acknowledged, put back, or moved to
    the queue's dead-letter queue with the reason; until then the broker keeps it."""

    body: bytes
    message_id: str | None
    reply_to: str | None
    correlation_id: str | None
    headers: Mapping[str, object]

    async def ack(self) -> None: ...

    async def requeue(self) -> None: ...

    async def dead_letter(self, reason: str) -> None:
        """Into the dead-letter queue with `reason` in a header, confirmed; then acknowledged."""
        ...

    async def reply(self, body: bytes, content_type: str,
                    headers: Mapping[str, str] | None = None) -> None:
        """To `reply_to` with the same `correlation_id`; nothing without `reply_to`."""
        ...


DeliveryHandler = Callable[[Delivery], Awaitable[None]]


class MessageBroker(DispatchPublisher, HealthProbe, Protocol):
    """The broker of one process: it publishes dispatches and feeds consumers."""

    async def consume(self, queue: str, prefetch: int, handler: DeliveryHandler) -> None:
        """Hand `queue`'s messages to `handler` (each in its own asyncio task), at most
        `prefetch` unsettled at a time, from now until `stop_consuming`; across reconnects."""
        ...

    async def consume_dispatches(self, concurrency: int, handler: DeliveryHandler) -> None:
        """`consume` every dispatch queue, `concurrency` shared between them."""
        ...

    async def stop_consuming(self) -> None:
        """Take no new messages; those handed out may still be settled."""
        ...
