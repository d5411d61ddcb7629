"""The in-memory store's history as an event feed (`tasks dev` and unit tests)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

from adapters.memory.store import InMemoryStore
from application.model import ORIGIN, Event, EventId
from application.watch import wakeups
from domain.task import Transition


class InMemoryEventLog:
    """EventLog over InMemoryStore.feed: a position is (0, n), n counting recorded changes."""

    def __init__(self, store: InMemoryStore) -> None:
        self._store = store
        self._wake = asyncio.Event()
        store.on_history.append(self._wake.set)

    def changes(self) -> AsyncIterator[None]:
        return wakeups(self._wake)

    async def latest(self) -> EventId:
        return (0, self._store.feed[-1][0]) if self._store.feed else ORIGIN

    async def read(self, after: EventId, until: EventId, limit: int,
                   task_id: uuid.UUID | None = None) -> list[Event]:
        found = [self._event(n, t) for n, t in self._store.feed
                 if after < (0, n) <= until and (task_id is None or t.task_id == task_id)]
        return found[:limit]

    async def read_last(self, task_id: uuid.UUID) -> Event | None:
        mine = [(n, t) for n, t in self._store.feed if t.task_id == task_id]
        return self._event(*mine[-1]) if mine else None

    def _event(self, n: int, change: Transition) -> Event:
        return Event((0, n), change, change.applied_to(self._store.tasks[change.task_id]))
