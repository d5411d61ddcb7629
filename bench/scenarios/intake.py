"""2. AMQP intake: a pre-filled tasks.create, then `tasks api` turns it into rows."""

from __future__ import annotations

import asyncio
import time

from adapters.rabbitmq.topology import Topology
from bench import db
from bench.amqp import consume_and_ack, prefill_queue
from bench.context import Context, Row
from bench.infra import sandbox, wait_until
from bench.stats import rate


async def prefill(url: str, count: int) -> float:
    """`count` task messages on tasks.create, declared exactly as the service declares it (or
    its own declaration would fail); seconds taken."""
    create = Topology().create
    return await prefill_queue(url, create.name, dict(create.arguments or {}), count)


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
        stack.close()  # the baseline has the box to itself, as the api had
        bare = asyncio.run(consume_and_ack(stack.rabbitmq_url, count, quorum=False, prefetch=200))
    setting = f"{count:,} msgs pre-filled (message_id set), api started after"
    return [
        Row(
            "AMQP intake",
            setting,
            f"{rate(count, span, ' tasks/s')} (first to last row); {wall:.1f} s incl. api start-up",
        ),
        Row(
            "Baseline: bare consume + ack",
            f"{count:,} msgs, classic queue, aio-pika, prefetch 200, no work",
            f"{bare:,.0f} msgs/s (intake / baseline: {count / span / bare:.2f})"
            if span > 0 else f"{bare:,.0f} msgs/s",
        ),
        Row(
            "AMQP pre-fill (aio-pika, confirms)",
            f"{count:,} msgs, batches of 500",
            rate(count, published, " msgs/s"),
        ),
    ]
