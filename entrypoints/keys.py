"""API keys: `name:scope:secret` entries, and the scopes they grant."""

from __future__ import annotations

import enum
import hashlib
import hmac
import re

import msgspec


class Scope(enum.IntEnum):
    """Each scope includes the ones below it."""

    READ = 1  # GET endpoints and event streams
    WRITE = 2  # read + POST /tasks
    ADMIN = 3  # write + retry, cancel and maintenance

    @classmethod
    def named(cls, name: str) -> Scope:
        return cls[name.upper()]


class ApiKey(msgspec.Struct, frozen=True):
    name: str
    scope: Scope
    digest: bytes  # sha256 of the secret: the secret itself is not kept

    def __repr__(self) -> str:
        return f"ApiKey({self.name!r}, {self.scope.name.lower()})"


_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")


def parse_api_keys(text: str) -> tuple[ApiKey, ...]:
    """`name:scope:secret,...` (secrets may contain `:`). Raises ValueError naming the entry
    by position and name, never by secret."""
    keys: list[ApiKey] = []
    for n, entry in enumerate((e.strip() for e in text.split(",") if e.strip()), start=1):
        name, _, rest = entry.partition(":")
        scope, _, secret = rest.partition(":")
        if not _NAME.fullmatch(name):
            raise ValueError(f"entry {n}: the name must be 1-64 letters, digits or _.@- "
                             "(the form is name:scope:secret)")
        if scope.lower() not in ("read", "write", "admin"):
            raise ValueError(f"entry {n} ({name}): the scope must be read, write or admin")
        if not secret:
            raise ValueError(f"entry {n} ({name}): the secret is empty")
        keys.append(ApiKey(name, Scope.named(scope), digest(secret)))
    if len({k.name for k in keys}) != len(keys):
        raise ValueError("two entries have the same name")
    if len({k.digest for k in keys}) != len(keys):
        raise ValueError("two entries have the same secret")
    return tuple(keys)


def digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def find_key(keys: tuple[ApiKey, ...], secret: str) -> ApiKey | None:
    """The key with this secret. Compares against every key in constant time, so neither
    which key matched nor how much of a secret was right shows in the timing."""
    presented = digest(secret)
    found = None
    for key in keys:
        if hmac.compare_digest(key.digest, presented):
            found = key
    return found
