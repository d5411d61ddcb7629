"""A failed connection as one line: what went wrong, which setting, the likely fix; no passwords."""

from __future__ import annotations

import re
from dataclasses import dataclass

from domain.errors import ServiceUnavailable

#: `scheme://user:password@` (the password dropped) and libpq's `password=...`.
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][\w+.-]*://[^\s:/@\"']*:)[^\s@\"']*@")
_KEY_PASSWORD = re.compile(r"(?P<head>\bpassword\s*=\s*)('[^']*'|\S+)", re.IGNORECASE)
MASK = "***"


def scrub(text: str) -> str:
    """`text` with every password in a URL or a libpq conninfo string replaced by ***."""
    text = _URL_PASSWORD.sub(lambda m: f"{m['head']}{MASK}@", text)
    return _KEY_PASSWORD.sub(lambda m: f"{m['head']}{MASK}", text)


def first_line(text: str, limit: int = 200) -> str:
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    return line if len(line) <= limit else line[: limit - 1] + "…"


@dataclass(frozen=True)
class Diagnosis:
    """Why a connection to a backing service failed.

    `summary` is safe to show to anyone (`/health/ready`): no host, user or password. `detail`
    is for the operator's log. `permanent` means retrying cannot help until someone changes a
    setting or the service's configuration (a wrong password, a missing vhost).
    """

    setting: str
    summary: str
    detail: str
    fix: str
    permanent: bool = False
    #: what readiness suggests; by default to check the setting
    hint: str = ""

    def line(self, url: str) -> str:
        """The one line a person reads: the setting and its value, what happened, what to do."""
        tail = "; this will not fix itself" if self.permanent else ""
        return f"{self.setting}={scrub(url)}: {self.detail}; {self.fix}{tail}"

    def short(self) -> str:
        """For readiness: `connection refused (check TASKS_DATABASE_URL)`."""
        return f"{self.summary} ({self.hint or 'check ' + self.setting})"


class ConnectionFailed(ServiceUnavailable):
    """A backing service refused or could not be reached; the message is the one line."""

    def __init__(self, diagnosis: Diagnosis, url: str) -> None:
        super().__init__(diagnosis.line(url))
        self.diagnosis = diagnosis
