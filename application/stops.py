"""StopRequests: the claims this process is running, and the cancels asked for them."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Iterator

#: A claim of a task: the task and the attempt that claimed it.
Claim = tuple[uuid.UUID, int]


class StopRequests:
    """The registry of running claims: a claim is watched from the moment its worker knows it
    holds it until its end is committed, so the lease renewal renews exactly these.

    Fed by whoever hears of a cancel (the database's notifications, the lease renewal); read by
    the worker running that claim. A request for a claim that is not watched yet is kept for
    `remember` seconds, so that one arriving between claim and watch is not lost; keyed by
    attempt, so that it never stops a later claim of a retried task."""

    def __init__(self, remember: float = 120.0) -> None:
        self._remember = remember
        self._watched: dict[Claim, asyncio.Event] = {}
        self._early: dict[Claim, float] = {}

    def request(self, claim: Claim) -> None:
        watched = self._watched.get(claim)
        if watched is not None:
            watched.set()
            return
        now = time.monotonic()
        self._early[claim] = now
        for old in [c for c, at in self._early.items() if now - at > self._remember]:
            del self._early[old]

    def running(self) -> list[Claim]:
        """The claims being run now: a claim committed but never heard of is not among them."""
        return list(self._watched)

    @contextlib.contextmanager
    def watching(self, claim: Claim) -> Iterator[asyncio.Event]:
        """An event set once a stop of this claim is requested (maybe already)."""
        stop = asyncio.Event()
        if self._early.pop(claim, None) is not None:
            stop.set()
        self._watched[claim] = stop
        try:
            yield stop
        finally:
            self._watched.pop(claim, None)
