"""A PostgreSQL primary with a synchronous standby of the tests' own, and the two ways it loses
its primary: a failover (the primary killed, the standby promoted) and a switchover (a clean
swap, the old primary back as a read-only standby of the new one).

Two nodes on fixed ports for the cluster's whole life, so that one multi-host URL
(`url()`) names both whichever is the primary. Built from tests/support/pgserver.py: the
machine's server programs, loopback only, each server a child of ours, stopped by its own PID.
The standby is synchronous only while it streams: a primary left alone (after a failover)
commits without waiting, as a cluster manager's non-strict synchronous mode does, and a
node is made asynchronous before it is promoted.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

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
    tail,
    wait_ready,
)

#: small and quick: a standby retries its primary every 100 ms, not every 5 s
SETTINGS = [
    "fsync=off", "full_page_writes=off", "shared_buffers=16MB", "max_connections=60",
    "wal_retrieve_retry_interval=100ms", "wal_receiver_status_interval=1s",
    "wal_sender_timeout=10s", "max_wal_size=256MB", "log_min_messages=warning",
    "log_line_prefix=%m [%p] ", "log_connections=off",
]


@dataclass
class Node:
    name: str
    port: int
    data: Path
    log_path: Path
    server: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, dbname: str = "postgres") -> str:
        """This node alone."""
        return admin_url(self.port, dbname)

    def sql(self, query: str, *params: object) -> list[tuple[object, ...]]:
        with psycopg.connect(self.url(), autocommit=True, connect_timeout=5) as conn:
            cur = conn.execute(query, params or None)
            return cur.fetchall() if cur.description else []

    @property
    def pid(self) -> int | None:
        return self.server.pid if self.server is not None and self.server.poll() is None else None


@dataclass
class PgCluster:
    """`primary` serves writes; `standby` (None after a failover until `heal`) streams from it,
    synchronously. `timings` holds how long each step took, in seconds."""

    programs: Path
    owner: Owner
    home: Path
    nodes: tuple[Node, Node]
    primary: Node
    standby: Node | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def url(self, dbname: str = "postgres") -> str:
        """Both nodes, the libpq way, asking for the one that takes writes."""
        hosts = ",".join(n.address for n in self.nodes)
        return f"postgresql://{SUPERUSER}@{hosts}/{dbname}?target_session_attrs=read-write"

    def new_database(self, template: str | None = None) -> str:
        """A fresh database on the primary (the standby gets it too); its multi-host URL."""
        name = f"tasks_test_{uuid.uuid4().hex[:10]}"
        query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            query = sql.SQL("{} TEMPLATE {}").format(query, sql.Identifier(template))
        with psycopg.connect(self.primary.url(), autocommit=True) as conn:
            conn.execute(query)
        return self.url(name)

    # -- losing the primary -------------------------------------------------------------------
    def failover(self) -> Node:
        """The primary dies at once (`pg_ctl stop -m immediate`: no shutdown checkpoint, its
        clients cut off) and the standby is promoted; the new primary, alone."""
        old, new = self.primary, self._standby()
        began = time.monotonic()
        self._pg_ctl("stop", "-D", old.data, "-m", "immediate")
        self._reap(old)
        self._promote(new)
        self.primary, self.standby = new, None
        self.timings["failover"] = time.monotonic() - began
        return new

    def switchover(self) -> Node:
        """A clean swap: the primary stops fast (its clients told, its last WAL sent), the
        standby takes every bit of it and is promoted, and the old primary comes back as a
        read-only standby of the new one, synchronous again; the new primary."""
        old, new = self.primary, self._standby()
        began = time.monotonic()
        self._pg_ctl("stop", "-D", old.data, "-m", "fast")
        self._reap(old)
        last = self._controldata(old, "Latest checkpoint location")  # the shutdown checkpoint
        self._until(lambda: new.sql("SELECT pg_last_wal_replay_lsn() > %s::pg_lsn", last)[0][0],
                    f"{new.name} to replay {old.name}'s shutdown checkpoint", new)
        self._promote(new)
        self.primary, self.standby = new, None
        self.timings["switchover_writable"] = time.monotonic() - began
        (old.data / "standby.signal").touch()
        self.owner.own(old.data / "standby.signal")
        self._start(old, f"host=127.0.0.1 port={new.port} user={SUPERUSER} "
                           f"application_name={old.name}")
        self._synchronous(old)
        self.timings["switchover"] = time.monotonic() - began
        return new

    def heal(self) -> None:
        """A standby again if there is none: the lost node is made anew from the primary
        (pg_basebackup -R) and streams synchronously."""
        if self.standby is not None:
            return
        began = time.monotonic()
        lost = next(n for n in self.nodes if n is not self.primary)
        if lost.pid is not None:
            stop(lost.server)  # type: ignore[arg-type]
        shutil.rmtree(lost.data, ignore_errors=True)
        self._base_backup(lost)
        self._start(lost)
        self._synchronous(lost)
        self.timings["heal"] = time.monotonic() - began

    def close(self) -> None:
        for node in self.nodes:
            if node.server is not None:
                stop(node.server)
        shutil.rmtree(self.home, ignore_errors=True)

    # -- the steps ----------------------------------------------------------------------------
    def _standby(self) -> Node:
        if self.standby is None:
            raise AssertionError("no standby to promote: heal() the cluster first")
        return self.standby

    def _start(self, node: Node, primary_conninfo: str | None = None) -> None:
        settings = [*SETTINGS, f"cluster_name={node.name}"]
        if primary_conninfo is not None:
            settings.append(f"primary_conninfo={primary_conninfo}")
        node.server = start(self.programs, self.owner, node.data, node.port, self.home,
                            node.log_path, settings)
        wait_ready(node.server, node.url(), node.log_path)

    def _base_backup(self, node: Node) -> None:
        self.owner.run(self.programs / "pg_basebackup", "-D", node.data, "-d",
                       f"host=127.0.0.1 port={self.primary.port} user={SUPERUSER} "
                       f"application_name={node.name}",
                       "-R", "-c", "fast", "-X", "stream", "--no-sync", "--no-manifest")

    def _synchronous(self, standby: Node) -> None:
        """`standby` streams from the primary, which then waits for it on every commit."""
        primary = self.primary

        def state() -> str | None:
            rows = primary.sql("SELECT sync_state FROM pg_stat_replication "
                               "WHERE application_name = %s AND state = 'streaming'",
                               standby.name)
            return str(rows[0][0]) if rows else None

        self._until(state, f"{standby.name} to stream from {primary.name}", standby)
        primary.sql("ALTER SYSTEM SET synchronous_standby_names = '*'")
        primary.sql("SELECT pg_reload_conf()")
        self._until(lambda: state() == "sync", f"{standby.name} to be synchronous", standby)
        self.standby = standby

    def _promote(self, node: Node) -> None:
        """Asynchronous first (alone, it must not wait for a standby), then promoted."""
        node.sql("ALTER SYSTEM RESET synchronous_standby_names")
        node.sql("SELECT pg_reload_conf()")
        self._pg_ctl("promote", "-D", node.data, "-w", "-t", "30")

    def _pg_ctl(self, *args: str | Path) -> None:
        self.owner.run(self.programs / "pg_ctl", *args)

    def _controldata(self, node: Node, key: str) -> str:
        out = self.owner.run(self.programs / "pg_controldata", "-D", node.data)
        return next(line.split(":", 1)[1].strip() for line in out.splitlines()
                    if line.startswith(key + ":"))

    def _reap(self, node: Node) -> None:
        if node.server is not None:
            node.server.wait(30)  # pg_ctl waited for it to exit; this collects its status

    def _until(self, check: object, what: str, node: Node, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(psycopg.OperationalError):
                if check():  # type: ignore[operator]
                    return
            if time.monotonic() > deadline:
                raise Unavailable(f"timed out after {timeout}s waiting for {what}: "
                                  f"{tail(node.log_path)}")
            time.sleep(0.02)


def start_cluster(machine_url: str) -> PgCluster:
    """A started cluster (primary `a`, synchronous standby `b`): `close()` it after use.
    Raises Unavailable, having cleaned up, when it cannot start; `timings["start"]` says how
    long it took."""
    began = time.monotonic()
    programs, owner = bindir(machine_url), Owner.find()
    home = Path(tempfile.mkdtemp(prefix="tasks-pgcluster-", dir=_memory()))
    nodes = tuple(Node(name, free_port(), home / name, _log(name, owner)) for name in "ab")
    cluster = PgCluster(programs, owner, home, nodes, primary=nodes[0])  # type: ignore[arg-type]
    try:
        owner.own(home)
        initdb(programs, owner, cluster.primary.data, "--wal-segsize=1", "--locale=C")
        cluster.timings["initdb"] = time.monotonic() - began
        cluster._start(cluster.primary)
        cluster._base_backup(nodes[1])
        cluster._start(nodes[1])
        cluster._synchronous(nodes[1])
    except BaseException:
        cluster.close()
        raise
    cluster.timings["start"] = time.monotonic() - began
    return cluster


def _memory() -> str | None:
    """A directory in memory if there is one: initdb and pg_basebackup write twice as fast."""
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK) else None


def _log(name: str, owner: Owner) -> Path:
    """Kept after the cluster is gone, as the tests' process logs are."""
    path = Path(tempfile.mkstemp(prefix=f"tasks-pgcluster-{name}-", suffix=".log")[1])
    owner.own(path)
    return path
