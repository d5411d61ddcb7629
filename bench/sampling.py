"""Peaks sampled in the background while a measurement runs: RSS, the oldest open writer."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg

#: Transactions holding an xid in the service's database: the event feed reads no history row
#: newer than the oldest of them (see task_events_horizon, migration 0009).
OLDEST_WRITER = """
SELECT coalesce(max(extract(epoch FROM clock_timestamp() - xact_start)), 0)
FROM pg_stat_activity WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid()
  AND datname = current_database()
"""


@contextmanager
def peak(read: Callable[[], float], every: float = 0.2) -> Iterator[list[float]]:
    """The largest value `read` gave, sampled every `every` s while the block runs: [peak]."""
    seen, done = [read()], threading.Event()

    def sample() -> None:
        while not done.wait(every):
            seen[0] = max(seen[0], read())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield seen
    finally:
        done.set()
        sampler.join()


def oldest_writer(conn: psycopg.Connection[tuple[float]]) -> Callable[[], float]:
    """Age in seconds of the oldest transaction with an xid in the database of `conn`, read over it
    (used by the sampler's thread only)."""

    def read() -> float:
        row = conn.execute(OLDEST_WRITER).fetchone()
        return float(row[0]) if row else 0.0

    return read
