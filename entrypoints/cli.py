"""The `tasks` command: migrate, api, worker, dev."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys

import structlog

from entrypoints.settings import Settings, SettingsError, load_settings

log = structlog.get_logger(__name__)


def _serve(factory: str, settings: Settings, workers: int) -> None:
    import uvicorn

    uvicorn.run(
        factory,
        factory=True,
        host=settings.http_host,
        port=settings.http_port,
        workers=workers,
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds) or None,
        timeout_worker_healthcheck=60,  # importing the app takes seconds on a loaded box
    )


def cmd_migrate(settings: Settings) -> int:
    from adapters.postgres.migrate import migrate

    applied = asyncio.run(migrate(settings.database_url))
    log.info("migrations_done", applied=applied or "none (up to date)")
    return 0


def cmd_worker(settings: Settings) -> int:
    from entrypoints.container import build_container
    from entrypoints.runtime import run_worker

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run_worker(build_container(settings), stop)

    asyncio.run(main())
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tasks", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply SQL migrations (idempotent)")
    api = sub.add_parser("api", help="serve the HTTP API (and the AMQP intake)")
    api.add_argument("--no-intake", action="store_true",
                     help="do not consume tasks.create in this process")
    sub.add_parser("worker", help="process dispatched tasks")
    sub.add_parser("dev", help="API + worker in one process on in-memory adapters")
    args = parser.parse_args(argv)

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
        if args.no_intake:
            os.environ["TASKS_INTAKE_ENABLED"] = "false"
        _serve("entrypoints.http.serve:api_from_env", settings, settings.http_workers)
        return 0
    _serve("entrypoints.http.serve:dev_from_env", settings, 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
