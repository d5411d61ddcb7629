"""A naive pipeline, end to end: `POST /tasks` INSERTs the row and publishes its id (persistent,
confirmed, to a durable quorum queue) within the request; a worker consumes the queue and runs
two UPDATEs per task (started, then finished), each its own transaction, and acks.

`python -m bench.naive.pipeline api --port N --database-url URL --rabbitmq-url URL [--workers N]`
`python -m bench.naive.pipeline worker --database-url URL --rabbitmq-url URL [--prefetch N]`"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aio_pika
import aio_pika.exceptions
from aio_pika.abc import AbstractExchange, AbstractIncomingMessage
from aiormq.abc import FieldTable
from litestar import Litestar, post
from psycopg_pool import AsyncConnectionPool

from bench.naive.app import DATABASE_URL, POOL_SIZE, Created, TaskIn, arguments, insert, new_pool
from bench.naive.app import serve as serve_http

RABBITMQ_URL = "BENCH_NAIVE_RABBITMQ_URL"
QUEUE = "naive.tasks"
QUEUE_ARGUMENTS: FieldTable = {"x-queue-type": "quorum"}
PREFETCH = 100  # the service's TASKS_WORKER_CONCURRENCY default
START = "UPDATE tasks SET status = 'in_progress', attempts = attempts + 1, started_at = now(), " \
        "updated_at = now() WHERE id = %s"
FINISH = "UPDATE tasks SET status = 'completed', finished_at = now(), updated_at = now() " \
         "WHERE id = %s"


def create_app() -> Litestar:
    pool = new_pool()
    exchange: list[AbstractExchange] = []  # set once the lifespan has connected

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await pool.open(wait=True)
        connection = await aio_pika.connect(os.environ[RABBITMQ_URL])
        channel = await connection.channel(publisher_confirms=True)
        await channel.declare_queue(QUEUE, durable=True, arguments=QUEUE_ARGUMENTS)
        exchange.append(channel.default_exchange)
        try:
            yield
        finally:
            await connection.close()
            await pool.close()

    @post("/tasks", status_code=201)
    async def create_task(data: TaskIn) -> Created:
        task_id = await insert(pool, data)
        await exchange[0].publish(  # returns once the broker confirmed it
            aio_pika.Message(str(task_id).encode(),
                             delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key=QUEUE,
        )
        return Created(task_id)

    return Litestar([create_task], lifespan=[lifespan])


async def work(database_url: str, rabbitmq_url: str, prefetch: int) -> None:
    """Consume until SIGTERM or SIGINT."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        database_url, min_size=POOL_SIZE, max_size=POOL_SIZE, kwargs={"autocommit": True},
        open=False,
    )
    await pool.open(wait=True)

    async def handle(message: AbstractIncomingMessage) -> None:
        task_id = message.body.decode()
        async with pool.connection() as conn:
            await conn.execute(START, [task_id])
            await conn.execute(FINISH, [task_id])
        await message.ack()

    for attempt in range(10):
        # RabbitMQ 3.10 may answer a consume on a quorum queue declared a moment before with
        # INTERNAL_ERROR (its Raft member not started yet) and close the connection: try again
        connection = await aio_pika.connect(rabbitmq_url)
        try:
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=prefetch)
            queue = await channel.declare_queue(QUEUE, durable=True, arguments=QUEUE_ARGUMENTS)
            await queue.consume(handle)
            break
        except aio_pika.exceptions.AMQPError:
            await connection.close()
            if attempt == 9:
                raise
            await asyncio.sleep(0.5)
    try:
        logging.info("naive worker consuming %s, prefetch %d", QUEUE, prefetch)
        await stopping.wait()
    finally:
        await connection.close()
        await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    api = sub.add_parser("api", parents=[arguments(None)], add_help=False)
    api.add_argument("--rabbitmq-url", required=True)
    worker = sub.add_parser("worker")
    worker.add_argument("--database-url", required=True)
    worker.add_argument("--rabbitmq-url", required=True)
    worker.add_argument("--prefetch", type=int, default=PREFETCH)
    args = parser.parse_args()
    if args.command == "api":
        os.environ[DATABASE_URL] = args.database_url
        os.environ[RABBITMQ_URL] = args.rabbitmq_url
        serve_http("bench.naive.pipeline:create_app", args.port, args.workers)
    else:
        logging.basicConfig(level=logging.INFO)
        asyncio.run(work(args.database_url, args.rabbitmq_url, args.prefetch))


if __name__ == "__main__":
    main()
