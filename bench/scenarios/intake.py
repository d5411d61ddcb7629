"""2. AMQP intake: a pre-filled tasks.create, then `tasks api` turns it into rows."""

from __future__ import annotations

import asyncio
import time
import uuid

import aio_pika

from adapters.rabbitmq.topology import CREATE_QUEUE
from bench import db
from bench.context import Context, Row
from bench.infra import sandbox, wait_until
from bench.stats import rate


async def prefill(url: str, count: int, batch: int = 500) -> float:
    """`count` persistent messages, published with confirms in batches; seconds taken."""
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        # declared exactly as the service declares it, or its own declaration would fail
        await channel.declare_queue(
            CREATE_QUEUE.name, durable=True, arguments=dict(CREATE_QUEUE.arguments or {})
        )
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
                        routing_key=CREATE_QUEUE.name,
                    )
                    for i in range(first, min(first + batch, count))
                )
            )
        return time.perf_counter() - started
    finally:
        await connection.close()


def run(ctx: Context) -> list[Row]:
    count = ctx.sizes.intake_messages
    with sandbox(ctx.admin, ctx.log_dir) as stack:
        published = asyncio.run(prefill(stack.rabbitmq_url, count))
        started = time.monotonic()
        stack.api()
        with stack.db() as conn:
            wait_until(
                lambda: db.tasks(conn) >= count,
                60 + count / 50,
                f"{count} tasks from the intake",
                every=0.2,
            )
            wall = time.monotonic() - started
            span = db.span_seconds(conn, "created_at", "created_at")
    setting = f"{count:,} msgs pre-filled (message_id set), api started after"
    return [
        Row(
            "AMQP intake",
            setting,
            f"{rate(count, span, ' tasks/s')} (first to last row); {wall:.1f} s incl. api start-up",
        ),
        Row(
            "AMQP pre-fill (aio-pika, confirms)",
            f"{count:,} msgs, batches of 500",
            rate(count, published, " msgs/s"),
        ),
    ]
