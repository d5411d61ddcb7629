"""Lease recovery and renewal, the outbox relay and the readiness check."""

from __future__ import annotations

import asyncio

import pytest

from adapters.queues import DISPATCH
from application.health import CheckReadiness
from application.model import Dispatch
from domain.errors import ServiceUnavailable
from domain.status import TaskStatus
from domain.task import Task
from tests.unit.fakes import BlockingProcessor, DownProbe, FailingPublisher, HangingProbe, OkProbe
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


async def test_the_relay_moves_outbox_entries_to_the_publisher(world: World) -> None:
    first, second = await world.new_task("a"), await world.new_task("b")
    assert await world.relay()() == 2
    assert world.queue.published == [Dispatch(first.id, 1), Dispatch(second.id, 1)]
    assert world.queue.queue(DISPATCH).qsize() == 2
    assert world.store.outbox == []
    assert await world.relay()() == 0
    assert len(world.queue.published) == 2


async def test_the_relay_keeps_entries_the_broker_did_not_confirm(world: World) -> None:
    await world.new_task("a")
    await world.new_task("b")
    pending = list(world.store.outbox)
    broker = FailingPublisher()
    with pytest.raises(ServiceUnavailable):
        await world.relay(broker)()
    assert broker.attempts == 1
    assert world.store.outbox == pending  # handed back at once, not held
    assert await world.relay()() == 2
    assert world.queue.published == pending


async def test_entries_of_a_relay_that_died_mid_publish_are_sent_once_its_hold_is_over(
    world: World,
) -> None:
    await world.new_task("a")
    async with world.store.unit_of_work() as uow:
        held = await uow.outbox.take(10, hold=0.05)  # and then the process is gone
        await uow.commit()
    assert len(held) == 1
    assert await world.relay()() == 0  # still held by the dead relay
    await asyncio.sleep(0.06)
    assert await world.relay()() == 1
    assert world.queue.published == list(held.values())
    assert world.store.outbox == [] and world.store.held == {}


async def test_readiness_reports_ok_for_every_answering_probe(world: World) -> None:
    assert await CheckReadiness([OkProbe(), world.queue])() == {"database": "ok", "broker": "ok"}


async def test_readiness_reports_why_a_probe_fails() -> None:
    checks = await CheckReadiness([OkProbe(), DownProbe("broker", "connection refused")])()
    assert checks == {"database": "ok", "broker": "connection refused"}


async def test_readiness_names_a_failure_that_gives_no_reason() -> None:
    assert await CheckReadiness([DownProbe("broker", "")])() == {"broker": "unavailable"}


async def test_readiness_reports_a_probe_that_does_not_answer_in_time() -> None:
    checks = await CheckReadiness([HangingProbe(), DownProbe("database")], timeout=0.05)()
    assert checks == {"broker": "no answer within 0.05s", "database": "database unreachable"}
