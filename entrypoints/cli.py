"""The `tasks` command: run the service (migrate, api, worker, dev) or talk to a running one."""

from __future__ import annotations

import argparse
import functools
import signal
import sys
from typing import TYPE_CHECKING

from entrypoints.client import parser as client

if TYPE_CHECKING:
    from entrypoints.settings import Settings


def cmd_migrate(settings: Settings) -> int:
    import asyncio  # imported here, like structlog: the client commands start without them

    import structlog

    from adapters.diagnosis import ConnectionFailed
    from adapters.postgres.migrate import migrate

    try:
        applied = asyncio.run(migrate(settings.database_url))
    except ConnectionFailed as exc:  # one line naming the setting and the fix; no traceback
        print(f"tasks: {exc}", file=sys.stderr)
        return 2
    structlog.get_logger(__name__).info("migrations_done",
                                        applied=applied or "none (up to date)")
    return 0


def cmd_worker(settings: Settings) -> int:
    import asyncio

    from entrypoints.container import build_container
    from entrypoints.lifecycle import Roles, running
    from entrypoints.tracing import enable_tracing
    from entrypoints.worker_http import worker_http

    async def main() -> None:
        container = build_container(settings)
        enable_tracing(container, "tasks-worker")
        stopping = container.stopping()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopping.set)
        async with running(container, Roles(worker=True)), worker_http(
                container.readiness(), settings.http_host, settings.worker_http_port):
            await stopping.wait()

    asyncio.run(main())
    return 0


def cmd_serve(settings: Settings, *, intake: bool, worker: bool, in_memory: bool = False) -> int:
    from entrypoints.http.serve import build_app, serve
    from entrypoints.lifecycle import Roles

    roles = Roles(intake=intake, worker=worker, streams=True)
    app = functools.partial(build_app, settings, roles, in_memory)
    return 0 if serve(settings, app, 1 if in_memory else settings.http_workers) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tasks", description=__doc__)
    client.add_connection_options(parser)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("migrate", help="apply SQL migrations (idempotent)")
    api = sub.add_parser("api", help="serve the HTTP API (and the AMQP intake)")
    api.add_argument("--no-intake", action="store_true",
                     help="do not consume tasks.create in this process")
    sub.add_parser("worker", help="process dispatched tasks")
    sub.add_parser("dev", help="API + worker in one process on in-memory adapters "
                   "(no PostgreSQL, no RabbitMQ, no AMQP intake)")
    client.add_commands(sub)
    args = parser.parse_args(argv)
    if args.command in client.COMMANDS:
        return client.run(args)
    if args.url or args.api_key or args.json:
        parser.error("--url, --api-key and --json are options of the client commands")

    from entrypoints.settings import SettingsError, load_settings

    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"tasks: {exc}", file=sys.stderr)
        return 2
    from entrypoints.logging import configure_logging

    configure_logging(settings.log_format, settings.log_level)

    if args.command == "migrate":
        return cmd_migrate(settings)
    if args.command == "worker":
        return cmd_worker(settings)
    if args.command == "api":
        return cmd_serve(settings, intake=settings.intake_enabled and not args.no_intake,
                         worker=False)
    return cmd_serve(settings, intake=False, worker=True, in_memory=True)


if __name__ == "__main__":
    sys.exit(main())
