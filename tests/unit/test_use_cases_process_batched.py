"""ProcessTask in batches: concurrent claims and finishes share transactions, each task once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence

import pytest

from adapters.memory import InMemoryStore, InMemoryUnitOfWork
from application.ports import Processor
from application.process import Outcome, ProcessTask
from application.transactions import Transactions
from domain.errors import InvalidInput
from domain.status import TaskStatus
from domain.task import Task
from tests.unit.fakes import ExplodingUnitOfWork, FixedProcessor
from tests.unit.world import LEASE, World

S = TaskStatus
Pairs = Sequence[tuple[Task, Task]]


class SpyingUnitOfWork(InMemoryUnitOfWork):
    """Notes the ids of every compare_and_set_many; `refuse` makes it raise after writing."""

    def __init__(self, store: InMemoryStore, calls: list[list[uuid.UUID]],
                 refuse: Callable[[Pairs], bool] = lambda pairs: False) -> None:
        super().__init__(store)
        real = self.tasks.compare_and_set_many

        async def compare_and_set_many(pairs: Pairs) -> set[uuid.UUID]:
            calls.append([old.id for old, _ in pairs])
            written = await real(pairs)
            if refuse(pairs):
                raise InvalidInput("the database refused the value")
            return written

        self.tasks.compare_and_set_many = compare_and_set_many  # type: ignore[method-assign]


class GatedProcessor:
    """Every call works until `release` is set; fails the tasks whose title starts with "fail"."""

    def __init__(self) -> None:
        self.seen: list[Task] = []
        self.release = asyncio.Event()
        self._started = asyncio.Condition()

    async def process(self, task: Task) -> str | None:
        async with self._started:
            self.seen.append(task)
            self._started.notify_all()
        await self.release.wait()
        return "it failed" if task.title.startswith("fail") else None

    async def running(self, count: int) -> None:
        async with self._started:
            await self._started.wait_for(lambda: len(self.seen) >= count)


def spied(world: World, processor: Processor, calls: list[list[uuid.UUID]],
          refuse: Callable[[Pairs], bool] = lambda pairs: False) -> ProcessTask:
    return ProcessTask(Transactions(lambda: SpyingUnitOfWork(world.store, calls, refuse),
                                    wait_out_outages=True),
                       processor, world.clock, "w1", LEASE, world.stops)


def steps(world: World, task_id: uuid.UUID) -> list[tuple[object, ...]]:
    return [(h.from_status, h.to_status, h.worker, h.attempt)
            for h in world.store.history if h.task_id == task_id]


async def test_many_concurrent_calls_finish_each_task_once_in_shared_transactions(
    world: World,
) -> None:
    tasks = [await world.new_task(f"{'fail' if n % 3 == 0 else 'ok'} {n}") for n in range(40)]
    commits_before = world.store.commits
    processor = GatedProcessor()
    process = world.process(processor)
    calls = [asyncio.create_task(process(t.id)) for t in tasks for _ in range(2)]  # each twice
    await processor.running(len(tasks))
    processor.release.set()
    outcomes = await asyncio.gather(*calls)

    assert sorted(outcomes) == sorted([Outcome.FINISHED, Outcome.SKIPPED] * len(tasks))
    assert sorted(t.id for t in processor.seen) == sorted(t.id for t in tasks)
    for task in tasks:
        final = world.task(task.id)
        fails = task.title.startswith("fail")
        assert (final.status, final.attempts) == ((S.ERROR if fails else S.COMPLETED), 1)
        assert final.error == ("it failed" if fails else None)
        assert steps(world, task.id) == [
            (None, S.NEW, None, 0), (S.NEW, S.IN_PROGRESS, "w1", 1),
            (S.IN_PROGRESS, S.ERROR if fails else S.COMPLETED, "w1", 1)]
    assert world.store.commits - commits_before <= 4  # not 80: claims and finishes were batched


async def test_an_id_repeated_within_one_claim_batch_is_claimed_once(world: World) -> None:
    task = await world.new_task()
    calls: list[list[uuid.UUID]] = []
    processor = FixedProcessor(None)
    process = spied(world, processor, calls)

    outcomes = await asyncio.gather(*(process(task.id) for _ in range(5)))

    assert sorted(outcomes) == [Outcome.FINISHED] + [Outcome.SKIPPED] * 4
    assert calls == [[task.id], [task.id]]  # one claim statement, one finish statement
    assert len(processor.seen) == 1
    assert [s[:2] for s in steps(world, task.id)] == [
        (None, S.NEW), (S.NEW, S.IN_PROGRESS), (S.IN_PROGRESS, S.COMPLETED)]


@pytest.mark.parametrize("broken", [0, 1], ids=["claim-batch", "finish-batch"])
async def test_a_batch_whose_commit_fails_with_an_outage_is_retried_whole_and_succeeds(
    world: World, broken: int
) -> None:
    tasks = [await world.new_task(f"t{n}") for n in range(10)]
    opened: list[InMemoryUnitOfWork] = []

    def factory() -> InMemoryUnitOfWork:
        failing = len(opened) == broken
        uow = ExplodingUnitOfWork(world.store, "commit") if failing else world.store.unit_of_work()
        opened.append(uow)
        return uow

    process = ProcessTask(Transactions(factory, wait_out_outages=True), FixedProcessor(None),
                          world.clock, "w1", LEASE, world.stops)
    outcomes = await asyncio.gather(*(process(t.id) for t in tasks))

    assert outcomes == [Outcome.FINISHED] * len(tasks)
    assert not opened[broken].committed
    for task in tasks:
        assert world.task(task.id).status is S.COMPLETED
        assert [s[:2] for s in steps(world, task.id)] == [  # the failed batch left no trace
            (None, S.NEW), (S.NEW, S.IN_PROGRESS), (S.IN_PROGRESS, S.COMPLETED)]


async def test_a_row_the_database_refuses_fails_only_its_own_call(world: World) -> None:
    good = [await world.new_task(f"good {n}") for n in range(4)]
    bad = await world.new_task("bad")
    calls: list[list[uuid.UUID]] = []
    process = spied(world, FixedProcessor(None), calls,
                    refuse=lambda pairs: any(old.id == bad.id for old, _ in pairs))

    results = await asyncio.gather(*(process(t.id) for t in [*good, bad]),
                                   return_exceptions=True)

    assert results[:4] == [Outcome.FINISHED] * 4
    assert isinstance(results[4], InvalidInput)
    assert len(calls[0]) == 5  # tried as one batch first
    assert world.task(bad.id).status is S.NEW
    assert steps(world, bad.id) == [(None, S.NEW, None, 0)]
    assert all(world.task(t.id).status is S.COMPLETED for t in good)


async def test_cancelling_calls_while_they_work_hands_each_task_back(world: World) -> None:
    tasks = [await world.new_task(f"t{n}") for n in range(5)]
    processor = GatedProcessor()
    process = world.process(processor)
    calls = [asyncio.create_task(process(t.id)) for t in tasks]
    await processor.running(len(tasks))
    for call in calls:
        call.cancel()
    results = await asyncio.gather(*calls, return_exceptions=True)

    assert all(isinstance(r, asyncio.CancelledError) for r in results)
    for task in tasks:
        back = world.task(task.id)
        assert (back.status, back.attempts, back.lease_owner) == (S.NEW, 0, None)
        last = world.store.history[-1 - tasks[::-1].index(task)]
        assert (last.task_id, last.to_status, last.reason) == (
            task.id, S.NEW, "handed back on shutdown")
    assert not world.store.lock.locked()


async def test_a_call_cancelled_while_its_claim_is_in_flight_hands_the_task_back(
    world: World,
) -> None:
    task = await world.new_task()
    entered, gate = asyncio.Event(), asyncio.Event()

    class GatedUnitOfWork(InMemoryUnitOfWork):
        def __init__(self, store: InMemoryStore) -> None:
            super().__init__(store)
            real = self.tasks.get_many

            async def get_many(ids: Sequence[uuid.UUID]) -> list[Task]:
                entered.set()
                await gate.wait()
                return await real(ids)

            self.tasks.get_many = get_many  # type: ignore[method-assign]

    processor = FixedProcessor(None)
    process = ProcessTask(Transactions(lambda: GatedUnitOfWork(world.store),
                                       wait_out_outages=True),
                          processor, world.clock, "w1", LEASE, world.stops)
    call = asyncio.create_task(process(task.id))
    await entered.wait()
    call.cancel()
    await asyncio.sleep(0)
    gate.set()  # the batch goes on and claims the task for the cancelled call
    with pytest.raises(asyncio.CancelledError):
        await call

    assert processor.seen == []
    back = world.task(task.id)
    assert (back.status, back.attempts, back.lease_owner) == (S.NEW, 0, None)
    assert [(h.from_status, h.to_status, h.reason) for h in world.store.history] == [
        (None, S.NEW, None), (S.NEW, S.IN_PROGRESS, None),
        (S.IN_PROGRESS, S.NEW, "handed back on shutdown")]


async def test_a_stale_and_a_current_claim_of_one_task_finishing_together_finish_it_once(
    world: World,
) -> None:
    """This worker claimed the task again after its lease lapsed: both finish in one batch."""
    task = await world.new_task()
    calls: list[list[uuid.UUID]] = []
    processor = GatedProcessor()
    process = spied(world, processor, calls)
    stale = asyncio.create_task(process(task.id))
    await processor.running(1)
    world.clock.advance(LEASE.total_seconds() + 1)
    assert await world.recover()() == 1
    current = asyncio.create_task(process(task.id))
    await processor.running(2)
    calls.clear()
    processor.release.set()

    assert list(await asyncio.gather(stale, current)) == [Outcome.LOST, Outcome.FINISHED]
    assert calls == [[task.id], [task.id]]  # two statements of one transaction, no split
    final = world.task(task.id)
    assert (final.status, final.attempts) == (S.COMPLETED, 2)
    assert [s[:2] for s in steps(world, task.id)].count((S.IN_PROGRESS, S.COMPLETED)) == 1
