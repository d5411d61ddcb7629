"""Interleaved A/B of one process's cost per message: FastStream's subscriber and publisher
against plain aio-pika, on the same RabbitMQ and the same connection settings.

    uv run python -m bench.amqp_ab [--messages 20000] [--rounds 4] [--queue classic|quorum]

Consume: a pre-filled durable queue is emptied by one consumer (prefetch as the intake's),
each message acked in its handler (manual acknowledgement), no other work. Publish: persistent
messages with publisher confirms, `--batch` at a time as the outbox relay sends them. Each
path runs once per round, in turns (A B A B ...); reported are CPU seconds of this process per
1,000 messages (time.process_time) and messages per second, the median over the rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from faststream.middlewares import AckPolicy
from faststream.rabbit import Channel, QueueType, RabbitBroker, RabbitQueue
from faststream.rabbit.annotations import RabbitMessage

from adapters.rabbitmq.broker import RabbitMQ
from application.messaging import Delivery
from bench.infra import ADMIN_RABBITMQ_URL, Admin

BODY = b'{"task_id": "0190f6a2-4c1e-7cc0-8f3e-6f1a1d1b2c3d", "attempt": 1}'

Run = Callable[[int], Awaitable[None]]


class Bench:
    def __init__(self, url: str, queue: str, quorum: bool, prefetch: int, batch: int) -> None:
        self.url, self.prefetch, self.batch = url, prefetch, batch
        arguments: dict[str, Any] = {"x-queue-type": "quorum"} if quorum else {}
        self.queue = RabbitQueue(queue, durable=True, arguments=arguments,  # type: ignore[arg-type]
                                 queue_type=QueueType.QUORUM if quorum else QueueType.CLASSIC)
        # the idiomatic FastStream handler: arguments resolved by FastDepends
        self.typed = RabbitBroker(url, logger=None, graceful_timeout=None)
        # the lean one: no FastDepends, the message itself handed to the handler
        self.lean = RabbitBroker(url, logger=None, graceful_timeout=None, apply_types=False)
        self.adapter = RabbitMQ(url)
        self.channel: AbstractChannel
        self.connection: Any = None

    async def __aenter__(self) -> Bench:
        await self.typed.connect()
        self.connection = await self.lean.connect()
        self.channel = await self.connection.channel(publisher_confirms=True)
        # not through FastStream's declarer: it would hand its subscribers this channel's queue
        await self.channel.declare_queue(self.queue.name, durable=True,
                                         arguments=self.queue.arguments)
        await self.adapter.start()
        while True:
            try:
                await self.adapter.check()
                break
            except Exception:  # noqa: BLE001
                await asyncio.sleep(0.1)
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.channel.queue_delete(self.queue.name)
        await self.adapter.close()
        await self.typed.stop()
        await self.lean.stop()

    # -- filling and waiting ---------------------------------------------------------------
    async def fill(self, count: int) -> None:
        for first in range(0, count, 500):
            await asyncio.gather(*(self._raw_send(f"fill-{i}")
                                   for i in range(first, min(first + 500, count))))

    async def _raw_send(self, message_id: str) -> None:
        message = aio_pika.Message(BODY, message_id=message_id, content_type="application/json",
                                   delivery_mode=aio_pika.DeliveryMode.PERSISTENT, app_id="tasks")
        await self.channel.default_exchange.publish(message, self.queue.name, timeout=10)

    async def drain_queue(self) -> None:
        await (await self.channel.get_underlay_channel()).queue_purge(self.queue.name)

    # -- consume paths ---------------------------------------------------------------------
    async def consume_raw(self, count: int) -> None:
        """What the service ran before: a channel of its own, a callback that acks."""
        done, seen = asyncio.get_running_loop().create_future(), 0

        async def on_message(message: AbstractIncomingMessage) -> None:
            nonlocal seen
            await message.ack()
            seen += 1
            if seen == count:
                done.set_result(None)

        channel = await self.connection.channel()
        await channel.set_qos(prefetch_count=self.prefetch)
        queue = await channel.declare_queue(self.queue.name, passive=True)
        tag = await queue.consume(on_message)
        await done
        await queue.cancel(tag)
        await channel.close()

    async def consume_faststream(self, count: int, broker: RabbitBroker,
                                 typed: bool) -> None:
        done, seen = asyncio.get_running_loop().create_future(), 0

        def finished() -> None:
            nonlocal seen
            seen += 1
            if seen == count:
                done.set_result(None)

        subscriber = broker.subscriber(
            self.queue, channel=Channel(prefetch_count=self.prefetch),
            ack_policy=AckPolicy.MANUAL, no_reply=True, persistent=False)
        if typed:
            @subscriber(decoder=_body)
            async def handle_typed(body: bytes, message: RabbitMessage) -> None:
                await message.ack()
                finished()
        else:
            @subscriber(decoder=_itself)
            async def handle_lean(message: Any) -> None:
                await message.ack()
                finished()

        await subscriber.start()
        await done
        await subscriber.stop()

    async def consume_iterated(self, count: int) -> None:
        """A FastStream subscriber with no handler, read with `async for` (its public iteration
        API), each message then handled in a task of its own as the service's port says."""
        done, seen = asyncio.get_running_loop().create_future(), 0

        async def handle(message: Any) -> None:
            nonlocal seen
            await message.ack()
            seen += 1
            if seen == count:
                done.set_result(None)

        subscriber = self.lean.subscriber(
            self.queue, channel=Channel(prefetch_count=self.prefetch),
            ack_policy=AckPolicy.MANUAL, no_reply=True, persistent=False)
        await subscriber.start()
        tasks: set[asyncio.Task[None]] = set()

        async def read() -> None:
            async for message in subscriber:
                task = asyncio.create_task(handle(message))
                tasks.add(task)
                task.add_done_callback(tasks.discard)

        reader = asyncio.create_task(read())
        await done
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        await subscriber.stop()

    async def consume_adapter(self, count: int) -> None:
        """The service's own adapter: RabbitMQ.consume and Delivery.ack."""
        done, seen = asyncio.get_running_loop().create_future(), 0

        async def handler(delivery: Delivery) -> None:
            nonlocal seen
            await delivery.ack()
            seen += 1
            if seen == count:
                done.set_result(None)

        await self.adapter.consume(self.queue.name, self.prefetch, handler)
        await done
        await self.adapter.stop_consuming()

    # -- publish paths ---------------------------------------------------------------------
    async def publish_raw(self, count: int) -> None:
        for first in range(0, count, self.batch):
            await asyncio.gather(*(self._raw_send(f"raw-{i}")
                                   for i in range(first, min(first + self.batch, count))))

    async def publish_faststream(self, count: int) -> None:
        async def one(i: int) -> None:
            await self.lean.publish(BODY, self.queue.name, persist=True, timeout=10,
                                    message_id=f"fs-{i}", content_type="application/json")

        await _batches(one, count, self.batch)

    async def publish_publisher(self, count: int) -> None:
        publisher = self.lean.publisher(self.queue, persist=True, timeout=10,
                                        content_type="application/json", persistent=False)

        async def one(i: int) -> None:
            await publisher.publish(BODY, message_id=f"pub-{i}")

        await _batches(one, count, self.batch)

    async def publish_message(self, count: int) -> None:
        async def one(i: int) -> None:
            message = aio_pika.Message(BODY, message_id=f"msg-{i}",
                                       content_type="application/json", app_id="tasks",
                                       delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
            await self.lean.publish(message, self.queue.name, timeout=10)

        await _batches(one, count, self.batch)


async def _batches(one: Callable[[int], Awaitable[None]], count: int, batch: int) -> None:
    for first in range(0, count, batch):
        await asyncio.gather(*(one(i) for i in range(first, min(first + batch, count))))


async def _itself(message: Any) -> Any:
    """A decoder: the handler gets FastStream's RabbitMessage itself."""
    return message


async def _body(message: Any) -> bytes:
    """A decoder: the body as it came (the default one parses JSON)."""
    return message.body  # type: ignore[no-any-return]


async def measure(run: Run, count: int, before: Callable[[int], Awaitable[None]] | None,
                  after: Callable[[], Awaitable[None]] | None) -> tuple[float, float]:
    """(CPU seconds per 1,000 messages, messages per second) of one run."""
    if before is not None:
        await before(count)
    cpu, wall = time.process_time(), time.perf_counter()
    await run(count)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    if after is not None:
        await after()
    return cpu / count * 1000, count / wall


async def main(args: argparse.Namespace) -> None:
    admin = Admin(rabbitmq_url=args.url)
    url = admin.new_vhost()
    try:
        await run_all(args, url)
    finally:
        admin.drop_vhost(url)


async def run_all(args: argparse.Namespace, url: str) -> None:
    name = f"bench.ab.{uuid.uuid4().hex[:8]}"
    async with Bench(url, name, args.queue == "quorum", args.prefetch, args.batch) as b:
        consume: dict[str, Run] = {
            "consume: aio-pika callback + ack": b.consume_raw,
            "consume: FastStream, FastDepends": lambda n: b.consume_faststream(n, b.typed, True),
            "consume: FastStream, apply_types=False": (
                lambda n: b.consume_faststream(n, b.lean, False)),
            "consume: FastStream, iterated (async for)": b.consume_iterated,
            "consume: the service's adapter (Delivery.ack)": b.consume_adapter,
        }
        publish: dict[str, Run] = {
            "publish: aio-pika, confirmed": b.publish_raw,
            "publish: FastStream broker.publish": b.publish_faststream,
            "publish: FastStream publisher.publish": b.publish_publisher,
            "publish: FastStream broker.publish(aio_pika.Message)": b.publish_message,
        }
        results: dict[str, list[tuple[float, float]]] = {k: [] for k in [*consume, *publish]}
        await measure(b.consume_raw, min(2000, args.messages), b.fill, None)  # warm-up
        for _ in range(args.rounds):
            for label, run in consume.items():
                results[label].append(await measure(run, args.messages, b.fill, None))
            for label, run in publish.items():
                results[label].append(await measure(run, args.messages, None, b.drain_queue))
        print(f"{args.messages:,} messages per run, {args.rounds} rounds interleaved, "
              f"{args.queue} queue, prefetch {args.prefetch}, publish batch {args.batch}")
        print("x bare: the first row of its kind per CPU second of this row (a consumer's "
              "ceiling against the bare one, before any other work)")
        width = max(map(len, results))
        print(f"{'path':<{width}}  CPU s/1,000 msgs (median; each run)     x bare  msgs/s (median)")
        first: dict[str, float] = {}
        for label, runs in results.items():
            cpu = statistics.median(c for c, _ in runs)
            rate = statistics.median(r for _, r in runs)
            each = " ".join(f"{c:.3f}" for c, _ in runs)
            bare = first.setdefault(label.split(":")[0], cpu)
            print(f"{label:<{width}}  {cpu:.3f} ({each})  {bare / cpu:5.2f}  {rate:>10,.0f}")


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.amqp_ab", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=ADMIN_RABBITMQ_URL,
                        help="admin URL of RabbitMQ: the run makes and drops a vhost of its own")
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--queue", choices=["classic", "quorum"], default="classic")
    parser.add_argument("--prefetch", type=int, default=200)
    parser.add_argument("--batch", type=int, default=100)
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse()))
