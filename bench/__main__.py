"""Performance benchmark: `python -m bench [--smoke] [--only NAME]`. Prints, never asserts."""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections.abc import Callable

from bench.context import SMOKE, Context, Row, Sizes
from bench.infra import (
    ADMIN_DATABASE_URL,
    ADMIN_RABBITMQ_URL,
    Admin,
    finish_log_dir,
    migrated_template,
    new_log_dir,
)
from bench.load import TOOLS, pick_tool
from bench.report import machine, table
from bench.scenarios import (
    bulk,
    capacity,
    cluster,
    drain,
    e2e,
    http_naive,
    http_post,
    intake,
    listing,
    pickup,
    prune,
    scheduled,
    scrape,
    streams,
    sustained,
    trips,
)

SCENARIOS: dict[str, Callable[[Context], list[Row]]] = {
    "http": http_post.run,
    "http-naive": http_naive.run,
    "intake": intake.run,
    "drain": drain.run,
    "capacity": capacity.run,
    "pickup": pickup.run,
    "listing": listing.run,
    "scrape": scrape.run,
    "streams": streams.run,
    "prune": prune.run,
    "sustained": sustained.run,
    "bulk": bulk.run,
    "scheduled": scheduled.run,
    "trips": trips.run,
    "e2e": e2e.run,
    "cluster": cluster.run,
}

#: left out of a smoke run (CI's): the cluster's start alone takes 20 s; the test suite starts
#: the same cluster (tests/e2e/test_rabbitmq_cluster.py), so the harness does not rot
NOT_IN_SMOKE = frozenset({"cluster"})


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: proves it still runs")
    parser.add_argument("--only", choices=sorted(SCENARIOS), help="run one scenario")
    parser.add_argument(
        "--database-url",
        default=ADMIN_DATABASE_URL,
        help="admin URL: the benchmark creates and drops its own databases",
    )
    parser.add_argument(
        "--rabbitmq-url",
        default=ADMIN_RABBITMQ_URL,
        help="admin URL: the benchmark creates and deletes its own vhosts",
    )
    parser.add_argument(
        "--load-tool",
        choices=TOOLS,
        default="auto",
        help="HTTP load generator (auto: wrk, else oha, else httpx)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    sizes = SMOKE if args.smoke else Sizes()
    admin = Admin(args.database_url, args.rabbitmq_url)
    ctx = Context(admin, sizes, new_log_dir(), pick_tool(args.load_tool))
    names = [args.only] if args.only else [
        name for name in SCENARIOS if not (args.smoke and name in NOT_IN_SMOKE)]
    rows: list[Row] = []
    begin = time.monotonic()
    failed = True  # until the scenarios have run: keeps the process logs after a Ctrl-C
    try:
        with migrated_template(admin, ctx.log_dir):
            failed = run_all(ctx, names, rows)
    finally:
        finish_log_dir(ctx.log_dir, keep=failed)
    title = "\n".join(
        [
            f"tasks benchmark{' (smoke sizes)' if args.smoke else ''}: "
            f"{time.monotonic() - begin:.0f} s, HTTP load by {ctx.load_tool}",
            *machine(args.database_url),
        ]
    )
    print(table(title, ("scenario", "setting", "result"), rows))
    return 1 if failed else 0


def run_all(ctx: Context, names: list[str], rows: list[Row]) -> bool:
    """Each scenario in turn; a failed one becomes a FAILED row. True if any failed."""
    failed = False
    for name in names:
        print(f"bench: {name} ...", file=sys.stderr, flush=True)
        started = time.monotonic()
        try:
            rows += SCENARIOS[name](ctx)
        except Exception as exc:  # noqa: BLE001 - one broken scenario must not hide the others
            failed = True
            traceback.print_exc(file=sys.stderr)
            rows.append(Row(name, "FAILED", f"{type(exc).__name__}: {str(exc)[:200]}"))
        print(f"bench: {name} took {time.monotonic() - started:.1f} s", file=sys.stderr)
    return failed


if __name__ == "__main__":
    sys.exit(main())
