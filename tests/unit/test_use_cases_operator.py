"""Retry and cancel as use cases: history with actor and reason, the races, and repeats."""

from __future__ import annotations

import asyncio

import pytest

from application.model import Dispatch
from application.operator import Cancelled
from application.process import Outcome
from domain.errors import InvalidTransition, TaskNotFound
from domain.status import TaskStatus
from domain.task import Task
from tests.unit.fakes import BlockingProcessor, FixedProcessor
from tests.unit.world import LEASE, World

S = TaskStatus


def steps(world: World) -> list[tuple[object, ...]]:
    return [(h.from_status, h.to_status, h.worker, h.actor, h.reason) for h in world.store.history]


async def failed_task(world: World) -> Task:
    task = await world.new_task()
    await world.process(FixedProcessor("boom"))(task.id)
    return task


async def test_a_retry_puts_a_failed_task_back_to_new_and_dispatches_it_again(
    world: World,
) -> None:
    task = await failed_task(world)
    notified = world.signal.count
    again = await world.retry()(task.id, "ops", "flaky network")
    assert (again.status, again.attempts, again.error) == (S.NEW, 1, None)
    assert world.store.outbox[-1] == Dispatch(again.id, 2)
    assert world.signal.count == notified + 1
    assert steps(world)[-1] == (S.ERROR, S.NEW, None, "ops", "flaky network")
    assert await world.process(FixedProcessor(None))(again.id) is Outcome.FINISHED
    assert world.task(again.id).attempts == 2


async def test_a_retry_that_arrives_twice_retries_once(world: World) -> None:
    task = await failed_task(world)
    retry = world.retry()
    results = await asyncio.gather(retry(task.id, None, None), retry(task.id, None, None),
                                   return_exceptions=True)
    assert sorted(type(r).__name__ for r in results) == ["InvalidTransition", "Task"]
    assert [s[:2] for s in steps(world)].count((S.ERROR, S.NEW)) == 1
    assert len([d for d in world.store.outbox if d.attempt == 2]) == 1


@pytest.mark.parametrize("outcome", [None, "still running"])
async def test_only_a_task_in_error_can_be_retried(world: World, outcome: str | None) -> None:
    task = await world.new_task()
    if outcome is None:  # completed
        await world.process(FixedProcessor(None))(task.id)
    with pytest.raises(InvalidTransition):
        await world.retry()(task.id, None, None)


async def test_retrying_or_cancelling_an_unknown_task_says_so(world: World) -> None:
    import uuid

    with pytest.raises(TaskNotFound):
        await world.retry()(uuid.UUID(int=99), None, None)
    with pytest.raises(TaskNotFound):
        await world.cancel()(uuid.UUID(int=99), None, None)


async def test_a_new_task_cancelled_ends_in_error_at_once_and_is_never_run(world: World) -> None:
    task = await world.new_task()
    done = await world.cancel()(task.id, "ops", "not needed")
    assert done.stopped and done.task.status is S.ERROR
    assert done.task.error == "cancelled by ops: not needed"
    assert steps(world)[-1] == (S.NEW, S.ERROR, None, "ops", "not needed")
    processor = FixedProcessor(None)
    assert await world.process(processor)(task.id) is Outcome.SKIPPED  # its dispatch arrives
    assert processor.seen == []


async def test_a_running_task_cancelled_is_stopped_by_its_worker_and_ends_cancelled(
    world: World,
) -> None:
    task = await world.new_task()
    processor = BlockingProcessor()
    running = asyncio.create_task(world.process(processor, "w1")(task.id))
    await processor.started.wait()

    asked = await world.cancel()(task.id, "ops", "wrong input")

    assert not asked.stopped and asked.task.status is S.IN_PROGRESS
    assert await asyncio.wait_for(running, 1.0) is Outcome.FINISHED  # without release
    final = world.task(task.id)
    assert (final.status, final.error) == (S.ERROR, "cancelled by ops: wrong input")
    assert steps(world)[-2:] == [
        (S.IN_PROGRESS, S.IN_PROGRESS, None, "ops", "cancel requested: wrong input"),
        (S.IN_PROGRESS, S.ERROR, "w1", "ops", "wrong input")]


async def test_a_cancel_that_arrives_twice_asks_once(world: World) -> None:
    task = await world.new_task()
    processor = BlockingProcessor()
    running = asyncio.create_task(world.process(processor)(task.id))
    await processor.started.wait()
    first, second = await world.cancel()(task.id, "a", None), await world.cancel()(
        task.id, "b", None)
    assert (first.stopped, second.stopped) == (False, False)
    await asyncio.wait_for(running, 1.0)
    requests = [s for s in steps(world) if s[:2] == (S.IN_PROGRESS, S.IN_PROGRESS)]
    assert len(requests) == 1 and requests[0][3] == "a"
    with pytest.raises(InvalidTransition):  # now final
        await world.cancel()(task.id, "c", None)


async def test_cancel_against_finish_whichever_compare_and_set_wins_stands(
    world: World,
) -> None:
    """The work ends in the same instant as the cancel: either the task completed (and the
    cancel, asked too late or refused, changed nothing) or it ended cancelled, never both."""
    for n in range(20):
        task = await world.new_task(f"race {n}")
        processor = BlockingProcessor()
        running = asyncio.create_task(world.process(processor)(task.id))
        await processor.started.wait()
        processor.release.set()
        for _ in range(n % 3):
            await asyncio.sleep(0)
        cancel = world.cancel()(task.id, "ops", None)
        results = await asyncio.gather(running, cancel, return_exceptions=True)
        final = world.task(task.id)
        into_final = [h for h in world.store.history
                      if h.task_id == task.id and h.to_status.is_final]
        assert len(into_final) == 1
        assert final.status is into_final[0].to_status
        if final.status is S.ERROR:
            assert final.error and final.error.startswith("cancelled")
        else:  # the cancel was refused (already final) or asked too late to matter
            cancelled = results[1]
            assert isinstance(cancelled, InvalidTransition) or (
                isinstance(cancelled, Cancelled) and not cancelled.stopped)


async def test_a_worker_stopped_by_shutdown_ends_a_cancel_requested_task_not_hands_it_back(
    world: World,
) -> None:
    """The cancel's notification never reached the worker, which is then shut down: its
    hand-back finds the request and ends the task cancelled instead of queueing it again."""
    task = await world.new_task()
    processor = BlockingProcessor()
    world.store.on_cancel.clear()  # the notification is lost
    stopping = asyncio.create_task(world.process(processor, "w1")(task.id))
    await processor.started.wait()
    await world.cancel()(task.id, "ops", "stop")
    stopping.cancel()  # shutdown: grace period over
    with pytest.raises(asyncio.CancelledError):
        await stopping
    final = world.task(task.id)
    assert (final.status, final.error) == (S.ERROR, "cancelled by ops: stop")
    assert steps(world)[-1] == (S.IN_PROGRESS, S.ERROR, "w1", "ops", "stop")
    assert world.store.outbox == []  # not queued again (its first dispatch is held, sent)


async def test_the_recovery_sweep_ends_an_expired_cancel_requested_task(world: World) -> None:
    task = await world.new_task()
    claimed = task.claim(now=world.clock.now(), worker="dead", lease_until=world.clock.now())
    asked = claimed.cancel(now=world.clock.now(), actor="ops", reason="gone")
    world.store.tasks[task.id] = asked
    world.clock.advance(LEASE.total_seconds())
    assert await world.recover()() == 1
    final = world.task(task.id)
    assert (final.status, final.error) == (S.ERROR, "cancelled by ops: gone")
    assert world.store.history[-1].actor == "ops"
    assert world.store.outbox == []  # not dispatched again


async def test_a_missed_cancel_reaches_the_worker_through_its_lease_renewal(
    world: World,
) -> None:
    task = await world.new_task()
    processor = BlockingProcessor()
    hooks = list(world.store.on_cancel)
    world.store.on_cancel.clear()  # the notification is lost
    running = asyncio.create_task(world.process(processor, "w1")(task.id))
    await processor.started.wait()
    await world.cancel()(task.id, None, None)
    await asyncio.sleep(0.05)
    assert not running.done()
    assert await world.renew("w1")() == 1
    assert await asyncio.wait_for(running, 1.0) is Outcome.FINISHED
    assert world.task(task.id).error == "cancelled"
    world.store.on_cancel[:] = hooks
