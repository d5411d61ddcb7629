"""A consumer: a FastStream subscriber read with `async for`, each message handed to the
application's handler as a Delivery, in an asyncio task of its own.

Read, not decorated: a subscriber with a handler runs every message through FastStream's whole
call path (context scopes, middlewares, argument resolution, the handler's call chain), which
costs a multiple of what the message itself costs; reading the subscriber keeps FastStream's
queue declaration, channel, prefetch, parsing and its RabbitMessage, and none of the rest
(`python -m bench.amqp_ab` measures the ways side by side).
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from aio_pika.exceptions import ChannelInvalidStateError
from faststream.rabbit.message import RabbitMessage
from faststream.rabbit.subscriber import RabbitSubscriber

from adapters.rabbitmq.acks import Acks
from adapters.rabbitmq.delivery import RabbitDelivery, Send
from adapters.timeouts import AMQP_RPC_SECONDS
from application.messaging import DeliveryHandler

log = structlog.get_logger(__name__)


class Consumer:
    """Started once the broker is connected; the robust connection restores its channel, its
    prefetch and its consumer after a reconnect, and the reading goes on. A handler that raises
    and leaves its delivery unsettled has it put back."""

    def __init__(self, queue: str, subscriber: RabbitSubscriber, handler: DeliveryHandler,
                 acks: Acks, send: Send) -> None:
        self.queue = queue
        self._subscriber = subscriber
        self._handler = handler
        self._acks = acks
        self._send = send
        self._reading: asyncio.Task[None] | None = None
        self._handling: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        await self._subscriber.start()
        self._reading = asyncio.create_task(self._read(), name=f"consume-{self.queue}")

    async def stop(self) -> None:
        """Take no more messages: the consumer is cancelled (what RabbitMQ sent meanwhile and
        was not handed out yet goes back); those handed out may still be settled."""
        if self._reading is not None:
            self._reading.cancel()
            with contextlib.suppress(BaseException):  # cancelled, or the channel died
                async with asyncio.timeout(AMQP_RPC_SECONDS):
                    await self._reading
            self._reading = None
        with contextlib.suppress(Exception):
            await self._subscriber.stop()

    async def _read(self) -> None:
        async for message in self._subscriber:
            assert isinstance(message, RabbitMessage)
            try:
                acks = self._acks.of(message.raw_message.channel)
            except ChannelInvalidStateError:
                continue  # its channel is gone: RabbitMQ hands the message out again
            delivery = RabbitDelivery(self.queue, message, acks, self._send)
            task = asyncio.create_task(self._deliver(delivery))
            self._handling.add(task)
            task.add_done_callback(self._handling.discard)

    async def _deliver(self, delivery: RabbitDelivery) -> None:
        try:
            await self._handler(delivery)
        except Exception:
            log.exception("consumer_failed", queue=self.queue)
            if not delivery.settled:
                with contextlib.suppress(Exception):
                    await delivery.requeue()
