"""A PostgreSQL cluster of the benchmark's own, with pg_stat_statements loaded, for one scenario.

pg_stat_statements needs `shared_preload_libraries` and a server restart, which the machine's
PostgreSQL is never given: this starts a throwaway cluster instead (initdb into a temporary
directory, loopback only, its socket in that directory), copying the machine server's settings
that weigh on the figures, and stops it by its own PID and removes the directory afterwards."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg.conninfo import make_conninfo

from bench.infra import free_port, wait_until

#: the machine server's settings copied onto the private cluster, for a fair comparison
COPIED = (
    "shared_buffers", "work_mem", "maintenance_work_mem", "effective_cache_size",
    "synchronous_commit", "fsync", "full_page_writes", "wal_level", "wal_buffers",
    "wal_compression", "max_wal_size", "min_wal_size", "checkpoint_timeout", "commit_delay",
    "commit_siblings", "random_page_cost", "jit", "max_connections", "huge_pages",
    "autovacuum", "track_io_timing",
)
SUPERUSER = "postgres"


class Unavailable(Exception):
    """No private cluster can be had here; the message says why, in a few words."""


@dataclass(frozen=True)
class Cluster:
    port: int
    pid: int
    admin_url: str  # the superuser, on database postgres

    def url(self, dbname: str, user: str = SUPERUSER) -> str:
        return make_conninfo(self.admin_url, dbname=dbname, user=user)


def _bindir(machine_url: str) -> Path:
    """The server programs of the machine server's major version (Debian's layout)."""
    with psycopg.connect(machine_url, connect_timeout=5) as conn:
        row = conn.execute("SELECT current_setting('server_version_num')::int / 10000").fetchone()
    major = int(row[0]) if row else 0
    found = Path(f"/usr/lib/postgresql/{major}/bin")
    if not (found / "initdb").exists():
        raise Unavailable(f"no {found}/initdb")
    if not (found.parent / "lib" / "pg_stat_statements.so").exists():
        raise Unavailable(f"pg_stat_statements is not installed for PostgreSQL {major}")
    return found


def _machine_settings(machine_url: str) -> list[str]:
    with psycopg.connect(machine_url, connect_timeout=5) as conn:
        rows = conn.execute(
            "SELECT name, current_setting(name) FROM pg_settings WHERE name = ANY(%s)",
            [list(COPIED)],
        ).fetchall()
    return [f"{name}={value}" for name, value in rows]


def _owner() -> tuple[str | None, int, int]:
    """Who runs the server: the `postgres` user when we are root (initdb refuses root)."""
    if os.geteuid() != 0:
        return None, os.getuid(), os.getgid()
    try:
        entry = pwd.getpwnam("postgres")
    except KeyError:
        raise Unavailable("running as root and there is no postgres user") from None
    return "postgres", entry.pw_uid, entry.pw_gid


@contextlib.contextmanager
def private_cluster(machine_url: str, log_dir: Path, *extra: str) -> Iterator[Cluster]:
    """A running cluster on a free loopback port with pg_stat_statements (utility statements
    tracked too) and the machine server's settings plus `extra` ("name=value"); gone after."""
    bindir = _bindir(machine_url)
    settings = [
        *_machine_settings(machine_url),
        "listen_addresses=127.0.0.1",
        "shared_preload_libraries=pg_stat_statements",
        "pg_stat_statements.track_utility=on",
        *extra,
    ]
    user, uid, gid = _owner()
    home = Path(tempfile.mkdtemp(prefix="tasks-bench-pg-"))
    server: subprocess.Popen[bytes] | None = None
    try:
        os.chown(home, uid, gid)
        data = home / "data"
        init = subprocess.run(
            [str(bindir / "initdb"), "-D", str(data), "-U", SUPERUSER, "-A", "trust", "-E", "UTF8",
             "--no-sync", "--no-instructions"],
            capture_output=True, text=True, timeout=120, user=user, group=gid if user else None,
        )
        if init.returncode != 0:  # e.g. a TMPDIR the postgres user cannot enter
            raise Unavailable(f"initdb failed: {init.stderr.strip()[-200:]}")
        port = free_port()
        args = [str(bindir / "postgres"), "-D", str(data), "-p", str(port), "-k", str(home)]
        for setting in settings:
            args += ["-c", setting]
        log_path = Path(tempfile.mkstemp(prefix="postgres-", suffix=".log", dir=log_dir)[1])
        os.chown(log_path, uid, gid)
        with log_path.open("wb") as log:
            server = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                user=user, group=gid if user else None,
            )
        admin = make_conninfo(host="127.0.0.1", port=port, user=SUPERUSER, dbname="postgres")
        wait_until(lambda: _ready(server, admin, log_path), 60, "the private PostgreSQL")
        yield Cluster(port, server.pid, admin)
    finally:
        if server is not None:
            _stop(server)
        shutil.rmtree(home, ignore_errors=True)


def _ready(server: subprocess.Popen[bytes], url: str, log_path: Path) -> bool:
    if server.poll() is not None:  # e.g. not enough shared memory for a second server
        raise Unavailable(f"the private PostgreSQL did not start: "
                          f"{log_path.read_text().strip()[-200:]}")
    try:
        with psycopg.connect(url, connect_timeout=2):
            return True
    except psycopg.OperationalError:
        return False


def _stop(server: subprocess.Popen[bytes]) -> None:
    """Fast shutdown (SIGINT to the postmaster); immediate (SIGQUIT), then SIGKILL, if it
    hangs. Only this server's own PID is signalled."""
    for sig, wait in ((signal.SIGINT, 30), (signal.SIGQUIT, 10), (signal.SIGKILL, 10)):
        if server.poll() is not None:
            return
        os.kill(server.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(wait)
