"""HTTP to the service: the API key as a Bearer token, every failure as one sentence to show."""

from __future__ import annotations

import json
import re
from collections.abc import Generator
from typing import Any

import httpx

from entrypoints.client.sse import Dropped

#: Requests answer within 10 s even when PostgreSQL is gone (the service's own deadline).
TIMEOUT = httpx.Timeout(15.0, connect=5.0)
#: An idle event stream gets a comment at least every 15 s: silence for longer is a dead peer.
STREAM_TIMEOUT = httpx.Timeout(5.0, read=45.0)
_ERRNO = re.compile(r"^\[Errno -?\d+\]\s*")


class ClientError(Exception):
    """What the user is told, in one line on stderr; the command exits with 2."""


class ServiceError(ClientError):
    """The service answered with an error (a problem document, usually)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class Service:
    """One connection pool to the service at `url`, for the life of one command."""

    def __init__(self, url: str, api_key: str | None,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.url = checked_url(url)
        self.has_key = bool(api_key)
        headers = {"Accept": "application/json", "User-Agent": "tasks-cli"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        # Plain HTTP needs no certificates: loading them is a good part of a command's start.
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=TIMEOUT,
                                  transport=transport, verify=self.url.startswith("https:"))

    def __enter__(self) -> Service:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def call(self, method: str, path: str, *, body: Any = None, timeout: float | None = None,
             **options: Any) -> httpx.Response:
        """The answer, if it is a success; otherwise ClientError saying why."""
        deadline = httpx.Timeout(timeout, connect=5.0) if timeout else TIMEOUT
        try:
            answer = self._http.request(method, path, json=body, timeout=deadline, **options)
        except httpx.TransportError as exc:
            raise ClientError(self.unreachable(exc)) from None
        if answer.is_error:
            raise self.refusal(method, path, answer)
        return answer

    def json(self, method: str, path: str, **options: Any) -> Any:
        answer = self.call(method, path, **options)
        try:
            return answer.json()
        except ValueError:
            raise ClientError(f"the answer from {self.url} is not JSON: is --url the tasks "
                              "service?") from None

    def lines(self, path: str, last_event_id: str) -> Generator[str, None, None]:
        """The lines of an event stream. Raises Dropped when the connection breaks, ClientError
        when the service refuses (a 4xx: resuming would not help)."""
        headers = {"Accept": "text/event-stream"}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        try:
            with self._http.stream("GET", path, headers=headers, timeout=STREAM_TIMEOUT) as answer:
                if answer.status_code >= 500:
                    answer.read()
                    raise Dropped(self.refusal("GET", path, answer).args[0])
                if answer.is_error:
                    answer.read()
                    raise self.refusal("GET", path, answer)
                yield from answer.iter_lines()
        except httpx.TransportError as exc:
            raise Dropped(self.unreachable(exc)) from None

    def unreachable(self, exc: httpx.TransportError) -> str:
        if isinstance(exc, httpx.TimeoutException):
            return (f"the service at {self.url} did not answer in time: is it overloaded, or is "
                    "--url (TASKS_URL) wrong?")
        reason = _ERRNO.sub("", str(exc)).lower() or type(exc).__name__
        if isinstance(exc, httpx.ConnectError):
            return f"cannot reach the service at {self.url} ({reason}): check --url or TASKS_URL"
        return f"the connection to {self.url} broke ({reason})"

    def refusal(self, method: str, path: str, answer: httpx.Response) -> ServiceError:
        status = answer.status_code
        if status == 401:
            why = ("the service refused the API key: check --api-key or TASKS_API_KEY"
                   if self.has_key else "needs an API key: --api-key or TASKS_API_KEY")
            return ServiceError(why, status)
        problem = _problem(answer)
        detail = str(problem.get("detail") or "")
        if status == 404 and detail == "Not Found":  # the router's: no such endpoint at all
            return ServiceError(f"the service at {self.url} has no {method} {path}: is it "
                                "older than this client?", status)
        if not detail:
            return ServiceError(f"the service answered {status} {answer.reason_phrase} to "
                                f"{method} {path}", status)
        return ServiceError(detail, status)


def _problem(answer: httpx.Response) -> dict[str, Any]:
    try:
        body = json.loads(answer.content)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def checked_url(url: str) -> str:
    """The service's base URL without a trailing slash; ClientError if it is not one."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise ClientError(f"--url (or TASKS_URL) must look like http://host:port, not {url!r}")
    return url.rstrip("/")
