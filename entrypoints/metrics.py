"""Metrics across the API's processes: one directory of per-process files, made fresh per start.

With `TASKS_HTTP_WORKERS` > 1, uvicorn's processes share one port and a scrape reaches any one
of them, so each writes its values to files in a directory that whichever answers sums
(prometheus-client's multiprocess mode). prometheus-client picks that mode when it is first
imported: the directory is named in the environment here, in the parent, before uvicorn spawns
the processes (which import everything afresh).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import structlog

log = structlog.get_logger(__name__)
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"


@contextlib.contextmanager
def shared_across_processes(workers: int) -> Iterator[None]:
    """For the parent of `workers` API processes. A directory given in PROMETHEUS_MULTIPROC_DIR
    (a tmpfs in a container, say) is emptied first: files left by an earlier run would be summed
    forever, and a reused process id would continue an old file. Otherwise a new directory is
    made, and removed when the server stops."""
    given = os.environ.get(MULTIPROCESS_ENV)
    if workers <= 1 and not given:
        yield
        return
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
    else:
        path = Path(tempfile.mkdtemp(prefix="tasks-metrics-"))
        os.environ[MULTIPROCESS_ENV] = str(path)
    log.info("metrics_multiprocess", directory=str(path), processes=workers)
    try:
        yield
    finally:
        if not given:
            os.environ.pop(MULTIPROCESS_ENV, None)
            shutil.rmtree(path, ignore_errors=True)


@contextlib.asynccontextmanager
async def process_metrics(app: Any) -> AsyncIterator[None]:
    """An API process's lifespan: on a clean exit its live gauges stop counting (its counters
    and histograms stay in the sums)."""
    try:
        yield
    finally:
        if os.environ.get(MULTIPROCESS_ENV):
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
