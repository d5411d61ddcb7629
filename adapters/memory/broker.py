"""In-memory broker: asyncio queues standing in for RabbitMQ in unit tests and `tasks dev`."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec
import structlog

from adapters.queues import DEAD_LETTERED_AT, DEAD_LETTERS, DISPATCH, REASON_HEADER, TRACE_HEADER
from application.messaging import DeliveryHandler
from application.model import Dispatch

_encode = msgspec.json.Encoder().encode
log = structlog.get_logger(__name__)


class InMemoryDelivery:
    """Settled once; until then it holds one of its consumer's prefetch slots."""

    def __init__(self, broker: InMemoryBroker, queue: str, body: bytes, *,
                 message_id: str | None = None, reply_to: str | None = None,
                 correlation_id: str | None = None,
                 headers: Mapping[str, object] | None = None) -> None:
        self.broker, self.queue, self.body = broker, queue, body
        self.message_id, self.reply_to, self.correlation_id = message_id, reply_to, correlation_id
        self.headers: Mapping[str, object] = dict(headers or {})
        self.settled = asyncio.Event()

    async def ack(self) -> None:
        self.settled.set()

    async def requeue(self) -> None:
        self.settled.set()
        self.broker.put(self.queue, self.body, message_id=self.message_id,
                        reply_to=self.reply_to, correlation_id=self.correlation_id,
                        headers=self.headers)

    async def dead_letter(self, reason: str) -> None:
        self.settled.set()
        self.broker.put(DEAD_LETTERS[self.queue], self.body, message_id=self.message_id,
                        correlation_id=self.correlation_id,
                        headers={**self.headers, REASON_HEADER: reason,
                                 DEAD_LETTERED_AT: datetime.now(UTC).isoformat()})

    async def reply(self, body: bytes, content_type: str,
                    headers: Mapping[str, str] | None = None) -> None:
        if self.reply_to:
            self.broker.put(self.reply_to, body, correlation_id=self.correlation_id,
                            headers=headers)


class InMemoryBroker:
    """The MessageBroker port over asyncio queues; `published` keeps every dispatch sent."""

    name = "broker"

    def __init__(self) -> None:
        self.queues: dict[str, asyncio.Queue[InMemoryDelivery]] = {}
        self.published: list[Dispatch] = []
        #: how many consumers each queue has
        self.consuming: Counter[str] = Counter()
        self._consumers: set[asyncio.Task[None]] = set()

    def queue(self, name: str) -> asyncio.Queue[InMemoryDelivery]:
        return self.queues.setdefault(name, asyncio.Queue())

    def put(self, queue: str, body: bytes, **properties: Any) -> None:
        self.queue(queue).put_nowait(InMemoryDelivery(self, queue, body, **properties))

    async def publish(self, dispatches: Sequence[Dispatch]) -> None:
        """As RabbitMQ's: a dispatch's trace goes in the headers, not in the body."""
        for dispatch in dispatches:
            self.published.append(dispatch)
            trace = dispatch.trace
            body = _encode(msgspec.structs.replace(dispatch, trace=None) if trace else dispatch)
            self.put(DISPATCH, body, message_id=f"{dispatch.task_id}:{dispatch.attempt}",
                     headers={TRACE_HEADER: trace} if trace else None)

    async def consume(self, queue: str, prefetch: int, handler: DeliveryHandler) -> None:
        task = asyncio.create_task(self._feed(queue, prefetch, handler), name=f"consume {queue}")
        self._consumers.add(task)
        self.consuming[queue] += 1

    async def _feed(self, queue: str, prefetch: int, handler: DeliveryHandler) -> None:
        slots = asyncio.Semaphore(prefetch)
        handling: set[asyncio.Task[None]] = set()

        async def handle(delivery: InMemoryDelivery) -> None:
            try:
                try:
                    await handler(delivery)
                except Exception:  # as RabbitMQ would: the message goes back to its queue
                    log.exception("consumer_failed", queue=queue)
                    if not delivery.settled.is_set():
                        await delivery.requeue()
                await delivery.settled.wait()
            finally:
                slots.release()

        while True:
            await slots.acquire()
            delivery = await self.queue(queue).get()
            task = asyncio.create_task(handle(delivery))
            handling.add(task)
            task.add_done_callback(handling.discard)

    async def consume_dispatches(self, concurrency: int, handler: DeliveryHandler) -> None:
        """The one dispatch queue (`tasks dev` splits nothing)."""
        await self.consume(DISPATCH, concurrency, handler)

    async def stop_consuming(self) -> None:
        for task in self._consumers:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._consumers, return_exceptions=True)
        self._consumers.clear()
        self.consuming.clear()

    async def check(self) -> str | None:
        return None
