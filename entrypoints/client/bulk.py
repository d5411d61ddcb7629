"""`tasks submit --file`: one task per JSON line, created through POST /tasks/batch in batches."""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NoReturn

from entrypoints.client.commands import note
from entrypoints.client.http import ClientError, Service, ServiceError
from entrypoints.client.output import Out, count

#: The most tasks the service takes in one call.
MAX_BATCH = 1000
#: A batch's body stays under the service's default TASKS_MAX_BODY_BYTES (1 MiB), so that a
#: thousand tasks with kilobyte payloads still go through; a single larger line goes alone.
MAX_BATCH_BYTES = 1_000_000
_ITEM = re.compile(r"^tasks\[(\d+)\]")


@dataclass(frozen=True)
class Line:
    number: int  # 1-based, as an editor shows it
    body: dict[str, Any]
    size: int  # bytes on the wire


def submit_file(service: Service, args: argparse.Namespace, out: Out) -> int:
    """Every line is read and checked as JSON before the first batch goes, so a typo stops
    the command with nothing created. Batches go one after the other, and each prints its
    ids when the service has created them: the output is in the file's order, and when a
    batch is refused, what is above the error is exactly what was created."""
    name = "standard input" if args.file == "-" else args.file
    lines = read(args.file, name)
    if not lines:
        note(f"{name} holds no tasks: nothing to create")
        return 0
    done: list[Line] = []
    for number, batch in enumerate(batches(lines), 1):
        headers = {"Idempotency-Key": f"{args.idempotency_key}/{number}"} \
            if args.idempotency_key else {}
        try:
            answer = service.call("POST", "/tasks/batch", headers=headers,
                                  body={"tasks": [line.body for line in batch]})
        except ClientError as exc:
            _stopped(exc, name, number, batch, done, args.idempotency_key)
        items = answer.json()["items"]
        if len(items) != len(batch):
            raise ClientError(f"the service answered batch {number} with {len(items)} tasks "
                              f"for {len(batch)}: is --url the tasks service?")
        for task in items:
            if out.as_json:
                out.document(task)
            else:
                out.line(task["id"])
        if answer.headers.get("Idempotent-Replayed") == "true":
            note(f"an earlier submit with the key {args.idempotency_key}/{number} made the "
                 f"tasks of lines {batch[0].number}-{batch[-1].number}")
        done += batch
    return 0


def read(path: str, name: str) -> list[Line]:
    """The file's tasks; ClientError naming the first line that is not a JSON object. Blank
    lines are skipped (and still counted)."""
    try:
        if path == "-":
            text = sys.stdin.read().removeprefix("\N{BYTE ORDER MARK}")
        else:
            with open(path, encoding="utf-8-sig") as file:
                text = file.read()
    except OSError as exc:
        raise ClientError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ClientError(f"{name} is not UTF-8 text (byte {exc.start:,})") from None
    lines = []
    for number, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            body = json.loads(raw, parse_constant=_no_constant)
        except ValueError as exc:
            why = f"{exc.msg}, column {exc.colno}" if isinstance(exc, json.JSONDecodeError) \
                else str(exc)
            raise ClientError(f"{name}, line {number}: not JSON ({why}); nothing was "
                              "sent") from None
        if not isinstance(body, dict):
            raise ClientError(f"{name}, line {number}: each line must be one JSON object, like "
                              '{"title": "Resize image 42"}; nothing was sent')
        size = len(json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode())
        lines.append(Line(number, body, size))
    return lines


def _no_constant(word: str) -> NoReturn:
    raise ValueError(f"{word} is not a JSON number")


def batches(lines: list[Line]) -> Iterator[list[Line]]:
    """Up to MAX_BATCH lines and MAX_BATCH_BYTES each, in order: the same file always makes
    the same batches, so `KEY/n` names the same tasks when a command is run again."""
    batch: list[Line] = []
    size = 0
    for line in lines:
        if batch and (len(batch) == MAX_BATCH or size + line.size + 1 > MAX_BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(line)
        size += line.size + 1
    if batch:
        yield batch


def _stopped(exc: ClientError, name: str, number: int, batch: list[Line], done: list[Line],
             key: str | None) -> NoReturn:
    """Says what was created before the batch that failed, then why it failed, naming the
    line when the service names an item (`tasks[i]` of this batch)."""
    if done:
        then = ("the same command again creates only the rest" if key else
                f"to go on, submit the lines after line {done[-1].number:,}")
        note(f"the first {count(len(done))} tasks (to line {done[-1].number:,} of {name}) were "
             f"created, and their ids printed; {then}")
    if not isinstance(exc, ServiceError) or exc.status not in (400, 409, 413, 422):
        raise exc
    item = _ITEM.match(str(exc))
    if item and int(item[1]) < len(batch):
        where = f"{name}, line {batch[int(item[1])].number}"
    else:
        where = f"{name}, batch {number} (lines {batch[0].number}-{batch[-1].number})"
    raise ClientError(f"{where}: {exc}") from None
