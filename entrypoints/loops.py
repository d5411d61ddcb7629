"""Background loops a process runs beside its main job: outbox relay, lease renewal, recovery."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine

import structlog

from application.backoff import Backoff
from application.relay import RelayDispatches
from application.throttle import Throttle
from domain.errors import ServiceUnavailable

log = structlog.get_logger(__name__)
#: an outage pauses every loop for as long as it lasts: each reason is said once per interval,
#: by whichever loop meets it first
_said = Throttle(30.0)


async def relay_loop(relay: RelayDispatches) -> None:
    """Publish what a commit of this process sent at once, and what waits in the outbox when
    told or when due (see RelayDispatches)."""
    backoff = Backoff()
    try:
        while True:
            await relay.wait()
            try:
                while (sent := await relay()) > 0:
                    log.debug("dispatches_relayed", count=sent)
                backoff.reset()
            except ServiceUnavailable as exc:
                delay = backoff.next_delay()
                if (extra := _said.check(str(exc))) is not None:
                    log.warning("relay_paused", error=str(exc), retry_in=round(delay, 2),
                                **extra)
                await asyncio.sleep(delay)
                relay.notify()  # try again straight after the pause
            except Exception:
                log.exception("relay_failed")
                await asyncio.sleep(backoff.next_delay())
    finally:
        await relay.close()


async def every(
    name: str, seconds: float, step: Callable[[], Awaitable[int]], *, first_delay: float = 0,
    backoff: Backoff | None = None,
) -> None:
    """Run `step` periodically; an outage or a bug is logged and retried, never fatal. With
    `backoff`, an outage spaces the tries out by it (never closer than `seconds`)."""
    await asyncio.sleep(first_delay)
    while True:
        pause = seconds
        try:
            count = await step()
            if count:
                log.info(f"{name}_done", count=count)
            if backoff is not None:
                backoff.reset()
        except ServiceUnavailable as exc:
            if backoff is not None:
                pause = max(seconds, backoff.next_delay())
            if (extra := _said.check(str(exc))) is not None:
                log.warning(f"{name}_paused", error=str(exc), retry_in=round(pause, 2), **extra)
        except Exception:
            log.exception(f"{name}_failed")
        await asyncio.sleep(pause)


class Background:
    """A set of named loops started together and cancelled together."""

    def __init__(self) -> None:
        self._tasks: list[asyncio.Task[object]] = []

    def start(self, coro: Coroutine[object, object, object], name: str) -> None:
        self._tasks.append(asyncio.create_task(coro, name=name))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
