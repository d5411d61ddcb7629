"""A payload is stored as the JSON text it came as: U+0000 in keys and strings reads back whole."""

from __future__ import annotations

from typing import Any

import msgspec
import psycopg
import pytest

from adapters.postgres.events import PostgresEventLog
from adapters.postgres.store import PostgresTaskStore
from application.model import ORIGIN, ListQuery, NewTask
from application.watch import LAST

from .builders import new_task, request_for
from .conftest import UowFactory
from .test_postgres_events import feed  # noqa: F401  (fixtures)
from .waiting import eventually

PAYLOADS = [
    {"k\x00": 1},
    {"k": ["deep", {"v": "\x00", "\x00": ["a\x00b", {"\x00\x00": None}]}]},
    {"\x00": "\x00", "": "", "quote\"\\\x00": "\\u0000"},  # an escape written out stays text
    {"n": 1e20, "big": 2**70, "f": -0.0, "u": "ü😀\u2028"},
]


@pytest.mark.parametrize("payload", PAYLOADS, ids=repr)
async def test_a_payload_with_nul_round_trips_through_create_get_list_and_a_repeated_key(
    uow: UowFactory, steps: PostgresTaskStore, db: psycopg.Connection, payload: dict[str, Any],
) -> None:
    task = new_task(payload=payload)
    stored = await steps.create(NewTask(task, request_for(task, key="k1")))
    again = await steps.create(NewTask(new_task(payload=payload), request_for(task, key="k1")))
    assert await steps.get(task.id) == task
    async with uow() as u:
        got = await u.tasks.get(task.id)
        listed = await u.tasks.page(ListQuery(limit=10))

    assert stored.task.payload == payload
    assert not again.inserted and again.task == task  # read back through select_by_keys
    assert got == task
    assert listed == [task]
    stored_text = db.execute("SELECT payload::text FROM tasks").fetchone()[0]
    assert msgspec.json.decode(stored_text) == payload  # the column holds that JSON, exactly


async def test_a_payload_with_nul_reaches_the_event_feed_whole(
    steps: PostgresTaskStore, feed: PostgresEventLog,  # noqa: F811
) -> None:
    task = new_task(payload=PAYLOADS[1])
    await steps.create(NewTask(task, request_for(task)))

    events = await eventually(lambda: feed.read(ORIGIN, LAST, 10), "the event readable")

    assert [e.task for e in events] == [task]
    last = await feed.read_last(task.id)
    assert last is not None and last.task == task

