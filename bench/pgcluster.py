"""A PostgreSQL cluster of the benchmark's own, with pg_stat_statements loaded, for one scenario.

pg_stat_statements needs `shared_preload_libraries` and a server restart, which the machine's
PostgreSQL is never given: this starts a throwaway cluster instead (initdb into a temporary
directory, loopback only, its socket in that directory), copying the machine server's settings
that weigh on the figures, and stops it by its own PID and removes the directory afterwards."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg.conninfo import make_conninfo

from tests.support.pgserver import (
    SUPERUSER,
    Owner,
    Unavailable,
    admin_url,
    bindir,
    free_port,
    initdb,
    start,
    stop,
    wait_ready,
)

__all__ = ["Cluster", "Unavailable", "private_cluster"]

#: the machine server's settings copied onto the private cluster, for a fair comparison
COPIED = (
    "shared_buffers", "work_mem", "maintenance_work_mem", "effective_cache_size",
    "synchronous_commit", "fsync", "full_page_writes", "wal_level", "wal_buffers",
    "wal_compression", "max_wal_size", "min_wal_size", "checkpoint_timeout", "commit_delay",
    "commit_siblings", "random_page_cost", "jit", "max_connections", "huge_pages",
    "autovacuum", "track_io_timing",
)


@dataclass(frozen=True)
class Cluster:
    port: int
    pid: int
    admin_url: str  # the superuser, on database postgres

    def url(self, dbname: str, user: str = SUPERUSER) -> str:
        return make_conninfo(self.admin_url, dbname=dbname, user=user)


def _bindir(machine_url: str) -> Path:
    """The server programs of the machine server's major version, with pg_stat_statements."""
    found = bindir(machine_url)
    if not (found.parent / "lib" / "pg_stat_statements.so").exists():
        raise Unavailable(f"pg_stat_statements is not installed for {found.parent.name}")
    return found


def _machine_settings(machine_url: str) -> list[str]:
    with psycopg.connect(machine_url, connect_timeout=5) as conn:
        rows = conn.execute(
            "SELECT name, current_setting(name) FROM pg_settings WHERE name = ANY(%s)",
            [list(COPIED)],
        ).fetchall()
    return [f"{name}={value}" for name, value in rows]


@contextlib.contextmanager
def private_cluster(machine_url: str, log_dir: Path, *extra: str) -> Iterator[Cluster]:
    """A running cluster on a free loopback port with pg_stat_statements (utility statements
    tracked too) and the machine server's settings plus `extra` ("name=value"); gone after."""
    programs = _bindir(machine_url)
    settings = [
        *_machine_settings(machine_url),
        "shared_preload_libraries=pg_stat_statements",
        "pg_stat_statements.track_utility=on",
        *extra,
    ]
    owner = Owner.find()
    home = Path(tempfile.mkdtemp(prefix="tasks-bench-pg-"))
    server = None
    try:
        owner.own(home)
        data = home / "data"
        initdb(programs, owner, data)  # fails e.g. on a TMPDIR the postgres user cannot enter
        port = free_port()
        log_path = Path(tempfile.mkstemp(prefix="postgres-", suffix=".log", dir=log_dir)[1])
        owner.own(log_path)
        server = start(programs, owner, data, port, home, log_path, settings)
        admin = admin_url(port)
        wait_ready(server, admin, log_path)
        yield Cluster(port, server.pid, admin)
    finally:
        if server is not None:
            stop(server)
        shutil.rmtree(home, ignore_errors=True)
