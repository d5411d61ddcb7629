"""What the database says became of the tasks of a chaos test: stored, ended once, by whom."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import datetime
from typing import Any

import psycopg

from tests.support.load import HttpLoad, IntakeLoad


def row(db: psycopg.Connection, query: str, params: dict[str, Any] | None = None
        ) -> tuple[Any, ...]:
    found = db.execute(query, params).fetchone()
    assert found is not None, query
    return found


def db_now(db: psycopg.Connection) -> datetime:
    now: datetime = row(db, "SELECT clock_timestamp()")[0]
    return now


async def all_ended(db: psycopg.Connection, intake: IntakeLoad, timeout: float) -> None:
    """Until every accepted task is stored and none is left `new` or `in_progress`."""
    deadline = time.monotonic() + timeout
    while left := pending(db, intake):
        if time.monotonic() > deadline:
            raise AssertionError(f"{timeout}s after the load: {left}")
        await asyncio.sleep(0.2)


def pending(db: psycopg.Connection, intake: IntakeLoad) -> str:
    """What is not done yet ("" when nothing is)."""
    waiting, from_intake = row(
        db, "SELECT count(*) FILTER (WHERE status NOT IN ('completed', 'error')), "
        "count(*) FILTER (WHERE source = 'amqp') FROM tasks")
    if waiting == 0 and from_intake >= len(intake.accepted):
        return ""
    return (f"{waiting} tasks still new or in_progress; {from_intake} of the "
            f"{len(intake.accepted)} confirmed intake messages stored")


def assert_each_accepted_task_ended_exactly_once(db: psycopg.Connection, http: HttpLoad,
                                                 intake: IntakeLoad) -> None:
    api_ids = {str(r[0]) for r in db.execute("SELECT id FROM tasks WHERE source = 'api'")}
    assert set(http.accepted) <= api_ids, "a task the API answered 201 for is missing"
    assert len(api_ids - set(http.accepted)) <= http.refused, "tasks nobody was told of"
    titles = Counter(r[0] for r in db.execute("SELECT title FROM tasks WHERE source = 'amqp'"))
    assert all(titles[t] == 1 for t in intake.accepted), "an intake message lost or made twice"
    by_status: dict[str, int] = dict(
        db.execute("SELECT status, count(*) FROM tasks GROUP BY status").fetchall())
    assert by_status.get("new", 0) == by_status.get("in_progress", 0) == 0, by_status
    not_once = db.execute(
        "SELECT t.id, t.status, (SELECT count(*) FROM task_history h WHERE h.task_id = t.id "
        "AND h.to_status IN ('completed', 'error')) AS finals FROM tasks t").fetchall()
    wrong = [(str(i), s, n) for i, s, n in not_once if n != 1]
    assert wrong == [], f"{len(wrong)} tasks without exactly one final transition: {wrong[:5]}"


def finishers(db: psycopg.Connection, task_ids: list[str]) -> set[int]:
    """PIDs in the worker ids (host-pid-suffix) that finished these tasks."""
    rows = db.execute("SELECT DISTINCT worker FROM task_history WHERE task_id = ANY(%s::uuid[]) "
                      "AND to_status IN ('completed', 'error')", (task_ids,)).fetchall()
    return {int(r[0].rsplit("-", 2)[1]) for r in rows if r[0]}


def resumption(db: psycopg.Connection, killed_at: datetime) -> tuple[float, float]:
    """(seconds from the kill to the first finish of a task created after it, longest gap
    between two finishes from a second before the kill on)."""
    first = row(
        db, "SELECT extract(epoch FROM min(h.at) - %(k)s) FROM task_history h JOIN tasks t "
        "ON t.id = h.task_id WHERE h.to_status IN ('completed', 'error') "
        "AND t.created_at > %(k)s", {"k": killed_at})[0]
    gap = row(
        db, "SELECT extract(epoch FROM max(gap)) FROM (SELECT at - lag(at) OVER (ORDER BY at) "
        "AS gap FROM task_history WHERE to_status IN ('completed', 'error') "
        "AND at > %(k)s - interval '1 second') g", {"k": killed_at})[0]
    return float(first if first is not None else "inf"), float(gap or 0)
