"""The Task value, its changes of status, and the record of each change."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec

from domain.errors import InvalidTransition
from domain.status import ALLOWED, TaskSource, TaskStatus

#: Every error text of a cancelled task starts with this.
CANCELLED = "cancelled"


class CancelRequest(msgspec.Struct, frozen=True, kw_only=True):
    """An operator asked to cancel a running task; its worker (or recovery) ends it."""

    at: datetime
    actor: str | None = None
    reason: str | None = None

    def error(self) -> str:
        """`cancelled`, then who asked and why when known: "cancelled by ops: duplicate"."""
        by = f" by {self.actor}" if self.actor else ""
        why = f": {self.reason}" if self.reason else ""
        return f"{CANCELLED}{by}{why}"


class Task(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    title: str
    description: str | None
    payload: dict[str, Any]
    status: TaskStatus
    attempts: int
    error: str | None
    source: TaskSource
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    cancel_request: CancelRequest | None = None
    #: the earliest it may start (None: at once); set at creation
    run_at: datetime | None = None

    @classmethod
    def create(
        cls,
        *,
        id: uuid.UUID,
        title: str,
        description: str | None,
        payload: dict[str, Any],
        source: TaskSource,
        now: datetime,
        run_at: datetime | None = None,
    ) -> Task:
        return cls(
            id=id,
            title=title,
            description=description,
            payload=payload,
            status=TaskStatus.NEW,
            attempts=0,
            error=None,
            source=source,
            created_at=now,
            updated_at=now,
            run_at=run_at,
        )

    def _move(self, to: TaskStatus, **changes: Any) -> Task:
        if (self.status, to) not in ALLOWED:
            raise InvalidTransition(self.id, self.status, to)
        return msgspec.structs.replace(self, status=to, **changes)

    def due(self, now: datetime) -> bool:
        """Whether it may start at `now` (its `run_at` has come, or it has none)."""
        return self.run_at is None or self.run_at <= now

    def claim(self, *, now: datetime, worker: str, lease_until: datetime) -> Task:
        """A worker takes the task: one more attempt, leased to that worker until renewed."""
        if not self.due(now):
            raise InvalidTransition(self.id, self.status, TaskStatus.IN_PROGRESS)
        return self._move(
            TaskStatus.IN_PROGRESS,
            attempts=self.attempts + 1,
            started_at=now,
            updated_at=now,
            lease_owner=worker,
            lease_expires_at=lease_until,
        )

    def complete(self, *, now: datetime) -> Task:
        return self._move(
            TaskStatus.COMPLETED,
            finished_at=now,
            updated_at=now,
            lease_owner=None,
            lease_expires_at=None,
            cancel_request=None,
        )

    def fail(self, *, now: datetime, reason: str) -> Task:
        return self._move(
            TaskStatus.ERROR,
            error=reason,
            finished_at=now,
            updated_at=now,
            lease_owner=None,
            lease_expires_at=None,
            cancel_request=None,
        )

    def release(self, *, now: datetime, count_attempt: bool = True) -> Task:
        """Back to `new` for another worker; a graceful hand-back does not use up an attempt."""
        return self._move(
            TaskStatus.NEW,
            attempts=self.attempts if count_attempt else self.attempts - 1,
            started_at=None,
            updated_at=now,
            lease_owner=None,
            lease_expires_at=None,
        )

    def retry(self, *, now: datetime) -> Task:
        """A failed task goes back to `new`; `attempts` keeps counting. Only a failed one:
        `in_progress -> new` is allowed to hand a claim back, never to an operator."""
        if self.status is not TaskStatus.ERROR:
            raise InvalidTransition(self.id, self.status, TaskStatus.NEW)
        return self._move(
            TaskStatus.NEW,
            error=None,
            started_at=None,
            finished_at=None,
            updated_at=now,
            cancel_request=None,
        )

    def cancel(self, *, now: datetime, actor: str | None, reason: str | None) -> Task:
        """A `new` task ends in `error` at once; a running one keeps running with a request
        that its worker (or recovery, if that worker is gone) turns into `error` by `stop`."""
        request = CancelRequest(at=now, actor=actor, reason=reason)
        if self.status is TaskStatus.IN_PROGRESS:
            return msgspec.structs.replace(self, cancel_request=request, updated_at=now)
        return self.fail(now=now, reason=request.error())

    def stop(self, *, now: datetime) -> Task:
        """Ends a running task whose cancel was requested."""
        if self.cancel_request is None:
            raise InvalidTransition(self.id, self.status, TaskStatus.ERROR)
        return self.fail(now=now, reason=self.cancel_request.error())

    def never_claimed(self, *, now: datetime, dispatches: int) -> Task:
        """A waiting task whose every dispatch was lost (dead-lettered, purged, or sent to a
        queue that was gone) ends in `error` rather than wait for ever."""
        if self.status is not TaskStatus.NEW:
            raise InvalidTransition(self.id, self.status, TaskStatus.ERROR)
        times = "once" if dispatches == 1 else f"{dispatches} times"
        return self.fail(
            now=now,
            reason=f"never claimed: dispatched {times} and each dispatch was lost "
                   "(dead-lettered, purged or sent to a missing queue)",
        )

    def expire(self, *, now: datetime, max_attempts: int) -> Task:
        """The lease ran out (the worker died): retry, or give up after `max_attempts`; a task
        whose cancel was requested is not run again but ends cancelled."""
        if self.cancel_request is not None:
            return self.stop(now=now)
        if self.attempts >= max_attempts:
            return self.fail(
                now=now,
                reason=f"worker lost: lease expired on attempt {self.attempts} of {max_attempts}",
            )
        return self.release(now=now)


class Transition(msgspec.Struct, frozen=True, kw_only=True):
    """One recorded status change of a task (`from_status` is None at creation), with who made
    it and the task's changing fields after it (`error`, `started_at`)."""

    task_id: uuid.UUID
    from_status: TaskStatus | None
    to_status: TaskStatus
    at: datetime
    attempt: int
    worker: str | None = None
    reason: str | None = None
    actor: str | None = None
    error: str | None = None
    started_at: datetime | None = None

    @classmethod
    def between(
        cls, old: Task | None, new: Task, *, worker: str | None = None,
        reason: str | None = None, actor: str | None = None,
    ) -> Transition:
        return cls(
            task_id=new.id,
            from_status=old.status if old else None,
            to_status=new.status,
            at=new.updated_at,
            attempt=new.attempts,
            worker=worker,
            reason=reason if reason is not None else new.error,
            actor=actor,
            error=new.error,
            started_at=new.started_at,
        )

    def applied_to(self, task: Task) -> Task:
        """`task` (any later version of it) as it was right after this change."""
        return msgspec.structs.replace(
            task, status=self.to_status, attempts=self.attempt, error=self.error,
            updated_at=self.at, started_at=self.started_at,
            finished_at=self.at if self.to_status.is_final else None,
            lease_owner=None, lease_expires_at=None, cancel_request=None)
