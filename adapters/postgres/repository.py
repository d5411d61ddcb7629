"""TaskRepository and Outbox over one psycopg connection (the unit of work's)."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection, sql

from adapters.postgres.rows import (
    COMPARED,
    MUTABLE,
    TASK_COLUMNS,
    as_json,
    counts_from,
    definitions,
    names,
    to_task,
    to_transition,
    values,
)
from adapters.postgres.statements import statement
from application.model import Dispatch, ListQuery, Renewed, Waiting
from application.stats import Counts
from domain.task import Task, Transition

#: a new task's columns that are not Task fields
KEYS = {"idempotency_key": "text", "fingerprint": "text"}
_OLD = {f"old_{c}": TASK_COLUMNS[c] for c in COMPARED}
_FRAGMENTS = {
    "columns": names(list(TASK_COLUMNS)),
    "task_columns": names(list(TASK_COLUMNS), prefix="t"),
    "inserted": names([*TASK_COLUMNS, *KEYS]),
    "insert_values": values([*TASK_COLUMNS, *KEYS], prefix="r"),
    "insert_shape": definitions({**TASK_COLUMNS, **KEYS}),
    "cas_shape": definitions({"id": "uuid", **_OLD, **{c: TASK_COLUMNS[c] for c in MUTABLE}}),
    "assignments": sql.SQL(", ").join(
        sql.SQL("{} = n.{}").format(sql.Identifier(c), sql.Identifier(c)) for c in MUTABLE),
}


@functools.cache
def query(name: str, filters: tuple[str, ...] = ()) -> sql.SQL:
    """The named statement, composed once: a Composed would be rendered again on every call."""
    where = sql.SQL(" AND ").join(sql.SQL(f) for f in filters) if filters else sql.SQL("true")
    return sql.SQL(statement(name, filters=where, **_FRAGMENTS).as_string(None))


#: One pruner at a time, in every process of every replica (an advisory lock key).
PRUNE_LOCK = 0x7072756E65  # "prune"
_BY_STATUS = "status = ANY(%(statuses)s::text[])"
_AFTER = "(created_at, id) < (%(after_created_at)s, %(after_id)s)"


def check_pairs(pairs: Sequence[tuple[Task, Task]]) -> None:
    """compare_and_set_many's precondition: each pair is one task, each task at most once."""
    ids = {old.id for old, _ in pairs}
    if len(ids) != len(pairs) or any(old.id != new.id for old, new in pairs):
        raise ValueError("compare_and_set_many needs one (old, new) pair per distinct task id")


def cas_row(old: Task, new: Task) -> dict[str, Any]:
    row = {c: getattr(new, c) for c in MUTABLE}
    row.update({f"old_{c}": getattr(old, c) for c in COMPARED}, id=old.id)
    return row


class PostgresTasks:
    """Rows come back as dicts (the pool's row factory) and are mapped by column name."""

    def __init__(self, conn: AsyncConnection[Any]) -> None:
        self._conn = conn

    async def get(self, task_id: uuid.UUID) -> Task | None:
        found = await self.get_many([task_id])
        return found[0] if found else None

    async def get_many(self, ids: Sequence[uuid.UUID]) -> list[Task]:
        if not ids:
            return []
        cur = await self._conn.execute(query("select_tasks"), {"ids": list(ids)})
        return [to_task(row) for row in await cur.fetchall()]

    async def page(self, wanted: ListQuery) -> list[Task]:
        filters: list[str] = []
        params: dict[str, Any] = {"limit": wanted.limit + 1}
        if wanted.statuses:
            filters.append(_BY_STATUS)
            params["statuses"] = sorted(s.value for s in wanted.statuses)
        if wanted.after is not None:
            filters.append(_AFTER)
            params["after_created_at"] = wanted.after.created_at
            params["after_id"] = wanted.after.id
        cur = await self._conn.execute(query("list_tasks", tuple(filters)), params)
        return [to_task(row) for row in await cur.fetchall()]

    async def compare_and_set_many(self, pairs: Sequence[tuple[Task, Task]]) -> set[uuid.UUID]:
        """One UPDATE for all pairs (the store's apply_changes, with no history row and no
        dispatch); the statement itself locks the rows in id order."""
        if not pairs:
            return set()
        check_pairs(pairs)
        cur = await self._conn.execute(query("apply_changes"), {
            "rows": as_json([cas_row(old, new) for old, new in pairs]),
            "steps": "[]", "dispatches": "[]"})
        return {row["id"] for row in await cur.fetchall()}

    async def expired(self, now: datetime, limit: int) -> list[Task]:
        cur = await self._conn.execute(query("select_expired"), {"now": now, "limit": limit})
        return [to_task(row) for row in await cur.fetchall()]

    async def renew_leases(self, worker: str, claims: Sequence[tuple[uuid.UUID, int]],
                           until: datetime) -> Renewed:
        if not claims:
            return Renewed(0)
        cur = await self._conn.execute(query("renew_leases"), {
            "worker": worker, "until": until,
            "ids": [task_id for task_id, _ in claims],
            "attempts": [attempt for _, attempt in claims]})
        rows = await cur.fetchall()
        return Renewed(len(rows), frozenset(
            (row["id"], row["attempts"]) for row in rows if row["cancel_requested"]))

    async def undispatched(self, quiet_since: datetime, limit: int) -> list[Waiting]:
        cur = await self._conn.execute(query("select_undispatched"), {
            "quiet_since": quiet_since, "limit": limit})
        return [Waiting(to_task(row), row.pop("redispatches")) for row in await cur.fetchall()]

    async def mark_redispatched(self, ids: Sequence[uuid.UUID], at: datetime) -> None:
        if ids:
            await self._conn.execute(query("mark_redispatched"), {"ids": list(ids), "at": at})

    async def record(self, transitions: Sequence[Transition]) -> None:
        if not transitions:
            return
        await self._conn.execute(query("insert_history"), {"rows": as_json(transitions)})

    async def count_prunable(self, cutoff: datetime) -> int:
        row = await (await self._conn.execute(query("prune_count"), {"cutoff": cutoff})).fetchone()
        return int(row["matched"]) if row else 0

    async def prune(self, cutoff: datetime, limit: int) -> int | None:
        row = await (await self._conn.execute(query("prune_batch"), {
            "cutoff": cutoff, "limit": limit, "lock": PRUNE_LOCK})).fetchone()
        return int(row["deleted"]) if row and row["locked"] else None

    async def counts(self) -> Counts:
        row = await (await self._conn.execute(query("select_counts"))).fetchone()
        assert row is not None
        return counts_from(row["counts"], row["oldest_new_at"])

    async def history(self, task_id: uuid.UUID) -> list[Transition]:
        cur = await self._conn.execute(query("select_history"), {"task_id": task_id})
        return [to_transition(row) for row in await cur.fetchall()]


class PostgresOutbox:
    """Dispatches put in the outbox by a unit of work (the relay sends them: store.py)."""

    def __init__(self, conn: AsyncConnection[Any]) -> None:
        self._conn = conn

    async def put(self, dispatches: Sequence[Dispatch]) -> None:
        if not dispatches:
            return
        await self._conn.execute(query("outbox_put"), {"rows": as_json(dispatches)})
