"""Tasks, histories and status changes as a person reads them."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from entrypoints.client.output import Out, ago, clean, clock, moment, shorten, table, until

#: The longest status name: status columns of live lines line up without knowing what comes.
STATUS_WIDTH = len("in_progress")
TITLE_WIDTH = 40


def change_line(out: Out, change: dict[str, Any], now: datetime) -> str:
    """One status change (an event, or a history row) on one line:
    `12:03:04  in_progress → completed    attempt 1  worker host-1`."""
    before, after = change.get("from_status"), change["to_status"]
    at = out.paint("dim", clock(moment(change["at"]), now))
    reason = clean(change.get("reason"))
    to = out.paint(after, after.ljust(STATUS_WIDTH))
    if before == after:  # a note on the task without a change of status (a cancel request)
        return _join(f"{at}  {to}  {reason or 'noted'}", _by(change))
    head = f"{at}  {out.paint(before or 'dim', (before or 'created').ljust(STATUS_WIDTH))} → {to}"
    task = change.get("task") or {}
    why = clean(task.get("error")) if after == "error" and task.get("error") else reason
    attempt = change.get("attempt") or 0
    return _join(head, f"attempt {attempt}" if attempt else "",
                 f"worker {clean(change['worker'])}" if change.get("worker") else "",
                 _by(change), why)


def _by(change: dict[str, Any]) -> str:
    return f"by {clean(change['actor'])}" if change.get("actor") else ""


def _join(*parts: str) -> str:
    return "  ".join(part for part in parts if part).rstrip()


def task_lines(out: Out, task: dict[str, Any], history: list[dict[str, Any]],
               now: datetime, diagnosis: dict[str, Any] | None = None) -> list[str]:
    """`tasks show`: the fields that are set (with the diagnosis under the status), the payload
    as indented JSON, then the history."""
    status = task["status"]
    fields: list[tuple[str, str]] = [
        ("id", task["id"]),
        ("status", out.paint(status, status) + _attempts(task["attempts"])),
    ]
    if diagnosis:
        fields.append(("diagnosis", f"{out.paint('bold', clean(diagnosis['state']))}  "
                                    f"{clean(diagnosis.get('detail'))}".rstrip()))
    if task.get("error"):
        fields.append(("error", out.paint("error", clean(task["error"]))))
    fields.append(("source", clean(task.get("source"))))
    for name, label in (("created", "created"), ("run", "run at"), ("started", "started"),
                        ("finished", "finished"), ("updated", "updated")):
        value = task.get(f"{name}_at")
        if value:
            at = moment(value)
            fields.append((label, f"{at:%Y-%m-%d %H:%M:%S}  {out.paint('dim', until(at, now))}"))
    lines = [out.paint("bold", clean(task["title"]))]
    lines += [f"  {name:<9} {value}" for name, value in fields]
    if task.get("description"):
        lines += ["  description", *_indented(clean(task["description"], newlines=True))]
    payload = json.dumps(task.get("payload") or {}, indent=2, ensure_ascii=False)
    lines += ["  payload", *_indented(clean(payload, newlines=True))]
    lines += ["", out.paint("bold", "History"),
              *(f"  {row}" for row in history_table(out, history, now))]
    return lines


def _attempts(n: int) -> str:
    return f"  ({n} attempt{'s' if n != 1 else ''})" if n else ""


def _indented(text: str) -> list[str]:
    return [f"    {line}".rstrip() for line in text.splitlines()]


def history_table(out: Out, history: Iterable[dict[str, Any]], now: datetime) -> list[str]:
    rows = [[clock(moment(h["at"]), now), h.get("from_status") or "", h["to_status"],
             str(h.get("attempt") or ""), clean(h.get("worker")), clean(h.get("actor")),
             clean(h.get("reason"))] for h in history]
    return table(out, ["AT", "FROM", "TO", "ATTEMPT", "WORKER", "ACTOR", "REASON"], rows,
                 styles=[None, "status", "status"], right=frozenset({3}))


def list_table(out: Out, tasks: Iterable[dict[str, Any]], now: datetime) -> list[str]:
    rows = [[t["id"], t["status"], shorten(clean(t["title"]), TITLE_WIDTH), str(t["attempts"]),
             ago(moment(t["created_at"]), now), ago(moment(t["updated_at"]), now)]
            for t in tasks]
    return table(out, ["ID", "STATUS", "TITLE", "ATTEMPTS", "CREATED", "UPDATED"], rows,
                 styles=[None, "status"], right=frozenset({3}))
