"""Loads the named SQL blocks of `sql/` once, and finds the migration files."""

from __future__ import annotations

import functools
import re
from pathlib import Path

from psycopg import sql

_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


def sql_dir() -> Path:
    """`sql/` ships inside the wheel as adapters/postgres/sql; in a checkout it is at the top."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "sql", here.parents[1] / "sql"):
        if (candidate / "queries.sql").is_file():
            return candidate
    raise FileNotFoundError("cannot find the sql/ folder next to the adapters package")


@functools.cache
def statements() -> dict[str, str]:
    """Each block without its leading comment lines: they are for readers, and a statement that
    starts with its verb is what the server's logs and a trace's span name show."""
    text = (sql_dir() / "queries.sql").read_text()
    parts = _NAME.split(text)[1:]
    return {name: _LEADING_COMMENTS.sub("", body.strip())
            for name, body in zip(parts[::2], parts[1::2], strict=True)}


_LEADING_COMMENTS = re.compile(r"\A(?:[ \t]*--[^\n]*\n)+")


def statement(name: str, **fragments: sql.Composable) -> sql.Composed:
    """The named block, with `{placeholders}` filled by psycopg.sql fragments."""
    return sql.SQL(statements()[name]).format(**fragments)


def migrations() -> list[Path]:
    return sorted((sql_dir() / "migrations").glob("*.sql"))
