"""Creates in shared transactions: concurrent calls each get their own answer."""

from __future__ import annotations

import asyncio

from application.create import CreateTask
from application.model import NewTaskRequest
from application.transactions import Transactions
from domain.errors import IdempotencyConflict, InvalidInput
from tests.unit.fakes import RefusingUnitOfWork
from tests.unit.world import World


async def test_concurrent_creates_share_transactions_and_each_task_is_complete(
    world: World,
) -> None:
    create = world.create()
    created = await asyncio.gather(*(create(NewTaskRequest(title=f"t{n}")) for n in range(30)))
    ids = {c.task.id for c in created}
    assert len(ids) == 30
    assert set(world.store.tasks) == ids
    assert {h.task_id for h in world.store.history} == ids
    assert {d.task_id for d in world.store.outbox} == ids
    assert world.store.commits < 30


async def test_the_same_key_twice_in_one_batch_makes_one_task(world: World) -> None:
    create = world.create()
    same = NewTaskRequest(title="t", idempotency_key="k")
    other = NewTaskRequest(title="different", idempotency_key="k")
    results = await asyncio.gather(create(same), create(same), create(other),
                                   return_exceptions=True)
    first, again, conflict = results
    assert not isinstance(first, BaseException)
    assert not isinstance(again, BaseException)
    assert (first.replayed, again.replayed) == (False, True)
    assert again.task == first.task
    assert isinstance(conflict, IdempotencyConflict)
    assert len(world.store.tasks) == 1
    assert len(world.store.outbox) == 1


async def test_a_row_the_database_refuses_fails_alone_and_leaves_no_trace(world: World) -> None:
    create = CreateTask(Transactions(lambda: RefusingUnitOfWork(world.store)), world.clock,
                        world.ids, world.signal)
    titles = ["good 1", "bad one", "good 2"]
    results = await asyncio.gather(*(create(NewTaskRequest(title=t)) for t in titles),
                                   return_exceptions=True)
    assert isinstance(results[1], InvalidInput)
    stored = {t.title for t in world.store.tasks.values()}
    assert stored == {"good 1", "good 2"}
    assert len(world.store.history) == len(world.store.outbox) == 2
