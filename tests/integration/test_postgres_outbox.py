"""The dispatch outbox in PostgreSQL: taken entries are held (no open transaction) until they
are removed, released, or their hold runs out; two takers never get the same entry."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from adapters.postgres.store import PostgresTaskStore
from application.model import Dispatch

from .conftest import UowFactory

HOLD = 30.0


def dispatches(count: int) -> list[Dispatch]:
    return [Dispatch(uuid.uuid4(), attempt) for attempt in range(1, count + 1)]


async def put(uow: UowFactory, entries: list[Dispatch]) -> None:
    async with uow() as u:
        await u.outbox.put(entries)
        await u.outbox.put([])
        await u.commit()


async def take(steps: PostgresTaskStore, limit: int = 100,
               hold: float = HOLD) -> dict[int, Dispatch]:
    return await steps.take(limit, hold)


async def settle(steps: PostgresTaskStore, entries: dict[int, Dispatch], *,
                 confirmed: bool) -> None:
    await (steps.remove if confirmed else steps.release)(entries.keys())


async def test_taken_entries_come_out_oldest_first_and_are_held_until_removed(
    uow: UowFactory, steps: PostgresTaskStore,
) -> None:
    entries = dispatches(3)
    await put(uow, entries)

    held = await take(steps)
    assert list(held.values()) == entries
    assert await take(steps) == {}  # held by the first taker
    await settle(steps, held, confirmed=True)
    assert await take(steps, hold=0.0) == {}
    async with uow() as u:
        assert (await u.tasks.counts()).outbox_pending == 0


async def test_take_returns_at_most_the_limit_taking_the_oldest(
    uow: UowFactory, steps: PostgresTaskStore,
) -> None:
    entries = dispatches(5)
    await put(uow, entries)

    assert list((await take(steps, limit=2)).values()) == entries[:2]
    assert list((await take(steps)).values()) == entries[2:]


async def test_released_entries_can_be_taken_again_at_once(
    uow: UowFactory, steps: PostgresTaskStore,
) -> None:
    entries = dispatches(2)
    await put(uow, entries)

    await settle(steps, await take(steps), confirmed=False)
    assert list((await take(steps)).values()) == entries


async def test_entries_of_a_taker_that_never_settles_come_back_once_the_hold_is_over(
    uow: UowFactory, steps: PostgresTaskStore,
) -> None:
    entries = dispatches(2)
    await put(uow, entries)

    assert list((await take(steps, hold=0.3)).values()) == entries  # then the taker died
    assert await take(steps) == {}
    await asyncio.sleep(0.4)
    assert list((await take(steps)).values()) == entries


async def test_put_without_commit_leaves_nothing_to_take(
    uow: UowFactory, steps: PostgresTaskStore,
) -> None:
    async with uow() as u:
        await u.outbox.put(dispatches(2))

    assert await take(steps) == {}


async def test_two_concurrent_takers_get_disjoint_entries(
    uow: UowFactory, steps: PostgresTaskStore, pool: Any,
) -> None:
    """Two relays (two processes: two stores) taking at the same moment."""
    entries = dispatches(6)
    await put(uow, entries)
    other = PostgresTaskStore(pool, hold=HOLD)

    for _ in range(3):
        mine, theirs = await asyncio.gather(take(steps, limit=4), take(other))
        assert len(mine) <= 4
        assert mine.keys().isdisjoint(theirs.keys())
        assert sorted([*mine.values(), *theirs.values()], key=entries.index) == entries
        await settle(steps, mine, confirmed=False)
        await settle(other, theirs, confirmed=False)
    assert len(await take(steps, hold=0.0)) == 6


async def test_a_take_leaves_no_transaction_open_that_holds_back_the_event_feed(
    uow: UowFactory, steps: PostgresTaskStore,
) -> None:
    """The point of the hold: between take and remove (while the broker confirms), nothing
    of the taker's is open on the server."""
    await put(uow, dispatches(1))
    held = await take(steps)
    async with uow() as u:
        conn = u._conn  # type: ignore[attr-defined]
        row = await (await conn.execute(
            "SELECT count(*) AS n FROM pg_stat_activity WHERE backend_xid IS NOT NULL"
            " AND datname = current_database() AND pid <> pg_backend_pid()")).fetchone()
    assert row["n"] == 0
    await settle(steps, held, confirmed=True)
