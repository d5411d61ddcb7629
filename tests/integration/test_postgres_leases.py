"""Leases in PostgreSQL: finding expired ones without two sweeps colliding, renewing a worker's."""

from __future__ import annotations

from datetime import datetime, timedelta

from adapters.postgres.store import PostgresTaskStore
from application.model import Renewed
from domain.status import TaskStatus
from domain.task import Task

from .builders import NOW, claimed, fetch, new_task, replace, store, store_as
from .conftest import UowFactory

PAST, FUTURE = NOW - timedelta(minutes=5), NOW + timedelta(minutes=5)


def leased(title: str, lease_until: datetime, worker: str = "worker-1") -> Task:
    return claimed(new_task(title, at=NOW - timedelta(hours=1)), worker=worker,
                   lease_until=lease_until)


def finished_with_stale_lease(title: str, worker: str = "worker-1") -> Task:
    """A finished row that still names a worker and an old lease: status alone must exclude it."""
    return replace(leased(title, PAST).complete(now=NOW), lease_owner=worker,
                   lease_expires_at=PAST)


async def test_only_in_progress_tasks_whose_lease_ran_out_are_expired(
    uow: UowFactory, steps: PostgresTaskStore,
) -> None:
    oldest = leased("expired long ago", PAST - timedelta(minutes=1))
    older = leased("expired", PAST)
    exactly_now = leased("expires right now", NOW)
    still_held = leased("held", FUTURE)
    finished = finished_with_stale_lease("finished")
    await store(steps, new_task("never claimed"))
    await store_as(steps, older, still_held, exactly_now, oldest, finished)

    async with uow() as u:
        expired = await u.tasks.expired(NOW, limit=10)

    assert [t.id for t in expired] == [oldest.id, older.id]
    assert expired == [oldest, older]


async def test_expired_returns_at_most_the_limit(uow: UowFactory, steps: PostgresTaskStore) -> None:
    await store_as(steps, *(leased(f"expired {i}", PAST - timedelta(seconds=i)) for i in range(5)))

    async with uow() as u:
        expired = await u.tasks.expired(NOW, limit=2)

    assert len(expired) == 2


async def test_two_concurrent_sweeps_get_disjoint_expired_tasks(
    uow: UowFactory, steps: PostgresTaskStore,
) -> None:
    expired = [leased(f"expired {i}", PAST - timedelta(seconds=i)) for i in range(5)]
    await store_as(steps, *expired)

    async with uow() as first, uow() as second:
        mine = await first.tasks.expired(NOW, limit=2)
        theirs = await second.tasks.expired(NOW, limit=10)  # the first still holds its rows

    assert len(mine) == 2 and len(theirs) == 3
    assert {t.id for t in mine}.isdisjoint({t.id for t in theirs})
    assert {t.id for t in mine} | {t.id for t in theirs} == {t.id for t in expired}


async def test_a_sweep_sees_locked_rows_again_once_the_other_sweep_rolled_back(
    uow: UowFactory, steps: PostgresTaskStore,
) -> None:
    await store_as(steps, leased("expired", PAST))

    async with uow() as first:
        assert len(await first.tasks.expired(NOW, limit=10)) == 1
    async with uow() as second:
        assert len(await second.tasks.expired(NOW, limit=10)) == 1


async def test_renewing_touches_only_the_claims_the_worker_runs(
    uow: UowFactory, steps: PostgresTaskStore,
) -> None:
    mine = [leased("mine 1", PAST), leased("mine 2", FUTURE)]
    unheard = leased("mine, but never heard of", FUTURE)
    theirs = leased("theirs", PAST, worker="worker-2")
    my_finished = finished_with_stale_lease("mine, finished")
    await store_as(steps, *mine, unheard, theirs, my_finished)
    until = NOW + timedelta(hours=1)
    running = [(t.id, t.attempts) for t in (*mine, theirs, my_finished)]

    async with uow() as u:
        renewed = await u.tasks.renew_leases("worker-1", running, until)
        await u.commit()

    assert renewed == Renewed(2)
    for task in mine:
        got = await fetch(uow, task.id)
        assert got is not None
        assert (got.status, got.lease_expires_at) == (TaskStatus.IN_PROGRESS, until)
    assert await fetch(uow, unheard.id) == unheard
    assert await fetch(uow, theirs.id) == theirs
    assert await fetch(uow, my_finished.id) == my_finished


async def test_renewing_a_claim_of_an_earlier_attempt_changes_nothing(
    uow: UowFactory, steps: PostgresTaskStore,
) -> None:
    held = leased("held", PAST)
    await store_as(steps, held)

    async with uow() as u:
        renewed = await u.tasks.renew_leases("worker-1", [(held.id, held.attempts - 1)], FUTURE)
        await u.commit()

    assert renewed == Renewed(0)
    assert await fetch(uow, held.id) == held


async def test_renewing_for_a_worker_that_holds_nothing_changes_nothing(
    uow: UowFactory, steps: PostgresTaskStore,
) -> None:
    held = leased("held", PAST)
    await store_as(steps, held)

    async with uow() as u:
        renewed = await u.tasks.renew_leases("nobody", [(held.id, held.attempts)], FUTURE)
        await u.commit()

    assert renewed == Renewed(0)
    assert await fetch(uow, held.id) == held
