"""Pausing dispatch: kept in the database, so that every process obeys it and it survives
restarts. While paused, tasks are still created and running ones finish; nothing is claimed."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Protocol

import msgspec
import structlog

from application.ports import Clock

log = structlog.get_logger(__name__)


class DispatchState(msgspec.Struct, frozen=True):
    """Paused or not; `since`, `actor` and `reason` describe the last pause or resume."""

    paused: bool
    since: datetime | None = None
    actor: str | None = None
    reason: str | None = None


class DispatchPaused(Exception):
    """A claim was refused because dispatch is paused: the task stays `new`, untouched."""


class Resumption(Protocol):
    async def resumed(self) -> None:
        """Returns once dispatch is not paused: at once if it is not, else when a resume is
        heard of (or seen, should the notification be lost)."""
        ...


class PauseSwitch(Resumption, Protocol):
    async def state(self) -> DispatchState: ...

    async def switch(self, state: DispatchState) -> DispatchState:
        """Store `state` (every process sees it at once); what is stored now."""
        ...


class _AgainInASecond:
    """Without a switch to listen to: a refused claim is tried again a second later."""

    async def resumed(self) -> None:
        await asyncio.sleep(1.0)


AGAIN_IN_A_SECOND: Resumption = _AgainInASecond()


class SwitchDispatch:
    """Pause or resume dispatch for every process, logged with who did it and why."""

    def __init__(self, switch: PauseSwitch, clock: Clock) -> None:
        self._switch = switch
        self._clock = clock

    async def __call__(self, *, paused: bool, actor: str | None,
                       reason: str | None) -> DispatchState:
        state = await self._switch.switch(DispatchState(paused, self._clock.now(), actor, reason))
        log.warning("dispatch_paused" if paused else "dispatch_resumed", actor=actor,
                    reason=reason)
        return state


class ReadDispatch:
    def __init__(self, switch: PauseSwitch) -> None:
        self._switch = switch

    async def __call__(self) -> DispatchState:
        return await self._switch.state()
