"""Ports: what the use cases need from the outside world, as structural protocols (the
broker's are in application/messaging.py)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Protocol, Self

from application.model import (
    Change,
    Claimed,
    Dispatch,
    Event,
    EventId,
    ListQuery,
    NewTask,
    Renewed,
    Stored,
    Waiting,
)
from domain.status import TaskStatus
from domain.task import Task, Transition

if TYPE_CHECKING:
    from application.stats import Counts


class TaskRepository(Protocol):
    """Tasks and their history inside a unit of work. Every status change is a compare-and-set."""

    async def get(self, task_id: uuid.UUID) -> Task | None:
        """The task, or None when no task has that id."""
        ...

    async def get_many(self, ids: Sequence[uuid.UUID]) -> list[Task]:
        """The tasks that exist among `ids`, each once, in no particular order."""
        ...

    async def page(self, query: ListQuery) -> list[Task]:
        """Newest first, strictly after `query.after`, at most `query.limit + 1` rows."""
        ...

    async def compare_and_set_many(self, pairs: Sequence[tuple[Task, Task]]) -> set[uuid.UUID]:
        """Write each `new` only if its row still has `old`'s status, attempts and lease owner;
        returns the ids written.

        Ids must be distinct (ValueError otherwise). Rows are locked in id order, so batches
        over overlapping ids queue behind each other instead of deadlocking.
        """
        ...

    async def expired(self, now: datetime, limit: int) -> list[Task]:
        """In-progress tasks whose lease ran out, locked so that concurrent sweeps skip them."""
        ...

    async def renew_leases(self, worker: str, claims: Sequence[tuple[uuid.UUID, int]],
                           until: datetime) -> Renewed:
        """Push out to `until` the lease of each of these claims (task id, attempt) that
        `worker` still holds; a claim of `worker` that is not among them is left to expire."""
        ...

    async def undispatched(self, quiet_since: datetime, limit: int) -> list[Waiting]:
        """Tasks in `new` since before `quiet_since`, not dispatched again since then, with no
        dispatch waiting in the outbox; oldest first, locked so that concurrent sweeps skip
        them."""
        ...

    async def mark_redispatched(self, ids: Sequence[uuid.UUID], at: datetime) -> None:
        """Count one more redispatch of each (still `new`) task, at `at`. A task's count starts
        again at its next change of status."""
        ...

    async def record(self, transitions: Sequence[Transition]) -> None: ...

    async def count_prunable(self, cutoff: datetime) -> int:
        """Finished tasks that finished before `cutoff`."""
        ...

    async def prune(self, cutoff: datetime, limit: int) -> int | None:
        """Delete up to `limit` of them, oldest first, with their history, skipping rows in
        use; None (nothing deleted) when another pruner is at work."""
        ...

    async def counts(self) -> Counts:
        """Kept by the changes themselves: as cheap at ten million tasks as at ten."""
        ...

    async def history(self, task_id: uuid.UUID) -> list[Transition]:
        """Oldest first."""
        ...


class TaskStore(Protocol):
    """The steps of every task's life, each one statement that commits on its own: the change,
    its history row and the dispatch it sends go together or not at all. Calls that arrive
    together may share that statement; a row the database refuses fails only its own call.
    (Stories of several statements, such as the sweeps, use a UnitOfWork.)"""

    async def create(self, new: NewTask) -> Stored:
        """The task, its `created` history row and its first dispatch, whose outbox entry is
        held for the caller (see `take`); or, if `new.request.idempotency_key` is taken, the
        task stored under it (nothing written)."""
        ...

    async def create_many(self, news: Sequence[NewTask]) -> list[Stored | None]:
        """`create` for each, in one transaction, all or none: when any key is taken, nothing
        is written, and the task stored under each taken key comes back (None for the
        others)."""
        ...

    async def claim(self, task_id: uuid.UUID, *, worker: str, now: datetime,
                    lease_until: datetime) -> Claimed | TaskStatus | None:
        """`new -> in_progress` for `worker` (Task.claim) with its history row: the claimed
        task; else the status the task has (not `new`), or None when there is no such task."""
        ...

    async def apply(self, change: Change) -> bool:
        """Write `change.new` if the task is still as `change.old` (status, attempts, lease
        owner), with its history row and its dispatch; False when it was not."""
        ...

    async def get(self, task_id: uuid.UUID) -> Task | None: ...

    async def pending_since(self, task_id: uuid.UUID) -> datetime | None:
        """When the task's oldest dispatch still in the outbox (not confirmed by the broker)
        was committed; None when none is."""
        ...

    async def take(self, limit: int, hold: float) -> dict[int, Dispatch]:
        """Pending dispatches by outbox entry, held for `hold` seconds: no other `take` gets
        them meanwhile. Held, not gone: `remove` deletes them, `release` hands them back at
        once; a holder that does neither (it died) loses them when the time is up."""
        ...

    async def remove(self, entries: Collection[int]) -> None:
        """The broker confirmed these dispatches: they leave the outbox."""
        ...

    async def release(self, entries: Collection[int]) -> None: ...


class Outbox(Protocol):
    """Dispatches that still have to reach the workers, stored with the task change."""

    async def put(self, dispatches: Sequence[Dispatch]) -> None: ...


class UnitOfWork(Protocol):
    """One transaction; rolled back on exit unless `commit()` was called."""

    @property
    def tasks(self) -> TaskRepository: ...

    @property
    def outbox(self) -> Outbox: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def commit(self) -> None: ...


UnitOfWorkFactory = Callable[[], UnitOfWork]


class EventLog(Protocol):
    """The history as a feed. Positions only move forward, and a read never skips an event:
    an event becomes readable only once no event before it can still be committed."""

    async def latest(self) -> EventId:
        """The position of the newest readable event (ORIGIN when there is none)."""
        ...

    async def read(self, after: EventId, until: EventId, limit: int,
                   task_id: uuid.UUID | None = None) -> list[Event]:
        """Readable events in (after, until], oldest first, at most `limit` (one task's only,
        with `task_id`)."""
        ...

    async def read_last(self, task_id: uuid.UUID) -> Event | None:
        """The task's newest readable event."""
        ...

    def changes(self) -> AsyncIterator[None]:
        """Yields whenever new events may have become readable (by any process): the feed
        reads then."""
        ...


class Processor(Protocol):
    async def process(self, task: Task) -> str | None:
        """Do the task's work; None when it succeeded, else the reason it failed."""
        ...


class Clock(Protocol):
    def now(self) -> datetime: ...


class IdSource(Protocol):
    def new_id(self) -> uuid.UUID: ...


class HealthProbe(Protocol):
    name: str

    async def check(self) -> str | None:
        """Raise ServiceUnavailable when the dependency cannot be reached; may return the
        server that answered (of several, the one in use)."""
        ...
