"""Schemathesis hooks shared by the OpenAPI conformance tests (e2e: the CLI loads this file
through SCHEMATHESIS_HOOKS; unit: imported, which registers them in-process).

Some rules of the API cannot be written as JSON Schema, so data that the document allows may
still be refused, with a documented 400 problem: a free-form `payload` nested deeper than the
limit (the document says it in words). (A `cursor` is not excused: its pattern admits only
positions, each a cursor the service could have made.)
A NUL character (U+0000) is not excused: the payload stores it, and title, description and
reason say in their schemas that they refuse it. Only a `positive_data_acceptance` failure
whose problem detail is exactly one of those refusals is excused (for a batch, the refusal of
its item `tasks[i]`); and a 413 for a body over TASKS_MAX_BODY_BYTES, a limit in bytes that no
JSON Schema can state (the document gives every create its 413); every other failure stands.
"""

from __future__ import annotations

import json
import re
from typing import Any

import schemathesis

from entrypoints.wire import MAX_PAYLOAD_DEPTH

TOO_DEEP = f"payload is nested deeper than {MAX_PAYLOAD_DEPTH} levels"
EXCUSED = {
    ("POST", "/tasks"): {TOO_DEEP},
}
#: the same refusals of one item of a batch
EXCUSED_ITEM = {("POST", "/tasks/batch"): re.compile(rf"^tasks\[\d+\]: {re.escape(TOO_DEEP)}$")}
#: the schemathesis codes of an accepted schema-violating request and a refused valid one
ACCEPTED_INVALID, REFUSED_VALID = "ST201", "ST202"


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    """False (drop) only for an excused refusal; True keeps the failure."""
    if failure.code in (ACCEPTED_INVALID, REFUSED_VALID) and response.status_code == 413:
        return False  # too many bytes: said by the 413, not by the schema
    if failure.code != REFUSED_VALID or response.status_code != 400:
        return True
    where = (case.method.upper(), case.path)
    try:
        detail = json.loads(response.content).get("detail")
    except (ValueError, AttributeError):
        return True
    item = EXCUSED_ITEM.get(where)
    return detail not in EXCUSED.get(where, set()) and not (
        item is not None and isinstance(detail, str) and item.match(detail))


#: The schemathesis checks of the in-memory ASGI run (tests/unit/test_openapi_asgi.py); the
#: real-process runs (tests/support/fuzz.py) apply every check there is.
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "positive_data_acceptance",
    "missing_required_header",
    "unsupported_method",
    "allow_header_conformance",
]
