"""`tasks prune` and `tasks dead-letters` against an in-process fake of their endpoints."""

from __future__ import annotations

import argparse
import io
import json

import httpx
import pytest

from entrypoints.client import maintenance
from entrypoints.client.http import ClientError, Service
from entrypoints.client.output import Out, moment

CUTOFF = "2026-10-29T12:00:00Z"


class FakePrune:
    """POST /maintenance/prune as its contract says: `per_call` deletions per call."""

    def __init__(self, due: int, per_call: int, retention: float | None = 30) -> None:
        self.due, self.per_call, self.retention = due, per_call, retention
        self.bodies: list[dict[str, object]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert (request.method, request.url.path) == ("POST", "/maintenance/prune")
        body = json.loads(request.content)
        self.bodies.append(body)
        if body["older_than_days"] is None and self.retention is None:
            return httpx.Response(400, json={"title": "Invalid request", "status": 400,
                                             "detail": "older_than_days is required: "
                                             "TASKS_RETENTION_DAYS is not set"})
        if body["dry_run"]:
            return self.answer(True, self.due, 0, more=False)
        deleted = min(self.per_call, self.due)
        self.due -= deleted
        return self.answer(False, deleted, deleted, more=self.due > 0)

    @staticmethod
    def answer(dry: bool, matched: int, deleted: int, more: bool) -> httpx.Response:
        return httpx.Response(200, json={"cutoff": CUTOFF, "dry_run": dry, "matched": matched,
                                         "deleted": deleted, "more": more})


def run(handler: object, command: str, as_json: bool = False, **args: object) -> list[str]:
    out = Out(as_json=as_json, stream=io.StringIO(), colour=False)
    transport = httpx.MockTransport(handler)  # type: ignore[arg-type]
    with Service("http://tasks.test", "k", transport=transport) as service:
        status = getattr(maintenance, command)(service, argparse.Namespace(**args), out)
    assert status == 0
    return out.stream.getvalue().splitlines()  # type: ignore[attr-defined]


def test_prune_calls_again_while_there_is_more_and_prints_the_total() -> None:
    fake = FakePrune(due=2500, per_call=1000)
    lines = run(fake, "prune", older_than=30.0, dry_run=False)
    assert fake.bodies == [{"older_than_days": 30, "dry_run": False}] * 3
    assert lines[:2] == ["  deleted 1,000, 1,000 so far…", "  deleted 1,000, 2,000 so far…"]
    assert lines[2].startswith("deleted 2,500 finished tasks (and their history) from before ")
    assert lines[2].endswith(" in 3 steps")


def test_prune_without_days_leaves_them_to_the_service_and_a_dry_run_counts_once() -> None:
    fake = FakePrune(due=2500, per_call=1000)
    lines = run(fake, "prune", older_than=None, dry_run=True)
    assert fake.bodies == [{"older_than_days": None, "dry_run": True}]
    assert len(lines) == 1 and lines[0].startswith("would delete 2,500 finished tasks")


def test_prune_in_json_is_each_answer_on_its_line() -> None:
    lines = run(FakePrune(due=1500, per_call=1000), "prune", as_json=True, older_than=0.5,
                dry_run=False)
    assert [json.loads(line)["deleted"] for line in lines] == [1000, 500]


def test_prune_with_no_retention_anywhere_asks_for_older_than() -> None:
    with pytest.raises(ClientError, match=r"TASKS_RETENTION_DAYS is not set: say how old with "
                       r"--older-than DAYS$"):
        run(FakePrune(due=1, per_call=1, retention=None), "prune", older_than=None,
            dry_run=False)


def test_prune_with_nothing_due_says_so() -> None:
    assert run(FakePrune(due=0, per_call=10), "prune", older_than=1.0, dry_run=False) == [
        "nothing to delete: no task finished before " + f"{moment(CUTOFF):%Y-%m-%d %H:%M:%S}"]


def test_prune_stops_when_the_service_makes_no_progress() -> None:
    with pytest.raises(ClientError, match="deleted none"):
        run(FakePrune(due=5, per_call=0), "prune", older_than=1.0, dry_run=False)


LETTERS = {
    "queues": [{"queue": "tasks.create.dlq", "count": 12},
               {"queue": "tasks.dispatch.dlq", "count": 0}],
    "messages": [{"queue": "tasks.create.dlq", "message_id": "bad-1",
                  "reason": "not JSON: expected value", "age_seconds": 754.2,
                  "body": "not json " + "x" * 100},
                 {"queue": "tasks.create.dlq", "message_id": None, "reason": None,
                  "age_seconds": None, "body": '{"title": ""}'}],
}


def test_dead_letters_are_counts_then_the_first_messages() -> None:
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(f"{request.method} {request.url.path}?{request.url.query.decode()}")
        return httpx.Response(200, json=LETTERS)

    lines = run(handler, "dead_letters", replay=False, limit=None)
    assert asked == ["GET /dead-letters?limit=10"]
    assert lines[:3] == ["QUEUE               MESSAGES", "tasks.create.dlq          12",
                         "tasks.dispatch.dlq         0"]
    assert lines[4] == "Messages (the first 2 of 12)"
    assert lines[5].split() == ["QUEUE", "MESSAGE", "ID", "AGE", "REASON", "BODY"]
    assert lines[6].split("  ")[0:1] == ["tasks.create.dlq"]
    assert "12 min" in lines[6] and "not JSON: expected value" in lines[6]
    assert lines[6].endswith("x…") and len(lines[6].split("not json ")[1]) == 60 - 9
    assert lines[7].split() == ["tasks.create.dlq", "-", "-", "-", '{"title":', '""}']


def test_replay_sends_the_limit_and_prints_outcomes_and_what_remains() -> None:
    bodies: list[object] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert (request.method, request.url.path) == ("POST", "/dead-letters/replay")
        bodies.append(json.loads(request.content))
        return httpx.Response(200, json={
            "replayed": [{"queue": "tasks.create.dlq", "message_id": "bad-1",
                          "outcome": "republished"},
                         {"queue": "tasks.dispatch.dlq", "message_id": None,
                          "outcome": "skipped: task no longer new"}],
            "remaining": [{"queue": "tasks.create.dlq", "count": 10},
                          {"queue": "tasks.dispatch.dlq", "count": 0}]})

    lines = run(handler, "dead_letters", replay=True, limit=None)
    assert bodies == [{"limit": 100}]
    assert lines[0] == "replayed 2 messages"
    assert lines[2].split() == ["tasks.create.dlq", "bad-1", "republished"]
    assert lines[-3:] == ["QUEUE               MESSAGES", "tasks.create.dlq          10",
                          "tasks.dispatch.dlq         0"]
