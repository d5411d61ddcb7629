"""The operator's housekeeping: prune finished tasks, look at and replay dead letters."""

from __future__ import annotations

import argparse
from typing import Any

from entrypoints.client.http import ClientError, Service, ServiceError
from entrypoints.client.output import Out, clean, count, moment, shorten, span, table

#: One prune call deletes for a few seconds at most; this leaves room for a busy database.
PRUNE_TIMEOUT = 60.0
LIST_LIMIT, REPLAY_LIMIT = 10, 100
BODY_WIDTH = 60


def prune(service: Service, args: argparse.Namespace, out: Out) -> int:
    """Calls again while the service says there is `more` (a dry run counts in one call)."""
    days = args.older_than
    body = {"older_than_days": int(days) if days is not None and days.is_integer() else days,
            "dry_run": args.dry_run}
    deleted = calls = 0
    while True:
        try:
            answer = service.json("POST", "/maintenance/prune", body=body, timeout=PRUNE_TIMEOUT)
        except ServiceError as exc:
            if exc.status == 400 and days is None:  # the service has no retention either
                raise ClientError(f"{exc}: say how old with --older-than DAYS") from None
            raise
        calls += 1
        deleted += answer["deleted"]
        if out.as_json:
            out.document(answer)
        cutoff = f"{moment(answer['cutoff']):%Y-%m-%d %H:%M:%S}"
        if args.dry_run:
            if not out.as_json:
                out.line(f"would delete {count(answer['matched'])} finished tasks (and their "
                         f"history) from before {cutoff}")
            return 0
        if not answer["more"]:
            break
        if not answer["deleted"]:
            raise ClientError("the service says more tasks are due for pruning but deleted "
                              "none in this call; try again later")
        if not out.as_json:
            out.line(out.paint("dim", f"  deleted {count(answer['deleted'])}, "
                                      f"{count(deleted)} so far…"))
    if out.as_json:
        return 0
    if deleted:
        out.line(f"deleted {count(deleted)} finished tasks (and their history) from before "
                 f"{cutoff}" + (f" in {calls} steps" if calls > 1 else ""))
    else:
        out.line(f"nothing to delete: no task finished before {cutoff}")
    return 0


def dead_letters(service: Service, args: argparse.Namespace, out: Out) -> int:
    if args.replay:
        limit = args.limit or REPLAY_LIMIT
        answer = service.json("POST", "/dead-letters/replay", body={"limit": limit})
        if out.as_json:
            out.document(answer)
        else:
            out.lines(replay_lines(out, answer))
        return 0
    answer = service.json("GET", "/dead-letters", params={"limit": args.limit or LIST_LIMIT})
    if out.as_json:
        out.document(answer)
    else:
        out.lines(letters_lines(out, answer))
    return 0


def _counts(out: Out, queues: list[dict[str, Any]]) -> list[str]:
    return table(out, ["QUEUE", "MESSAGES"],
                 [[clean(q["queue"]), count(q["count"])] for q in queues], right=frozenset({1}))


def letters_lines(out: Out, answer: dict[str, Any]) -> list[str]:
    lines = _counts(out, answer["queues"])
    messages = answer["messages"]
    total = sum(q["count"] for q in answer["queues"])
    if not messages:
        return lines
    rows = [[clean(m["queue"]), clean(m.get("message_id")) or "-",
             span(m["age_seconds"]) if m.get("age_seconds") is not None else "-",
             clean(m.get("reason")) or "-", shorten(clean(m["body"]), BODY_WIDTH)]
            for m in messages]
    shown = f"the first {len(messages)} of {count(total)}" if total > len(messages) else "all"
    return [*lines, "", out.paint("bold", f"Messages ({shown})"),
            *table(out, ["QUEUE", "MESSAGE ID", "AGE", "REASON", "BODY"], rows,
                   right=frozenset({2}))]


def replay_lines(out: Out, answer: dict[str, Any]) -> list[str]:
    replayed = answer["replayed"]
    if not replayed:
        lines = ["nothing to replay"]
    else:
        rows = [[clean(r["queue"]), clean(r.get("message_id")) or "-", clean(r["outcome"])]
                for r in replayed]
        lines = [f"replayed {count(len(replayed))} message{'s' if len(replayed) != 1 else ''}",
                 *table(out, ["QUEUE", "MESSAGE ID", "OUTCOME"], rows)]
    return [*lines, "", out.paint("bold", "Still dead-lettered"),
            *_counts(out, answer["remaining"])]
