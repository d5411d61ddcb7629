"""The client's subcommands and options for `tasks`; parsing imports nothing heavy."""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from typing import Any

DEFAULT_URL = "http://localhost:8000"
STATUSES = ("new", "in_progress", "completed", "error")
COMMANDS = ("submit", "show", "list", "watch", "retry", "cancel", "prune", "dead-letters")


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

    p = command("submit", "create a task and print its id")
    p.add_argument("title")
    p.add_argument("--description", metavar="TEXT")
    p.add_argument("--payload", type=json_object, metavar="JSON", help="a JSON object")
    p.add_argument("--idempotency-key", metavar="KEY",
                   help="the same key and body give back the same task")
    p.add_argument("--wait", action="store_true",
                   help="follow the task until it is final (exit 0 completed, 1 error)")
    command("show", "a task and its history").add_argument("id", type=task_id)
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


def run(args: argparse.Namespace) -> int:
    """One client command: its exit status, and any failure as one line on stderr."""
    from entrypoints.client import commands, maintenance
    from entrypoints.client.http import ClientError, Service
    from entrypoints.client.output import Out
    from entrypoints.client.sse import Dropped

    handlers = {"submit": commands.submit, "show": commands.show, "list": commands.list_tasks,
                "watch": commands.watch, "retry": commands.retry, "cancel": commands.cancel,
                "prune": maintenance.prune, "dead-letters": maintenance.dead_letters}
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
