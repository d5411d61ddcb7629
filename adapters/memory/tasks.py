"""The in-memory task repository: the PostgreSQL one's behaviour over plain dicts, every write
undoable until its unit of work commits."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import msgspec

from application.model import ListQuery, NewTaskRequest, Renewed, Stored, Waiting
from application.stats import Counts
from domain.status import TaskStatus
from domain.task import Task, Transition

if TYPE_CHECKING:
    from adapters.memory.store import InMemoryStore


class InMemoryTasks:
    def __init__(self, store: InMemoryStore, undo: list[Callable[[], object]],
                 after_commit: list[Callable[[], None]]) -> None:
        self._s = store
        self._undo = undo
        self._after_commit = after_commit

    async def add(self, task: Task, request: NewTaskRequest,
                  fingerprint: str | None = None) -> Stored:
        """Insert `task`, unless `request.idempotency_key` is taken: then the stored one.
        `fingerprint`: what to store instead of the request's own."""
        if request.idempotency_key is not None:
            fingerprint = fingerprint or request.fingerprint()
        if request.idempotency_key is not None:
            key = (request.source.value, request.idempotency_key)
            if key in self._s.keys:
                task_id, stored_fp = self._s.keys[key]
                return Stored(self._s.tasks[task_id], stored_fp, inserted=False)
            self._s.keys[key] = (task.id, fingerprint or "")
            self._undo.append(lambda: self._s.keys.pop(key))
        self._s.tasks[task.id] = task
        self._undo.append(lambda: self._s.tasks.pop(task.id))
        return Stored(task, fingerprint, inserted=True)

    async def get(self, task_id: uuid.UUID) -> Task | None:
        found = await self.get_many([task_id])
        return found[0] if found else None

    async def get_many(self, ids: Sequence[uuid.UUID]) -> list[Task]:
        return [self._s.tasks[i] for i in dict.fromkeys(ids) if i in self._s.tasks]

    async def page(self, query: ListQuery) -> list[Task]:
        rows = sorted(self._s.tasks.values(), key=lambda t: (t.created_at, t.id), reverse=True)
        if query.statuses:
            rows = [t for t in rows if t.status in query.statuses]
        if query.after is not None:
            mark = (query.after.created_at, query.after.id)
            rows = [t for t in rows if (t.created_at, t.id) < mark]
        return rows[: query.limit + 1]

    async def compare_and_set_many(self, pairs: Sequence[tuple[Task, Task]]) -> set[uuid.UUID]:
        if len({old.id for old, _ in pairs}) != len(pairs) or any(
            old.id != new.id for old, new in pairs
        ):
            raise ValueError("compare_and_set_many needs one (old, new) pair per distinct task id")
        written: set[uuid.UUID] = set()
        for old, new in sorted(pairs, key=lambda pair: pair[0].id):
            current = self._s.tasks.get(old.id)
            if current is None or _state(current) != _state(old):
                continue
            self._s.tasks[old.id] = new
            self._undo.append(functools.partial(self._s.tasks.__setitem__, old.id, current))
            written.add(old.id)
            if new.status is not current.status and old.id in self._s.redispatched:
                count = self._s.redispatched.pop(old.id)
                self._undo.append(functools.partial(
                    self._s.redispatched.__setitem__, old.id, count))
            if new.cancel_request is not None and current.cancel_request is None:
                claim = (new.id, new.attempts)
                self._after_commit.extend(functools.partial(hook, claim)
                                          for hook in self._s.on_cancel)
        return written

    async def expired(self, now: datetime, limit: int) -> list[Task]:
        return [
            t for t in self._s.tasks.values()
            if t.status is TaskStatus.IN_PROGRESS
            and t.lease_expires_at is not None and t.lease_expires_at < now
        ][:limit]

    async def renew_leases(self, worker: str, claims: Sequence[tuple[uuid.UUID, int]],
                           until: datetime) -> Renewed:
        running = set(claims)
        held = [t for t in self._s.tasks.values()
                if t.status is TaskStatus.IN_PROGRESS and t.lease_owner == worker
                and (t.id, t.attempts) in running]
        for t in held:
            self._s.tasks[t.id] = msgspec.structs.replace(t, lease_expires_at=until)
        self._undo.append(lambda: self._s.tasks.update({t.id: t for t in held}))
        return Renewed(len(held), frozenset(
            (t.id, t.attempts) for t in held if t.cancel_request is not None))

    async def undispatched(self, quiet_since: datetime, limit: int) -> list[Waiting]:
        held = [d for d, _ in self._s.held.values()]
        pending = {d.task_id for d in [*self._s.outbox, *held]}
        found = [
            Waiting(t, self._s.redispatched.get(t.id, (0, t.updated_at))[0])
            for t in self._s.tasks.values()
            if t.status is TaskStatus.NEW and t.updated_at < quiet_since
            and self._s.redispatched.get(t.id, (0, t.updated_at))[1] < quiet_since
            and t.id not in pending
        ]
        return sorted(found, key=lambda w: w.task.updated_at)[:limit]

    async def mark_redispatched(self, ids: Sequence[uuid.UUID], at: datetime) -> None:
        before = dict(self._s.redispatched)
        for task_id in ids:
            if self._s.tasks[task_id].status is TaskStatus.NEW:
                count = self._s.redispatched.get(task_id, (0, at))[0]
                self._s.redispatched[task_id] = (count + 1, at)
        marks = self._s.redispatched

        def undo() -> None:
            marks.clear()
            marks.update(before)

        self._undo.append(undo)

    async def record(self, transitions: Sequence[Transition]) -> None:
        size, fed = len(self._s.history), len(self._s.feed)
        last = self._s.feed[-1][0] if self._s.feed else 0
        self._s.history.extend(transitions)
        self._s.feed.extend(enumerate(transitions, start=last + 1))
        self._undo.append(lambda: self._s.history.__delitem__(slice(size, None)))
        self._undo.append(lambda: self._s.feed.__delitem__(slice(fed, None)))
        if transitions:
            self._after_commit.extend(self._s.on_history)

    async def count_prunable(self, cutoff: datetime) -> int:
        return len(self._prunable(cutoff))

    async def prune(self, cutoff: datetime, limit: int) -> int | None:
        doomed = set(self._prunable(cutoff)[:limit])
        s = self._s
        before = dict(s.tasks), dict(s.keys), list(s.history), list(s.feed)
        s.tasks = {i: t for i, t in before[0].items() if i not in doomed}
        s.keys = {k: v for k, v in before[1].items() if v[0] not in doomed}
        s.history[:] = [h for h in before[2] if h.task_id not in doomed]
        s.feed[:] = [(n, h) for n, h in before[3] if h.task_id not in doomed]

        def undo() -> None:
            s.tasks, s.keys = before[0], before[1]
            s.history[:], s.feed[:] = before[2], before[3]

        self._undo.append(undo)
        return len(doomed)

    def _prunable(self, cutoff: datetime) -> list[uuid.UUID]:
        done = [t for t in self._s.tasks.values() if t.status.is_final
                and t.finished_at is not None and t.finished_at < cutoff]
        return [t.id for t in sorted(done, key=lambda t: t.finished_at or cutoff)]

    async def counts(self) -> Counts:
        now = datetime.now(UTC)  # as the database's clock: a scheduled task counts once due
        waiting = [t.updated_at for t in self._s.tasks.values()
                   if t.status is TaskStatus.NEW and t.due(now)]
        return Counts(
            by_status={s: sum(t.status is s for t in self._s.tasks.values()) for s in TaskStatus},
            oldest_new_at=min(waiting, default=None),
            created=sum(h.from_status is None for h in self._s.history),
            finished={s: sum(h.to_status is s and h.from_status is not s
                             for h in self._s.history) for s in TaskStatus if s.is_final},
            outbox_pending=len(self._s.outbox) + len(self._s.held),
        )

    async def history(self, task_id: uuid.UUID) -> list[Transition]:
        return [t for t in self._s.history if t.task_id == task_id]


def _state(task: Task) -> tuple[object, ...]:
    """What a compare-and-set compares: the row must still be as the caller read it."""
    return task.status, task.attempts, task.lease_owner
