"""The client's subcommands and options for `tasks`; parsing imports nothing heavy."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import uuid
from datetime import datetime
from typing import Any

DEFAULT_URL = "http://localhost:8000"
STATUSES = ("new", "in_progress", "completed", "error")
COMMANDS = ("submit", "show", "list", "watch", "retry", "cancel", "prune", "dead-letters",
            "pause", "resume")
#: The longest delay the service takes: a year.
MAX_DELAY_SECONDS = 31_536_000
_DELAY = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(s|m|min|h|d)?\s*$")
_UNITS = {None: 1, "s": 1, "m": 60, "min": 60, "h": 3600, "d": 86_400}


def add_connection_options(parser: argparse.ArgumentParser, *, after: bool = False) -> None:
    """--url, --api-key and --json. Given `after` (on a subcommand), an option left out does
    not overwrite the one given before the subcommand."""
    unset: Any = argparse.SUPPRESS if after else None
    group = parser.add_argument_group("client options (before or after the command)")
    group.add_argument("--url", default=unset, metavar="URL",
                       help=f"the service (default: $TASKS_URL or {DEFAULT_URL})")
    group.add_argument("--api-key", default=unset, metavar="SECRET",
                       help="sent as a Bearer token (default: $TASKS_API_KEY)")
    group.add_argument("--json", action="store_true", default=unset if after else False,
                       help="one JSON document per line instead of tables")


def add_commands(sub: Any) -> None:
    """The client subcommands, on the `tasks` parser's subparsers."""
    def command(name: str, help: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = sub.add_parser(name, help=help, description=help)
        add_connection_options(parser, after=True)
        return parser

    p = command("submit", "create a task and print its id; with --file, many tasks and their ids")
    p.add_argument("title", nargs="?", metavar="TITLE", help="(not with --file)")
    p.add_argument("--description", metavar="TEXT")
    p.add_argument("--payload", type=json_object, metavar="JSON", help="a JSON object")
    p.add_argument("--idempotency-key", metavar="KEY",
                   help="the same key and body give back the same task; with --file, batch n "
                   "is sent with the key KEY/n, so running the same file again creates nothing "
                   "twice")
    p.add_argument("--wait", action="store_true",
                   help="follow the task until it is final (exit 0 completed, 1 error)")
    later = p.add_mutually_exclusive_group()
    later.add_argument("--run-at", type=moment, metavar="TIME",
                       help="start no earlier than this: RFC 3339 / ISO 8601, like "
                       "2026-12-24T18:00:00+01:00; without an offset, in local time")
    later.add_argument("--delay", type=delay, metavar="SECONDS",
                       help="start no earlier than this long from now: seconds, or with a unit "
                       "(90s, 5min, 2h, 1d)")
    p.add_argument("--file", metavar="F",
                   help="one JSON object per line, each what POST /tasks takes (title, "
                   "description, payload, run_at or delay_seconds); '-' reads standard input. "
                   "Sent through POST /tasks/batch in batches of up to 1,000 tasks (and about "
                   "1 MB), all or none per batch; prints the ids in the file's order")
    p.set_defaults(usage_error=p.error)
    command("show", "a task, why it is where it is (its diagnosis), and its history"
            ).add_argument("id", type=task_id)
    p = command("list", "tasks, newest first")
    p.add_argument("--status", action="append", choices=STATUSES, metavar="STATUS",
                   help=f"only these ({', '.join(STATUSES)}); repeat for several")
    p.add_argument("--limit", type=positive, default=50, metavar="N", help="(default 50)")
    command("watch", "print each status change as it happens, until the task is final "
            "(exit 0 completed, 1 error)").add_argument("id", type=task_id)
    for name, what in (("retry", "send a failed task back to a worker"),
                       ("cancel", "stop a task that has not finished")):
        p = command(name, what)
        p.add_argument("id", type=task_id)
        p.add_argument("--reason", metavar="TEXT", help="kept in the task's history")
    p = command("prune", "delete finished tasks (and their history) older than some days")
    p.add_argument("--older-than", type=days, metavar="DAYS",
                   help="(default: the service's TASKS_RETENTION_DAYS)")
    p.add_argument("--dry-run", action="store_true", help="only count what would go")
    p = command("dead-letters", "what sits in the dead-letter queues, and why")
    p.add_argument("--replay", action="store_true",
                   help="send the messages back through the normal path")
    p.add_argument("--limit", type=positive, metavar="N",
                   help="messages to show (default 10) or to replay (default 100)")
    for name, what in (("pause", "pause dispatch: tasks are still accepted, running ones "
                        "finish, no worker takes a new one until resumed"),
                       ("resume", "resume dispatch: workers take tasks again")):
        command(name, what).add_argument("--reason", metavar="TEXT",
                                         help="logged with who did it")


def misuse(args: argparse.Namespace) -> str | None:
    """What is wrong with a combination of options that argparse cannot say, or None."""
    if args.command != "submit":
        return None
    if args.file is None:
        return None if args.title is not None else "give a TITLE, or --file F"
    if args.title is not None:
        return "give a TITLE or --file F, not both"
    clashing = [option for option, value in (
        ("--description", args.description), ("--payload", args.payload),
        ("--run-at", args.run_at), ("--delay", args.delay), ("--wait", args.wait or None))
        if value is not None]
    if clashing:
        return (f"{', '.join(clashing)} cannot go with --file: each line carries its own "
                "fields (description, payload, run_at or delay_seconds)")
    return None


def json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object, like '{\"size\": 640}'")
    return value


def task_id(text: str) -> str:
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a task id: {text!r}") from None


def positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"not a whole number above 0: {text!r}")
    return int(text)


def days(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"not a number of days above 0: {text!r}")
    return value


def moment(text: str) -> str:
    """An ISO 8601 time as RFC 3339 with an offset (the local one when it has none)."""
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a time: {text!r} (like 2026-12-24T18:00:00+01:00, or 2026-12-24 18:00 "
            "in local time)") from None
    return (at if at.tzinfo is not None else at.astimezone()).isoformat()


def delay(text: str) -> float:
    found = _DELAY.match(text)
    seconds = float(found[1]) * _UNITS[found[2]] if found else -1.0
    if not 0 <= seconds <= MAX_DELAY_SECONDS:
        raise argparse.ArgumentTypeError(f"not a delay of 0 s to a year: {text!r} (seconds, "
                                         "or with a unit: 90s, 5min, 2h, 1d)")
    return seconds


def run(args: argparse.Namespace) -> int:
    """One client command: its exit status, and any failure as one line on stderr."""
    problem = misuse(args)
    if problem:
        args.usage_error(problem)  # argparse's way: the usage, the problem, exit 2
    from entrypoints.client import bulk, commands, dispatch, maintenance
    from entrypoints.client.http import ClientError, Service
    from entrypoints.client.output import Out
    from entrypoints.client.sse import Dropped

    handlers = {"submit": commands.submit, "show": commands.show, "list": commands.list_tasks,
                "watch": commands.watch, "retry": commands.retry, "cancel": commands.cancel,
                "prune": maintenance.prune, "dead-letters": maintenance.dead_letters,
                "pause": dispatch.pause, "resume": dispatch.resume}
    if args.command == "submit" and args.file is not None:
        handlers["submit"] = bulk.submit_file
    url = args.url or os.environ.get("TASKS_URL") or DEFAULT_URL
    key = args.api_key or os.environ.get("TASKS_API_KEY") or None
    try:
        with Service(url, key) as service:
            return handlers[args.command](service, args, Out(args.json))
    except (ClientError, Dropped) as exc:
        print(f"tasks: {exc}", file=sys.stderr)
        return 2
    except (KeyError, TypeError, ValueError) as exc:  # an answer of another shape
        print(f"tasks: the service's answer is not what this client expects ({exc!r}): is "
              "--url the tasks service, and of this version?", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `tasks list | head`: the reader has seen enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
