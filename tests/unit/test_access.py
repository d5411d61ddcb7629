"""API keys and scopes: parsing, and the 401/403 answer of every operation for every key."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest

from entrypoints.keys import Scope, digest, find_key, parse_api_keys
from entrypoints.settings import SettingsError, load_settings
from tests.unit.http_client import assert_problem, serving

KEYS = "reader:read:r-secret-1,writer:write:w-secret-2,ops:admin:a-secret-3:with:colons"
SECRETS = {"read": "r-secret-1", "write": "w-secret-2", "admin": "a-secret-3:with:colons"}
RANK = {None: 0, "read": 1, "write": 2, "admin": 3}


def test_keys_are_parsed_with_their_scope_and_no_secret_is_kept() -> None:
    keys = parse_api_keys(KEYS)
    assert [(k.name, k.scope) for k in keys] == [
        ("reader", Scope.READ), ("writer", Scope.WRITE), ("ops", Scope.ADMIN)]
    assert all("secret" not in repr(k) for k in keys)
    assert find_key(keys, "a-secret-3:with:colons") is keys[2]
    assert find_key(keys, "a-secret-3") is None
    assert keys[0].digest == digest("r-secret-1")


@pytest.mark.parametrize(("text", "complaint"), [
    ("ops:root:s3cret", "scope must be read, write or admin"),
    ("ops:admin:", "secret is empty"),
    (":admin:s3cret", "name must be"),
    ("a:read:same,b:admin:same", "same secret"),
    ("a:read:one,a:admin:two", "same name"),
])
def test_a_bad_key_list_stops_start_up_with_one_line_that_never_shows_a_secret(
    text: str, complaint: str,
) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"TASKS_API_KEYS": text}, dotenv=None)
    line = str(caught.value)
    assert "TASKS_API_KEYS" in line and complaint in line and "\n" not in line
    assert "s3cret" not in line and "same," not in line and "one" not in line


def operations(document: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    """(method, path with ids filled in, scope needed) for every documented operation."""
    found = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method not in {"get", "post"}:
                continue
            needed = None
            if operation.get("security"):
                needed = ("admin" if "operators" in operation["tags"] and method == "post"
                          else "write" if method == "post" else "read")
            found.append((method.upper(), path.replace("{task_id}", str(uuid.uuid4())), needed))
    return found


async def test_every_operation_answers_401_403_or_runs_as_its_scope_says() -> None:
    async with serving(api_keys=KEYS) as (client, _):
        document = (await client.get("/docs/openapi.json")).json()
        checked = operations(document)
        assert {path for _, path, needed in checked if needed is None} >= {
            "/health/live", "/health/ready"}
        for method, path, needed in checked:
            if path == "/events" or path.endswith("/events"):
                continue  # streams: their 401/403 are checked below without streaming
            for scope in (None, "read", "write", "admin"):
                headers = {"Authorization": f"Bearer {SECRETS[scope]}"} if scope else {}
                answer = await client.request(method, path, headers=headers, json={} if
                                              method == "POST" else None)
                where = f"{method} {path} as {scope}"
                if needed is None or RANK[scope] >= RANK[needed]:
                    assert answer.status_code not in (401, 403), where
                elif scope is None:
                    assert_problem(answer, 401)
                    assert answer.headers["www-authenticate"].startswith("Bearer"), where
                else:
                    assert "needs" in assert_problem(answer, 403)["detail"], where


@pytest.mark.parametrize("header", [
    {"Authorization": "Bearer wrong"}, {"Authorization": "Basic cmVhZGVyOnI="},
    {"Authorization": "Bearer"}, {"Authorization": "Bearer  "},
    {b"Authorization": "Bearer \u00e9\u00e9".encode("latin-1")},
    {"X-API-Key": ""}, {"X-API-Key": "nope"},
])
async def test_a_missing_unknown_or_malformed_key_is_a_401_never_a_500(
    header: dict[str, str] | dict[bytes, bytes],
) -> None:
    async with serving(api_keys=KEYS) as (client, _):
        for path in ("/tasks", f"/tasks/{uuid.uuid4()}/events", "/events"):
            answer = await client.get(path, headers=header)
            assert_problem(answer, 401)


async def test_the_x_api_key_header_works_like_a_bearer_token() -> None:
    async with serving(api_keys=KEYS) as (client, _):
        assert (await client.get("/tasks", headers={"X-API-Key": SECRETS["read"]})
                ).status_code == 200
        created = await client.post("/tasks", json={"title": "t"},
                                    headers={"X-API-Key": SECRETS["read"]})
        assert_problem(created, 403)


async def test_an_operator_action_records_the_keys_name_as_actor() -> None:
    async with serving(api_keys=KEYS) as (client, _):
        admin = {"Authorization": f"Bearer {SECRETS['admin']}"}
        task = (await client.post("/tasks", json={"title": "t"}, headers=admin)).json()
        cancelled = await client.post(f"/tasks/{task['id']}/cancel", json={"reason": "dup"},
                                      headers=admin)
        assert cancelled.status_code == 200
        assert cancelled.json()["error"] == "cancelled by ops: dup"
        history = (await client.get(f"/tasks/{task['id']}/history", headers=admin)).json()
        assert history[-1]["actor"] == "ops" and history[-1]["reason"] == "dup"


async def test_health_metrics_docs_and_the_dashboard_stay_open_with_keys_on() -> None:
    async with serving(api_keys=KEYS) as (client, _):
        for path in ("/health/live", "/health/ready", "/docs/openapi.json", "/docs"):
            assert (await client.get(path)).status_code == 200, path


async def test_the_document_declares_both_ways_to_send_a_key() -> None:
    async with serving(api_keys=KEYS) as (client, _):
        document = (await client.get("/docs/openapi.json")).json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearer"] == {"type": "http", "scheme": "bearer",
                                 "description": schemes["bearer"]["description"]}
    assert (schemes["apiKey"]["in"], schemes["apiKey"]["name"]) == ("header", "X-API-Key")
    secured = [op for item in document["paths"].values() for op in item.values()
               if isinstance(op, dict) and op.get("security")]
    assert len(secured) >= 10
    assert "security" not in document["paths"]["/health/live"]["get"]


async def test_with_keys_off_the_document_asks_no_operation_for_a_key() -> None:
    """Nothing checks a key then: a document that asked for one would not be honest."""
    async with serving() as (client, _):
        document = (await client.get("/docs/openapi.json")).json()
        answer = await client.get("/tasks", headers={"Authorization": "Bearer nonsense"})
    assert set(document["components"]["securitySchemes"]) == {"bearer", "apiKey"}
    assert [op for item in document["paths"].values() for op in item.values()
            if isinstance(op, dict) and "security" in op] == []
    assert "Authentication is off" in document["info"]["description"]
    assert answer.status_code == 200


async def test_over_the_rate_limit_a_429_problem_says_when_to_come_back() -> None:
    async with serving(api_keys=KEYS, rate_limit_per_second=3) as (client, _):
        reader = {"Authorization": f"Bearer {SECRETS['read']}"}
        # the limiter counts in whole-second windows of the wall clock: start just after one
        # begins, so that the five requests fall in the same window
        await asyncio.sleep(1.0 - time.time() % 1.0)
        answers = [await client.get("/tasks", headers=reader) for _ in range(5)]
        assert [a.status_code for a in answers[:3]] == [200, 200, 200]
        limited = answers[-1]
        assert_problem(limited, 429)
        assert int(limited.headers["retry-after"]) >= 0
        # another key has its own budget, and health is not counted
        writer = {"Authorization": f"Bearer {SECRETS['write']}"}
        assert (await client.get("/tasks", headers=writer)).status_code == 200
        for _ in range(5):
            assert (await client.get("/health/live")).status_code == 200
