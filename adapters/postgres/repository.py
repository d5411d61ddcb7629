"""TaskRepository and Outbox over one psycopg connection (the unit of work's)."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec
from psycopg import AsyncConnection, sql

from adapters.postgres.statements import statement
from application.model import Dispatch, ListQuery, NewTaskRequest, Stored
from domain.task import Task, TaskSource, TaskStatus, Transition

COLUMNS = (
    "id", "title", "description", "payload", "status", "attempts", "error", "source",
    "created_at", "updated_at", "started_at", "finished_at", "lease_owner", "lease_expires_at",
)
_COLUMNS = sql.SQL(", ").join(map(sql.Identifier, COLUMNS))


@functools.cache
def _q(name: str, filters: tuple[str, ...] = ()) -> sql.SQL:
    """The named statement, composed once: a Composed would be rendered again on every call."""
    where = sql.SQL(" AND ").join(sql.SQL(f) for f in filters) if filters else sql.SQL("true")
    return sql.SQL(statement(name, columns=_COLUMNS, filters=where).as_string(None))


_encoder = msgspec.json.Encoder()


def _json(rows: Sequence[object]) -> str:
    """Rows for `json_to_recordset`: objects keyed by column name (structs by field name)."""
    return _encoder.encode(rows).decode()


_BY_STATUS = "status = ANY(%(statuses)s::text[])"
_AFTER = "(created_at, id) < (%(after_created_at)s, %(after_id)s)"


def to_task(row: Sequence[Any]) -> Task:
    return Task(
        id=row[0], title=row[1], description=row[2], payload=row[3],
        status=TaskStatus(row[4]), attempts=row[5], error=row[6], source=TaskSource(row[7]),
        created_at=row[8], updated_at=row[9], started_at=row[10], finished_at=row[11],
        lease_owner=row[12], lease_expires_at=row[13],
    )


def check_pairs(pairs: Sequence[tuple[Task, Task]]) -> None:
    """compare_and_set_many's precondition: each pair is one task, each task at most once."""
    ids = {old.id for old, _ in pairs}
    if len(ids) != len(pairs) or any(old.id != new.id for old, new in pairs):
        raise ValueError("compare_and_set_many needs one (old, new) pair per distinct task id")


class PostgresTasks:
    def __init__(self, conn: AsyncConnection[Any]) -> None:
        self._conn = conn

    async def add(self, task: Task, request: NewTaskRequest) -> Stored:
        return (await self.add_many([task], [request]))[0]

    async def add_many(
        self, tasks: Sequence[Task], requests: Sequence[NewTaskRequest]
    ) -> list[Stored]:
        """One INSERT for all; then one SELECT for the keys that were already taken."""
        prints = [r.fingerprint() if r.idempotency_key is not None else None for r in requests]
        # Insert in (source, key) order: every batch then takes the key locks in the same
        # order, so two batches sharing keys wait for each other instead of deadlocking.
        rows = sorted(zip(tasks, requests, prints, strict=True),
                      key=lambda row: (row[0].source.value, row[1].idempotency_key or ""))
        cur = await self._conn.execute(_q("insert_tasks"), {"rows": _json([
            {"id": t.id, "title": t.title, "description": t.description, "payload": t.payload,
             "status": t.status, "attempts": t.attempts, "error": t.error, "source": t.source,
             "idempotency_key": r.idempotency_key, "fingerprint": p,
             "created_at": t.created_at, "updated_at": t.updated_at}
            for t, r, p in rows
        ])})
        inserted = {row[0] for row in await cur.fetchall()}
        taken = [(t, r) for t, r in zip(tasks, requests, strict=True) if t.id not in inserted]
        existing: dict[tuple[str, str], Stored] = {}
        if taken:
            cur = await self._conn.execute(_q("select_by_keys"), {
                "source": [t.source.value for t, _ in taken],
                "key": [r.idempotency_key for _, r in taken],
            })
            for row in await cur.fetchall():
                existing[(row[7], row[-1])] = Stored(to_task(row), row[-2], inserted=False)
        return [
            Stored(t, p, inserted=True) if t.id in inserted
            else existing[(t.source.value, r.idempotency_key or "")]
            for t, r, p in zip(tasks, requests, prints, strict=True)
        ]

    async def get(self, task_id: uuid.UUID) -> Task | None:
        found = await self.get_many([task_id])
        return found[0] if found else None

    async def get_many(self, ids: Sequence[uuid.UUID]) -> list[Task]:
        if not ids:
            return []
        cur = await self._conn.execute(_q("select_tasks"), {"ids": list(ids)})
        return [to_task(row) for row in await cur.fetchall()]

    async def page(self, query: ListQuery) -> list[Task]:
        filters: list[str] = []
        params: dict[str, Any] = {"limit": query.limit + 1}
        if query.statuses:
            filters.append(_BY_STATUS)
            params["statuses"] = sorted(s.value for s in query.statuses)
        if query.after is not None:
            filters.append(_AFTER)
            params["after_created_at"] = query.after.created_at
            params["after_id"] = query.after.id
        cur = await self._conn.execute(_q("list_tasks", tuple(filters)), params)
        return [to_task(row) for row in await cur.fetchall()]

    async def compare_and_set(self, old: Task, new: Task) -> bool:
        return old.id in await self.compare_and_set_many([(old, new)])

    async def compare_and_set_many(self, pairs: Sequence[tuple[Task, Task]]) -> set[uuid.UUID]:
        """One UPDATE for all pairs; the statement itself locks the rows in id order."""
        if not pairs:
            return set()
        check_pairs(pairs)
        cur = await self._conn.execute(_q("compare_and_set_many"), {"rows": _json([
            {"id": old.id, "old_status": old.status, "old_attempts": old.attempts,
             "old_lease_owner": old.lease_owner, "status": new.status, "attempts": new.attempts,
             "error": new.error, "updated_at": new.updated_at, "started_at": new.started_at,
             "finished_at": new.finished_at, "lease_owner": new.lease_owner,
             "lease_expires_at": new.lease_expires_at}
            for old, new in pairs
        ])})
        return {row[0] for row in await cur.fetchall()}

    async def expired(self, now: datetime, limit: int) -> list[Task]:
        cur = await self._conn.execute(_q("select_expired"), {"now": now, "limit": limit})
        return [to_task(row) for row in await cur.fetchall()]

    async def renew_leases(self, worker: str, until: datetime) -> int:
        cur = await self._conn.execute(_q("renew_leases"), {"worker": worker, "until": until})
        return len(await cur.fetchall())  # not rowcount: unknown until a pipeline sync

    async def record(self, transitions: Sequence[Transition]) -> None:
        if not transitions:
            return
        await self._conn.execute(_q("insert_history"), {"rows": _json(transitions)})

    async def history(self, task_id: uuid.UUID) -> list[Transition]:
        cur = await self._conn.execute(_q("select_history"), {"task_id": task_id})
        return [
            Transition(
                task_id=r[0], from_status=TaskStatus(r[1]) if r[1] else None,
                to_status=TaskStatus(r[2]), at=r[3], attempt=r[4], worker=r[5], reason=r[6],
            )
            for r in await cur.fetchall()
        ]


class PostgresOutbox:
    def __init__(self, conn: AsyncConnection[Any]) -> None:
        self._conn = conn

    async def put(self, dispatches: Sequence[Dispatch]) -> None:
        if not dispatches:
            return
        await self._conn.execute(_q("outbox_put"), {"rows": _json(dispatches)})

    async def take(self, limit: int) -> list[Dispatch]:
        cur = await self._conn.execute(_q("outbox_take"), {"limit": limit})
        return [Dispatch(task_id, attempt) for task_id, attempt in await cur.fetchall()]
