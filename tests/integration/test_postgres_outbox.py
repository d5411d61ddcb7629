"""The dispatch outbox in PostgreSQL: taken entries are held (no open transaction) until they
are removed, released, or their hold runs out; two takers never get the same entry."""

from __future__ import annotations

import asyncio
import uuid

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


async def take(uow: UowFactory, limit: int = 100, hold: float = HOLD) -> dict[int, Dispatch]:
    async with uow() as u:
        taken = await u.outbox.take(limit, hold)
        await u.commit()
    return taken


async def settle(uow: UowFactory, entries: dict[int, Dispatch], *, confirmed: bool) -> None:
    async with uow() as u:
        await (u.outbox.remove if confirmed else u.outbox.release)(entries.keys())
        await u.commit()


async def test_taken_entries_come_out_oldest_first_and_are_held_until_removed(
    uow: UowFactory,
) -> None:
    entries = dispatches(3)
    await put(uow, entries)

    held = await take(uow)
    assert list(held.values()) == entries
    assert await take(uow) == {}  # held by the first taker
    await settle(uow, held, confirmed=True)
    assert await take(uow, hold=0.0) == {}
    async with uow() as u:
        assert (await u.tasks.counts()).outbox_pending == 0


async def test_take_returns_at_most_the_limit_taking_the_oldest(uow: UowFactory) -> None:
    entries = dispatches(5)
    await put(uow, entries)

    assert list((await take(uow, limit=2)).values()) == entries[:2]
    assert list((await take(uow)).values()) == entries[2:]


async def test_released_entries_can_be_taken_again_at_once(uow: UowFactory) -> None:
    entries = dispatches(2)
    await put(uow, entries)

    await settle(uow, await take(uow), confirmed=False)
    assert list((await take(uow)).values()) == entries


async def test_entries_of_a_taker_that_never_settles_come_back_once_the_hold_is_over(
    uow: UowFactory,
) -> None:
    entries = dispatches(2)
    await put(uow, entries)

    assert list((await take(uow, hold=0.3)).values()) == entries  # then the taker died
    assert await take(uow) == {}
    await asyncio.sleep(0.4)
    assert list((await take(uow)).values()) == entries


async def test_a_take_that_is_not_committed_holds_nothing(uow: UowFactory) -> None:
    entries = dispatches(2)
    await put(uow, entries)

    async with uow() as u:
        assert list((await u.outbox.take(100, HOLD)).values()) == entries

    assert list((await take(uow)).values()) == entries


async def test_put_without_commit_leaves_nothing_to_take(uow: UowFactory) -> None:
    async with uow() as u:
        await u.outbox.put(dispatches(2))

    assert await take(uow) == {}


async def test_two_concurrent_takers_get_disjoint_entries(uow: UowFactory) -> None:
    entries = dispatches(6)
    await put(uow, entries)

    async with uow() as first, uow() as second:
        mine = await first.outbox.take(4, HOLD)
        theirs = await second.outbox.take(100, HOLD)  # the first has not committed yet
        await first.commit()
        await second.commit()

    assert list(mine.values()) == entries[:4]  # the oldest ones go to whoever asks first
    assert list(theirs.values()) == entries[4:]
    assert await take(uow, hold=0.0) == {}


async def test_a_take_leaves_no_transaction_open_that_holds_back_the_event_feed(
    uow: UowFactory,
) -> None:
    """The point of the hold: between take and remove (while the broker confirms), nothing
    of the taker's is open on the server."""
    await put(uow, dispatches(1))
    held = await take(uow)
    async with uow() as u:
        conn = u._conn  # type: ignore[attr-defined]
        row = await (await conn.execute(
            "SELECT count(*) AS n FROM pg_stat_activity WHERE backend_xid IS NOT NULL"
            " AND datname = current_database() AND pid <> pg_backend_pid()")).fetchone()
    assert row["n"] == 0
    await settle(uow, held, confirmed=True)
