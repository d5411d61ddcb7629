"""Transactions: stories that start together share one unit of work; failures stay their own."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import pytest

from adapters.memory import InMemoryStore, InMemoryUnitOfWork
from application.model import NewTaskRequest
from application.ports import UnitOfWork
from application.transactions import Transactions
from domain.errors import InvalidInput, ServiceUnavailable
from domain.status import TaskSource
from domain.task import Task, Transition
from tests.unit.fakes import T0, ExplodingUnitOfWork, FlakyUnitOfWorkFactory


def task(n: int) -> Task:
    return Task.create(id=uuid.UUID(int=n), title=f"t{n}", description=None, payload={},
                       source=TaskSource.API, now=T0)


async def insert(uow: UnitOfWork, new: Task) -> uuid.UUID:
    async with uow:
        stored = await uow.tasks.add(new, NewTaskRequest(title=new.title))
        await uow.tasks.record([Transition.between(None, new)])
        await uow.commit()
    return stored.task.id


async def look(uow: UnitOfWork, task_id: uuid.UUID) -> Task | None:
    async with uow:
        return await uow.tasks.get(task_id)


class CountingUnitOfWork(InMemoryUnitOfWork):
    """Notes the size of every get_many and add_many it runs."""

    sizes: list[int] = []

    def __init__(self, store: InMemoryStore) -> None:
        super().__init__(store)
        real_get, real_add = self.tasks.get_many, self.tasks.add_many

        async def get_many(ids: Sequence[uuid.UUID]) -> list[Task]:
            self.sizes.append(len(ids))
            return await real_get(ids)

        async def add_many(tasks: Sequence[Task], requests: Sequence[NewTaskRequest]) -> list:
            self.sizes.append(len(tasks))
            if any(t.title == "bad" for t in tasks):
                raise InvalidInput("the database refused the value")
            return await real_add(tasks, requests)

        self.tasks.get_many = get_many  # type: ignore[method-assign]
        self.tasks.add_many = add_many  # type: ignore[method-assign]


@pytest.fixture
def store() -> InMemoryStore:
    CountingUnitOfWork.sizes = []
    return InMemoryStore()


async def test_a_lone_story_runs_at_once_in_a_transaction_of_its_own(store: InMemoryStore) -> None:
    transactions = Transactions(store.unit_of_work)
    assert await asyncio.wait_for(transactions.run(insert, task(1)), 1.0) == uuid.UUID(int=1)
    assert store.commits == 1


async def test_stories_started_together_share_transactions_and_get_their_own_results(
    store: InMemoryStore,
) -> None:
    transactions = Transactions(lambda: CountingUnitOfWork(store))
    ids = await asyncio.gather(*(transactions.run(insert, task(n)) for n in range(1, 41)))
    assert ids == [uuid.UUID(int=n) for n in range(1, 41)]
    assert set(store.tasks) == set(ids) and len(store.history) == 40
    assert store.commits < 40
    assert max(CountingUnitOfWork.sizes) > 1  # one INSERT carried several stories' rows
    found = await asyncio.gather(*(transactions.run(look, i) for i in [*ids, uuid.UUID(int=99)]))
    assert [t.id if t else None for t in found] == [*ids, None]


async def test_a_group_never_exceeds_max_group(store: InMemoryStore) -> None:
    transactions = Transactions(lambda: CountingUnitOfWork(store), max_group=3)
    await asyncio.gather(*(transactions.run(insert, task(n)) for n in range(1, 11)))
    assert len(store.tasks) == 10
    assert max(CountingUnitOfWork.sizes) <= 3


async def test_a_row_the_database_refuses_fails_only_its_own_story(store: InMemoryStore) -> None:
    transactions = Transactions(lambda: CountingUnitOfWork(store))
    bad = msgspec_replace(task(2), title="bad")
    results = await asyncio.gather(*(transactions.run(insert, t) for t in (task(1), bad, task(3))),
                                   return_exceptions=True)
    assert results[0] == uuid.UUID(int=1) and results[2] == uuid.UUID(int=3)
    assert isinstance(results[1], InvalidInput)
    assert set(store.tasks) == {uuid.UUID(int=1), uuid.UUID(int=3)}
    assert {h.task_id for h in store.history} == set(store.tasks)


async def test_an_outage_reaches_the_callers_unless_told_to_wait_it_out(
    store: InMemoryStore,
) -> None:
    failing = Transactions(lambda: ExplodingUnitOfWork(store, "commit"))
    results = await asyncio.gather(*(failing.run(insert, task(n)) for n in (1, 2)),
                                   return_exceptions=True)
    assert all(isinstance(r, ServiceUnavailable) for r in results)
    assert store.tasks == {}

    flaky = FlakyUnitOfWorkFactory(store, outages=1)
    waiting = Transactions(flaky, wait_out_outages=True)
    assert await waiting.run(insert, task(3)) == uuid.UUID(int=3)
    assert flaky.outages == 0


async def test_a_story_that_leaves_its_writes_uncommitted_spoils_the_group_not_the_others(
    store: InMemoryStore,
) -> None:
    async def forgetful(uow: UnitOfWork, new: Task) -> str:
        async with uow:
            await uow.tasks.add(new, NewTaskRequest(title=new.title))
        return "left"

    transactions = Transactions(store.unit_of_work)
    results = await asyncio.gather(transactions.run(insert, task(1)),
                                   transactions.run(forgetful, task(2)),
                                   transactions.run(insert, task(3)))
    assert results == [uuid.UUID(int=1), "left", uuid.UUID(int=3)]
    assert set(store.tasks) == {uuid.UUID(int=1), uuid.UUID(int=3)}  # task 2 rolled back


async def test_the_same_task_changed_twice_in_one_group_is_changed_once(
    store: InMemoryStore,
) -> None:
    first = task(1)
    await Transactions(store.unit_of_work).run(insert, first)
    claimed = first.claim(now=T0, worker="w", lease_until=T0)

    async def claim(uow: UnitOfWork) -> bool:
        async with uow:
            current = await uow.tasks.get(first.id)
            assert current is not None
            written = await uow.tasks.compare_and_set(current, claimed)
            if written:
                await uow.commit()
        return written

    transactions = Transactions(store.unit_of_work)
    assert sorted(await asyncio.gather(claim(*()) if False else transactions.run(claim),
                                       transactions.run(claim))) == [False, True]
    assert store.tasks[first.id].attempts == 1


async def test_a_cancelled_caller_lets_its_story_finish_and_undoes_it(
    store: InMemoryStore,
) -> None:
    gate = asyncio.Event()
    undone: list[uuid.UUID] = []

    async def slow_insert(uow: UnitOfWork, new: Task) -> uuid.UUID:
        await gate.wait()
        return await insert(uow, new)

    async def undo(task_id: uuid.UUID) -> None:
        undone.append(task_id)

    transactions = Transactions(store.unit_of_work)
    call = asyncio.create_task(transactions.run_or_undo(undo, slow_insert, task(1)))
    await asyncio.sleep(0.01)
    call.cancel()
    await asyncio.sleep(0.01)
    gate.set()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert uuid.UUID(int=1) in store.tasks
    assert undone == [uuid.UUID(int=1)]


async def test_a_second_cancel_stops_the_story(store: InMemoryStore) -> None:
    async def forever(uow: UnitOfWork) -> None:
        await asyncio.Event().wait()

    transactions = Transactions(store.unit_of_work)
    call = asyncio.create_task(transactions.run(forever))
    await asyncio.sleep(0.01)
    call.cancel()
    await asyncio.sleep(0.01)
    assert not call.done()
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(call, 1.0)


async def test_a_story_started_while_two_groups_are_in_flight_forms_the_next_group(
    store: InMemoryStore,
) -> None:
    gate = asyncio.Event()

    class GatedUnitOfWork(InMemoryUnitOfWork):
        async def __aenter__(self) -> GatedUnitOfWork:
            await gate.wait()
            return await super().__aenter__()

    transactions = Transactions(lambda: GatedUnitOfWork(store), max_inflight=2)
    first = asyncio.create_task(transactions.run(insert, task(1)))
    await asyncio.sleep(0.01)
    second = asyncio.create_task(transactions.run(insert, task(2)))
    await asyncio.sleep(0.01)
    third = [asyncio.create_task(transactions.run(insert, task(n))) for n in (3, 4)]
    await asyncio.sleep(0.01)
    gate.set()
    assert await asyncio.wait_for(asyncio.gather(first, second, *third), 2.0) == [
        uuid.UUID(int=n) for n in range(1, 5)]
    assert store.commits == 3  # [1], [2], then [3, 4] together


def msgspec_replace(value: Task, **changes: object) -> Task:
    import msgspec

    return msgspec.structs.replace(value, **changes)
