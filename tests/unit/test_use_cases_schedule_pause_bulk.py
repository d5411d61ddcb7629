"""Bulk create, scheduled start, pausing dispatch and the diagnosis, on the in-memory world."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from adapters.memory.backlog import InMemoryDispatchQueue
from adapters.memory.steps import InMemoryPauseSwitch
from application.create import CreateTasks
from application.diagnosis import DiagnoseTask
from application.model import Dispatch, NewTaskRequest
from application.pause import ReadDispatch, SwitchDispatch
from application.process import Outcome, ProcessTask
from application.stats import GetCounts, Throughput
from domain.errors import IdempotencyConflict
from domain.status import TaskStatus
from tests.unit.fakes import T0, BlockingProcessor, FixedProcessor, OkProbe
from tests.unit.world import LEASE, World

S = TaskStatus


def bulk(world: World) -> CreateTasks:
    return CreateTasks(world.steps, world.clock, world.ids, world.signal)


def diagnose(world: World) -> DiagnoseTask:
    counts = GetCounts(world.store.unit_of_work, world.clock)
    return DiagnoseTask(world.steps, InMemoryPauseSwitch(world.store),
                        InMemoryDispatchQueue(world.queue), OkProbe(),
                        Throughput(counts, world.clock), world.clock)


async def test_a_batch_is_created_in_order_each_with_history_and_a_dispatch_sent(
    world: World,
) -> None:
    created = await bulk(world)([NewTaskRequest(title=f"t{i}") for i in range(3)], None)
    assert [t.title for t in created.tasks] == ["t0", "t1", "t2"]
    assert not created.replayed
    assert len(world.store.history) == 3
    assert list(world.signal.sent.values()) == [Dispatch(t.id, 1) for t in created.tasks]


async def test_a_batch_s_key_replays_the_same_batch_and_refuses_another(world: World) -> None:
    first = await bulk(world)([NewTaskRequest(title="a"), NewTaskRequest(title="b")], "k")
    again = await bulk(world)([NewTaskRequest(title="a"), NewTaskRequest(title="b")], "k")
    assert again.replayed and again.tasks == first.tasks
    before = world.snapshot()
    for other in ([NewTaskRequest(title="a")],
                  [NewTaskRequest(title="a"), NewTaskRequest(title="b"), NewTaskRequest(title="c")],
                  [NewTaskRequest(title="b"), NewTaskRequest(title="a")]):
        with pytest.raises(IdempotencyConflict):
            await bulk(world)(other, "k")
        assert world.snapshot() == before  # a longer batch wrote none of its items either


async def test_a_delayed_task_is_not_sent_at_once_and_not_claimed_before_its_time(
    world: World,
) -> None:
    task = await world.new_task("later", delay_seconds=30)
    assert task.run_at == T0 + timedelta(seconds=30)
    assert world.signal.sent == {}  # its dispatch waits in the outbox until then
    assert [d for d, _ in world.store.held.values()] == [Dispatch(task.id, 1)]
    assert await world.process(FixedProcessor())(task.id) is Outcome.SKIPPED
    assert world.task(task.id).status is S.NEW
    world.clock.advance(31)
    assert await world.process(FixedProcessor())(task.id) is Outcome.FINISHED


async def test_a_start_time_in_the_past_means_now(world: World) -> None:
    task = await world.new_task("now", run_at=T0 - timedelta(days=1))
    assert list(world.signal.sent.values()) == [Dispatch(task.id, 1)]
    assert await world.process(FixedProcessor())(task.id) is Outcome.FINISHED


async def test_while_paused_a_claim_waits_and_the_task_spends_nothing(world: World) -> None:
    switch = SwitchDispatch(InMemoryPauseSwitch(world.store), world.clock)
    state = await switch(paused=True, actor="ops", reason="deploy")
    assert (state.paused, state.actor, state.reason, state.since) == (True, "ops", "deploy", T0)
    task = await world.new_task()
    process = ProcessTask(world.steps, FixedProcessor(), world.clock, "w1", LEASE,
                          world.stops, pause=InMemoryPauseSwitch(world.store))
    job = asyncio.create_task(process(task.id))
    await asyncio.sleep(0.05)
    assert not job.done()
    assert (world.task(task.id).status, world.task(task.id).attempts) == (S.NEW, 0)
    await switch(paused=False, actor="ops", reason=None)
    assert await asyncio.wait_for(job, 1) is Outcome.FINISHED
    assert world.task(task.id).attempts == 1
    assert (await ReadDispatch(InMemoryPauseSwitch(world.store))()).paused is False


async def test_the_diagnosis_follows_a_task_through_its_states(world: World) -> None:
    scheduled = await world.new_task("later", delay_seconds=60)
    assert (await diagnose(world)(scheduled.id)).state == "scheduled"
    task = await world.new_task()
    assert (await diagnose(world)(task.id)).state == "dispatch_pending"  # sent, unconfirmed
    await world.publish_sent()
    looked = await diagnose(world)(task.id)
    assert (looked.state, looked.facts) == ("no_workers", {"consumers": 0})
    await SwitchDispatch(InMemoryPauseSwitch(world.store), world.clock)(
        paused=True, actor="ops", reason=None)
    paused = await diagnose(world)(task.id)
    assert (paused.state, paused.facts["actor"]) == ("paused", "ops")
    await SwitchDispatch(InMemoryPauseSwitch(world.store), world.clock)(
        paused=False, actor="ops", reason=None)
    processor = BlockingProcessor()
    job = asyncio.create_task(world.process(processor)(task.id))
    await processor.started.wait()
    running = await diagnose(world)(task.id)
    assert (running.state, running.facts["worker"], running.facts["attempt"]) == (
        "running", "w1", 1)
    world.clock.advance(31)
    assert (await diagnose(world)(task.id)).state == "lease_expired"
    processor.release.set()
    await job
    done = await diagnose(world)(task.id)
    assert (done.state, done.facts["error"]) == ("finished", None)


async def test_a_queued_task_says_how_many_wait_ahead_and_who_consumes(world: World) -> None:
    task = await world.new_task()
    await world.publish_sent()
    await world.queue.consume("nowhere", 1, lambda delivery: asyncio.sleep(0))
    world.queue.consuming["tasks.dispatch"] += 1  # a worker that consumes but is busy
    looked = await diagnose(world)(task.id)
    assert looked.state == "queued"
    assert (looked.facts["consumers"], looked.facts["ahead"],
            looked.facts["estimated_start_seconds"]) == (1, 1, None)  # no rate seen yet
    await world.queue.stop_consuming()
