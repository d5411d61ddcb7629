"""`tasks submit --file` against an in-process fake of POST /tasks/batch: batches, order, lines."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from entrypoints.client import bulk
from entrypoints.client.http import ClientError, Service
from entrypoints.client.output import Out


class FakeBatch:
    """POST /tasks/batch as its contract says: 1..1,000 tasks, all or none, the first bad item
    named `tasks[i]`, and an Idempotency-Key that gives back the same tasks."""

    def __init__(self) -> None:
        self.created = 0
        self.calls: list[tuple[str | None, list[dict[str, Any]]]] = []
        self.keys: dict[str, tuple[bytes, list[dict[str, Any]]]] = {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert (request.method, request.url.path) == ("POST", "/tasks/batch")
        items = json.loads(request.content)["tasks"]
        key = request.headers.get("Idempotency-Key")
        self.calls.append((key, items))
        assert 1 <= len(items) <= 1000
        if key in self.keys:
            content, tasks = self.keys[key]
            if content != request.content:
                return problem(409, "the idempotency key was used with another batch")
            return httpx.Response(201, json={"items": tasks},
                                  headers={"Idempotent-Replayed": "true"})
        for i, item in enumerate(items):
            if not item.get("title"):
                return problem(400, f"tasks[{i}].title: Expected `str` of length >= 1")
        tasks = []
        for item in items:
            self.created += 1
            tasks.append({"id": f"01a21f4d-f8c0-7d76-8fd6-{self.created:012d}", **item})
        if key:
            self.keys[key] = (request.content, tasks)
        return httpx.Response(201, json={"items": tasks})


def problem(status: int, detail: str) -> httpx.Response:
    return httpx.Response(status, json={"title": "Refused", "status": status, "detail": detail},
                          headers={"Content-Type": "application/problem+json"})


def submit(fake: FakeBatch, file: str, key: str | None = None,
           as_json: bool = False) -> list[str]:
    out = Out(as_json=as_json, stream=io.StringIO(), colour=False)
    args = argparse.Namespace(file=file, idempotency_key=key)
    with Service("http://tasks.test", None, transport=httpx.MockTransport(fake)) as service:
        assert bulk.submit_file(service, args, out) == 0
    return out.stream.getvalue().splitlines()  # type: ignore[attr-defined]


def lines_file(tmp_path: Path, *lines: str) -> str:
    path = tmp_path / "tasks.jsonl"
    path.write_text("".join(f"{line}\n" for line in lines))
    return str(path)


def test_2500_lines_go_in_three_batches_and_the_ids_come_out_in_the_files_order(
        tmp_path: Path) -> None:
    fake = FakeBatch()
    file = lines_file(tmp_path, *(json.dumps({"title": f"t{n}"}) for n in range(2500)))
    ids = submit(fake, file)
    assert [len(items) for _, items in fake.calls] == [1000, 1000, 500]
    assert [item["title"] for _, items in fake.calls for item in items] == [
        f"t{n}" for n in range(2500)]
    assert ids == [f"01a21f4d-f8c0-7d76-8fd6-{n:012d}" for n in range(1, 2501)]


def test_a_key_becomes_key_slash_batch_number_and_running_the_file_again_creates_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeBatch()
    file = lines_file(tmp_path, *(json.dumps({"title": f"t{n}"}) for n in range(1500)))
    first = submit(fake, file, key="import-7")
    assert [key for key, _ in fake.calls] == ["import-7/1", "import-7/2"]
    again = submit(fake, file, key="import-7")
    assert again == first and fake.created == 1500
    assert capsys.readouterr().err.splitlines() == [
        "tasks: an earlier submit with the key import-7/1 made the tasks of lines 1-1000",
        "tasks: an earlier submit with the key import-7/2 made the tasks of lines 1001-1500"]


def test_blank_lines_are_skipped_and_each_line_is_sent_as_written(tmp_path: Path) -> None:
    fake = FakeBatch()
    file = lines_file(tmp_path, '{"title": "a", "payload": {"n": 1}, "delay_seconds": 60}', "",
                      "   ", '{"title": "b", "run_at": "2026-12-24T18:00:00+01:00"}')
    assert len(submit(fake, file, as_json=True)) == 2
    assert fake.calls[0][1] == [
        {"title": "a", "payload": {"n": 1}, "delay_seconds": 60},
        {"title": "b", "run_at": "2026-12-24T18:00:00+01:00"}]


def test_json_prints_each_created_task(tmp_path: Path) -> None:
    documents = submit(FakeBatch(), lines_file(tmp_path, '{"title": "a"}', '{"title": "b"}'),
                       as_json=True)
    assert [json.loads(d)["title"] for d in documents] == ["a", "b"]


def test_standard_input_is_read_for_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO('\ufeff{"title": "from a pipe"}\n'))
    fake = FakeBatch()
    assert len(submit(fake, "-")) == 1
    assert fake.calls[0][1] == [{"title": "from a pipe"}]


@pytest.mark.parametrize(("line", "said"), [
    ('{"title": "x"', "line 3: not JSON (Expecting ',' delimiter, column 14); nothing was sent"),
    ('{"title": NaN}', "line 3: not JSON (NaN is not a JSON number); nothing was sent"),
    ('["x"]', "line 3: each line must be one JSON object, like"),
])
def test_a_line_that_is_not_a_json_object_stops_everything_before_a_batch_goes(
        tmp_path: Path, line: str, said: str) -> None:
    fake = FakeBatch()
    file = lines_file(tmp_path, '{"title": "a"}', "", line, '{"title": "d"}')
    with pytest.raises(ClientError, match=r"^.*tasks\.jsonl, ") as refused:
        submit(fake, file)
    assert said in str(refused.value)
    assert fake.calls == []


def test_an_item_the_service_refuses_is_named_by_its_line_after_what_went_before(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeBatch()
    titles = [f"t{n}" for n in range(1500)]
    titles[1200] = ""
    file = lines_file(tmp_path, "", *(json.dumps({"title": t}) for t in titles))
    out = Out(as_json=False, stream=io.StringIO(), colour=False)
    args = argparse.Namespace(file=file, idempotency_key=None)
    with (Service("http://tasks.test", None, transport=httpx.MockTransport(fake)) as service,
          pytest.raises(ClientError) as refused):
        bulk.submit_file(service, args, out)
    assert str(refused.value) == (f"{file}, line 1202: tasks[200].title: Expected `str` of "
                                  "length >= 1")
    assert len(out.stream.getvalue().splitlines()) == 1000  # type: ignore[attr-defined]
    assert capsys.readouterr().err == (
        f"tasks: the first 1,000 tasks (to line 1,001 of {file}) were created, and their ids "
        "printed; to go on, submit the lines after line 1,001\n")


def test_large_tasks_make_smaller_batches_under_the_default_body_limit(tmp_path: Path) -> None:
    fake = FakeBatch()
    big = "x" * 2000
    file = lines_file(tmp_path, *(json.dumps({"title": f"t{n}", "payload": {"blob": big}})
                                  for n in range(1200)))
    submit(fake, file)
    sizes = [len(items) for _, items in fake.calls]
    assert sum(sizes) == 1200 and len(sizes) == 3 and max(sizes) < 1000
    for _, items in fake.calls:
        assert len(json.dumps({"tasks": items}, separators=(",", ":"))) < 1_048_576


def test_an_empty_file_sends_nothing_and_says_so(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeBatch()
    assert submit(fake, lines_file(tmp_path, "", "")) == []
    assert fake.calls == []
    assert "holds no tasks" in capsys.readouterr().err


def test_a_file_that_cannot_be_read_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ClientError, match=r"^cannot read .*missing\.jsonl: No such file"):
        submit(FakeBatch(), str(tmp_path / "missing.jsonl"))
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes(b'{"title": "caf\xe9"}\n')
    with pytest.raises(ClientError, match=r"is not UTF-8 text \(byte 14\)$"):
        submit(FakeBatch(), str(latin))
