"""WatchTasks: every open event stream of a process fed from one read of the history."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import structlog

from application.backoff import say_waiting
from application.model import ORIGIN, Event, EventId
from application.ports import EventLog
from domain.errors import ServiceUnavailable
from domain.status import TaskStatus

log = structlog.get_logger(__name__)
#: A position after every real one: `read(after, LAST)` means "everything readable".
LAST: EventId = (2**63 - 1, 2**63 - 1)


class Subscription:
    """One stream's view of the feed: first what it missed (read from the history, page by
    page), then live events. Never the same event twice, none skipped: whatever it delivers
    comes strictly after the last event it delivered."""

    def __init__(self, watch: WatchTasks, task_id: uuid.UUID | None,
                 statuses: frozenset[TaskStatus], after: EventId | None) -> None:
        self._watch = watch
        self.task_id = task_id
        self.statuses = statuses
        self.cursor: EventId = after if after is not None else (ORIGIN if task_id else LAST)
        self.start: EventId = ORIGIN  # the feed's position when this joined it
        self.live: list[list[Event]] = []  # batches offered by the feed, not yet taken
        self._held = 0  # events in them
        self.overflowed = False
        self.finished = False
        self._caught_up = False  # everything up to `start` was delivered from the history
        self._waiter: asyncio.Future[None] | None = None

    def offer(self, events: list[Event]) -> None:
        """Called by the feed: keep what this stream wants, or give up on the live feed
        (and catch up from the history later) when it is too far behind."""
        # the whole feed's streams keep the feed's own list: no copy per stream
        mine = events if self.task_id is None else [e for e in events
                                                    if e.task.id == self.task_id]
        if not mine or self.overflowed:
            return
        if self._held + len(mine) > self._watch.capacity:
            self.overflowed = True
            self.drop_live()
        else:
            self.live.append(mine)
            self._held += len(mine)
        self.wake()

    async def next(self, at_most: float) -> list[Event] | None:
        """The next events for this stream; [] after `at_most` seconds without any, or once
        the process stops; None when a task's stream is over (its final change was sent)."""
        if self.finished:
            return None
        if self.overflowed:
            log.info("stream_fell_behind", task_id=str(self.task_id or ""))
            self.start = await self._watch.rejoin(self)
            self._caught_up = False
        if not self._caught_up:
            return await self._catch_up()
        if not self.live and not self._watch.stopping.is_set():
            # a bare future and a timer, not asyncio.wait or wait_for (a new task per call):
            # this runs for every stream on every read of the feed
            loop = asyncio.get_running_loop()
            self._waiter = waiter = loop.create_future()
            timer = loop.call_later(at_most, self.wake)
            try:
                await waiter
            finally:
                timer.cancel()
                self._waiter = None
            if self.overflowed:
                return []  # the next call catches up from the history
        if len(self.live) == 1 and self.live[0][0].id > self.cursor:
            events = self.live[0]  # the usual case: one read of the feed, all of it new
        else:
            events = [e for batch in self.live for e in batch if e.id > self.cursor]
        self.drop_live()
        return self._deliver(events, final_ends=True)

    def drop_live(self) -> None:
        self.live.clear()
        self._held = 0

    def wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def _catch_up(self) -> list[Event]:
        """One page of what happened between the cursor and the moment this joined the feed."""
        page = await self._watch.log.read(self.cursor, self.start, self._watch.page,
                                          self.task_id)
        more = len(page) == self._watch.page and page[-1].id < self.start
        wanted = self._deliver(page, final_ends=not more and not self.live)
        if not more:
            self._caught_up = True
            self.cursor = max(self.cursor, self.start)  # the live feed takes over from here
            if self.task_id is not None and not page and not self.live:
                last = await self._watch.log.read_last(self.task_id)
                if (last is not None and last.id <= self.cursor
                        and last.transition.to_status.is_final):
                    self.finished = True  # it was final before we came: nothing is left
        return wanted

    def _deliver(self, events: list[Event], final_ends: bool) -> list[Event]:
        if events:
            self.cursor = events[-1].id
            if final_ends and self.task_id is not None and events[-1].transition.to_status.is_final:
                self.finished = True
        if not self.statuses:
            return events
        return [e for e in events if e.transition.to_status in self.statuses]


class WatchTasks:
    """The feed of one process. Its loop (`run`) reads the history once per change (at most
    once per `interval`: changes in between are read together), and only while somebody
    watches, and offers each event to every subscription. A subscription that falls
    `capacity` events behind is dropped from the live feed and reads what it missed from the
    history itself: a slow client neither holds up the others nor grows memory."""

    def __init__(self, log: EventLog, capacity: int = 2000, page: int = 500,
                 stopping: asyncio.Event | None = None, interval: float = 0.025) -> None:
        self.log = log
        self.interval = interval  # s: the feed reads at most this often
        #: set when the process stops: every stream's `next` returns at once from then on
        self.stopping = stopping or asyncio.Event()
        self.capacity = capacity
        self.page = page
        self._subscriptions: set[Subscription] = set()
        self._position: EventId | None = None  # None while nobody watches
        self._lock = asyncio.Lock()

    async def run(self) -> None:
        """An outage pauses the feed, never ends it: the events stay in the history, and the
        next read reads on from the same place."""
        stopped = asyncio.ensure_future(self._wake_all_when_stopping())
        loop = asyncio.get_running_loop()
        try:
            async for _ in self.log.changes():
                if self._subscriptions:
                    began = loop.time()
                    try:
                        await self._pump()
                    except ServiceUnavailable as exc:
                        say_waiting("event_feed", str(exc), 0.0)
                    # what changes meanwhile is read and sent together after the pause: each
                    # stream costs one write per pause, not one per commit
                    await asyncio.sleep(began + self.interval - loop.time())
        finally:
            stopped.cancel()

    async def _wake_all_when_stopping(self) -> None:
        await self.stopping.wait()
        for subscription in list(self._subscriptions):
            subscription.wake()

    async def _pump(self) -> None:
        async with self._lock:
            while self._subscriptions and self._position is not None:
                events = await self.log.read(self._position, LAST, self.page)
                if not events:
                    return
                self._position = events[-1].id
                for subscription in list(self._subscriptions):
                    subscription.offer(events)

    @contextlib.asynccontextmanager
    async def subscribe(self, *, task_id: uuid.UUID | None = None, after: EventId | None = None,
                        statuses: frozenset[TaskStatus] = frozenset(),
                        ) -> AsyncIterator[Subscription]:
        """Without `after`: one task's stream starts at its creation, the whole feed at the
        moment of subscribing. With it: just after that event."""
        subscription = Subscription(self, task_id, statuses, after)
        subscription.start = await self.rejoin(subscription)
        if subscription.cursor == LAST:  # the whole feed, from this moment on
            subscription.cursor = subscription.start
        try:
            yield subscription
        finally:
            self._subscriptions.discard(subscription)
            if not self._subscriptions:
                self._position = None

    async def rejoin(self, subscription: Subscription) -> EventId:
        """(Re)joins the live feed; returns the feed's position: the subscription gets every
        event after it live, and reads the ones before it from the history."""
        async with self._lock:
            if self._position is None:
                self._position = await self.log.latest()
            subscription.drop_live()
            subscription.overflowed = False
            self._subscriptions.add(subscription)
            return self._position


async def wakeups(wake: asyncio.Event) -> AsyncIterator[None]:
    """An EventLog's `changes()`: yields each time `wake` is set (a burst counts once)."""
    while True:
        await wake.wait()
        wake.clear()
        yield None
