"""Wire shapes shared by HTTP and AMQP, mapped to and from the domain at the edge."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec

from application.model import Event, NewTaskRequest, Page
from domain.errors import InvalidInput
from domain.status import TaskSource, TaskStatus
from domain.task import Task, Transition

#: How deeply a payload may nest objects and arrays (the payload object itself is level 1).
MAX_PAYLOAD_DEPTH = 100
#: The longest delay a create may ask for: a year.
MAX_DELAY_SECONDS = 31_536_000
_DATE = ("((0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])|(0[13-9]|1[0-2])-(29|30)"
         "|(0[13578]|1[02])-31)")
#: An RFC 3339 time with an offset, in years 1900-2999, that is a real day (February 29 is
#: left out: the pattern does not count leap years): what `run_at` accepts, exactly.
RFC3339 = (rf"^(19|2[0-9])[0-9]{{2}}-{_DATE}T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
           r"(\.[0-9]{1,6})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$")


class Wire(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Base of every request and response body."""


#: Documents (for OpenAPI, through Litestar's `extra_json_schema["extra"]`) what `_check` refuses;
#: not a msgspec `pattern`, so that the refusal keeps its own message.
NO_NUL = {"extra": {"pattern": "^[^\\u0000]*$"}}
Title = Annotated[
    str, msgspec.Meta(min_length=1, max_length=255, description="Short name of the task.",
                      examples=["Resize image 42"], extra_json_schema=NO_NUL)
]
Description = Annotated[
    str, msgspec.Meta(max_length=10_000, description="Free text, up to 10,000 characters.",
                      extra_json_schema=NO_NUL)
]


class TaskIn(Wire):
    """The body of `POST /tasks` and of a message on `tasks.create`."""

    title: Title
    description: Description | None = None
    payload: Annotated[
        dict[str, Any],
        msgspec.Meta(description=f"Any JSON object, nested up to {MAX_PAYLOAD_DEPTH} levels; "
                     "stored and returned as given (any Unicode text in keys and strings, "
                     "U+0000 included).",
                     examples=[{"image_id": 42, "width": 640}]),
    ] = msgspec.field(default_factory=dict)
    run_at: Annotated[str, msgspec.Meta(
        description="Start no earlier than this (RFC 3339 with an offset); in the past means "
        "now. Not together with `delay_seconds`.",
        examples=["2026-12-24T18:00:00+01:00"],
        extra_json_schema={"extra": {"format": "date-time", "pattern": RFC3339}})] | None = None
    delay_seconds: Annotated[float, msgspec.Meta(
        ge=0, le=MAX_DELAY_SECONDS, description="Start no earlier than this many seconds "
        "after creation (fractions allowed). Not together with `run_at`.")] | None = None

    def to_request(self, source: TaskSource, idempotency_key: str | None) -> NewTaskRequest:
        _no_nul(self.title)
        _no_nul(self.description)
        _not_too_deep(self.payload)
        if self.run_at is not None and self.delay_seconds is not None:
            raise InvalidInput("give run_at or delay_seconds, not both")
        return NewTaskRequest(
            title=self.title,
            description=self.description,
            payload=self.payload,
            source=source,
            idempotency_key=idempotency_key,
            run_at=_moment(self.run_at, "run_at"),
            delay_seconds=self.delay_seconds,
        )


#: How many tasks one `POST /tasks/batch` may create.
MAX_BATCH = 1000


class BatchIn(Wire):
    """The body of `POST /tasks/batch`."""

    tasks: Annotated[list[TaskIn], msgspec.Meta(
        min_length=1, max_length=MAX_BATCH,
        description=f"1 to {MAX_BATCH:,} tasks, each what `POST /tasks` takes.")]

    def to_requests(self, source: TaskSource) -> list[NewTaskRequest]:
        """Each item's request; the first bad item is named (`tasks[i]`, from 0)."""
        requests = []
        for i, item in enumerate(self.tasks):
            try:
                requests.append(item.to_request(source, None))
            except InvalidInput as exc:
                raise InvalidInput(f"tasks[{i}]: {exc}") from exc
        return requests


class BatchOut(Wire):
    items: Annotated[list[TaskOut], msgspec.Meta(description="The tasks, in the order sent.")]


def _moment(text: str | None, field: str) -> datetime | None:
    """An RFC 3339 time with its offset (a string on the wire: Litestar's lax decoding would
    take a number for a time), as the same instant in UTC. The pattern is checked here, not by
    msgspec, so that a refusal says what is wanted instead of quoting the pattern."""
    if text is None:
        return None
    if not _TIME.match(text):
        raise InvalidInput(f"{field} must be a time with its offset, like "
                           f"2026-12-24T18:00:00+01:00 or 2026-12-24T17:00:00Z: {text!r}")
    # PostgreSQL takes offsets up to 15:59 only; RFC 3339 up to 23:59
    return datetime.fromisoformat(text).astimezone(UTC)


_TIME = re.compile(RFC3339)


def _no_nul(text: str | None) -> None:
    """PostgreSQL text cannot hold U+0000 (a payload can: it is stored as JSON text)."""
    if text is not None and "\x00" in text:
        raise InvalidInput("text must not contain the NUL character (U+0000)")


def _not_too_deep(payload: object) -> None:
    """Refuse what could be accepted now but not read back whole later: a payload nested deeper
    than MAX_PAYLOAD_DEPTH could exceed a JSON decoder's recursion limit on its way back out (a
    worker, a listing), so it is refused here, where the client can still be told. Iterative,
    so that the check itself has no recursion limit."""
    pending: list[tuple[object, int]] = [(payload, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            if depth >= MAX_PAYLOAD_DEPTH:
                raise InvalidInput(f"payload is nested deeper than {MAX_PAYLOAD_DEPTH} levels")
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)


def _utc(moment: datetime | None) -> datetime | None:
    return moment.astimezone(UTC) if moment is not None else None


class TaskOut(Wire):
    id: uuid.UUID
    title: str
    description: str | None
    payload: dict[str, Any]
    status: TaskStatus
    attempts: Annotated[int, msgspec.Meta(description="How many times a worker claimed it.")]
    error: Annotated[str | None, msgspec.Meta(description="Why it failed; null unless `error`.")]
    source: TaskSource
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    run_at: Annotated[datetime | None, msgspec.Meta(
        description="When it may start at the earliest; null when it was not scheduled.")]

    @classmethod
    def of(cls, task: Task) -> TaskOut:
        return cls(
            id=task.id, title=task.title, description=task.description, payload=task.payload,
            status=task.status, attempts=task.attempts, error=task.error, source=task.source,
            created_at=task.created_at.astimezone(UTC),
            updated_at=task.updated_at.astimezone(UTC),
            started_at=_utc(task.started_at), finished_at=_utc(task.finished_at),
            run_at=_utc(task.run_at),
        )


class TaskPage(Wire):
    items: list[TaskOut]
    next_cursor: Annotated[
        str | None, msgspec.Meta(description="Pass as `cursor` for the next page; null at the end.")
    ]

    @classmethod
    def of(cls, page: Page) -> TaskPage:
        return cls(items=[TaskOut.of(t) for t in page.items], next_cursor=page.next_cursor)


class TransitionOut(Wire):
    from_status: TaskStatus | None
    to_status: TaskStatus
    at: datetime
    attempt: int
    worker: Annotated[str | None, msgspec.Meta(description="The worker that made the change.")]
    reason: str | None
    actor: Annotated[str | None, msgspec.Meta(
        description="The API key's name when an operator made the change (null when "
        "authentication is off or a worker made it).")]

    @classmethod
    def of(cls, t: Transition) -> TransitionOut:
        return cls(from_status=t.from_status, to_status=t.to_status, at=t.at.astimezone(UTC),
                   attempt=t.attempt, worker=t.worker, reason=t.reason, actor=t.actor)


class EventOut(Wire):
    """The `data` of one `transition` event of an event stream."""

    task_id: uuid.UUID
    from_status: TaskStatus | None
    to_status: TaskStatus
    at: datetime
    attempt: int
    worker: str | None
    reason: str | None
    actor: str | None
    task: Annotated[TaskOut, msgspec.Meta(description="The task right after this change.")]

    @classmethod
    def of(cls, event: Event) -> EventOut:
        t = event.transition
        return cls(task_id=t.task_id, from_status=t.from_status, to_status=t.to_status,
                   at=t.at.astimezone(UTC), attempt=t.attempt, worker=t.worker,
                   reason=t.reason, actor=t.actor, task=TaskOut.of(event.task))


class ActionIn(Wire):
    """The optional body of an operator's action (retry, cancel, pause, resume)."""

    reason: Annotated[str, msgspec.Meta(
        max_length=1000, description="Why: kept in the task's history.",
        extra_json_schema=NO_NUL)] | None = None

    @staticmethod
    def reason_of(body: ActionIn | None) -> str | None:
        """The reason given, if any (refused with a NUL character, as its schema says)."""
        reason = body.reason if body is not None else None
        _no_nul(reason)
        return reason


class Problem(Wire, kw_only=True):
    """RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str | None = None


class Readiness(Wire, omit_defaults=True):
    status: Annotated[str, msgspec.Meta(examples=["ok"])]
    checks: Annotated[dict[str, str], msgspec.Meta(examples=[{"database": "ok", "broker": "ok"}])]
    #: where each dependency answered (`host:port`), for those that say: with several hosts in
    #: TASKS_DATABASE_URL, the primary in use; of several RabbitMQ nodes, the one in use
    servers: Annotated[dict[str, str], msgspec.Meta(
        examples=[{"database": "10.0.0.5:5432", "broker": "10.0.0.7:5672"}])] = msgspec.field(
            default_factory=dict)
