"""What a running `tasks` process says: its log events, and the reasons its readiness gives."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.support.processes import Proc, Stack, eventually
from tests.support.urls import SECRET


def events(proc: Proc) -> list[dict[str, Any]]:
    """The process's JSON log lines, in order (anything else is kept as {"raw": line})."""
    found = []
    for line in proc.log().splitlines():
        try:
            found.append(json.loads(line))
        except ValueError:
            found.append({"raw": line})
    return found


def assert_clean(proc: Proc, *secrets: str) -> None:
    """No traceback, no password, every line one JSON event."""
    log = proc.log()
    assert "Traceback" not in log
    for secret in (SECRET, *secrets):
        assert secret not in log
    assert [e for e in events(proc) if "raw" in e] == []


def first_line_of(proc: Proc, event: str, within: int = 20) -> str:
    """The `error` of the first `event` among the process's first `within` log lines."""
    found = [e for e in events(proc)[:within] if e.get("event") == event]
    assert found, f"no {event} in the first {within} lines:\n{proc.log()}"
    return str(found[0]["error"])


async def wait_for_events(proc: Proc, *names: str, timeout: float = 20) -> None:
    def seen() -> bool:
        logged = {e.get("event") for e in events(proc)}
        return all(name in logged for name in names)

    await eventually(seen, timeout, f"{proc.name} to log {names}")


async def readiness_detail(stack: Stack, *words: str, timeout: float = 20) -> str:
    """The 503 detail of /health/ready, once it has all of `words`."""
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=10) as http:
        async def detail() -> str | None:
            answer = await http.get("/health/ready")
            assert answer.status_code == 503, answer.text
            text = str(answer.json()["detail"])
            return text if all(w in text for w in words) else None

        return str(await eventually(detail, timeout, f"/health/ready to name {words}"))
