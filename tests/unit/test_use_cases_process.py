"""ProcessTask: claim, work, finish by compare-and-set; skip, lose or hand back otherwise."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from application.process import Outcome
from domain.status import TaskStatus
from tests.unit.fakes import (
    BlockingProcessor,
    FixedProcessor,
    RaisingProcessor,
)
from tests.unit.world import LEASE, World

S = TaskStatus


async def test_a_new_task_is_claimed_worked_on_and_completed(world: World) -> None:
    task = await world.new_task()
    processor = FixedProcessor(None)
    world.clock.advance(2)
    assert await world.process(processor, "w1")(task.id) is Outcome.FINISHED
    done = world.task(task.id)
    assert (done.status, done.attempts, done.error) == (S.COMPLETED, 1, None)
    assert done.finished_at is not None
    assert (done.lease_owner, done.lease_expires_at) == (None, None)
    assert [t.status for t in processor.seen] == [S.IN_PROGRESS]
    history = world.store.history
    assert [(h.from_status, h.to_status, h.worker) for h in history] == [
        (None, S.NEW, None), (S.NEW, S.IN_PROGRESS, "w1"), (S.IN_PROGRESS, S.COMPLETED, "w1")]


async def test_a_failed_result_ends_the_task_in_error_with_the_reason(world: World) -> None:
    task = await world.new_task()
    assert await world.process(FixedProcessor("out of paper"))(task.id) is Outcome.FINISHED
    failed = world.task(task.id)
    assert (failed.status, failed.error) == (S.ERROR, "out of paper")
    assert world.store.history[-1].reason == "out of paper"


async def test_while_the_work_runs_the_task_is_in_progress_and_leased_to_the_worker(
    world: World,
) -> None:
    task = await world.new_task()
    processor = BlockingProcessor()
    world.clock.advance(3)
    running = asyncio.create_task(world.process(processor, "w1")(task.id))
    await processor.started.wait()
    claimed = world.task(task.id)
    assert (claimed.status, claimed.attempts, claimed.lease_owner) == (S.IN_PROGRESS, 1, "w1")
    assert claimed.lease_expires_at == world.clock.now() + LEASE
    assert claimed.started_at == world.clock.now()
    processor.release.set()
    assert await running is Outcome.FINISHED


@pytest.mark.parametrize("result", [None, "failed"])
async def test_a_finished_task_is_skipped_and_left_as_it_is(
    world: World, result: str | None
) -> None:
    task = await world.new_task()
    await world.process(FixedProcessor(result))(task.id)
    before = world.snapshot()
    late = FixedProcessor("should not run")
    assert await world.process(late, "w2")(task.id) is Outcome.SKIPPED
    assert late.seen == []
    assert world.snapshot() == before


async def test_a_task_another_worker_is_working_on_is_skipped(world: World) -> None:
    task = await world.new_task()
    busy = BlockingProcessor()
    running = asyncio.create_task(world.process(busy, "w1")(task.id))
    await busy.started.wait()
    before = world.snapshot()
    duplicate = FixedProcessor("should not run")
    assert await world.process(duplicate, "w2")(task.id) is Outcome.SKIPPED
    assert duplicate.seen == []
    assert world.snapshot() == before
    busy.release.set()
    assert await running is Outcome.FINISHED


async def test_an_unknown_task_is_missing(world: World) -> None:
    processor = FixedProcessor(None)
    assert await world.process(processor)(uuid.UUID(int=404)) is Outcome.MISSING
    assert processor.seen == []


async def test_a_result_that_arrives_after_the_lease_was_taken_over_is_dropped(
    world: World,
) -> None:
    task = await world.new_task()
    slow, fast = BlockingProcessor(None), BlockingProcessor("second worker's result")
    first = asyncio.create_task(world.process(slow, "w1")(task.id))
    await slow.started.wait()
    world.clock.advance(LEASE.total_seconds() + 1)
    assert await world.recover()() == 1
    second = asyncio.create_task(world.process(fast, "w2")(task.id))
    await fast.started.wait()
    taken_over = world.task(task.id)
    assert (taken_over.lease_owner, taken_over.attempts) == ("w2", 2)

    before = world.snapshot()
    slow.release.set()
    assert await first is Outcome.LOST
    assert world.snapshot() == before

    fast.release.set()
    assert await second is Outcome.FINISHED
    final = world.task(task.id)
    assert (final.status, final.error, final.attempts) == (S.ERROR, "second worker's result", 2)


async def test_a_result_after_recovery_gave_up_does_not_change_the_error(world: World) -> None:
    task = await world.new_task()
    slow = BlockingProcessor(None)
    running = asyncio.create_task(world.process(slow, "w1")(task.id))
    await slow.started.wait()
    world.clock.advance(LEASE.total_seconds() + 1)
    assert await world.recover(max_attempts=1)() == 1
    given_up = world.task(task.id)
    slow.release.set()
    assert await running is Outcome.LOST
    assert world.task(task.id) == given_up
    assert given_up.status is S.ERROR


async def test_cancelling_the_work_hands_the_task_back_without_using_an_attempt(
    world: World,
) -> None:
    task = await world.new_task()
    processor = BlockingProcessor()
    running = asyncio.create_task(world.process(processor, "w1")(task.id))
    await processor.started.wait()
    world.clock.advance(4)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    back = world.task(task.id)
    assert (back.status, back.attempts, back.lease_owner, back.started_at) == (S.NEW, 0, None, None)
    last = world.store.history[-1]
    assert (last.from_status, last.to_status, last.worker) == (S.IN_PROGRESS, S.NEW, "w1")
    assert last.reason is not None
    assert "shutdown" in last.reason
    assert not world.store.lock.locked()
    assert await world.process(FixedProcessor(None), "w2")(task.id) is Outcome.FINISHED
    assert world.task(task.id).attempts == 1


async def test_a_processor_that_raises_ends_the_task_in_error(world: World) -> None:
    task = await world.new_task()
    assert await world.process(RaisingProcessor())(task.id) is Outcome.FINISHED
    failed = world.task(task.id)
    assert failed.status is S.ERROR
    assert failed.error is not None
    assert "RuntimeError" in failed.error


