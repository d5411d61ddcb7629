"""Server-Sent Events: one task's status changes, or every task's, as they happen."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Annotated, Any, Literal

import msgspec
import structlog
from litestar import Request, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import HeaderParameter, QueryParameter
from litestar.response import Stream

from application.model import Event, EventId
from application.queries import GetTask
from application.watch import WatchTasks
from domain.errors import InvalidInput, ServiceUnavailable
from domain.status import TaskStatus
from entrypoints.http.access import needs
from entrypoints.http.docs import DocumentedOperation, TaskId, inline_schema, responses
from entrypoints.keys import Scope
from entrypoints.wire import EventOut, Wire

log = structlog.get_logger(__name__)
#: An idle stream gets a comment line this often (the contract: at least every 15 s).
KEEPALIVE_SECONDS = 10.0
_ID = re.compile(r"\d{39}")
_encode = msgspec.json.Encoder().encode
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

STREAM_DOC = (
    "A `text/event-stream` (Server-Sent Events). Each status change is one event: "
    "`event: transition`, an `id:` (opaque, increasing: send it back as `Last-Event-ID` to "
    "resume right after it) and `data:` one JSON object, the `EventOut` schema: `task_id`, "
    "`from_status`, `to_status`, `at`, `attempt`, `worker`, `reason`, `actor` and `task`, the "
    "task right after the change. A comment line (`: keep-alive`) is sent at least every 15 s "
    "while nothing happens."
)
#: Declared for the document; read from the raw headers, to tell an empty one from none.
LastEventId = Annotated[str, HeaderParameter(
    name="Last-Event-ID", required=False, schema_extra={"pattern": f"^{_ID.pattern}$"},
    description="The `id` of the last event received: the stream resumes right after it.")]


def event_id(position: EventId) -> str:
    """Fixed-width decimal: increasing as a number and as a string."""
    return f"{position[0]:020d}{position[1]:019d}"


def parse_event_id(headers: Mapping[str, str]) -> EventId | None:
    """From the raw header: absent is "from the start", but an empty one is malformed."""
    text = headers.get("last-event-id")
    if text is None:
        return None
    if not _ID.fullmatch(text):
        raise InvalidInput("Last-Event-ID is not an event id this service sent")
    return int(text[:20]), int(text[20:])


class TransitionFrame(Wire):
    """One event of the stream, as an SSE parser reads it."""

    event: Literal["transition"]
    id: Annotated[str, msgspec.Meta(pattern=f"^{_ID.pattern}$")]
    data: Annotated[str, msgspec.Meta(
        description="One JSON object (EventOut).",
        extra_json_schema={"extra": {"contentMediaType": "application/json",
                                     "contentSchema": inline_schema(EventOut)}})]


def stream_responses(**extra: str) -> dict[int, ResponseSpec]:
    return {200: ResponseSpec(TransitionFrame, media_type="text/event-stream",
                              description=STREAM_DOC, generate_examples=False),
            **responses(**extra)}


@get("/tasks/{task_id:uuid}/events", tags=["events"], summary="Follow one task's changes",
     description="From the task's creation (or after `Last-Event-ID`), oldest first; the "
     "stream ends once the task is final and that change is sent. `curl -N` shows it live.",
     operation_class=DocumentedOperation, **needs(Scope.READ),
     responses=stream_responses(r404="No task has this id (or the id is not a UUID)."))
async def task_events(task_id: TaskId, get_one: NamedDependency[GetTask],
                      watch: NamedDependency[WatchTasks],
                      request: Request[Any, Any, Any], last_event_id: LastEventId = "") -> Stream:
    after = parse_event_id(request.headers)
    await get_one(task_id)  # an unknown task is a 404 problem before any stream starts
    return Stream(_stream(watch, task_id=task_id, after=after),
                  media_type="text/event-stream", headers=HEADERS)


@get("/events", tags=["events"], summary="Follow every task's changes",
     description="Every status change from the moment of connecting (or after "
     "`Last-Event-ID`), optionally only those into the given statuses. It does not end by "
     "itself.", operation_class=DocumentedOperation, **needs(Scope.READ),
     responses=stream_responses())
async def all_events(
    watch: NamedDependency[WatchTasks],
    request: Request[Any, Any, Any],
    status: Annotated[list[TaskStatus] | None, QueryParameter(
        name="status", required=False,
        description="Only changes into one of these statuses (repeat for several).")] = None,
    last_event_id: LastEventId = "",
) -> Stream:
    after = parse_event_id(request.headers)
    return Stream(_stream(watch, after=after, statuses=frozenset(status or ())),
                  media_type="text/event-stream", headers=HEADERS)


async def _stream(watch: WatchTasks, *,
                  task_id: uuid.UUID | None = None, after: EventId | None = None,
                  statuses: frozenset[TaskStatus] = frozenset()) -> AsyncIterator[bytes]:
    """One chunk per batch of events, so that a busy feed costs one write per client and
    batch. Ends when the task's stream is over, when the process stops, or when the client
    leaves (Litestar then cancels this generator)."""
    yield b"retry: 3000\n: connected\n\n"
    try:
        async with watch.subscribe(task_id=task_id, after=after, statuses=statuses) as feed:
            quiet_since = time.monotonic()
            while not watch.stopping.is_set():
                batch = await feed.next(KEEPALIVE_SECONDS)
                if batch is None:
                    return
                if batch:
                    yield _message.batch(batch, (task_id, statuses))
                elif time.monotonic() - quiet_since < KEEPALIVE_SECONDS:
                    continue  # only changes this stream filters out: nothing to say yet
                else:
                    yield b": keep-alive\n\n"
                quiet_since = time.monotonic()
    except ServiceUnavailable as exc:  # the stream has started: no problem document now
        log.warning("event_stream_broken", error=str(exc))
        yield b": the service cannot read its history right now; reconnect to resume\n\n"


class _Frames:
    """Each event is encoded once for all the streams that send it, not once per stream:
    the last few thousand frames are kept by event id (an id always names the same change).
    So is each batch: the streams that follow the same events get the same batches."""

    def __init__(self, keep: int, batches: int = 64) -> None:
        self._keep = keep
        self._frames: dict[EventId, bytes] = {}
        self._batches: dict[tuple[object, ...], bytes] = {}
        self._keep_batches = batches

    def batch(self, events: list[Event], follows: tuple[object, ...]) -> bytes:
        """The frames of `events`, a batch of a stream that `follows` (its task, its statuses):
        for one such stream, the first and last event and the count name the batch."""
        key = (*follows, events[0].id, events[-1].id, len(events))
        chunk = self._batches.get(key)
        if chunk is None:
            chunk = b"".join(self(e) for e in events)
            if len(self._batches) >= self._keep_batches:
                del self._batches[next(iter(self._batches))]
            self._batches[key] = chunk
        return chunk

    def __call__(self, event: Event) -> bytes:
        frame = self._frames.get(event.id)
        if frame is None:
            body = _encode(EventOut.of(event))
            frame = b"id: %s\nevent: transition\ndata: %s\n\n" % (
                event_id(event.id).encode(), body)
            if len(self._frames) >= self._keep:
                del self._frames[next(iter(self._frames))]
            self._frames[event.id] = frame
        return frame


_message = _Frames(keep=4096)


ROUTES = [task_events, all_events]
