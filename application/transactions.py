"""Transactions: stories that start together share one unit of work, step by step."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Concatenate, ParamSpec, TypeVar, cast

from application.backoff import Backoff, say_waiting
from application.group import Group, GroupFailed
from application.ports import UnitOfWork, UnitOfWorkFactory
from domain.errors import ServiceUnavailable

P = ParamSpec("P")
R = TypeVar("R")
Story = Callable[Concatenate[UnitOfWork, P], Awaitable[R]]


class Transactions:
    """Runs a use case's story — `async def story(uow, *args)` written for one item — so that
    stories started while others are in flight share one transaction.

    - Their repository calls are merged step by step (`get` into one `get_many`, every
      `compare_and_set` into one `compare_and_set_many`, …) and the group commits once, when
      every member has committed or left. At low load a story runs at once, alone.
    - Any error in a shared transaction other than an outage runs each of its stories again in
      a transaction of its own, so that a row the database refuses fails only its own story.
    - An outage (ServiceUnavailable) is raised to the caller, or, with `wait_out_outages`,
      waited out with the service's backoff and the story run again.
    - A story always runs to its end, even when its caller is cancelled: a first cancel waits
      for it and hands a result to `if_abandoned` (to undo what the caller will not use); a
      second cancel stops it.
    """

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        *,
        wait_out_outages: bool = False,
        max_group: int = 256,
        max_inflight: int = 2,
    ) -> None:
        self._uow = uow
        self._wait = wait_out_outages
        self._max_group = max_group
        self._slots = asyncio.Semaphore(max_inflight)
        self._forming: Group | None = None

    async def run(
        self,
        story: Story[P, R],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R:
        return await self._shielded(self._attempts(story, *args, **kwargs), None)

    async def run_or_undo(
        self,
        if_abandoned: Callable[[R], Awaitable[object]],
        story: Story[P, R],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R:
        """`run`, and if the caller is cancelled meanwhile, `if_abandoned(result)` afterwards."""
        return await self._shielded(self._attempts(story, *args, **kwargs), if_abandoned)

    async def _shielded(
        self, attempts: Awaitable[R], if_abandoned: Callable[[R], Awaitable[object]] | None
    ) -> R:
        inner = asyncio.ensure_future(attempts)
        try:
            return await asyncio.shield(inner)
        except asyncio.CancelledError:
            try:
                await asyncio.wait([inner])
            except asyncio.CancelledError:
                inner.cancel()  # cancelled again: stop waiting for it
                raise
            if if_abandoned is not None and not inner.cancelled() and inner.exception() is None:
                await if_abandoned(inner.result())
            raise

    async def _attempts(self, story: Story[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        backoff = Backoff()
        alone = False
        while True:
            try:
                if alone:
                    return await story(self._uow(), *args, **kwargs)
                return await self._in_group(story, *args, **kwargs)
            except GroupFailed as failed:
                if not isinstance(failed.cause, ServiceUnavailable):
                    alone = True  # somebody's row broke the shared transaction: try ours alone
                    continue
                outage: ServiceUnavailable = failed.cause
            except ServiceUnavailable as exc:
                outage = exc
            if not self._wait:
                raise outage
            delay = backoff.next_delay()
            say_waiting(getattr(story, "__name__", "story"), str(outage), delay)
            await asyncio.sleep(delay)

    async def _in_group(self, story: Story[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        group = self._forming
        if group is None or group.started or len(group) >= self._max_group:
            group = self._forming = Group(self._uow, self._slots)
        member = group.join()
        return await story(cast(UnitOfWork, member), *args, **kwargs)
