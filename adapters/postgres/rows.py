"""How a `tasks` row maps to a Task: one table of columns, names equal to the Task's fields."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import msgspec
from psycopg import sql

from application.stats import Counts
from domain.status import TaskStatus
from domain.task import Task, Transition

#: Every column a Task is read from and written to, with its type in `json_to_recordset`.
#: Adding a field to Task means one line here (and the migration that adds the column).
TASK_COLUMNS: dict[str, str] = {
    "id": "uuid", "title": "text", "description": "text", "payload": "text",
    "status": "text", "attempts": "int", "error": "text", "source": "text",
    "created_at": "timestamptz", "updated_at": "timestamptz", "started_at": "timestamptz",
    "finished_at": "timestamptz", "lease_owner": "text", "lease_expires_at": "timestamptz",
    "cancel_request": "jsonb", "run_at": "timestamptz",
}
#: Columns stored as another type than the one they travel as: a payload travels as its own
#: JSON text (a string inside the rows' JSON) and is stored as `json`, kept as written. Sent
#: as a nested value instead, `json_to_recordset` would unescape its strings and keys, and a
#: `\u0000` in one cannot become text (migration 0007).
STORED_AS = {"payload": "json"}
#: Set once at creation; a compare-and-set writes every other column.
IMMUTABLE = ("id", "title", "description", "payload", "source", "created_at", "run_at")
MUTABLE = tuple(c for c in TASK_COLUMNS if c not in IMMUTABLE)
#: What a compare-and-set compares: the row must still be as the caller read it.
COMPARED = ("status", "attempts", "lease_owner")

_DIFFERENCE = set(TASK_COLUMNS) ^ set(Task.__struct_fields__)
if _DIFFERENCE:
    raise RuntimeError(f"TASK_COLUMNS and the Task fields differ: {sorted(_DIFFERENCE)}")


def names(columns: Sequence[str], prefix: str = "") -> sql.Composable:
    """`a, b, c` (or `p.a, p.b, p.c`) as identifiers."""
    return sql.SQL(", ").join(
        sql.Identifier(*(prefix, c) if prefix else (c,)) for c in columns)


def definitions(columns: Mapping[str, str]) -> sql.Composable:
    """`a uuid, b text, …`: the record shape of a `json_to_recordset` call."""
    return sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t)) for c, t in columns.items())


def values(columns: Sequence[str], prefix: str) -> sql.Composable:
    """`p.a, p.b::json, …`: the record's fields cast to their stored type where it differs."""
    return sql.SQL(", ").join(
        sql.SQL("{}::{}").format(sql.Identifier(prefix, c), sql.SQL(STORED_AS[c]))
        if c in STORED_AS else sql.Identifier(prefix, c) for c in columns)


def insert_row(task: Task) -> dict[str, Any]:
    """A new task as an `insert_tasks` row (see STORED_AS)."""
    row = {c: getattr(task, c) for c in TASK_COLUMNS}
    row["payload"] = _encoder.encode(task.payload).decode()
    return row


def to_task(row: Mapping[str, Any]) -> Task:
    return msgspec.convert(row, Task, strict=False)


def to_transition(row: Mapping[str, Any]) -> Transition:
    return msgspec.convert(row, Transition, strict=False)


_encoder = msgspec.json.Encoder()


def as_json(rows: Sequence[object]) -> str:
    """Rows for `json_to_recordset`: objects keyed by column name (structs by field name)."""
    return _encoder.encode(rows).decode()


def counts_from(named: Mapping[str, int], oldest_new_at: datetime | None) -> Counts:
    """`task_counts` rows (`status:new`, `created:api`, `finished:error`, …) as Counts."""
    by_prefix: dict[str, dict[str, int]] = {}
    for name, n in named.items():
        kind, _, key = name.partition(":")
        by_prefix.setdefault(kind, {})[key] = int(n)
    statuses = by_prefix.get("status", {})
    return Counts(
        by_status={s: statuses.get(s.value, 0) for s in TaskStatus},
        oldest_new_at=oldest_new_at if statuses.get("new") else None,
        created=sum(by_prefix.get("created", {}).values()),
        finished={s: by_prefix.get("finished", {}).get(s.value, 0)
                  for s in TaskStatus if s.is_final},
        outbox_pending=by_prefix.get("outbox", {}).get("pending", 0),
    )
