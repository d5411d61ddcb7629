"""The RabbitMQ adapter with several nodes named and dispatch split over queues, on the real
broker: two loopback proxies in front of it stand for two nodes of one cluster (they reach the
same queues), so that one can be made to die while the other lives. The three-node cluster
itself is in tests/e2e/test_rabbitmq_cluster.py."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

from adapters.queues import DISPATCH, dispatch_queues, queue_of
from adapters.rabbitmq.broker import RabbitMQ
from application.messaging import Delivery
from application.model import Dispatch
from tests.support.proxy import Proxy
from tests.support.services import Services

from .amqp import list_queues
from .waiting import eventually


def node(url: str) -> str:
    """What the adapter's health check says of the node it uses: `host:port`."""
    return url.split("@", 1)[-1].split("/", 1)[0]


async def connected(broker: RabbitMQ) -> str | None:
    try:
        return await broker.check()
    except Exception:  # not yet
        return None


async def test_a_node_that_refuses_is_passed_over(amqp_url: str) -> None:
    with Proxy.in_front_of(amqp_url) as dead:
        dead.reset()  # every connection reset as soon as accepted: a node that is down
        broker = RabbitMQ([dead.url_for(amqp_url), amqp_url], timeout=5)
        await broker.start()
        try:
            used = await eventually(lambda: connected(broker), "a connection", timeout=20)
            assert used == node(amqp_url)
            await broker.publish([Dispatch(uuid.uuid4(), 1)])  # confirmed through it
        finally:
            await broker.close()


async def test_losing_the_node_in_use_goes_on_through_the_next_and_redelivers_what_it_held(
    amqp_url: str,
) -> None:
    """The first node dies with a delivery held unsettled by the consumer: the adapter
    connects to the second node, consumes again there, and RabbitMQ hands the held message
    out again; what is published afterwards goes through the second node."""
    seen: list[int] = []
    first_held = asyncio.Event()

    async def handle(delivery: Delivery) -> None:
        number = json.loads(delivery.body)["attempt"]
        seen.append(number)
        if number == 1 and not first_held.is_set():
            first_held.set()
            await asyncio.Event().wait()  # held until its connection dies
        await delivery.ack()

    with Proxy.in_front_of(amqp_url) as a, Proxy.in_front_of(amqp_url) as b:
        broker = RabbitMQ([a.url_for(amqp_url), b.url_for(amqp_url)], timeout=5)
        await broker.consume_dispatches(10, handle)
        await broker.start()
        try:
            assert await eventually(lambda: connected(broker), "a connection", 20) \
                == node(a.url_for(amqp_url))
            task = uuid.uuid4()
            await broker.publish([Dispatch(task, 1)])
            await asyncio.wait_for(first_held.wait(), 10)

            a.reset()  # node A dies: its connections reset, new ones refused
            lost = time.monotonic()
            used = await eventually(
                lambda: _on(broker, node(b.url_for(amqp_url))), "the second node", 20)
            assert used
            await eventually(lambda: _at_least(seen, 2), "the held delivery handed out again")
            assert seen[1] == 1  # the same message, redelivered on the new connection
            await broker.publish([Dispatch(task, 2)])
            await eventually(lambda: _at_least(seen, 3), "a delivery after the loss")
            assert seen[2] == 2
            print(f"went on through the second node {time.monotonic() - lost:.1f}s after the loss")
        finally:
            await broker.stop_consuming()
            await broker.close()


async def _at_least(seen: list[int], count: int) -> bool:
    return len(seen) >= count


async def _on(broker: RabbitMQ, wanted: str) -> bool:
    return await connected(broker) == wanted


async def test_dispatch_is_split_over_the_queues_by_task_id(
    services: Services, amqp_url: str
) -> None:
    queues = dispatch_queues(3)
    assert queues == (DISPATCH, f"{DISPATCH}.1", f"{DISPATCH}.2")
    taken: dict[str, list[uuid.UUID]] = {q: [] for q in queues}
    done = asyncio.Event()
    tasks = [uuid.uuid4() for _ in range(60)]

    broker = RabbitMQ(amqp_url, timeout=5, queues=3)

    def taker(queue: str):  # type: ignore[no-untyped-def]
        async def take(delivery: Delivery) -> None:
            taken[queue].append(uuid.UUID(json.loads(delivery.body)["task_id"]))
            await delivery.ack()
            if sum(map(len, taken.values())) == len(tasks):
                done.set()
        return take

    for queue in queues:
        await broker.consume(queue, 4, taker(queue))
    await broker.start()
    try:
        await eventually(lambda: connected(broker), "a connection", 20)
        rows = list_queues(services, amqp_url, "type", "arguments")
        assert {rows[q]["type"] for q in queues} == {"quorum"}
        locators = {q: {k: v for k, _, v in rows[q]["arguments"]}.get("x-queue-leader-locator")
                    for q in queues}
        assert locators == {DISPATCH: None, f"{DISPATCH}.1": "balanced",
                            f"{DISPATCH}.2": "balanced"}
        await broker.publish([Dispatch(t, 1) for t in tasks])
        await asyncio.wait_for(done.wait(), 20)
    finally:
        await broker.stop_consuming()
        await broker.close()

    for queue, ids in taken.items():
        assert ids and all(queue_of(t, queues) == queue for t in ids), queue
    assert sorted(t for ids in taken.values() for t in ids) == sorted(tasks)


async def test_a_worker_runs_no_more_than_its_concurrency_over_several_queues(
    amqp_url: str,
) -> None:
    """Four slots over three queues: each consumer's prefetch is two (rounded up, so that a
    task in any queue can be taken), and no more than four deliveries are handled at once."""
    running, most = 0, 0
    release = asyncio.Event()
    handled: list[uuid.UUID] = []

    async def handle(delivery: Delivery) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await release.wait()
        handled.append(uuid.UUID(json.loads(delivery.body)["task_id"]))
        running -= 1
        await delivery.ack()

    broker = RabbitMQ(amqp_url, timeout=5, queues=3)
    await broker.consume_dispatches(4, handle)
    await broker.start()
    try:
        await eventually(lambda: connected(broker), "a connection", timeout=20)
        tasks = [uuid.uuid4() for _ in range(30)]
        await broker.publish([Dispatch(task, 1) for task in tasks])
        async def four_running() -> bool:
            return running >= 4

        await eventually(four_running, "four running")
        await asyncio.sleep(0.5)  # time for any more to start, if the cap did not hold
        assert most == 4
        release.set()
        await eventually(lambda: _at_least(handled, 30), "every dispatch handled")
        assert sorted(handled) == sorted(tasks)
        assert most == 4
    finally:
        await broker.stop_consuming()
        await broker.close()
