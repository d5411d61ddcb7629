"""Scaling out on a three-node RabbitMQ cluster of the benchmark's own (tests/support's harness:
own node names, ports and directories; never the machine's node):

1. a quorum queue's ceiling: a bare aio-pika client publishing confirmed messages into one
   quorum queue and taking them off it, against three queues whose leaders sit on three
   nodes, one client per node, all at once;
2. the service's drain of a backlog with TASKS_DISPATCH_QUEUES=1 and 3, one worker.

On this 2-core box the three nodes, PostgreSQL and the service share the same cores: a gain
that needs more cores cannot show here, and the rows say what was measured, no more.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import aio_pika

from bench import db
from bench.context import Context, Row
from bench.infra import BoxCpu, Stack, wait_until, wait_workers
from bench.scenarios.drain import NO_WORK
from bench.stats import rate
from tests.support.rabbitcluster import RabbitCluster

QUORUM = {"x-queue-type": "quorum"}


async def _publish(url: str, queue: str, count: int, batch: int = 500) -> None:
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        await channel.declare_queue(queue, durable=True, arguments=QUORUM)
        for first in range(0, count, batch):
            await asyncio.gather(*(channel.default_exchange.publish(
                aio_pika.Message(b'{"n": 1}', delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                routing_key=queue) for _ in range(first, min(first + batch, count))))
    finally:
        await connection.close()


async def _consume(url: str, queue: str, count: int, prefetch: int = 100) -> None:
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=prefetch)
        declared = await channel.declare_queue(queue, durable=True, arguments=QUORUM)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        seen = 0

        async def on_message(message: Any) -> None:
            nonlocal seen
            await message.ack()
            seen += 1
            if seen == count and not done.done():
                done.set_result(None)

        await declared.consume(on_message)
        await asyncio.wait_for(done, 60 + count / 100)
    finally:
        await connection.close()


async def ceiling(urls: list[str], count: int) -> tuple[float, float]:
    """Messages/s in all (publish, then consume), `count` per queue, one queue per URL, all at
    once; each queue declared through its own node, so that its leader is there."""
    names = [f"bench.ceiling.{uuid.uuid4().hex[:6]}" for _ in urls]
    started = time.perf_counter()
    await asyncio.gather(*(_publish(u, q, count) for u, q in zip(urls, names, strict=True)))
    published = time.perf_counter() - started
    started = time.perf_counter()
    await asyncio.gather(*(_consume(u, q, count) for u, q in zip(urls, names, strict=True)))
    consumed = time.perf_counter() - started
    total = count * len(urls)
    return total / published, total / consumed


def drain(stack: Stack, count: int, queues: int) -> tuple[Row, float]:
    with stack.db() as conn:
        conn.execute("TRUNCATE tasks, task_history, dispatch_outbox")
        asyncio.run(db.preload(stack.database_url, count))
        wait_until(lambda: db.outbox(conn) == 0, 60 + count / 100, "an empty outbox")
        started = time.monotonic()
        worker = stack.worker(TASKS_DISPATCH_QUEUES=str(queues))
        wait_workers(stack, 1, procs=[worker])
        box, cpu = BoxCpu.now(), worker.cpu_seconds()
        wait_until(lambda: db.finished(conn) >= count, 60 + count / 20, f"{count} finished",
                   every=0.2)
        wall = time.monotonic() - started
        box, cpu = BoxCpu.now() - box, worker.cpu_seconds() - cpu
        span = db.span_seconds(conn, "started_at", "finished_at")
    worker.stop()
    return Row("Cluster: drain backlog", f"{queues} dispatch queue(s), 1 worker, {count:,} "
               "tasks, 3 nodes", f"{rate(count, span, ' finished/s')}; {wall:.1f} s incl. "
               f"start-up; worker CPU {1000 * cpu / count:.2f} ms/task, "
               f"{box.per_task(count)}"), (count / span if span > 0 else 0.0)


def run(ctx: Context) -> list[Row]:
    count = ctx.sizes.backlog
    cluster = RabbitCluster(3).start()
    rows = [Row("Cluster: start", "3 RabbitMQ nodes, own names, ports and directories",
                f"{cluster.started_in:.1f} s")]
    database = ctx.admin.new_database()
    try:
        vhost = cluster.new_vhost()
        urls = cluster.urls(vhost)
        for nodes in (urls[:1], urls):
            published, consumed = asyncio.run(ceiling(nodes, count // len(nodes)))
            rows.append(Row("Cluster: quorum queue ceiling",
                            f"{len(nodes)} queue(s), leaders on {len(nodes)} node(s), bare "
                            "aio-pika, prefetch 100", f"publish (confirmed) {published:,.0f} "
                            f"msgs/s; consume + ack {consumed:,.0f} msgs/s, in all"))
        for queues in (1, 3):
            stack = Stack(database, ",".join(urls), ctx.log_dir, **NO_WORK,
                          TASKS_DISPATCH_QUEUES=str(queues))
            stack.migrate()
            try:
                stack.api()
                row, _ = drain(stack, count, queues)
                rows.append(row)
            finally:
                stack.close()
    finally:
        ctx.admin.drop_database(database)
        cluster.close()
    return rows
