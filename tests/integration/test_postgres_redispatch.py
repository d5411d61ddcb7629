"""The redispatch sweep's queries in PostgreSQL: what counts as lost, disjoint sweeps, counts."""

from __future__ import annotations

from datetime import timedelta

from adapters.postgres.store import PostgresTaskStore
from application.model import Dispatch, Waiting

from .builders import NOW, claimed, new_task, replace, store, store_as
from .conftest import UowFactory

QUIET_SINCE = NOW - timedelta(minutes=1)


async def test_only_new_tasks_quiet_for_long_enough_with_nothing_pending_are_found(
    uow: UowFactory, steps: PostgresTaskStore,
) -> None:
    oldest = new_task("lost long ago", at=QUIET_SINCE - timedelta(hours=1))
    lost = new_task("lost", at=QUIET_SINCE - timedelta(seconds=1))
    recent = new_task("just sent", at=QUIET_SINCE + timedelta(seconds=1))
    pending = new_task("still in the outbox", at=QUIET_SINCE - timedelta(hours=1))
    await store(steps, lost, recent, pending, oldest)
    running = claimed(new_task("running", at=QUIET_SINCE - timedelta(hours=1)))
    failed = replace(running, id=new_task().id).fail(now=NOW, reason="boom")
    await store_as(steps, running, failed)
    async with uow() as u:
        await u.outbox.put([Dispatch(pending.id, 1)])
        await u.commit()

    async with uow() as u:
        found = await u.tasks.undispatched(QUIET_SINCE, limit=10)

    assert found == [Waiting(oldest, 0), Waiting(lost, 0)]


async def test_a_task_sent_again_is_quiet_again_and_counted(
    uow: UowFactory, steps: PostgresTaskStore,
) -> None:
    lost = new_task("lost", at=QUIET_SINCE - timedelta(hours=1))
    await store(steps, lost)

    async with uow() as u:
        await u.tasks.mark_redispatched([lost.id], QUIET_SINCE + timedelta(seconds=1))
        await u.commit()
    async with uow() as u:
        assert await u.tasks.undispatched(QUIET_SINCE, limit=10) == []
        later = await u.tasks.undispatched(QUIET_SINCE + timedelta(minutes=1), limit=10)

    assert later == [Waiting(lost, 1)]


async def test_a_change_of_status_starts_the_count_again(
    uow: UowFactory, steps: PostgresTaskStore,
) -> None:
    lost = new_task("lost", at=QUIET_SINCE - timedelta(hours=1))
    await store(steps, lost)
    async with uow() as u:
        await u.tasks.mark_redispatched([lost.id], QUIET_SINCE - timedelta(minutes=30))
        await u.tasks.mark_redispatched([lost.id], QUIET_SINCE - timedelta(minutes=20))
        await u.commit()
    taken = claimed(lost)
    back = taken.release(now=QUIET_SINCE - timedelta(minutes=10))
    async with uow() as u:
        assert await u.tasks.undispatched(QUIET_SINCE, limit=10) == [Waiting(lost, 2)]
        assert await u.tasks.compare_and_set_many([(lost, taken)]) == {lost.id}
        assert await u.tasks.compare_and_set_many([(taken, back)]) == {lost.id}
        await u.commit()

    async with uow() as u:
        assert await u.tasks.undispatched(QUIET_SINCE, limit=10) == [Waiting(back, 0)]


async def test_two_concurrent_sweeps_get_disjoint_tasks(
    uow: UowFactory, steps: PostgresTaskStore,
) -> None:
    lost = [new_task(f"lost {i}", at=QUIET_SINCE - timedelta(seconds=i + 1)) for i in range(5)]
    await store(steps, *lost)

    async with uow() as first, uow() as second:
        mine = await first.tasks.undispatched(QUIET_SINCE, limit=2)
        theirs = await second.tasks.undispatched(QUIET_SINCE, limit=10)

    assert len(mine) == 2 and len(theirs) == 3
    assert {w.task.id for w in mine}.isdisjoint({w.task.id for w in theirs})
