"""WatchTasks on the in-memory history: catch-up, live, resume, slow streams, the end."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from adapters.memory.events import InMemoryEventLog
from application.model import Event, EventId
from application.watch import Subscription, WatchTasks
from domain.errors import ServiceUnavailable
from domain.status import TaskStatus
from tests.unit.fakes import BlockingProcessor, FixedProcessor
from tests.unit.world import World

S = TaskStatus


@pytest.fixture
async def watch(world: World) -> AsyncIterator[WatchTasks]:
    feed = WatchTasks(InMemoryEventLog(world.store), capacity=5, page=3)
    reader = asyncio.create_task(feed.run())
    yield feed
    reader.cancel()


async def take(subscription: Subscription, count: int, wait: float = 1.0) -> list[Event]:
    """At least `count` events (or fewer if the stream ends), failing after `wait` seconds."""
    got: list[Event] = []
    async with asyncio.timeout(wait):
        while len(got) < count:
            batch = await subscription.next(0.05)
            if batch is None:
                break
            got += batch
    return got


def ids(events: list[Event]) -> list[EventId]:
    return [e.id for e in events]


async def test_a_task_stream_starts_at_creation_follows_live_and_ends_when_final(
    world: World, watch: WatchTasks,
) -> None:
    task = await world.new_task()
    processor = BlockingProcessor()
    async with watch.subscribe(task_id=task.id) as stream:
        assert [e.transition.to_status for e in await take(stream, 1)] == [S.NEW]
        running = asyncio.create_task(world.process(processor)(task.id))
        await processor.started.wait()
        assert [e.transition.to_status for e in await take(stream, 1)] == [S.IN_PROGRESS]
        processor.release.set()
        await running
        last = await take(stream, 1)
        assert [(e.transition.to_status, e.task.status, e.task.finished_at is not None)
                for e in last] == [(S.COMPLETED, S.COMPLETED, True)]
        assert await stream.next(0.05) is None  # over


async def test_each_event_carries_the_task_as_it_was_right_after_that_change(
    world: World, watch: WatchTasks,
) -> None:
    task = await world.new_task()
    await world.process(FixedProcessor("boom"))(task.id)
    async with watch.subscribe(task_id=task.id) as stream:
        events = await take(stream, 3)
    assert [(e.task.status, e.task.attempts, e.task.error) for e in events] == [
        (S.NEW, 0, None), (S.IN_PROGRESS, 1, None), (S.ERROR, 1, "boom")]


async def test_a_stream_of_a_task_already_final_sends_its_history_and_ends(
    world: World, watch: WatchTasks,
) -> None:
    task = await world.new_task()
    await world.process(FixedProcessor(None))(task.id)
    async with watch.subscribe(task_id=task.id) as stream:
        assert len(await take(stream, 5)) == 3
        assert await stream.next(0.05) is None
    async with watch.subscribe(task_id=task.id, after=(0, 10**9)) as resumed:
        assert await take(resumed, 1) == []  # resumed after its final change: over at once


async def test_resuming_after_an_event_gives_exactly_what_followed_it(
    world: World, watch: WatchTasks,
) -> None:
    tasks = [await world.new_task(f"t{n}") for n in range(4)]
    for task in tasks:
        await world.process(FixedProcessor(None))(task.id)
    async with watch.subscribe(task_id=tasks[2].id) as stream:
        whole = await take(stream, 3)
    async with watch.subscribe(task_id=tasks[2].id, after=whole[0].id) as stream:
        rest = await take(stream, 3)
    assert ids(rest) == ids(whole[1:])


async def test_the_whole_feed_starts_now_and_can_filter_by_status(
    world: World, watch: WatchTasks,
) -> None:
    before = await world.new_task("before")
    async with watch.subscribe() as everything, \
            watch.subscribe(statuses=frozenset({S.COMPLETED})) as done_only:
        after = await world.new_task("after")
        await world.process(FixedProcessor(None))(after.id)
        seen = await take(everything, 3)
        finished = await take(done_only, 1)
    assert {e.task.id for e in seen} == {after.id} and before.id not in {e.task.id for e in seen}
    assert [e.transition.to_status for e in seen] == [S.NEW, S.IN_PROGRESS, S.COMPLETED]
    assert [e.transition.to_status for e in finished] == [S.COMPLETED]


async def test_a_slow_stream_falls_behind_then_catches_up_from_history_without_gaps_or_repeats(
    world: World, watch: WatchTasks,
) -> None:
    async with watch.subscribe() as slow, watch.subscribe() as fast:
        for n in range(12):  # 12 changes: more than the capacity of 5 for a reader that waits
            await world.new_task(f"t{n}")
            await asyncio.sleep(0)
        fast_seen = await take(fast, 12)
        assert slow.overflowed
        slow_seen = await take(slow, 12)
    assert ids(slow_seen) == ids(fast_seen) == sorted(set(ids(fast_seen)))
    assert len(slow_seen) == 12


async def test_an_idle_stream_gets_an_empty_batch_for_its_keep_alive_and_stops_on_request(
    watch: WatchTasks,
) -> None:
    async with watch.subscribe() as stream:
        assert await stream.next(0.01) == []
        waiting = asyncio.ensure_future(stream.next(30))
        await asyncio.sleep(0.01)
        watch.stopping.set()  # wakes the stream that waits
        async with asyncio.timeout(0.5):
            assert await waiting == []
            assert await stream.next(30) == []  # and any later wait returns at once


async def test_nobody_watching_costs_no_reads(world: World) -> None:
    reads = 0

    class CountingLog(InMemoryEventLog):
        async def read(self, *args: object, **kwargs: object) -> list[Event]:
            nonlocal reads
            reads += 1
            return await super().read(*args, **kwargs)  # type: ignore[arg-type]

    feed = WatchTasks(CountingLog(world.store))
    reader = asyncio.create_task(feed.run())
    for n in range(5):
        await world.new_task(f"t{n}")
        await asyncio.sleep(0)
    reader.cancel()
    assert reads == 0


async def test_a_stream_of_an_unknown_task_gets_nothing_until_it_ends_by_timeout(
    watch: WatchTasks,
) -> None:
    async with watch.subscribe(task_id=uuid.UUID(int=404)) as stream:
        assert await stream.next(0.01) == []


class FailingOnce(InMemoryEventLog):
    """Its next read fails as an outage would, once."""

    fail_next = False

    async def read(self, *args: object, **kwargs: object) -> list[Event]:
        if self.fail_next:
            self.fail_next = False
            raise ServiceUnavailable("database unavailable")
        return await super().read(*args, **kwargs)  # type: ignore[arg-type]


async def test_an_outage_pauses_the_feed_and_the_next_change_reads_on(world: World) -> None:
    log = FailingOnce(world.store)
    feed = WatchTasks(log)
    reader = asyncio.create_task(feed.run())
    try:
        async with feed.subscribe() as stream:
            log.fail_next = True
            first = await world.new_task()  # its read fails: the feed must not end
            await asyncio.sleep(0.05)
            assert not reader.done()
            second = await world.new_task()
            got = await take(stream, 2)
        assert [e.task.id for e in got] == [first.id, second.id]
    finally:
        reader.cancel()
