"""Micro-batching of creates: concurrent calls share a transaction, each gets its own answer."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from application.batching import MicroBatcher
from application.create import CreateTask
from application.model import NewTaskRequest
from domain.errors import IdempotencyConflict, InvalidInput
from tests.unit.fakes import RefusingUnitOfWork
from tests.unit.world import World


class Recorder:
    """A runner that remembers its batches; items equal to "bad" fail alone, "boom" fails all."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    async def __call__(self, items: list[str]) -> Sequence[str | BaseException]:
        self.batches.append(items)
        await asyncio.sleep(0)
        if "boom" in items:
            raise RuntimeError("the whole batch broke")
        return [ValueError(i) if i == "bad" else i.upper() for i in items]


async def test_a_lone_item_is_run_at_once_as_its_own_batch() -> None:
    runner = Recorder()
    batcher: MicroBatcher[str, str] = MicroBatcher(runner)
    assert await asyncio.wait_for(batcher.submit("a"), 1.0) == "A"
    assert runner.batches == [["a"]]


async def test_concurrent_items_share_batches_and_each_gets_its_own_result() -> None:
    runner = Recorder()
    batcher: MicroBatcher[str, str] = MicroBatcher(runner)
    items = [f"item{n}" for n in range(20)]
    results = await asyncio.gather(*(batcher.submit(i) for i in items))
    assert results == [i.upper() for i in items]
    assert sorted(i for batch in runner.batches for i in batch) == sorted(items)
    assert len(runner.batches) < len(items)


async def test_a_batch_never_exceeds_max_batch() -> None:
    runner = Recorder()
    batcher: MicroBatcher[str, str] = MicroBatcher(runner, max_batch=3)
    items = [f"item{n}" for n in range(10)]
    assert await asyncio.gather(*(batcher.submit(i) for i in items)) == [i.upper() for i in items]
    assert max(len(b) for b in runner.batches) <= 3


async def test_an_item_that_fails_fails_alone() -> None:
    batcher: MicroBatcher[str, str] = MicroBatcher(Recorder())
    results = await asyncio.gather(*(batcher.submit(i) for i in ("a", "bad", "c")),
                                   return_exceptions=True)
    assert results[0] == "A"
    assert isinstance(results[1], ValueError)
    assert results[2] == "C"


async def test_a_runner_that_raises_fails_every_caller_of_that_batch_and_no_later_one() -> None:
    batcher: MicroBatcher[str, str] = MicroBatcher(Recorder())
    results = await asyncio.gather(*(batcher.submit(i) for i in ("a", "boom")),
                                   return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    assert await asyncio.wait_for(batcher.submit("later"), 1.0) == "LATER"


async def test_an_item_submitted_while_the_flushers_are_finishing_is_still_run() -> None:
    gate = asyncio.Event()

    async def run(items: list[str]) -> list[str]:
        await gate.wait()
        return items

    async def settle() -> None:
        for _ in range(3):
            await asyncio.sleep(0)

    batcher: MicroBatcher[str, str] = MicroBatcher(run, max_inflight=2)
    first = asyncio.create_task(batcher.submit("a"))
    await settle()  # flusher 1 runs batch ["a"]
    second = asyncio.create_task(batcher.submit("b"))
    await settle()  # flusher 2 runs batch ["b"]; nothing is pending
    assert len(batcher._flushers) == 2

    async def submit_when_the_gate_opens() -> str:
        await gate.wait()  # woken right after both flushers, before their done-callbacks
        return await batcher.submit("c")

    late = asyncio.create_task(submit_when_the_gate_opens())
    await asyncio.sleep(0)
    gate.set()
    assert await asyncio.gather(first, second) == ["a", "b"]
    try:
        assert await asyncio.wait_for(late, 1.0) == "c"
    finally:
        late.cancel()


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
    create = CreateTask(lambda: RefusingUnitOfWork(world.store), world.clock, world.ids,
                        world.signal)
    titles = ["good 1", "bad one", "good 2"]
    results = await asyncio.gather(*(create(NewTaskRequest(title=t)) for t in titles),
                                   return_exceptions=True)
    assert isinstance(results[1], InvalidInput)
    stored = {t.title for t in world.store.tasks.values()}
    assert stored == {"good 1", "good 2"}
    assert len(world.store.history) == len(world.store.outbox) == 2
