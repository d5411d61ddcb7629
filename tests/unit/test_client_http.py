"""The client's HTTP side on an in-process transport: keys, problems, drops, one-line errors."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import httpx
import pytest

from entrypoints.client.http import ClientError, Service, ServiceError
from entrypoints.client.sse import Dropped

Handler = Callable[[httpx.Request], httpx.Response]


def service(handler: Handler, key: str | None = None) -> Service:
    return Service("http://tasks.test:8000/", key, transport=httpx.MockTransport(handler))


def problem(status: int, detail: str, title: str = "Refused") -> httpx.Response:
    return httpx.Response(status, json={"type": "about:blank", "title": title, "status": status,
                                        "detail": detail},
                          headers={"Content-Type": "application/problem+json"})


def test_the_key_goes_as_a_bearer_token_and_the_url_loses_its_slash() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"items": [], "next_cursor": None})

    with service(handler, key="s3cret") as tasks:
        assert tasks.json("GET", "/tasks") == {"items": [], "next_cursor": None}
    assert seen[0].headers["Authorization"] == "Bearer s3cret"
    assert str(seen[0].url) == "http://tasks.test:8000/tasks"
    with service(handler) as tasks:
        tasks.json("GET", "/tasks")
    assert "Authorization" not in seen[1].headers


def test_a_problem_answer_is_its_detail() -> None:
    with service(lambda r: problem(409, "task 1 is error"), key="k") as tasks, \
            pytest.raises(ServiceError, match=r"^task 1 is error$") as caught:
        tasks.call("POST", "/tasks/1/cancel")
    assert caught.value.status == 409


@pytest.mark.parametrize(("key", "said"), [
    (None, "needs an API key: --api-key or TASKS_API_KEY"),
    ("wrong", "the service refused the API key: check --api-key or TASKS_API_KEY"),
])
def test_a_401_says_what_to_do_about_the_key(key: str | None, said: str) -> None:
    with service(lambda r: problem(401, "an API key is required"), key=key) as tasks, \
            pytest.raises(ServiceError, match=f"^{said}$"):
        tasks.call("GET", "/tasks")


def test_an_endpoint_the_service_does_not_have_is_named() -> None:
    with service(lambda r: problem(404, "Not Found", "Not found")) as tasks, \
            pytest.raises(ServiceError, match=r"has no POST /maintenance/prune: is it older"):
        tasks.call("POST", "/maintenance/prune")


def test_an_error_that_is_not_a_problem_names_the_status() -> None:
    with service(lambda r: httpx.Response(502, text="<html>Bad gateway</html>")) as tasks, \
            pytest.raises(ServiceError, match="answered 502 Bad Gateway to GET /tasks"):
        tasks.call("GET", "/tasks")


def test_a_success_that_is_not_json_is_not_the_tasks_service() -> None:
    with service(lambda r: httpx.Response(200, text="<html>hello</html>")) as tasks, \
            pytest.raises(ClientError, match="is not JSON: is --url the tasks service"):
        tasks.json("GET", "/tasks")


def refuse(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("[Errno 111] Connection refused", request=request)


def stall(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("timed out", request=request)


@pytest.mark.parametrize(("handler", "said"), [
    (refuse, "cannot reach the service at http://tasks.test:8000 (connection refused): "
             "check --url or TASKS_URL"),
    (stall, "the service at http://tasks.test:8000 did not answer in time: is it "
            "overloaded, or is --url (TASKS_URL) wrong?"),
])
def test_no_answer_is_one_sentence_naming_the_url_setting(handler: Handler, said: str) -> None:
    with service(handler) as tasks, pytest.raises(ClientError) as caught:
        tasks.call("GET", "/tasks")
    assert str(caught.value) == said


@pytest.mark.parametrize("url", ["localhost:8000", "ftp://host", "http://", "not a url"])
def test_an_url_that_is_no_http_address_is_refused_before_any_request(url: str) -> None:
    with pytest.raises(ClientError, match="must look like http://host:port"):
        Service(url, None)


class Broken(httpx.SyncByteStream):
    """A body that breaks off after some bytes, like a connection reset mid-stream."""

    def __init__(self, first: bytes) -> None:
        self.first = first

    def __iter__(self) -> Iterator[bytes]:
        yield self.first
        raise httpx.RemoteProtocolError("peer closed connection without sending complete body")


def test_a_stream_sends_the_last_event_id_and_a_broken_one_is_dropped() -> None:
    sent: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.headers.get("Last-Event-ID"))
        return httpx.Response(200, headers={"Content-Type": "text/event-stream"},
                              stream=Broken(b"id: 5\ndata: x\n\n"))

    with service(handler) as tasks:
        lines: list[str] = []
        with pytest.raises(Dropped, match="broke"):
            lines.extend(tasks.lines("/tasks/1/events", "4"))
    assert sent == ["4"]
    assert lines == ["id: 5", "data: x", ""]


def test_a_stream_refused_with_a_4xx_is_final_and_a_5xx_is_worth_resuming() -> None:
    with service(lambda r: problem(404, "task 1 does not exist")) as tasks, \
            pytest.raises(ServiceError, match="does not exist"):
        list(tasks.lines("/tasks/1/events", ""))
    with service(lambda r: problem(503, "database unreachable")) as tasks, \
            pytest.raises(Dropped, match="database unreachable"):
        list(tasks.lines("/tasks/1/events", ""))


def test_a_body_goes_as_json() -> None:
    bodies: list[object] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(200, json={})

    with service(handler) as tasks:
        tasks.call("POST", "/tasks/1/retry", body={"reason": "flaky"})
    assert bodies == [{"reason": "flaky"}]
