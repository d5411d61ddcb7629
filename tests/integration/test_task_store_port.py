"""The TaskStore port's one suite, run against PostgresTaskStore on a real database and against
InMemoryTaskStore: the fake the unit tests use cannot drift from the real thing."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from adapters.memory.steps import InMemoryPauseSwitch, InMemoryTaskStore
from adapters.memory.store import InMemoryStore
from adapters.postgres.pause import PostgresPauseSwitch
from adapters.postgres.store import PostgresTaskStore
from adapters.postgres.uow import PostgresUnitOfWork
from application.model import Change, Claimed, Dispatch, NewTask, Stored
from application.pause import DispatchPaused, DispatchState, PauseSwitch
from application.ports import TaskStore, UnitOfWorkFactory
from domain.status import TaskSource, TaskStatus
from domain.task import Task, Transition

from .builders import NOW, STALE_FIELDS, claimed, new_task, replace, request_for

#: how long a create holds its dispatch for its caller, in the tests that wait it out
SHORT_HOLD = 1.0
HOLD = 30.0
TRACE = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@dataclass
class Backing:
    """One implementation of the port, and a unit of work to look beneath it."""

    store: TaskStore
    with_hold: Callable[[float], TaskStore]  # another store on the same data, holding so long
    units: UnitOfWorkFactory
    pause: PauseSwitch

    async def history(self, task_id: uuid.UUID) -> list[Transition]:
        async with self.units() as u:
            return await u.tasks.history(task_id)

    async def pending(self) -> int:
        """Dispatches in the outbox, held or not."""
        async with self.units() as u:
            return (await u.tasks.counts()).outbox_pending

    async def put(self, dispatches: list[Dispatch]) -> None:
        async with self.units() as u:
            await u.outbox.put(dispatches)
            await u.commit()

    async def state(self, task_id: uuid.UUID) -> tuple[object, ...]:
        """All that a step may write about a task: the row, its history, the outbox."""
        return await self.store.get(task_id), await self.history(task_id), await self.pending()


@pytest.fixture(params=["postgres", "memory"])
def backing(request: pytest.FixtureRequest) -> Backing:
    if request.param == "postgres":
        pool = request.getfixturevalue("pool")
        return Backing(PostgresTaskStore(pool, hold=HOLD),
                       lambda hold: PostgresTaskStore(pool, hold=hold),
                       lambda: PostgresUnitOfWork(pool), PostgresPauseSwitch(pool, None))
    memory = InMemoryStore()
    return Backing(InMemoryTaskStore(memory, hold=HOLD),
                   lambda hold: InMemoryTaskStore(memory, hold=hold), memory.unit_of_work,
                   InMemoryPauseSwitch(memory))


async def created(backing: Backing, task: Task, key: str | None = None) -> Stored:
    stored = await backing.store.create(NewTask(task, request_for(task, key)))
    assert stored.inserted
    return stored


async def running(backing: Backing, task: Task, worker: str = "worker-1") -> Task:
    """`task`, created and claimed by `worker` (as builders.claimed has it)."""
    await created(backing, task)
    want = claimed(task, worker)
    got = await backing.store.claim(task.id, worker=worker, now=want.updated_at,
                                    lease_until=want.lease_expires_at or NOW)
    assert isinstance(got, Claimed) and got.task == want
    return want


# create


async def test_create_stores_the_task_its_created_history_row_and_one_held_dispatch(
    backing: Backing,
) -> None:
    task = new_task(description="with all its fields", payload={"n": [1, "ü"]})
    store = backing.with_hold(SHORT_HOLD)

    stored = await store.create(NewTask(task, request_for(task), TRACE))

    assert (stored.task, stored.inserted, stored.fingerprint) == (task, True, None)
    assert stored.entry is not None
    assert await store.get(task.id) == task
    assert await backing.history(task.id) == [Transition.between(None, task)]
    assert await backing.pending() == 1
    assert await store.take(100, HOLD) == {}  # held for its creator
    await asyncio.sleep(SHORT_HOLD + 0.1)  # the creator never removed it: it died
    taken = await store.take(100, HOLD)
    assert list(taken.values()) == [Dispatch(task.id, 1, TRACE)]
    assert await store.take(100, HOLD) == {}  # held by the one who took it now


async def test_a_created_dispatch_is_gone_once_its_creator_removes_it(
    backing: Backing,
) -> None:
    store = backing.with_hold(SHORT_HOLD)
    task = new_task()
    stored = await store.create(NewTask(task, request_for(task)))
    assert stored.entry is not None

    await store.remove([stored.entry])  # the broker confirmed the creator's publish

    assert await backing.pending() == 0
    await asyncio.sleep(SHORT_HOLD + 0.1)
    assert await store.take(100, HOLD) == {}


async def test_a_created_dispatch_released_by_its_creator_can_be_taken_at_once(
    backing: Backing,
) -> None:
    task = new_task()
    stored = await created(backing, task)
    assert stored.entry is not None

    await backing.store.release([stored.entry])  # the broker did not confirm

    assert list((await backing.store.take(100, HOLD)).values()) == [Dispatch(task.id, 1)]


async def test_a_replayed_idempotency_key_returns_the_stored_task_and_writes_nothing(
    backing: Backing,
) -> None:
    first = new_task("first")
    asked = request_for(first, "key-1")
    original = await backing.store.create(NewTask(first, asked))
    before = await backing.state(first.id)
    replay, other_body = new_task("first"), new_task("another body")

    again = await backing.store.create(NewTask(replay, request_for(replay, "key-1")))
    conflict = await backing.store.create(NewTask(other_body, request_for(other_body, "key-1")))

    assert original.fingerprint == asked.fingerprint()
    for stored in (again, conflict):
        assert (stored.task, stored.inserted, stored.entry) == (first, False, None)
        assert stored.fingerprint == asked.fingerprint()  # what tells a replay from a conflict
    assert await backing.store.get(replay.id) is None
    assert await backing.store.get(other_body.id) is None
    assert await backing.history(replay.id) == []
    assert await backing.state(first.id) == before


async def test_the_same_key_from_the_other_source_is_another_task(backing: Backing) -> None:
    by_api, by_amqp = new_task(source=TaskSource.API), new_task(source=TaskSource.AMQP)

    one = await backing.store.create(NewTask(by_api, request_for(by_api, "shared")))
    two = await backing.store.create(NewTask(by_amqp, request_for(by_amqp, "shared")))

    assert one.inserted and two.inserted
    assert await backing.pending() == 2


# claim


async def test_claiming_a_new_task_starts_its_attempt_and_records_it(backing: Backing) -> None:
    task = new_task()
    await created(backing, task)
    pending = await backing.pending()
    now = NOW + timedelta(seconds=5)
    lease_until = now + timedelta(seconds=30)

    got = await backing.store.claim(task.id, worker="worker-7", now=now, lease_until=lease_until)

    want = task.claim(now=now, worker="worker-7", lease_until=lease_until)
    assert got == Claimed(want, waited_since=task.updated_at)
    assert (want.status, want.attempts, want.started_at) == (TaskStatus.IN_PROGRESS, 1, now)
    assert (want.lease_owner, want.lease_expires_at) == ("worker-7", lease_until)
    assert await backing.store.get(task.id) == want
    step = (await backing.history(task.id))[-1]
    assert step == Transition.between(task, want, worker="worker-7")
    assert (step.from_status, step.to_status, step.worker, step.attempt, step.at) == (
        TaskStatus.NEW, TaskStatus.IN_PROGRESS, "worker-7", 1, now)
    assert await backing.pending() == pending  # a claim sends nothing


async def test_claiming_a_task_that_is_not_new_gives_its_status_and_writes_nothing(
    backing: Backing,
) -> None:
    working = await running(backing, new_task("running"))
    finishing = await running(backing, new_task("done"))
    done = finishing.complete(now=NOW + timedelta(minutes=1))
    assert await backing.store.apply(Change(finishing, done, Transition.between(finishing, done)))
    later = NOW + timedelta(minutes=2)

    for task, status in ((working, TaskStatus.IN_PROGRESS), (done, TaskStatus.COMPLETED)):
        before = await backing.state(task.id)
        got = await backing.store.claim(task.id, worker="worker-2", now=later,
                                        lease_until=later + timedelta(seconds=30))
        assert got is status
        assert await backing.state(task.id) == before


async def test_claiming_an_unknown_task_gives_none_and_writes_nothing(backing: Backing) -> None:
    unknown = new_task()

    got = await backing.store.claim(unknown.id, worker="worker-1", now=NOW,
                                    lease_until=NOW + timedelta(seconds=30))

    assert got is None
    assert await backing.state(unknown.id) == (None, [], 0)


# apply


def handed_back(working: Task) -> Change:
    """The worker gives the task back to `new`: a history row and a dispatch of attempt 2."""
    back = working.release(now=working.updated_at + timedelta(seconds=3))
    return Change(working, back, Transition.between(working, back, worker="worker-1",
                                                    reason="handed back"),
                  Dispatch(working.id, working.attempts + 1, TRACE))


@pytest.mark.parametrize("stale", STALE_FIELDS)
async def test_apply_writes_nothing_when_the_task_is_no_longer_as_the_change_read_it(
    backing: Backing, stale: dict[str, object],
) -> None:
    working = await running(backing, new_task())
    change = handed_back(working)
    before = await backing.state(working.id)

    written = await backing.store.apply(
        msgspec.structs.replace(change, old=replace(working, **stale)))

    assert written is False
    assert await backing.state(working.id) == before
    assert await backing.store.take(100, HOLD) == {}


async def test_apply_writes_the_task_its_history_row_and_its_dispatch_when_it_matches(
    backing: Backing,
) -> None:
    working = await running(backing, new_task())
    change = handed_back(working)
    history = await backing.history(working.id)
    pending = await backing.pending()

    written = await backing.store.apply(change)

    assert written is True
    assert await backing.store.get(working.id) == change.new
    assert await backing.history(working.id) == [*history, change.step]
    assert await backing.pending() == pending + 1
    assert list((await backing.store.take(100, HOLD)).values()) == [change.dispatch]
    assert await backing.store.apply(change) is False  # once only: the row moved on


async def test_apply_without_a_dispatch_sends_nothing(backing: Backing) -> None:
    working = await running(backing, new_task())
    done = working.complete(now=working.updated_at + timedelta(seconds=1))
    pending = await backing.pending()

    assert await backing.store.apply(Change(working, done, Transition.between(working, done)))

    assert await backing.store.get(working.id) == done
    assert await backing.pending() == pending


async def test_apply_to_an_unknown_task_writes_nothing(backing: Backing) -> None:
    task = new_task()
    working = claimed(task)

    written = await backing.store.apply(Change(task, working, Transition.between(task, working),
                                               Dispatch(task.id, 1)))

    assert written is False
    assert await backing.state(task.id) == (None, [], 0)


# take, remove, release


def dispatches(count: int) -> list[Dispatch]:
    return [Dispatch(uuid.uuid4(), attempt) for attempt in range(1, count + 1)]


async def test_take_gives_the_oldest_entries_up_to_the_limit_and_holds_them(
    backing: Backing,
) -> None:
    entries = dispatches(5)
    await backing.put(entries)

    first = await backing.store.take(2, HOLD)
    rest = await backing.store.take(100, HOLD)

    assert list(first.values()) == entries[:2]
    assert list(rest.values()) == entries[2:]
    assert first.keys().isdisjoint(rest.keys())
    assert await backing.store.take(100, HOLD) == {}  # all held
    assert await backing.pending() == 5  # held is not gone


async def test_removed_entries_leave_the_outbox_for_good(backing: Backing) -> None:
    entries = dispatches(3)
    await backing.put(entries)
    held = await backing.store.take(2, 0.2)

    await backing.store.remove(held.keys())

    assert await backing.pending() == 1
    await asyncio.sleep(0.3)  # their hold is over: they do not come back
    assert list((await backing.store.take(100, HOLD)).values()) == entries[2:]


async def test_released_entries_can_be_taken_again_at_once_oldest_first(
    backing: Backing,
) -> None:
    entries = dispatches(3)
    await backing.put(entries)
    first = await backing.store.take(1, HOLD)
    await backing.store.take(1, HOLD)

    await backing.store.release(first.keys())

    assert list((await backing.store.take(100, HOLD)).values()) == [entries[0], entries[2]]
    assert await backing.pending() == 3


async def test_entries_of_a_taker_that_never_settles_come_back_once_the_hold_is_over(
    backing: Backing,
) -> None:
    entries = dispatches(2)
    await backing.put(entries)

    assert list((await backing.store.take(100, 0.2)).values()) == entries  # then it died
    assert await backing.store.take(100, HOLD) == {}
    await asyncio.sleep(0.3)
    assert list((await backing.store.take(100, HOLD)).values()) == entries


async def test_settling_nothing_or_unknown_entries_changes_nothing(backing: Backing) -> None:
    entries = dispatches(2)
    await backing.put(entries)
    held = await backing.store.take(1, HOLD)
    unknown = max(held) + 1000

    await backing.store.remove([])
    await backing.store.release([])
    await backing.store.remove([unknown])
    await backing.store.release([unknown])

    assert await backing.pending() == 2
    assert list((await backing.store.take(100, HOLD)).values()) == entries[1:]


# schedule, pause, many at once


async def test_a_scheduled_task_is_not_sent_by_its_creator_nor_claimed_before_its_time(
    backing: Backing,
) -> None:
    now = datetime.now(UTC)
    task = msgspec.structs.replace(new_task("later", at=now), run_at=now + timedelta(minutes=5))
    stored = await backing.store.create(NewTask(task, request_for(task)))
    assert stored.inserted and stored.entry is None  # it waits in the outbox, unsent
    assert await backing.pending() == 1
    assert await backing.store.take(100, HOLD) == {}  # not due yet
    before = await backing.state(task.id)
    got = await backing.store.claim(task.id, worker="w", now=now,
                                    lease_until=now + timedelta(seconds=30))
    assert got is TaskStatus.NEW
    assert await backing.state(task.id) == before
    assert (await backing.store.pending_since(task.id)) is not None


async def test_while_dispatch_is_paused_a_claim_is_refused_and_writes_nothing(
    backing: Backing,
) -> None:
    task = new_task()
    await created(backing, task)
    state = await backing.pause.switch(DispatchState(True, NOW, "ops", "deploy"))
    assert (state.paused, state.actor, state.reason) == (True, "ops", "deploy")
    assert (await backing.pause.state()).since == NOW
    before = await backing.state(task.id)
    want = claimed(task)
    with pytest.raises(DispatchPaused):
        await backing.store.claim(task.id, worker="worker-1", now=want.updated_at,
                                  lease_until=want.lease_expires_at or NOW)
    assert await backing.state(task.id) == before
    await backing.pause.switch(DispatchState(False, NOW, "ops", None))
    await asyncio.wait_for(backing.pause.resumed(), 2)
    got = await backing.store.claim(task.id, worker="worker-1", now=want.updated_at,
                                    lease_until=want.lease_expires_at or NOW)
    assert isinstance(got, Claimed) and got.task == want


async def test_create_many_writes_all_or_none_when_a_key_is_taken(backing: Backing) -> None:
    first = new_task("first")
    await created(backing, first, key="k1")
    fresh, again = new_task("fresh"), new_task("again")
    stored = await backing.store.create_many([
        NewTask(fresh, request_for(fresh, "k0")), NewTask(again, request_for(again, "k1"))])
    assert stored[0] is None  # not written: its batch had a taken key
    assert stored[1] is not None and not stored[1].inserted and stored[1].task == first
    assert await backing.store.get(fresh.id) is None
    both = await backing.store.create_many([
        NewTask(fresh, request_for(fresh)), NewTask(again, request_for(again))])
    assert all(s is not None and s.inserted and s.entry is not None for s in both)
    assert [await backing.store.get(t.id) for t in (fresh, again)] == [fresh, again]


async def test_a_scheduled_task_does_not_count_as_waiting_for_a_worker_before_its_time(
    backing: Backing,
) -> None:
    now = datetime.now(UTC)
    later = msgspec.structs.replace(new_task("later", at=now), run_at=now + timedelta(hours=1))
    await backing.store.create(NewTask(later, request_for(later)))
    async with backing.units() as u:
        assert (await u.tasks.counts()).oldest_new_at is None
    due = new_task("due", at=now)
    await created(backing, due)
    async with backing.units() as u:
        assert (await u.tasks.counts()).oldest_new_at == due.updated_at
