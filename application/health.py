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
        #: the server each dependency answered from at its last check, when it says which
        self.servers: dict[str, str] = {}

    async def __call__(self) -> dict[str, str]:
        """Map each dependency to "ok" or to why it is down."""
        results = await asyncio.gather(*(self._one(p) for p in self._probes))
        return {p.name: r for p, r in zip(self._probes, results, strict=True)}

    async def _one(self, probe: HealthProbe) -> str:
        try:
            server = await asyncio.wait_for(probe.check(), self._timeout)
        except ServiceUnavailable as exc:
            self.servers.pop(probe.name, None)
            return str(exc) or "unavailable"
        except TimeoutError:
            self.servers.pop(probe.name, None)
            return f"no answer within {self._timeout}s"
        if server:
            self.servers[probe.name] = server
        return "ok"
