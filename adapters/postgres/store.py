"""TaskStore on PostgreSQL: each step of a task's life is one statement in autocommit, and the
calls that arrive together share it (adapters/batches.py)."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

import psycopg
import psycopg_pool
from psycopg import AsyncConnection

from adapters.batches import Batcher
from adapters.postgres.repository import cas_row, check_pairs, query
from adapters.postgres.rows import as_json, insert_row, to_task
from adapters.postgres.uow import translated
from adapters.timeouts import PG_POOL_WAIT_SECONDS
from application.backoff import retrying
from application.model import Change, Claimed, Dispatch, NewTask, Stored
from application.pause import DispatchPaused
from domain.status import TaskStatus
from domain.task import Task

#: Confirmed dispatches leave the outbox together, this often at most (seconds): until then a
#: crash would only send them again, which workers ignore.
REMOVE_EVERY = 0.1

Claim = tuple[uuid.UUID, str, datetime, datetime]  # task id, worker, now, lease until
Outcome = Claimed | TaskStatus | DispatchPaused | None


class PostgresTaskStore:
    """Creates and claims go as soon as no statement of their kind is under way; changes wait
    `linger` seconds for company first (a worker's finishes: River's completer does the same),
    and removals of confirmed dispatches REMOVE_EVERY."""

    def __init__(self, pool: psycopg_pool.AsyncConnectionPool[Any], *, hold: float,
                 linger: float = 0.0, patient: bool = False) -> None:
        self._pool = pool
        self._hold = hold
        self._patient = patient
        self._creates = Batcher(self._create)
        self._claims = Batcher(self._claim)
        self._changes = Batcher(self._apply, linger=linger)
        self._removals = Batcher(self._remove, linger=REMOVE_EVERY)

    async def create(self, new: NewTask) -> Stored:
        return await self._creates.submit(new)

    async def create_many(self, news: Sequence[NewTask]) -> list[Stored | None]:
        """One transaction, so that a taken key takes the whole batch back."""
        async with (translated(),
                    self._pool.connection(timeout=PG_POOL_WAIT_SECONDS) as conn,
                    conn.transaction() as tx):
            stored = await self._insert(conn, news)
            if not all(s.inserted for s in stored):
                raise psycopg.Rollback(tx)  # a key was taken: none of the batch is written
        if all(s.inserted for s in stored):
            return list(stored)
        return [None if s.inserted else s for s in stored]

    async def claim(self, task_id: uuid.UUID, *, worker: str, now: datetime,
                    lease_until: datetime) -> Claimed | TaskStatus | None:
        result = await self._claims.submit((task_id, worker, now, lease_until))
        if isinstance(result, DispatchPaused):
            raise result
        return result

    async def apply(self, change: Change) -> bool:
        return await self._changes.submit(change)

    async def get(self, task_id: uuid.UUID) -> Task | None:
        rows = await self._fetch("select_tasks", {"ids": [task_id]})
        return to_task(rows[0]) if rows else None

    async def pending_since(self, task_id: uuid.UUID) -> datetime | None:
        rows = await self._fetch("outbox_of_task", {"task_id": task_id})
        return rows[0]["created_at"] if rows else None

    async def take(self, limit: int, hold: float) -> dict[int, Dispatch]:
        rows = await self._fetch("outbox_take", {"limit": limit, "hold": hold})
        return {row["id"]: Dispatch(row["task_id"], row["attempt"], row["trace_context"])
                for row in sorted(rows, key=lambda row: row["id"])}

    async def remove(self, entries: Collection[int]) -> None:
        await self._removals.submit(list(entries))

    async def release(self, entries: Collection[int]) -> None:
        await self._fetch("outbox_release", {"ids": list(entries)}, rows=False)

    async def _create(self, news: Sequence[NewTask]) -> list[Stored]:
        async with translated(), self._pool.connection(timeout=PG_POOL_WAIT_SECONDS) as conn:
            return await self._insert(conn, news)

    async def _insert(self, conn: AsyncConnection[Any], news: Sequence[NewTask]) -> list[Stored]:
        """One statement for all; then one more for the keys that were taken already. Rows go
        in (source, key) order: batches sharing keys then wait for each other, never deadlock."""
        ordered = sorted(news, key=lambda n: (n.task.source.value,
                                              n.request.idempotency_key or ""))
        rows = [{**insert_row(n.task), "idempotency_key": n.request.idempotency_key,
                 "fingerprint": n.digest(), "trace": n.trace} for n in ordered]
        cur = await conn.execute(query("create_tasks"), {"rows": as_json(rows),
                                                          "hold": self._hold})
        entries = {row["id"]: row["entry"] for row in await cur.fetchall()}
        taken = [n for n in news if n.task.id not in entries]
        existing: dict[tuple[str, str], Stored] = {}
        if taken:
            cur = await conn.execute(query("select_by_keys"), {
                "source": [n.task.source.value for n in taken],
                "key": [n.request.idempotency_key for n in taken]})
            for row in await cur.fetchall():
                key, fingerprint = row.pop("idempotency_key"), row.pop("fingerprint")
                existing[(row["source"], key)] = Stored(to_task(row), fingerprint, inserted=False)
        return [
            Stored(n.task, n.digest(), inserted=True, entry=entries[n.task.id])
            if n.task.id in entries
            else existing[(n.task.source.value, n.request.idempotency_key or "")]
            for n in news
        ]

    async def _claim(self, claims: Sequence[Claim]) -> list[Outcome]:
        """One statement per worker (a process has one) for every claim of the batch, at the
        time of the latest: a task asked for twice is claimed once, for the first asker of the
        worker whose statement claimed it. A task the statement found claimable but did not
        claim was claimed by another statement while this one waited for it (`lost`, see
        claim_tasks): asked for again, it says what it is now."""
        found: dict[tuple[uuid.UUID, str], Outcome] = {}
        for worker in dict.fromkeys(c[1] for c in claims):
            mine = [c for c in claims if c[1] == worker]
            now, lease_until = max(c[2] for c in mine), max(c[3] for c in mine)
            ids = list(dict.fromkeys(c[0] for c in mine))
            while ids:
                rows = await self._fetch("claim_tasks", {
                    "ids": ids, "worker": worker, "now": now, "lease_until": lease_until})
                ids = [row["id"] for row in rows if row["lost"]]
                for row in rows:
                    since, paused = row.pop("waited_since"), row.pop("paused")
                    if not row.pop("lost"):
                        found[(row["id"], worker)] = (
                            Claimed(to_task(row), since) if since is not None
                            else DispatchPaused() if paused and row["status"] == "new"
                            else TaskStatus(row["status"]))
        results: list[Outcome] = []
        for task_id, worker, *_ in claims:
            result = found.get((task_id, worker))
            results.append(result)
            if isinstance(result, Claimed):  # a second asker finds it claimed
                found[(task_id, worker)] = result.task.status
        return results

    async def _apply(self, changes: Sequence[Change]) -> list[bool]:
        """One statement per round: a task changed twice in the batch goes to a later round,
        as if the calls had come one after the other."""
        written = [False] * len(changes)
        todo = list(range(len(changes)))
        while todo:
            first: dict[uuid.UUID, int] = {}
            for i in todo:
                first.setdefault(changes[i].old.id, i)
            now = [changes[i] for i in first.values()]
            check_pairs([(c.old, c.new) for c in now])
            done = {row["id"] for row in await self._fetch("apply_changes", {
                "rows": as_json([cas_row(c.old, c.new) for c in now]),
                "steps": as_json([c.step for c in now]),
                "dispatches": as_json([c.dispatch for c in now if c.dispatch is not None])})}
            for task_id, i in first.items():
                written[i] = task_id in done
            todo = [i for i in todo if i not in first.values()]
        return written

    async def _remove(self, batches: Sequence[list[int]]) -> list[None]:
        await self._fetch("outbox_remove", {"ids": [e for b in batches for e in b]}, rows=False)
        return [None] * len(batches)

    async def _fetch(self, name: str, params: dict[str, Any], *,
                     rows: bool = True) -> list[dict[str, Any]]:
        """One statement on a pooled connection, in autocommit: its own transaction. A patient
        store waits an outage out (the worker's: its steps have nobody to answer 503 to)."""
        if self._patient:
            return await retrying(lambda: self._once(name, params, rows), name)
        return await self._once(name, params, rows)

    async def _once(self, name: str, params: dict[str, Any],
                    rows: bool) -> list[dict[str, Any]]:
        async with translated(), self._pool.connection(timeout=PG_POOL_WAIT_SECONDS) as conn:
            cur = await conn.execute(query(name), params)
            return await cur.fetchall() if rows else []
