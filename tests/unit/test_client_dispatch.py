"""`tasks pause` and `tasks resume` against an in-process fake of the dispatch switch."""

from __future__ import annotations

import argparse
import io
import json
from datetime import datetime

import httpx

from entrypoints.client import dispatch
from entrypoints.client.http import Service
from entrypoints.client.output import Out, clock, moment

SINCE = "2026-11-28T12:00:00Z"


class FakeSwitch:
    """POST /dispatch/pause and /resume as their contract says, for the key named `ops`."""

    def __init__(self) -> None:
        self.state: dict[str, object] = {"paused": False, "since": None, "actor": None,
                                         "reason": None}
        self.bodies: list[object] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        action = request.url.path.removeprefix("/dispatch/")
        assert request.method == "POST" and action in ("pause", "resume")
        body = json.loads(request.content)
        self.bodies.append(body)
        self.state = {"paused": action == "pause", "since": SINCE, "actor": "ops",
                      "reason": body.get("reason")}
        return httpx.Response(200, json=self.state)


def switch(fake: FakeSwitch, command: str, reason: str | None,
           as_json: bool = False) -> list[str]:
    out = Out(as_json=as_json, stream=io.StringIO(), colour=False)
    with Service("http://tasks.test", "k", transport=httpx.MockTransport(fake)) as service:
        assert getattr(dispatch, command)(service, argparse.Namespace(reason=reason), out) == 0
    return out.stream.getvalue().splitlines()  # type: ignore[attr-defined]


def test_pause_and_resume_print_the_state_in_one_line() -> None:
    fake = FakeSwitch()
    at = clock(moment(SINCE), datetime.now().astimezone())
    assert switch(fake, "pause", "disk swap") == [
        f"dispatch is paused since {at} by ops: disk swap (tasks are still accepted; "
        "workers take none until resumed)"]
    assert switch(fake, "resume", None) == [f"dispatch is running (resumed {at} by ops)"]
    assert fake.bodies == [{"reason": "disk swap"}, {}]


def test_in_json_they_print_the_services_document() -> None:
    fake = FakeSwitch()
    assert [json.loads(line) for line in switch(fake, "pause", None, as_json=True)] == [
        {"paused": True, "since": SINCE, "actor": "ops", "reason": None}]


def test_before_any_pause_the_state_is_just_running() -> None:
    state = {"paused": False, "since": None, "actor": None, "reason": None}
    out = Out(as_json=False, stream=io.StringIO(), colour=False)
    assert dispatch.state_line(out, state, moment(SINCE)) == "dispatch is running"
