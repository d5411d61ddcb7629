"""CheckReadiness: ask every backing service whether it answers."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from application.ports import HealthProbe
from domain.errors import ServiceUnavailable


class CheckReadiness:
    def __init__(self, probes: Sequence[HealthProbe], timeout: float = 2.0) -> None:
        self._probes = probes
        self._timeout = timeout
        #: where each dependency that answered the last check was reached (a host, a node)
        self.uses: dict[str, str] = {}

    async def __call__(self) -> dict[str, str]:
        """Map each dependency to "ok" or to why it is down."""
        results = await asyncio.gather(*(self._one(p) for p in self._probes))
        self.uses = {p.name: where for p, (_, where) in zip(self._probes, results, strict=True)
                     if where}
        return {p.name: state for p, (state, _) in zip(self._probes, results, strict=True)}

    async def _one(self, probe: HealthProbe) -> tuple[str, str | None]:
        try:
            where = await asyncio.wait_for(probe.check(), self._timeout)
        except ServiceUnavailable as exc:
            return str(exc) or "unavailable", None
        except TimeoutError:
            return f"no answer within {self._timeout}s", None
        return "ok", where
