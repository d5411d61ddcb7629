"""A plain aio-pika client for tests: publish like an outside system would, read queues back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage


class AmqpClient:
    def __init__(self, channel: AbstractChannel) -> None:
        self.channel = channel

    async def publish(self, body: bytes, queue: str = "tasks.create", **props: object) -> None:
        message = aio_pika.Message(body, content_type="application/json",
                                   delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                                   **props)  # type: ignore[arg-type]
        await self.channel.default_exchange.publish(message, routing_key=queue)

    async def reply_queue(self) -> aio_pika.abc.AbstractQueue:
        return await self.channel.declare_queue("", exclusive=True, auto_delete=True)

    async def get(self, queue: str, timeout: float = 15) -> AbstractIncomingMessage:
        """The next message of `queue` (declared passively: it must exist), acked."""
        q = await self.channel.declare_queue(queue, passive=True)
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            message = await q.get(fail=False, no_ack=True)
            if message is not None:
                return message
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"no message on {queue} within {timeout}s")
            await asyncio.sleep(0.1)

    async def count(self, queue: str) -> int:
        q = await self.channel.declare_queue(queue, passive=True)
        return q.declaration_result.message_count or 0


@asynccontextmanager
async def amqp_client(url: str) -> AsyncIterator[AmqpClient]:
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        yield AmqpClient(channel)
    finally:
        await connection.close()
