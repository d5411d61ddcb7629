"""The HTTP contract of POST /tasks, GET /tasks/{id} and its history, on in-memory adapters."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from application.process import ProcessTask
from entrypoints.container import Container
from tests.unit.fakes import FixedProcessor
from tests.unit.http_client import RFC3339_UTC, TASK_FIELDS, assert_problem, serving

Client = AsyncTestClient[Any]
SMALL = 2048
JSON = {"content-type": "application/json"}


@pytest.fixture
async def served() -> AsyncIterator[tuple[Client, Container]]:
    async with serving(max_body_bytes=SMALL) as pair:
        yield pair


@pytest.fixture
def client(served: tuple[Client, Container]) -> Client:
    return served[0]


async def finish(container: Container, task_id: str, result: str | None) -> None:
    process = ProcessTask(container.worker_store(), FixedProcessor(result),
                          container.clock(), "w1", timedelta(seconds=30),
                              container.stops())
    await process(uuid.UUID(task_id))


async def test_posting_a_task_returns_201_with_its_location_and_every_field(
    client: Client,
) -> None:
    response = await client.post(
        "/tasks", json={"title": "resize", "description": "d", "payload": {"w": 640}})
    assert response.status_code == 201
    assert response.headers["content-type"].startswith("application/json")
    task = response.json()
    assert set(task) == TASK_FIELDS
    assert response.headers["location"] == f"/tasks/{task['id']}"
    assert uuid.UUID(task["id"])
    assert (task["title"], task["description"], task["payload"]) == ("resize", "d", {"w": 640})
    assert (task["status"], task["attempts"], task["error"], task["source"]) == (
        "new", 0, None, "api")
    assert RFC3339_UTC.match(task["created_at"])
    assert RFC3339_UTC.match(task["updated_at"])
    assert (task["started_at"], task["finished_at"]) == (None, None)
    assert "idempotent-replayed" not in response.headers


async def test_description_and_payload_are_optional(client: Client) -> None:
    task = (await client.post("/tasks", json={"title": "t"})).json()
    assert (task["description"], task["payload"]) == (None, {})


async def test_a_created_task_reads_back_the_same(client: Client) -> None:
    created = (await client.post("/tasks", json={"title": "t", "payload": {"a": [1]}})).json()
    response = await client.get(f"/tasks/{created['id']}")
    assert response.status_code == 200
    assert response.json() == created


NUL_PAYLOADS = [
    {"k\x00": 1},
    {"k": ["deep", {"v": "\x00", "\x00": ["\x00\x00"]}]},
    {"\x00": "\x00", "": ""},
]


@pytest.mark.parametrize("payload", NUL_PAYLOADS, ids=repr)
async def test_a_payload_with_nul_in_keys_and_strings_is_accepted_and_reads_back_the_same(
    client: Client, payload: dict[str, Any],
) -> None:
    """The document promises any JSON object as payload; U+0000 is refused only in title,
    description and reason, whose schemas say so."""
    created = await client.post("/tasks", json={"title": "t", "payload": payload})
    assert created.status_code == 201, created.text
    assert created.json()["payload"] == payload
    assert (await client.get(created.headers["location"])).json() == created.json()
    assert (await client.get("/tasks")).json()["items"] == [created.json()]


async def test_the_boundary_sizes_are_accepted() -> None:
    async with serving() as (client, _):
        body = {"title": "x" * 255, "description": "d" * 10_000}
        response = await client.post("/tasks", json=body)
        assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    "body",
    [
        {"title": "t", "unknown": 1},
        {},
        {"title": ""},
        {"title": "x" * 256},
        {"title": 5},
        {"title": None},
        {"title": "t", "description": 5},
        {"title": "t", "payload": [1]},
        {"title": "t", "payload": "text"},
        {"title": "t", "payload": None},
        ["title"],
        "title",
        None,
        {"title": "nul \x00 inside"},
        {"title": "t", "description": "\x00"},
    ],
    ids=lambda b: repr(b)[:40],
)
async def test_a_body_that_cannot_be_a_task_is_a_400_problem(client: Client, body: Any) -> None:
    assert_problem(await client.post("/tasks", json=body), 400)
    assert (await client.get("/tasks")).json()["items"] == []


async def test_a_description_over_10000_characters_is_a_400_problem() -> None:
    async with serving() as (client, _):
        response = await client.post("/tasks", json={"title": "t", "description": "d" * 10_001})
        assert_problem(response, 400)


@pytest.mark.parametrize("raw", [b"{nope", b"", b"\xff\xfe", b'{"title": "t"'])
async def test_a_body_that_is_not_json_is_a_400_problem(client: Client, raw: bytes) -> None:
    response = await client.post("/tasks", content=raw, headers=JSON)
    assert_problem(response, 400)


async def test_a_body_over_the_limit_is_a_413_problem(client: Client) -> None:
    response = await client.post("/tasks", json={"title": "t", "description": "d" * SMALL})
    assert_problem(response, 413)


async def test_a_twenty_megabyte_body_is_refused_without_a_server_error(client: Client) -> None:
    huge = b'{"title": "' + b"x" * 20_000_000 + b'"}'
    response = await client.post("/tasks", content=huge, headers=JSON)
    assert 400 <= response.status_code < 500
    assert_problem(response, response.status_code)


async def test_a_deeply_nested_body_is_a_400_not_a_500() -> None:
    depth = 3000
    raw = '{"title": "t", "payload": ' + '{"a":' * depth + "1" + "}" * depth + "}"
    async with serving() as (client, _):
        response = await client.post("/tasks", content=raw, headers=JSON)
        assert response.status_code != 413  # well within the default body limit
        assert_problem(response, 400)


async def test_the_same_idempotency_key_and_body_replays_the_same_task(client: Client) -> None:
    body, key = {"title": "t", "payload": {"a": 1, "b": 2}}, {"Idempotency-Key": "k-1"}
    first = await client.post("/tasks", json=body, headers=key)
    again = await client.post("/tasks", json={"payload": {"b": 2, "a": 1}, "title": "t"},
                              headers=key)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["location"] == first.headers["location"]
    assert len((await client.get("/tasks")).json()["items"]) == 1


async def test_the_same_idempotency_key_with_another_body_is_a_409_problem(client: Client) -> None:
    key = {"Idempotency-Key": "k-1"}
    await client.post("/tasks", json={"title": "t"}, headers=key)
    body = assert_problem(await client.post("/tasks", json={"title": "u"}, headers=key), 409)
    assert "k-1" in body["detail"]


@pytest.mark.parametrize("key", ["", "k" * 256])
async def test_an_empty_or_overlong_idempotency_key_is_a_400_problem(
    client: Client, key: str
) -> None:
    assert_problem(await client.post("/tasks", json={"title": "t"},
                                     headers={"Idempotency-Key": key}), 400)


async def test_an_unknown_task_is_a_404_problem(client: Client) -> None:
    assert_problem(await client.get(f"/tasks/{uuid.uuid4()}"), 404)
    assert_problem(await client.get(f"/tasks/{uuid.uuid4()}/history"), 404)


@pytest.mark.parametrize("path", ["/tasks/not-a-uuid", "/tasks/123", "/tasks/%00",
                                  "/tasks/not-a-uuid/history", "/tasks/" + "f" * 5000])
async def test_an_id_that_is_not_a_uuid_is_a_404_or_400_problem(client: Client, path: str) -> None:
    response = await client.get(path)
    assert response.status_code in (400, 404)
    assert_problem(response, response.status_code)


async def test_history_lists_the_status_changes_oldest_first(
    served: tuple[Client, Container],
) -> None:
    client, container = served
    task_id = (await client.post("/tasks", json={"title": "t"})).json()["id"]
    await finish(container, task_id, "out of paper")
    response = await client.get(f"/tasks/{task_id}/history")
    assert response.status_code == 200
    history = response.json()
    assert [(h["from_status"], h["to_status"]) for h in history] == [
        (None, "new"), ("new", "in_progress"), ("in_progress", "error")]
    assert history[-1]["reason"] == "out of paper"
    assert all(RFC3339_UTC.match(h["at"]) for h in history)
    task = (await client.get(f"/tasks/{task_id}")).json()
    assert (task["status"], task["error"], task["attempts"]) == ("error", "out of paper", 1)
    assert RFC3339_UTC.match(task["started_at"])
    assert RFC3339_UTC.match(task["finished_at"])
