"""The machine description and the one table a run prints."""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
from collections.abc import Sequence
from pathlib import Path

import psycopg

from bench.context import Row


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def _ram_gib() -> float:
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    return float("nan")


def _postgres_version(url: str) -> str:
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            return f"PostgreSQL {row[0] if row else '?'}"
    except psycopg.Error:
        return "PostgreSQL ?"


def _rabbitmq_version() -> str:
    try:
        out = subprocess.run(
            ["rabbitmqctl", "-q", "version"], capture_output=True, text=True, timeout=30
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        out = ""
    return f"RabbitMQ {out or '?'}"


def machine(database_url: str) -> list[str]:
    cpus = len(os.sched_getaffinity(0))
    return [
        f"machine: nproc {cpus} ({_cpu_model()}), RAM {_ram_gib():.1f} GiB, "
        f"{platform.system()} {platform.release()}",
        f"software: Python {platform.python_version()}, {_postgres_version(database_url)}, "
        f"{_rabbitmq_version()}",
    ]


def table(title: str, header: Sequence[str], rows: Sequence[Row]) -> str:
    cells = [list(header), *([r.scenario, r.setting, r.result] for r in rows)]
    widths = [max(len(c[i]) for c in cells) for i in range(3)]
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def line(cell: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cell, widths, strict=True)) + " |"

    return "\n".join([title, rule, line(cells[0]), rule, *map(line, cells[1:]), rule])
