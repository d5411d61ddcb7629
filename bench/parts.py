"""CPU seconds of each part of a running stack, read from /proc, to split the box's CPU by."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import psycopg

from bench.infra import BoxCpu

HZ = os.sysconf("SC_CLK_TCK")
BROKER_COMMANDS = ("beam.smp", "erl_child_setup", "epmd", "inet_gethost")


def _stat(pid: int) -> list[str] | None:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return None


def cpu_of(pids: Iterable[int]) -> float:
    """User + system CPU seconds of these processes so far (a process gone counts 0)."""
    total = 0
    for pid in pids:
        fields = _stat(pid)
        if fields:
            total += int(fields[11]) + int(fields[12])
    return total / HZ


def _all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def session(leader: int) -> list[int]:
    """The processes of the session that `leader` started (a `tasks` process and its children)."""
    return [pid for pid in _all_pids() if (f := _stat(pid)) and int(f[3]) == leader]


def by_command(*names: str) -> list[int]:
    found = []
    for pid in _all_pids():
        with contextlib.suppress(OSError):
            if Path(f"/proc/{pid}/comm").read_text().strip() in names:
                found.append(pid)
    return found


def postgres_pids(conn: psycopg.Connection[tuple]) -> list[int]:
    """The server processes that work for this database: its own backends, and the shared
    ones every write goes through (WAL writer, checkpointer, background writer, ...). Other
    databases' backends on the same server are left out."""
    rows = conn.execute(
        "SELECT pid FROM pg_stat_activity "
        "WHERE datname = current_database() OR backend_type <> 'client backend'"
    ).fetchall()
    return [int(r[0]) for r in rows]


def wal_lsn(conn: psycopg.Connection[tuple]) -> int:
    """Bytes of WAL written so far by the whole server."""
    row = conn.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn").fetchone()
    return int(row[0]) if row else 0


@dataclass(frozen=True)
class Split:
    """CPU seconds of each part over one interval, and of the whole box."""

    parts: Mapping[str, float]
    box: BoxCpu

    def stack_per_task(self, tasks: int) -> str:
        """The parts' CPU together: the box's less what its neighbours took."""
        return f"parts {1000 * sum(self.parts.values()) / max(tasks, 1):.2f} ms/task"

    def per_task(self, tasks: int) -> str:
        n = max(tasks, 1)
        other = self.box.busy - sum(self.parts.values())
        cells = [f"{name} {1000 * cpu / n:.2f}" for name, cpu in self.parts.items()]
        return f"{', '.join(cells)}, rest of box {1000 * other / n:.2f} ms/task"


class Meter:
    """Counters of named parts, each a set of pids found when the meter starts and found again
    when it is read: a process that appeared in between (a pool's new connection) counts whole,
    one that is gone by then counts nothing (its last figures cannot be read)."""

    def __init__(self, parts: Mapping[str, Callable[[], list[int]]]) -> None:
        self._find = dict(parts)
        self._start = {name: {pid: cpu_of([pid]) for pid in find()}
                       for name, find in parts.items()}
        self._box = BoxCpu.now()

    def read(self, **measured_elsewhere: float) -> Split:
        """The split so far; parts whose CPU was counted otherwise are added as given."""
        box = BoxCpu.now() - self._box
        parts = {name: self._since_start(name) for name in self._find}
        parts.update({k.replace("_", " "): v for k, v in measured_elsewhere.items()})
        return Split(parts, box)

    def _since_start(self, name: str) -> float:
        start = self._start[name]
        total = 0.0
        for pid in set(start) | set(self._find[name]()):
            if _stat(pid) is not None:
                total += cpu_of([pid]) - start.get(pid, 0.0)
        return total
