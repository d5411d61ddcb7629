"""Dead letters an operator can act on: see what sits in the dead-letter queues, replay it."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Protocol

import msgspec
import structlog

from application.model import Dispatch
from application.ports import UnitOfWorkFactory
from domain.status import TaskStatus

log = structlog.get_logger(__name__)


class Verdict(enum.Enum):
    REPLAY = "replayed"  # back to the queue it came from, then acknowledged
    DROP = "dropped"  # acknowledged and gone (nothing left to do for it)
    KEEP = "kept"  # left in the dead-letter queue


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True):
    queue: str
    intake: bool  # from tasks.create (else a dispatch)
    body: bytes
    message_id: str | None
    reason: str | None
    dead_lettered_at: datetime | None
    dispatch: Dispatch | None = None  # a dispatch's body, when it decodes


class Replayed(msgspec.Struct, frozen=True):
    letter: DeadLetter
    verdict: Verdict
    why: str


Decide = Callable[[DeadLetter], Awaitable[tuple[Verdict, str]]]


class DeadLetterQueues(Protocol):
    """The dead-letter queues of the broker."""

    async def counts(self) -> dict[str, int]: ...

    async def peek(self, limit: int) -> list[DeadLetter]:
        """The first messages of each queue, left where they are."""
        ...

    async def replay(self, limit: int, decide: Decide) -> list[Replayed]:
        """Takes up to `limit` messages one at a time and does what `decide` says; a message
        is acknowledged only once its replay is confirmed, so a replay cut short loses none."""
        ...


class ListDeadLetters:
    """How many sit in each dead-letter queue, and the first `limit` of each."""

    def __init__(self, queues: DeadLetterQueues) -> None:
        self._queues = queues

    async def __call__(self, limit: int) -> tuple[dict[str, int], list[DeadLetter]]:
        return await self._queues.counts(), await self._queues.peek(limit)


class ReplayDeadLetters:
    """An intake message goes back to `tasks.create` with its original `message_id`, so it
    still makes one task at most. A dispatch goes back only if its task is still `new`; one
    whose task has moved on is dropped, one that is not a dispatch at all stays."""

    def __init__(self, queues: DeadLetterQueues, uow: UnitOfWorkFactory) -> None:
        self._queues = queues
        self._uow = uow

    async def __call__(self, limit: int) -> list[Replayed]:
        done = await self._queues.replay(limit, self._decide)
        for replayed in done:
            log.info("dead_letter_" + replayed.verdict.value, queue=replayed.letter.queue,
                     message_id=replayed.letter.message_id, why=replayed.why)
        return done

    async def _decide(self, letter: DeadLetter) -> tuple[Verdict, str]:
        if letter.intake:
            return Verdict.REPLAY, "back to tasks.create"
        if letter.dispatch is None:
            return Verdict.KEEP, "not a dispatch"
        async with self._uow() as uow:
            task = await uow.tasks.get(letter.dispatch.task_id)
        if task is None:
            return Verdict.DROP, "no such task"
        if task.status is not TaskStatus.NEW:
            return Verdict.DROP, f"task is {task.status}"
        return Verdict.REPLAY, "task still new: dispatched again"
