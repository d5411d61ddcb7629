"""Schemathesis against a real `tasks api` + `tasks worker`, for as long as asked.

    python -m tests.support.fuzz --seconds 300 --keys off
    python -m tests.support.fuzz --seconds 600 --keys both   # half the time each way

Each run gets a fresh database and vhost from TASKS_TEST_DATABASE_URL and
TASKS_TEST_RABBITMQ_URL (dropped afterwards), applies every check, with schema-valid and
schema-violating data, in every phase (examples, coverage, fuzzing, stateful) until the time is
spent. tests/support/openapi_hooks.py excuses only the refusals that the schema cannot state.
Exit status 0 when no run found anything. tests/e2e/test_openapi_conformance.py runs the same
command, bounded by examples instead of time.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.support.processes import Stack
from tests.support.services import provide_services

SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))
HOOKS = Path(__file__).with_name("openapi_hooks.py")
ADMIN_SECRET = "conformance-admin-0123456789"
#: Unknown warnings (a schema that cannot be satisfied, say) fail the run like a finding.
CONFIG = """
[warnings]
fail-on = true
"""


#: Tasks stay `new` or `in_progress` for a while, and half end in `error`: a cancel (needs an
#: unfinished task) and a retry (needs a failed one) then both meet tasks they can act on. With the
#: default test timings every task is final within 0.2 s, cancel never gets past a 409, and
#: schemathesis warns that it found no data to test it with (which fails the run).
STACK = {"TASKS_PROCESSING_MIN_SECONDS": "1", "TASKS_PROCESSING_MAX_SECONDS": "3",
         "TASKS_FAILURE_RATE": "0.5"}


def schemathesis_command(base_url: str, config: Path, *extra: str, checks: str = "all",
                         seed: int | None = None) -> list[str]:
    """The schemathesis CLI call; `extra` bounds it (`--max-examples`, `--max-time`)."""
    return [
        SCHEMATHESIS, "--config-file", str(config), "run", f"{base_url}/docs/openapi.json",
        *extra,
        "--checks", checks,
        # endless by contract (a request would only time out); test_event_streams.py
        "--exclude-path", "/events",
        "--mode", "all",  # positive and negative (schema-violating) data
        "--phases", "examples,coverage,fuzzing,stateful",
        *(["--seed", str(seed)] if seed is not None else []),
        "--workers", "1",
        "--continue-on-failure",
        "--request-timeout", "15",
        "--generation-database", "none",
        "--no-color",
    ]


def run(base_url: str, workdir: Path, *extra: str, checks: str = "all",
        seed: int | None = None, timeout: float = 480) -> subprocess.CompletedProcess[str]:
    """`timeout` is generous: how long a run bounded by examples takes depends on how busy the
    machine is, and a run stopped by it is a failure that says nothing about the API."""
    config = workdir / "schemathesis.toml"
    config.write_text(CONFIG)
    return subprocess.run(
        schemathesis_command(base_url, config, *extra, checks=checks, seed=seed),
        cwd=workdir, env={**os.environ, "SCHEMATHESIS_HOOKS": str(HOOKS)},
        capture_output=True, text=True, timeout=timeout,
    )


def summary(stdout: str) -> str:
    return stdout[stdout.find("SUMMARY"):] if "SUMMARY" in stdout else stdout[-3000:]


def fuzz(keys: bool, seconds: int, seed: int | None) -> bool:
    """One run on a fresh stack; True when schemathesis found nothing."""
    with provide_services() as services, tempfile.TemporaryDirectory() as tmp:
        database, vhost = services.new_database(), services.new_vhost()
        stack = Stack(database, vhost, **STACK)
        try:
            stack.migrate()
            # with keys, a retention (a prune needs no age); without, the document requires one
            stack.api(**({"TASKS_API_KEYS": f"ops:admin:{ADMIN_SECRET}",
                          "TASKS_RETENTION_DAYS": "365"} if keys else {}))
            stack.worker()
            auth = ["--header", f"Authorization: Bearer {ADMIN_SECRET}"] if keys else []
            started = time.monotonic()
            done = run(stack.base_url, Path(tmp), *auth, "--max-time", str(seconds),
                       seed=seed, timeout=seconds + 300)
            print(f"== keys {'on' if keys else 'off'}: schemathesis exited {done.returncode} "
                  f"after {time.monotonic() - started:.0f}s")
            print(summary(done.stdout))
            if done.returncode != 0:
                print(done.stdout[:20_000], done.stderr[-5000:], sep="\n")
                print(stack.logs())
            crashed = [p.name for p in stack.procs if not p.alive()]
            if crashed:
                print(f"processes that exited during the run: {crashed}")
            return done.returncode == 0 and not crashed
        finally:
            stack.close()
            services.drop_database(database)
            services.drop_vhost(vhost)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=600, help="total, over all runs")
    parser.add_argument("--keys", choices=["off", "on", "both"], default="both")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    modes = {"off": [False], "on": [True], "both": [False, True]}[args.keys]
    each = max(1, args.seconds // len(modes))
    results = [fuzz(keys, each, args.seed) for keys in modes]
    print("== " + ", ".join(f"keys {'on' if keys else 'off'}: {'clean' if ok else 'FINDINGS'}"
                            for keys, ok in zip(modes, results, strict=True)))
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
