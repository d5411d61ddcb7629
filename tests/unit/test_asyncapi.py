"""The AsyncAPI document: valid against the official schema, and saying what the AMQP
contract says — the intake queue with the schema of POST /tasks, its properties, the reply,
the dead-letter queue."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from litestar.testing import AsyncTestClient

from tests.unit.http_client import serving

SCHEMA = json.loads((Path(__file__).parents[1] / "support" / "asyncapi" /
                     "asyncapi-3.0.0.schema.json").read_text())
KEYS = "reader:read:reader-secret-1"


@pytest.fixture
async def documents() -> AsyncIterator[tuple[dict[str, Any], dict[str, Any], AsyncTestClient[Any]]]:
    async with serving(rabbitmq_url="amqp://tasks:s3cret@rabbit.example:5672/prod",
                       api_keys=KEYS) as (client, _):
        asyncapi = await client.get("/docs/asyncapi.json")
        openapi = await client.get("/docs/openapi.json")
        assert (asyncapi.status_code, openapi.status_code) == (200, 200)
        assert asyncapi.headers["content-type"].startswith("application/json")
        yield asyncapi.json(), openapi.json(), client


def test_the_document_is_valid_asyncapi_3(documents: Any) -> None:
    asyncapi, _, _ = documents
    assert asyncapi["asyncapi"] == "3.0.0"
    errors = list(jsonschema.Draft7Validator(SCHEMA).iter_errors(asyncapi))
    assert not errors, jsonschema.exceptions.best_match(errors)


def test_the_validation_can_fail() -> None:
    broken = {"asyncapi": "3.0.0", "info": {"title": "x", "version": "1"},
              "channels": {"c": {"address": 7}}}
    assert list(jsonschema.Draft7Validator(SCHEMA).iter_errors(broken))


def test_the_intake_message_has_the_schema_of_post_tasks(documents: Any) -> None:
    asyncapi, openapi, _ = documents
    request = openapi["paths"]["/tasks"]["post"]["requestBody"]["content"]["application/json"]
    assert request["schema"] == {"$ref": "#/components/schemas/TaskIn"}
    schemas = asyncapi["components"]["schemas"]
    assert schemas["TaskIn"] == openapi["components"]["schemas"]["TaskIn"]
    assert schemas["TaskOut"] == openapi["components"]["schemas"]["TaskOut"]
    [message] = asyncapi["channels"]["tasks.create"]["messages"].values()
    payload = resolve(asyncapi, resolve(asyncapi, message)["payload"])
    assert payload == {"$ref": "#/components/schemas/TaskIn"}


def test_the_intake_queue_names_its_properties_and_its_reply(documents: Any) -> None:
    asyncapi, _, _ = documents
    channel = asyncapi["channels"]["tasks.create"]
    assert channel["address"] == "tasks.create"
    assert channel["bindings"]["amqp"]["queue"]["durable"] is True
    message = resolve(asyncapi, next(iter(channel["messages"].values())))
    assert set(message["headers"]["properties"]) >= {"message_id", "reply_to", "correlation_id"}
    assert message["correlationId"]["location"] == "$message.header#/correlation_id"
    operation = asyncapi["operations"]["tasks.create"]
    assert operation["action"] == "receive"
    reply = operation["reply"]
    assert reply["address"]["location"] == "$message.header#/reply_to"
    replies = [resolve(asyncapi, resolve(asyncapi, ref)) for ref in reply["messages"]]
    assert {(m["contentType"], m["payload"]["$ref"]) for m in replies} == {
        ("application/json", "#/components/schemas/TaskOut"),
        ("application/problem+json", "#/components/schemas/Problem")}
    assert all(m["correlationId"]["location"] == "$message.header#/correlation_id"
               for m in replies)
    created = next(m for m in replies if m["name"] == "TaskCreated")
    assert "idempotent-replayed" in created["headers"]["properties"]


def test_the_dead_letter_queue_carries_the_reason_header(documents: Any) -> None:
    asyncapi, _, _ = documents
    channel = asyncapi["channels"]["tasks.create.dlq"]
    assert channel["address"] == "tasks.create.dlq"
    message = resolve(asyncapi, next(iter(channel["messages"].values())))
    assert message["headers"]["required"] == ["x-tasks-reject-reason"]
    assert asyncapi["operations"]["tasks.create.dlq"]["action"] == "send"


def test_it_describes_the_contract_and_not_the_internal_queues(documents: Any) -> None:
    asyncapi, _, _ = documents
    assert set(asyncapi["channels"]) == {"tasks.create", "tasks.create.dlq", "tasks.create.reply"}
    assert set(asyncapi["operations"]) == {"tasks.create", "tasks.create.dlq"}
    assert asyncapi["operations"]["tasks.create"]["bindings"]["amqp"]["ack"] is True


def test_the_server_is_named_without_its_credentials(documents: Any) -> None:
    asyncapi, _, _ = documents
    assert "s3cret" not in json.dumps(asyncapi)
    [server] = asyncapi["servers"].values()
    assert (server["host"], server["protocol"]) == ("rabbit.example:5672", "amqp")


async def test_the_page_is_open_with_keys_on_and_loads_only_local_files(documents: Any) -> None:
    _, _, client = documents
    page = await client.get("/docs/asyncapi")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "http://" not in page.text and "https://" not in page.text
    for asset in ("/static/vendor/asyncapi-react-component-3.2.1/browser/standalone/index.js",
                  "/static/vendor/asyncapi-react-component-3.2.1/styles/default.min.css"):
        assert asset in page.text
        assert (await client.head(asset)).status_code == 200


def resolve(doc: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """Follows one local `$ref`."""
    ref = node.get("$ref")
    if ref is None:
        return node
    target: Any = doc
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    return target
