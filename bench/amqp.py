"""RabbitMQ for the benchmarks: pre-filling a queue, and the same-run baseline of what a bare
consumer takes off one on this box, to read the service's rows by."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import aio_pika


async def prefill_queue(
    url: str, queue: str, arguments: dict[str, Any], count: int, batch: int = 500
) -> float:
    """`count` persistent messages, published with confirms in batches; seconds taken."""
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        await channel.declare_queue(queue, durable=True, arguments=arguments)
        started = time.perf_counter()
        for first in range(0, count, batch):
            await asyncio.gather(
                *(
                    channel.default_exchange.publish(
                        aio_pika.Message(
                            f'{{"title": "intake-{i}"}}'.encode(),
                            content_type="application/json",
                            message_id=str(uuid.uuid4()),
                            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                        ),
                        routing_key=queue,
                    )
                    for i in range(first, min(first + batch, count))
                )
            )
        return time.perf_counter() - started
    finally:
        await connection.close()


async def consume_and_ack(url: str, count: int, quorum: bool, prefetch: int = 100) -> float:
    """Messages/s that a bare aio-pika consumer (ack each, no work) takes off a pre-filled
    durable queue (quorum like tasks.dispatch, or classic like tasks.create)."""
    name = f"bench.baseline.{'quorum' if quorum else 'classic'}"
    arguments = {"x-queue-type": "quorum"} if quorum else {}
    await prefill_queue(url, name, arguments, count)
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=prefetch)
        queue = await channel.declare_queue(name, durable=True, arguments=arguments)
        done = asyncio.get_running_loop().create_future()
        seen = 0
        started = 0.0

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal seen, started
            if seen == 0:
                started = time.perf_counter()
            await message.ack()
            seen += 1
            if seen == count and not done.done():
                done.set_result(time.perf_counter() - started)

        tag = await queue.consume(on_message)
        seconds = await asyncio.wait_for(done, 60 + count / 100)
        await queue.cancel(tag)
        await queue.delete(if_unused=False, if_empty=False)
        return count / seconds
    finally:
        await connection.close()
