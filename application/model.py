"""Application-level values: requests, queries, pages, cursors and dispatches."""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import msgspec

from domain.errors import InvalidInput
from domain.status import TaskSource, TaskStatus
from domain.task import Task, Transition


class NewTaskRequest(msgspec.Struct, frozen=True, kw_only=True):
    title: str
    description: str | None = None
    payload: dict[str, Any] = msgspec.field(default_factory=dict)
    source: TaskSource = TaskSource.API
    idempotency_key: str | None = None
    #: when it may start: at `run_at`, or `delay_seconds` after its creation (not both)
    run_at: datetime | None = None
    delay_seconds: float | None = None

    def fingerprint(self) -> str:
        """Stable digest of what the client asked for, to tell a replay from a conflict (a
        request without a schedule digests as it always has)."""
        asked: list[object] = [self.title, self.description, self.payload]
        if self.run_at is not None or self.delay_seconds is not None:
            asked += [self.run_at, self.delay_seconds]
        return hashlib.sha256(msgspec.json.encode(asked, order="sorted")).hexdigest()

    def start(self, created_at: datetime) -> datetime | None:
        """The task's `run_at`: as given, or `delay_seconds` after `created_at`."""
        if self.delay_seconds is not None:
            return created_at + timedelta(seconds=self.delay_seconds)
        return self.run_at


class Stored(msgspec.Struct, frozen=True):
    """A create's result: the task it stored, or the one already stored under its key. `entry`
    is the outbox entry of the new task's dispatch, held for the creator to publish."""

    task: Task
    fingerprint: str | None
    inserted: bool
    entry: int | None = None


class Dispatch(msgspec.Struct, frozen=True, omit_defaults=True):
    """What a worker receives: which task, and for which attempt it was sent. `trace` is the
    trace of the request that sent it (opaque, see application/telemetry.py): it travels beside
    the message, in the outbox row and the message headers, never in the body."""

    task_id: uuid.UUID
    attempt: int
    trace: str | None = None


class NewTask(msgspec.Struct, frozen=True):
    """A task to create, the request it came from, and the trace its dispatch carries.
    `fingerprint` replaces the request's own (a batch's items carry the whole batch's)."""

    task: Task
    request: NewTaskRequest
    trace: str | None = None
    fingerprint: str | None = None

    def digest(self) -> str | None:
        """What is stored to tell a replay from a conflict (None without a key)."""
        if self.request.idempotency_key is None:
            return None
        return self.fingerprint or self.request.fingerprint()


class Claimed(msgspec.Struct, frozen=True):
    """A task a worker has just claimed, and since when it had been waiting in `new`."""

    task: Task
    waited_since: datetime


class Change(msgspec.Struct, frozen=True):
    """One compare-and-set of a task (`new` is written only if the row is still as `old`),
    with the history row that records it and the dispatch it sends, if any."""

    old: Task
    new: Task
    step: Transition
    dispatch: Dispatch | None = None


class Cursor(msgspec.Struct, frozen=True):
    """Keyset position: the last (created_at, id) a page returned. On the wire it is the time
    in microseconds since the epoch and the id in hex (PATTERN), so that every string of that
    form is a position: a client can only make one that the document allows."""

    created_at: datetime
    id: uuid.UUID

    PATTERN: ClassVar[str] = "^[0-9]{1,16}-[0-9a-f]{32}$"
    _FORM: ClassVar[re.Pattern[str]] = re.compile(PATTERN)

    @classmethod
    def after(cls, task: Task) -> Cursor:
        return cls(created_at=task.created_at, id=task.id)

    def encode(self) -> str:
        micros = (self.created_at - _EPOCH) // timedelta(microseconds=1)
        return f"{micros}-{self.id.hex}"

    @classmethod
    def decode(cls, text: str) -> Cursor:
        if not cls._FORM.match(text):
            raise InvalidInput("cursor is not one this service made")
        micros, hex_id = text.split("-")
        return cls(created_at=_EPOCH + timedelta(microseconds=int(micros)),
                   id=uuid.UUID(hex=hex_id))


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class ListQuery(msgspec.Struct, frozen=True, kw_only=True):
    statuses: frozenset[TaskStatus] = frozenset()
    limit: int = 50
    after: Cursor | None = None


class Page(msgspec.Struct, frozen=True):
    items: list[Task]
    next_cursor: str | None


#: A position in the history feed: (transaction, row), ordered as the feed delivers events.
EventId = tuple[int, int]
ORIGIN: EventId = (0, 0)


class Event(msgspec.Struct, frozen=True):
    """One status change as the feed delivers it, with the task right after the change."""

    id: EventId
    transition: Transition
    task: Task


class Renewed(msgspec.Struct, frozen=True):
    """What a lease renewal found: how many claims it renewed, and which of them an operator
    asked to cancel (task id, attempt)."""

    count: int
    cancelled: frozenset[tuple[uuid.UUID, int]] = frozenset()


class Waiting(msgspec.Struct, frozen=True):
    """A task in `new` with no dispatch on its way that the sweep can see, and how often the
    sweep has dispatched it again since it became `new`."""

    task: Task
    redispatches: int
