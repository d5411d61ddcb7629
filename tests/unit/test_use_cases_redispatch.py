"""The redispatch sweep: a task whose dispatch was lost is sent again, or ends saying why."""

from __future__ import annotations

import pytest

from adapters.queues import DISPATCH
from application.model import Dispatch
from domain.errors import ServiceUnavailable
from domain.status import TaskStatus
from domain.task import Task
from tests.unit.fakes import FixedProcessor
from tests.unit.world import QUIET, World

S = TaskStatus
WAIT = QUIET.total_seconds()


class BrokenQueue:
    async def ready(self) -> int:
        raise ServiceUnavailable("the queue tasks.dispatch is missing")


async def sent_and_lost(world: World, title: str = "t") -> Task:
    """A task whose dispatch was relayed to the queue, then lost there (purged)."""
    task = await world.new_task(title)
    await world.publish_sent()
    lose_the_queue(world)
    return task


def lose_the_queue(world: World) -> None:
    queue = world.queue.queue(DISPATCH)
    while not queue.empty():
        queue.get_nowait()


async def test_a_task_whose_dispatch_was_lost_is_dispatched_again(world: World) -> None:
    task = await sent_and_lost(world)
    notified = world.signal.count
    world.clock.advance(WAIT + 1)
    assert await world.redispatch()() == 1
    assert world.task(task.id) == task
    assert world.store.outbox == [Dispatch(task.id, 1)]
    assert world.signal.count == notified + 1
    step = world.store.history[-1]
    assert (step.from_status, step.to_status, step.actor, step.worker, step.at) == (
        S.NEW, S.NEW, "sweep", "w9", world.clock.now())
    assert step.reason is not None and "dispatched again (2 of 3)" in step.reason
    await world.relay_once()
    assert await world.process(FixedProcessor())(task.id) == "finished"
    assert world.task(task.id).status is S.COMPLETED


async def test_a_task_is_left_alone_until_the_quiet_time_has_passed(world: World) -> None:
    await sent_and_lost(world)
    world.clock.advance(WAIT - 1)
    before = world.snapshot()
    assert await world.redispatch()() == 0
    assert world.snapshot() == before


async def test_a_dispatch_still_in_the_outbox_is_on_its_way(world: World) -> None:
    await world.new_task()  # the relay has not sent it yet (RabbitMQ down, say)
    world.clock.advance(WAIT * 10)
    before = world.snapshot()
    assert await world.redispatch()() == 0
    assert world.snapshot() == before


async def test_nothing_is_sent_again_while_the_queue_holds_dispatches_ready(
    world: World,
) -> None:
    behind = await world.new_task("behind a backlog")
    await world.publish_sent()
    world.clock.advance(WAIT * 10)
    before = world.snapshot()
    assert await world.redispatch()() == 0
    assert world.snapshot() == before
    lose_the_queue(world)
    assert await world.redispatch()() == 1
    assert world.store.outbox == [Dispatch(behind.id, 1)]


async def test_a_sweep_that_cannot_see_the_queue_changes_nothing(world: World) -> None:
    await sent_and_lost(world)
    world.clock.advance(WAIT + 1)
    before = world.snapshot()
    with pytest.raises(ServiceUnavailable):
        await world.redispatch(queue=BrokenQueue())()
    assert world.snapshot() == before


async def test_a_task_is_sent_again_once_per_quiet_time(world: World) -> None:
    task = await sent_and_lost(world)
    world.clock.advance(WAIT + 1)
    assert await world.redispatch()() == 1
    await world.relay_once()
    lose_the_queue(world)
    world.clock.advance(WAIT - 1)
    assert await world.redispatch()() == 0
    world.clock.advance(2)
    assert await world.redispatch()() == 1
    assert [h.reason for h in world.store.history if h.actor == "sweep"] == [
        f"dispatched again ({n} of 3): no worker took it within 60s and none was on its way"
        for n in (2, 3)]
    assert world.task(task.id).status is S.NEW


async def test_a_task_dispatched_max_attempts_times_and_never_claimed_ends_in_error(
    world: World,
) -> None:
    task = await sent_and_lost(world)
    for _ in range(2):
        world.clock.advance(WAIT + 1)
        assert await world.redispatch()() == 1
        await world.relay_once()
        lose_the_queue(world)
    world.clock.advance(WAIT + 1)
    assert await world.redispatch()() == 1
    ended = world.task(task.id)
    assert ended.status is S.ERROR
    assert ended.error is not None and ended.error.startswith(
        "never claimed: dispatched 3 times")
    step = world.store.history[-1]
    assert (step.from_status, step.to_status, step.actor, step.reason) == (
        S.NEW, S.ERROR, "sweep", ended.error)
    assert world.store.outbox == []
    world.clock.advance(WAIT * 10)
    assert await world.redispatch()() == 0


async def test_a_change_of_status_gives_the_task_its_dispatches_again(world: World) -> None:
    task = await sent_and_lost(world)
    world.clock.advance(WAIT + 1)
    assert await world.redispatch(max_dispatches=2)() == 1
    await world.relay_once()
    assert await world.process(FixedProcessor("boom"))(task.id) == "finished"
    await world.retry()(task.id, actor="ops", reason=None)
    await world.relay_once()
    lose_the_queue(world)
    world.clock.advance(WAIT + 1)
    assert await world.redispatch(max_dispatches=2)() == 1
    assert world.task(task.id).status is S.NEW  # sent again, not ended: its count started over


async def test_tasks_in_progress_are_not_the_sweeps(world: World) -> None:
    task = await world.new_task()
    await world.publish_sent()
    lose_the_queue(world)
    now = world.clock.now()
    world.store.tasks[task.id] = task.claim(now=now, worker="w1", lease_until=now + QUIET)
    world.clock.advance(WAIT * 10)
    assert await world.redispatch()() == 0
