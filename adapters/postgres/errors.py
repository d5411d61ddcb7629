"""What a failed attempt to connect to PostgreSQL means for TASKS_DATABASE_URL, in one line."""

from __future__ import annotations

import re

import psycopg
import psycopg_pool

from adapters.diagnosis import Diagnosis, first_line, scrub

SETTING = "TASKS_DATABASE_URL"
_SERVER = re.compile(r'server at "(?P<host>[^"]+)" \([^)]*\), port (?P<port>\d+)'
                     r'|server at "(?P<host2>[^"]+)", port (?P<port2>\d+)')
_USER = re.compile(r'user "(?P<user>[^"]+)"')
_HOST = re.compile(r"(?:resolve host|translate host name) [\"'](?P<host>[^\"']+)[\"']")
_MISSING = re.compile(r'(?P<what>database|role) "(?P<name>[^"]+)" does not exist')
#: with several hosts, psycopg lists each attempt: `- host: 'h', port: 'p', ...failed: why`
_ATTEMPT = re.compile(r"^- host: '(?P<host>[^']*)', port: '(?P<port>[^']*)'.*failed: (?P<why>.*)$",
                      re.MULTILINE)
#: libpq's words for a server that target_session_attrs turned down
_READ_ONLY = ("session is read-only", "server is in hot standby mode")


def _where(text: str) -> str:
    found = _SERVER.search(text)
    if found is None:
        return "the configured host and port"
    return f"{found['host'] or found['host2']}:{found['port'] or found['port2']}"


def _user(text: str) -> str:
    found = _USER.search(text)
    return f' "{found["user"]}"' if found else ""


def _short(why: str) -> str:
    """One attempt's failure in a few words."""
    why = why.removeprefix("FATAL:").strip()
    if any(words in why for words in _READ_ONLY):
        return "read-only (a standby?)"
    if "Connection refused" in why:
        return "connection refused"
    return "no answer in time" if "timeout expired" in why else first_line(why, 80)


def _hosts(text: str) -> Diagnosis | None:
    """Several hosts tried and none taken: what each said."""
    attempts = [(f"{m['host']}:{m['port']}", _short(m["why"])) for m in _ATTEMPT.finditer(text)]
    if len(attempts) < 2:
        return None
    each = ", ".join(f"{where} {why}" for where, why in attempts)
    if any(why.startswith("read-only") for _, why in attempts):
        return Diagnosis(SETTING, "no primary among the hosts",
                         f"no host takes writes ({each})",
                         "is the primary up, and among the hosts (after a failover: the "
                         "promoted one)?")
    return Diagnosis(SETTING, "no host answered", f"no host answered ({each})",
                     "is PostgreSQL running there, and are the hosts and ports right?")


def diagnose(exc: BaseException) -> Diagnosis:
    """The diagnosis of an exception raised while connecting (psycopg's texts, verified)."""
    text = scrub(str(exc))

    def say(summary: str, detail: str, fix: str, permanent: bool = False, hint: str = ""
            ) -> Diagnosis:
        return Diagnosis(SETTING, summary, detail, fix, permanent, hint)

    if isinstance(exc, psycopg.ProgrammingError):  # raised before any network: the URL itself
        return say("not a PostgreSQL URL", f"not a PostgreSQL URL ({first_line(text)})",
                   "write it as postgresql://user:password@host:5432/dbname", permanent=True)
    if isinstance(exc, psycopg_pool.PoolTimeout):
        return say("no connection yet", first_line(text), "is PostgreSQL up and reachable?")
    if "no password supplied" in text:
        return say("authentication failed", "the server asks for a password and none is given",
                   "add it: postgresql://user:password@host:5432/dbname", permanent=True)
    if "authentication failed" in text:
        return say("authentication failed", f"authentication failed for user{_user(text)}",
                   "check the user name and password in it", permanent=True)
    if (missing := _MISSING.search(text)) is not None:
        what, name = missing["what"], missing["name"]
        fix = ("run `tasks migrate` (it creates the database), or correct the database name"
               if what == "database" else "correct the user name in it")
        hint = "run tasks migrate, which creates it" if what == "database" else ""
        return say(f'{what} "{name}" does not exist', f'{what} "{name}" does not exist', fix,
                   permanent=True, hint=hint)
    if "no pg_hba.conf entry" in text:
        return say("connection not allowed by the server (pg_hba.conf)", first_line(text),
                   "allow this client in the server's pg_hba.conf", permanent=True)
    if (several := _hosts(text)) is not None:
        return several
    if any(words in text for words in _READ_ONLY):
        return say("the server takes no writes", f"{_where(text)} takes no writes (a standby, "
                   "or read-only)", "point it at the primary, or list every host of the cluster")
    if "Connection refused" in text:
        return say("connection refused", f"connection refused at {_where(text)}",
                   "is PostgreSQL running there, and are the host and port right?")
    if (host := _HOST.search(text)) is not None or "Name or service not known" in text:
        name = f" {host['host']!r}" if host else ""
        return say("unknown host", f"unknown host{name}", "check the host name in it")
    if isinstance(exc, psycopg.errors.ConnectionTimeout) or "timeout expired" in text:
        return say("no answer (timed out)", f"no answer from {_where(text)} in time",
                   "is the host reachable from here (network, firewall)?")
    return say(first_line(text, 120), first_line(text),
               "check it, and that PostgreSQL is up and reachable")
