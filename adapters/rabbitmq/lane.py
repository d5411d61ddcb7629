"""The lane: plain aio-pika on the paths every task crosses, consuming `tasks.create` and
`tasks.dispatch` and publishing dispatches.

FastStream wraps each message in its parser, middlewares and argument resolution; profiled on
the worker and the intake (issue 4) that was the largest single cost per message, so this
traffic goes straight through aio-pika (which FastStream itself runs on), on a robust
connection of its own. The topology, the intake's replies and dead-letters, and the health
ping stay on FastStream.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence

import aio_pika
import msgspec
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection

from adapters.rabbitmq.topology import DISPATCH
from application.model import Dispatch
from domain.errors import ServiceUnavailable

_encode = msgspec.json.Encoder().encode

Handler = Callable[[AbstractIncomingMessage], Awaitable[None]]


class Lane:
    """Publishes dispatches persistent and confirmed; hands deliveries to consumer callbacks.

    `open()` raises while RabbitMQ is unreachable (the caller retries); once open, aio-pika's
    robust connection reconnects by itself and restores the channel, its prefetch and the
    consumer. Publishing while it is down raises ServiceUnavailable: the outbox keeps the row.
    """

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self._url = url
        self._timeout = timeout
        self._connection: AbstractRobustConnection | None = None
        self._publishing: AbstractChannel | None = None

    async def open(self) -> None:
        if self._connection is not None:
            return
        connection = await aio_pika.connect_robust(self._url, client_properties={
            "connection_name": "tasks lane"})
        try:
            self._publishing = await connection.channel(publisher_confirms=True)
        except BaseException:
            await connection.close()
            raise
        self._connection = connection

    async def close(self) -> None:
        connection, self._connection, self._publishing = self._connection, None, None
        if connection is not None:
            with contextlib.suppress(Exception):  # closing a dead connection: nothing to do
                await connection.close()

    async def publish(self, dispatches: Sequence[Dispatch]) -> None:
        """All concurrently on the confirming channel, so that the confirms overlap."""
        channel = self._publishing
        if channel is None or channel.is_closed:
            raise ServiceUnavailable("broker did not confirm: not connected")
        exchange = channel.default_exchange
        try:
            await asyncio.gather(*(
                exchange.publish(_message(d), DISPATCH, timeout=self._timeout) for d in dispatches
            ))
        except Exception as exc:
            raise ServiceUnavailable(f"broker did not confirm: {type(exc).__name__}") from exc

    async def consume(self, queue: str, prefetch: int, handler: Handler) -> None:
        """Deliver `queue` to `handler` (each message in its own asyncio task), at most
        `prefetch` unacknowledged at a time, on a channel of its own. The queue must exist
        already: the topology is declared first, and only in topology.py."""
        if self._connection is None:
            raise ServiceUnavailable("broker not connected")
        channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=prefetch)
        declared = await channel.declare_queue(queue, passive=True)
        await declared.consume(handler)

    async def check(self) -> None:
        """Health probe: the lane's connection is up (it reconnects on its own)."""
        connection = self._connection
        if connection is None or not connection.connected.is_set():
            raise ServiceUnavailable("broker unreachable")


def _message(dispatch: Dispatch) -> aio_pika.Message:
    return aio_pika.Message(
        _encode(dispatch),
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=f"{dispatch.task_id}:{dispatch.attempt}",
        app_id="tasks",
    )
