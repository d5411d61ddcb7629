"""Dead letters over HTTP: what sits in the dead-letter queues, and replaying it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import msgspec
from litestar import get, post
from litestar.di import NamedDependency
from litestar.params import Body, Parameter

from application.deadletters import DeadLetter, ListDeadLetters, ReplayDeadLetters
from entrypoints.http.access import needs
from entrypoints.http.docs import DocumentedOperation, responses
from entrypoints.keys import Scope
from entrypoints.wire import Wire

#: How much of a message body a listing shows.
BODY_CHARS = 2000


class QueueCount(Wire):
    queue: str
    count: int


class DeadLetterOut(Wire):
    queue: str
    message_id: str | None
    reason: Annotated[str | None, msgspec.Meta(description="Why it was dead-lettered.")]
    age_seconds: Annotated[float | None, msgspec.Meta(
        description="Since it was dead-lettered, when known.")]
    body: Annotated[str, msgspec.Meta(
        description=f"The message body as text (UTF-8, first {BODY_CHARS} characters).")]

    @classmethod
    def of(cls, letter: DeadLetter, now: datetime) -> DeadLetterOut:
        at = letter.dead_lettered_at
        return cls(queue=letter.queue, message_id=letter.message_id, reason=letter.reason,
                   age_seconds=round((now - at).total_seconds(), 3) if at else None,
                   body=letter.body.decode(errors="replace")[:BODY_CHARS])


class DeadLettersOut(Wire):
    queues: list[QueueCount]
    messages: list[DeadLetterOut]


class ReplayIn(Wire):
    limit: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 100


class ReplayedOut(Wire):
    queue: str
    message_id: str | None
    outcome: Annotated[str, msgspec.Meta(
        description="replayed / dropped / kept, and why (e.g. `dropped: task is completed`).")]


class ReplayOut(Wire):
    replayed: list[ReplayedOut]
    remaining: list[QueueCount]


def _counts(counts: dict[str, int]) -> list[QueueCount]:
    return [QueueCount(queue=q, count=n) for q, n in counts.items()]


@get("/dead-letters", tags=["operators"], summary="What sits in the dead-letter queues",
     description="Counts of `tasks.create.dlq` and `tasks.dispatch.dlq`, then the first "
     "`limit` messages of each with their reason and age; nothing is taken out.",
     operation_class=DocumentedOperation, **needs(Scope.READ), responses=responses())
async def dead_letters(
    list_dead: NamedDependency[ListDeadLetters],
    limit: Annotated[int, Parameter(ge=1, le=500, description="Messages shown per queue.")] = 20,
) -> DeadLettersOut:
    counts, letters = await list_dead(limit)
    now = datetime.now(UTC)
    return DeadLettersOut(queues=_counts(counts),
                          messages=[DeadLetterOut.of(letter, now) for letter in letters])


@post("/dead-letters/replay", status_code=200, tags=["operators"],
      summary="Send dead letters back through the normal path",
      description="An intake message goes back to `tasks.create` with its original "
      "`message_id` (so it still makes one task at most); a dispatch is sent again only if "
      "its task is still `new` (else dropped). Each message is acknowledged only once its "
      "replay is confirmed: a replay cut short loses nothing.",
      operation_class=DocumentedOperation, **needs(Scope.ADMIN), responses=responses())
async def replay_dead_letters(
    replay: NamedDependency[ReplayDeadLetters], list_dead: NamedDependency[ListDeadLetters],
    data: Annotated[ReplayIn | None, Body(schema_extra={"additionalProperties": False})] = None,
) -> ReplayOut:
    done = await replay((data or ReplayIn()).limit)
    counts, _ = await list_dead(0)
    return ReplayOut(
        replayed=[ReplayedOut(queue=r.letter.queue, message_id=r.letter.message_id,
                              outcome=f"{r.verdict.value}: {r.why}") for r in done],
        remaining=_counts(counts))


ROUTES = [dead_letters, replay_dead_letters]
