"""The primary among several hosts: found by libpq, and connections to an old one dropped.

With several hosts in TASKS_DATABASE_URL, libpq tries them in turn and keeps the first that
takes writes (`target_session_attrs=read-write`, the default here for several hosts: the service
writes). After a failover or a switchover the old primary is dead, or a read-only standby; its
connections are dropped by three cheap and honest signs, none of them a round trip of its own:

- a round trip that fails because the server hung up, or refuses a write (SQLSTATE 25006:
  deadline.py closes that connection), and the pool drains the others (same server);
- at each checkout (the pool's `check`), what the server sent while the connection sat idle,
  read without waiting: an end of file, or its last words before hanging up (SQLSTATE class
  57P: shut down, crashed), or a parameter the server reported with the last answer
  (`in_hot_standby`, `default_transaction_read_only`: libpq keeps them, PostgreSQL 14 on);
- the LISTEN connection looks at the same parameters after its liveness query (listener.py).

A round trip per checkout (psycopg_pool's `check_connection`) would say the same a little
sooner, at the price of one more round trip for every statement the service runs.
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg.conninfo import conninfo_to_dict

#: the `target_session_attrs` values that ask libpq for a server that takes writes
_WRITABLE = frozenset({"read-write", "primary"})
#: SQLSTATE class of a server that ends the session (57P01 admin shutdown, 57P02 crash, ...)
_ENDING = "57P"


def _params(url: str) -> dict[str, Any]:
    try:
        return conninfo_to_dict(url)
    except psycopg.ProgrammingError:  # a bad URL is reported when connecting
        return {}


def primary_options(url: str) -> dict[str, str]:
    """`target_session_attrs=read-write` for a URL with several hosts that asks for none: the
    service writes, and libpq's default would take the first server that answers."""
    params = _params(url)
    hosts = str(params.get("host") or params.get("hostaddr") or "")
    if "," in hosts and "target_session_attrs" not in params:
        return {"target_session_attrs": "read-write"}
    return {}


def wants_primary(url: str) -> bool:
    """Whether connections made from `url` must be to a server that takes writes."""
    attrs = primary_options(url).get("target_session_attrs")
    return (attrs or str(_params(url).get("target_session_attrs") or "")) in _WRITABLE


def server_of(conn: AsyncConnection[Any]) -> str:
    """`host:port` of the server a connection is on (libpq's, no round trip)."""
    try:
        return f"{conn.info.host}:{conn.info.port}"
    except psycopg.Error:  # closed meanwhile
        return "unknown"


def read_only(conn: AsyncConnection[Any]) -> bool:
    """The server said, with its last answer, that it takes no writes: a standby now, or a
    primary told to refuse them."""
    status = conn.info.parameter_status
    return "on" in (status("in_hot_standby"), status("default_transaction_read_only"))


def hear_last_words(conn: AsyncConnection[Any]) -> None:
    """Remember whether the server said it ends the connection's session (a notice, or an
    error while no statement runs: libpq hands both to the notice handler)."""
    ref = weakref.ref(conn)  # the connection holds the handler: no cycle through it

    def heard(diag: psycopg.errors.Diagnostic) -> None:
        if (diag.sqlstate or "").startswith(_ENDING) and (found := ref()) is not None:
            _ended.add(found)

    conn.add_notice_handler(heard)


#: connections whose server said it ends their session (weakly held)
_ended: weakref.WeakSet[AsyncConnection[Any]] = weakref.WeakSet()


def gone(conn: AsyncConnection[Any], primary: bool) -> str | None:
    """Why an idle connection must not be used, or None; reads what the server sent while it
    was idle, without waiting for more."""
    if conn.closed:
        return "the connection is closed"
    pgconn = conn.pgconn
    try:
        pgconn.consume_input()  # never waits: libpq's socket does not block
        pgconn.is_busy()  # parses it: notices reach hear_last_words, parameters libpq's table
    except psycopg.OperationalError:
        return "the server closed the connection"
    if conn in _ended:
        return "the server ended the session (shut down or crashed)"
    if primary and read_only(conn):
        return "the server takes no writes: it is not the primary (any more)"
    return None


def checkout_check(primary: bool, lost: Callable[[str, str], None]
                   ) -> Callable[[AsyncConnection[Any]], Awaitable[None]]:
    """The pool's `check`: a connection found gone is closed (so that the pool replaces it
    rather than keep it) and reported to `lost` (why, server); the pool then gives the caller
    another."""

    async def check(conn: AsyncConnection[Any]) -> None:
        if (why := gone(conn, primary)) is None:
            return
        lost(why, server_of(conn))
        await conn.close()
        raise psycopg.OperationalError(why)

    return check
