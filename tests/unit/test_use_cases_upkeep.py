"""Lease recovery and renewal, the outbox relay and the readiness check."""

from __future__ import annotations

import asyncio

import pytest

from adapters.memory.steps import InMemoryTaskStore
from adapters.queues import DISPATCH
from application.create import CreateTask
from application.health import CheckReadiness
from application.model import Dispatch, NewTaskRequest
from domain.errors import ServiceUnavailable
from domain.status import TaskStatus
from domain.task import Task
from tests.unit.fakes import (
    BlockingProcessor,
    DownProbe,
    FailingPublisher,
    FixedProcessor,
    HangingProbe,
    OkProbe,
)
from tests.unit.world import LEASE, World

S = TaskStatus


async def claimed_task(world: World, worker: str = "w1") -> tuple[Task, asyncio.Task[object]]:
    """A task claimed by `worker`, whose work never ends on its own (cancel the returned job)."""
    task = await world.new_task()
    processor = BlockingProcessor()
    job: asyncio.Task[object] = asyncio.create_task(world.process(processor, worker)(task.id))
    await processor.started.wait()
    return world.task(task.id), job


async def stop(job: asyncio.Task[object]) -> None:
    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        await job


async def test_an_expired_lease_below_max_attempts_is_requeued_with_the_next_attempt(
    world: World,
) -> None:
    task, job = await claimed_task(world)
    world.store.outbox.clear()
    notified = world.signal.count
    world.clock.advance(LEASE.total_seconds() + 1)
    assert await world.recover(max_attempts=3)() == 1
    back = world.task(task.id)
    assert (back.status, back.attempts, back.lease_owner) == (S.NEW, 1, None)
    assert world.store.outbox == [Dispatch(task.id, 2)]
    last = world.store.history[-1]
    assert (last.from_status, last.to_status, last.worker) == (S.IN_PROGRESS, S.NEW, "w1")
    assert last.reason == "lease expired"
    assert world.signal.count == notified + 1
    await stop(job)


async def test_an_expired_lease_at_max_attempts_ends_in_error(world: World) -> None:
    task, job = await claimed_task(world)
    world.store.outbox.clear()
    world.clock.advance(LEASE.total_seconds() + 1)
    assert await world.recover(max_attempts=1)() == 1
    failed = world.task(task.id)
    assert failed.status is S.ERROR
    assert failed.error is not None
    assert "1 of 1" in failed.error
    assert world.store.history[-1].reason == failed.error
    assert world.store.outbox == []
    await stop(job)


async def test_live_leases_are_left_alone(world: World) -> None:
    _, job = await claimed_task(world)
    world.clock.advance(LEASE.total_seconds() - 1)
    before, notified = world.snapshot(), world.signal.count
    assert await world.recover()() == 0
    assert world.snapshot() == before
    assert world.signal.count == notified
    await stop(job)


async def test_renewing_pushes_the_lease_of_every_task_the_worker_holds(world: World) -> None:
    mine, my_job = await claimed_task(world, "w1")
    theirs, their_job = await claimed_task(world, "w2")
    world.clock.advance(20)
    assert await world.renew("w1")() == 1
    assert world.task(mine.id).lease_expires_at == world.clock.now() + LEASE
    assert world.task(theirs.id).lease_expires_at == theirs.lease_expires_at
    world.clock.advance(LEASE.total_seconds() - 5)
    assert await world.recover()() == 1  # only the lease that was not renewed ran out
    assert world.task(mine.id).status is S.IN_PROGRESS
    assert world.task(theirs.id).status is S.NEW
    for job in (my_job, their_job):
        await stop(job)


async def test_a_claim_the_worker_never_heard_of_is_not_renewed_and_expires(
    world: World,
) -> None:
    running, job = await claimed_task(world, "w1")
    unheard = await world.new_task("claimed, but the answer never came back")
    now = world.clock.now()
    world.store.tasks[unheard.id] = unheard.claim(now=now, worker="w1", lease_until=now + LEASE)
    world.clock.advance(20)
    assert await world.renew("w1")() == 1
    assert world.task(running.id).lease_expires_at == world.clock.now() + LEASE
    world.clock.advance(LEASE.total_seconds() - 5)
    assert await world.recover()() == 1
    assert world.task(running.id).status is S.IN_PROGRESS
    assert (world.task(unheard.id).status, world.store.history[-1].reason) == (
        S.NEW, "lease expired")
    await stop(job)


async def test_a_claim_stays_renewed_until_its_end_is_committed(world: World) -> None:
    task = await world.new_task()
    processor = BlockingProcessor()
    job = asyncio.create_task(world.process(processor, "w1")(task.id))
    await processor.started.wait()
    assert world.stops.running() == [(task.id, 1)]
    async with world.store.lock:  # the finish waits for the database
        processor.release.set()
        await asyncio.sleep(0.05)
        assert world.stops.running() == [(task.id, 1)]
    await job
    assert world.stops.running() == []
    assert await world.renew("w1")() == 0


async def test_the_relay_publishes_what_a_create_sent_and_then_removes_its_entry(
    world: World,
) -> None:
    relay = world.relay()
    create = CreateTask(world.steps, world.clock, world.ids, relay)
    first = (await create(NewTaskRequest(title="a"))).task
    second = (await create(NewTaskRequest(title="b"))).task
    assert len(world.store.held) == 2  # held for this process, so no other relay sends them
    assert await relay() == 2
    await relay.close()  # the removal runs beside the next publishes: let it end
    assert world.queue.published == [Dispatch(first.id, 1), Dispatch(second.id, 1)]
    assert world.queue.queue(DISPATCH).qsize() == 2
    assert world.store.outbox == [] and world.store.held == {}
    assert await relay() == 0
    assert len(world.queue.published) == 2


async def test_the_relay_moves_outbox_entries_to_the_publisher_when_told(world: World) -> None:
    task = await world.new_task()
    await world.process(FixedProcessor("boom"))(task.id)
    await world.retry()(task.id, None, None)  # puts a dispatch in the outbox
    relay = world.relay()
    assert await relay() == 1  # the outbox is due at the first wake: nothing waits for a notify
    assert await relay() == 0
    relay.notify()
    assert await relay() == 0
    assert world.queue.published[-1] == Dispatch(task.id, 2)
    assert world.store.outbox == []


async def test_the_relay_hands_back_what_the_broker_did_not_confirm(world: World) -> None:
    broker = FailingPublisher()
    failing = world.relay(broker)
    create = CreateTask(world.steps, world.clock, world.ids, failing)
    await create(NewTaskRequest(title="a"))
    await create(NewTaskRequest(title="b"))
    sent = [d for d, _ in world.store.held.values()]
    with pytest.raises(ServiceUnavailable):
        await failing()
    assert broker.attempts == 1
    assert world.store.outbox == sent and world.store.held == {}  # handed back at once
    assert await world.relay()() == 2
    assert world.queue.published == sent


async def test_entries_of_a_process_that_died_before_the_confirm_are_sent_once_its_hold_is_over(
    world: World,
) -> None:
    steps = InMemoryTaskStore(world.store, hold=0.05)
    await CreateTask(steps, world.clock, world.ids, world.signal)(NewTaskRequest(title="a"))
    held = dict(world.signal.sent)  # sent to a relay that died before publishing
    assert len(held) == 1
    relay = world.relay()
    assert await relay() == 0  # still held by the dead process
    await asyncio.sleep(0.06)
    relay.notify()
    assert await relay() == 1
    await relay.close()
    assert world.queue.published == list(held.values())
    assert world.store.outbox == [] and world.store.held == {}


async def test_readiness_reports_ok_for_every_answering_probe(world: World) -> None:
    assert await CheckReadiness([OkProbe(), world.queue])() == {"database": "ok", "broker": "ok"}


async def test_readiness_keeps_the_server_each_probe_answered_from() -> None:
    readiness = CheckReadiness([OkProbe("10.0.0.6:5432"), DownProbe("broker")])
    await readiness()
    assert readiness.servers == {"database": "10.0.0.6:5432"}
    readiness = CheckReadiness([DownProbe("database")])
    await readiness()
    assert readiness.servers == {}


async def test_readiness_reports_why_a_probe_fails() -> None:
    checks = await CheckReadiness([OkProbe(), DownProbe("broker", "connection refused")])()
    assert checks == {"database": "ok", "broker": "connection refused"}


async def test_readiness_names_a_failure_that_gives_no_reason() -> None:
    assert await CheckReadiness([DownProbe("broker", "")])() == {"broker": "unavailable"}


async def test_readiness_reports_a_probe_that_does_not_answer_in_time() -> None:
    checks = await CheckReadiness([HangingProbe(), DownProbe("database")], timeout=0.05)()
    assert checks == {"broker": "no answer within 0.05s", "database": "database unreachable"}
