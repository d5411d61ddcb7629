"""Property-based, in memory: schemathesis drives the ASGI app through its own OpenAPI document.

The fast sibling of tests/e2e/test_openapi_conformance.py (the same excuses, and the checks
that need no real stack, from tests/support/openapi_hooks.py, which importing registers): no
network, in-memory adapters, so it runs with the unit tier and catches an undocumented answer
or a 5xx before the real stack does.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from litestar import Litestar
from schemathesis.config import SchemathesisConfig

from entrypoints.container import build_container, use_memory
from entrypoints.http.app import create_app
from entrypoints.settings import Settings
from tests.support.openapi_hooks import CHECKS  # importing registers the filter_failure hook

CONFIG = SchemathesisConfig.from_dict({
    "seed": 20251127,
    "generation": {"mode": "all", "max-examples": 25, "database": "none"},
    "phases": {"examples": {"enabled": True}, "coverage": {"enabled": True},
               "fuzzing": {"enabled": True}},
    "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
    "warnings": {"fail-on": True},
})


def in_memory_app(retention_days: float | None) -> Litestar:
    container = build_container(Settings(retention_days=retention_days))
    use_memory(container)
    return create_app(container)


#: The event streams are left out here: without the feed's loop (no lifespan in this run) a
#: stream never gets its events, and the whole-feed stream never ends by contract. The real-
#: process run covers one task's stream; tests/e2e/test_event_streams.py covers both.
schema = schemathesis.openapi.from_asgi("/docs/openapi.json", in_memory_app(365),
                                        config=CONFIG).exclude(tag="events")
#: Without TASKS_RETENTION_DAYS a prune needs its age: that instance's document says so.
no_retention = schemathesis.openapi.from_asgi(
    "/docs/openapi.json", in_memory_app(None), config=CONFIG).include(
        path="/maintenance/prune")


@schema.parametrize()
def test_every_answer_is_documented_and_none_is_a_server_error(case: Any) -> None:
    case.call_and_validate()


@no_retention.parametrize()
def test_without_a_retention_a_prune_s_document_requires_its_age(case: Any) -> None:
    case.call_and_validate()
