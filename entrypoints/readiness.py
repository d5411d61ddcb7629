"""At start-up: what the process still waits for (once per interval), then that it is ready."""

from __future__ import annotations

import asyncio

import structlog

from application.health import CheckReadiness
from application.throttle import Throttle

log = structlog.get_logger(__name__)


async def report_readiness(check: CheckReadiness, poll: float = 2.0, interval: float = 30.0
                           ) -> None:
    """Ask every probe each `poll` seconds until all answer "ok" (the first time after `poll`:
    a healthy start needs no "waiting" line). The same reasons are logged once per `interval`;
    a new reason at once. Ends with one `process_ready` line."""
    said = Throttle(interval)
    while True:
        await asyncio.sleep(poll)
        checks = await check()
        down = "; ".join(f"{name}: {why}" for name, why in checks.items() if why != "ok")
        if not down:
            log.info("process_ready", checks=checks)
            return
        if (extra := said.check(down)) is not None:
            log.warning("process_not_ready", waiting_for=down, **extra)
