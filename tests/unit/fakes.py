"""Hand-written fakes for the ports that touch time, ids, work, signals and health."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Self

from adapters.memory import InMemoryStore, InMemoryUnitOfWork
from application.model import Dispatch, NewTaskRequest, Stored
from domain.errors import InvalidInput, ServiceUnavailable
from domain.task import Task, Transition

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


class SettableClock:
    """Stands still until told to move."""

    def __init__(self, at: datetime = T0) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


class SequentialIds:
    """00000000-...-000000000001, ...-000000000002, ..."""

    def __init__(self) -> None:
        self.last = 0

    def new_id(self) -> uuid.UUID:
        self.last += 1
        return uuid.UUID(int=self.last)


class CountingSignal:
    """A Dispatcher that only records: what was sent at once, and how often it was told."""

    def __init__(self) -> None:
        self.count = 0
        self.sent: dict[int, Dispatch] = {}

    def send(self, entry: int, dispatch: Dispatch) -> None:
        self.sent[entry] = dispatch

    def notify(self) -> None:
        self.count += 1


class FixedProcessor:
    """Returns the chosen result at once: None for success, a reason for failure."""

    def __init__(self, result: str | None = None) -> None:
        self.result = result
        self.seen: list[Task] = []

    async def process(self, task: Task) -> str | None:
        self.seen.append(task)
        return self.result


class BlockingProcessor:
    """Works until `release` is set; `started` tells the test the work has begun."""

    def __init__(self, result: str | None = None) -> None:
        self.result = result
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def process(self, task: Task) -> str | None:
        self.started.set()
        await self.release.wait()
        return self.result


class RaisingProcessor:
    async def process(self, task: Task) -> str | None:
        raise RuntimeError("the processor broke")


class FailingPublisher:
    """A broker that never confirms."""

    def __init__(self) -> None:
        self.attempts = 0

    async def publish(self, dispatches: Sequence[Dispatch]) -> None:
        self.attempts += 1
        raise ServiceUnavailable("broker unreachable")


class ExplodingUnitOfWork(InMemoryUnitOfWork):
    """A real in-memory unit of work that breaks at one step: `record`, `put`, `hold` or
    `commit`."""

    def __init__(self, store: InMemoryStore, fail_at: str) -> None:
        super().__init__(store)
        self.fail_at = fail_at
        real_record, real_put, real_hold = self.tasks.record, self.outbox.put, self.outbox.hold

        async def record(transitions: Sequence[Transition]) -> None:
            await real_record(transitions)
            self._explode("record")

        async def put(dispatches: Sequence[Dispatch]) -> None:
            await real_put(dispatches)
            self._explode("put")

        async def hold(dispatch: Dispatch, seconds: float) -> int:
            entry = await real_hold(dispatch, seconds)
            self._explode("hold")
            return entry

        self.tasks.record = record  # type: ignore[method-assign]
        self.outbox.put = put  # type: ignore[method-assign]
        self.outbox.hold = hold  # type: ignore[method-assign]

    def _explode(self, step: str) -> None:
        if step == self.fail_at:
            raise ServiceUnavailable(f"connection lost at {step}")

    async def commit(self) -> None:
        self._explode("commit")
        await super().commit()


class FlakyUnitOfWorkFactory:
    """The first `outages` units of work fail to open, like a database that is still starting."""

    def __init__(self, store: InMemoryStore, outages: int) -> None:
        self._store = store
        self.outages = outages

    def __call__(self) -> InMemoryUnitOfWork:
        if self.outages > 0:
            self.outages -= 1
            return _Unreachable(self._store)
        return self._store.unit_of_work()


class _Unreachable(InMemoryUnitOfWork):
    async def __aenter__(self) -> Self:
        raise ServiceUnavailable("database unavailable")

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


class OkProbe:
    name = "database"

    def __init__(self, server: str | None = None) -> None:
        self.server = server

    async def check(self) -> str | None:
        return self.server


class DownProbe:
    def __init__(self, name: str = "database", why: str = "database unreachable") -> None:
        self.name = name
        self._why = why

    async def check(self) -> None:
        raise ServiceUnavailable(self._why)


class HangingProbe:
    name = "broker"

    async def check(self) -> None:
        await asyncio.Event().wait()


class RefusingUnitOfWork(InMemoryUnitOfWork):
    """Like a database that refuses a row: any title starting with "bad" spoils the statement."""

    def __init__(self, store: InMemoryStore) -> None:
        super().__init__(store)
        real_add_many = self.tasks.add_many

        async def add_many(
            tasks: Sequence[Task], requests: Sequence[NewTaskRequest]
        ) -> list[Stored]:
            stored = await real_add_many(tasks, requests)
            if any(r.title.startswith("bad") for r in requests):
                raise InvalidInput("the database refused the value")
            return stored

        self.tasks.add_many = add_many  # type: ignore[method-assign]
