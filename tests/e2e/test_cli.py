"""End to end: the `tasks` client, run like a user, against real `api` and `worker` processes."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import uuid
from datetime import datetime
from pathlib import Path

from tests.e2e.cli import Live, client_env, tasks
from tests.support.amqp import amqp_client
from tests.support.processes import TASKS, Stack, eventually, free_port, wait_until

FINAL = {"completed", "error"}
OPS, VIEWER = "s3cret-ops", "s3cret-viewer"


def status(stack: Stack, task_id: str, key: str | None = None) -> str:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with stack.client() as http:
        return str(http.get(f"/tasks/{task_id}", headers=headers).json()["status"])


def submitted(stack: Stack, *args: str, **env: str) -> str:
    done = tasks(stack, "submit", *args, **env)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_submit_prints_only_the_id_and_show_and_list_find_the_task(stack: Stack) -> None:
    stack.api()
    stack.worker(TASKS_FAILURE_RATE="0")
    done = tasks(stack, "submit", "Resize image", "--description", "to 640px",
                 "--payload", '{"image_id": 42}')
    assert (done.returncode, done.stderr) == (0, "")
    task_id = done.stdout.removesuffix("\n")
    assert str(uuid.UUID(task_id)) == task_id
    wait_until(lambda: status(stack, task_id) == "completed", 30, "the task to complete")

    shown = tasks(stack, "show", task_id)
    assert (shown.returncode, shown.stderr) == (0, "")
    lines = shown.stdout.splitlines()
    assert lines[:3] == ["Resize image", f"  id        {task_id}",
                         "  status    completed  (1 attempt)"]
    start = lines.index("  description")
    assert lines[start:start + 6] == ["  description", "    to 640px", "  payload", "    {",
                                      '      "image_id": 42', "    }"]
    history = shown.stdout.split("History\n")[1].splitlines()
    assert history[0].split() == ["AT", "FROM", "TO", "ATTEMPT", "WORKER", "ACTOR", "REASON"]
    assert [row.split()[1:4] for row in history[1:]] == [
        ["new"], ["new", "in_progress", "1"], ["in_progress", "completed", "1"]]

    listed = tasks(stack, "list", "--status", "completed", "--status", "error", "--json")
    assert [json.loads(line)["id"] for line in listed.stdout.splitlines()] == [task_id]
    assert tasks(stack, "list", "--status", "new").stdout == "no tasks in new\n"
    table = tasks(stack, "list").stdout.splitlines()
    assert table[0].split() == ["ID", "STATUS", "TITLE", "ATTEMPTS", "CREATED", "UPDATED"]
    assert table[1].split()[:4] == [task_id, "completed", "Resize", "image"]

    unknown = tasks(stack, "show", str(uuid.uuid4()))
    assert unknown.returncode == 2 and unknown.stdout == ""
    assert unknown.stderr.startswith("tasks: task ") and unknown.stderr.endswith(
        " does not exist\n")


def test_the_client_options_may_stand_before_or_after_the_command(stack: Stack) -> None:
    stack.api()
    task_id = submitted(stack, "anywhere")
    closed = f"http://127.0.0.1:{free_port()}"  # TASKS_URL is wrong: only --url can help
    before = tasks(closed, "--url", stack.base_url, "--json", "show", task_id)
    after = tasks(closed, "show", task_id, "--json", "--url", stack.base_url)
    mixed = tasks(closed, "--json", "show", "--url", stack.base_url, task_id)
    assert before.returncode == after.returncode == mixed.returncode == 0, before.stderr
    assert before.stdout == after.stdout == mixed.stdout
    assert json.loads(before.stdout)["id"] == task_id


def test_submit_wait_follows_the_task_to_the_end_and_exits_0_when_it_completes(
        stack: Stack) -> None:
    stack.api()
    stack.worker(TASKS_FAILURE_RATE="0")
    done = tasks(stack, "submit", "quick", "--wait")
    assert (done.returncode, done.stderr) == (0, "")
    task_id, *changes = done.stdout.splitlines()
    assert str(uuid.UUID(task_id)) == task_id
    assert [line.split()[1:4] for line in changes] == [
        ["new", "→", "in_progress"], ["in_progress", "→", "completed"]]
    assert all("attempt 1  worker " in line for line in changes)


def test_submit_wait_exits_1_when_the_task_fails_and_a_retry_runs_it_again(
        stack: Stack) -> None:
    stack.api()
    stack.worker(TASKS_FAILURE_RATE="1")
    done = tasks(stack, "submit", "doomed", "--wait")
    assert (done.returncode, done.stderr) == (1, "")
    assert done.stdout.splitlines()[-1].endswith("emulated failure")
    assert " in_progress → error " in done.stdout.splitlines()[-1]

    as_json = tasks(stack, "submit", "doomed too", "--wait", "--json")
    assert as_json.returncode == 1
    documents = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert documents[0]["status"] == "new"
    assert [d["to_status"] for d in documents[1:]] == ["in_progress", "error"]
    task_id = documents[0]["id"]

    retried = tasks(stack, "retry", task_id, "--reason", "flaky disk")
    assert (retried.returncode, retried.stderr) == (0, "")
    assert retried.stdout == "retried: the task is new again, on its way to a worker " \
        "(1 attempt so far)\n"
    watched = tasks(stack, "watch", task_id)
    assert watched.returncode == 1, watched.stderr
    lines = watched.stdout.splitlines()
    assert [line.split()[1:4] for line in lines] == [
        ["created", "→", "new"], ["new", "→", "in_progress"], ["in_progress", "→", "error"],
        ["error", "→", "new"], ["new", "→", "in_progress"], ["in_progress", "→", "error"]]
    assert lines[3].endswith("flaky disk") and "attempt 2" in lines[4]


def test_watch_prints_each_change_while_it_happens(stack: Stack) -> None:
    stack.api()
    stack.worker(TASKS_FAILURE_RATE="0", TASKS_PROCESSING_MIN_SECONDS="4",
                 TASKS_PROCESSING_MAX_SECONDS="4")  # room for a busy machine's delays
    task_id = submitted(stack, "slow enough to watch")
    watch = Live(stack, "watch", task_id)
    try:
        assert " created     → new" in watch.next_line()
        assert " new         → in_progress  attempt 1  worker " in watch.next_line()
        seen_running = time.monotonic()
        assert watch.running() and status(stack, task_id) == "in_progress"
        assert " in_progress → completed    attempt 1  worker " in watch.next_line()
        assert time.monotonic() - seen_running > 1  # it came when it happened, not at once
        assert watch.finish() == 0
        assert len(watch.seen) == 3
    finally:
        watch.close()


def test_cancel_stops_a_task_and_retry_of_a_running_one_is_refused(stack: Stack) -> None:
    stack.api()
    stack.worker(TASKS_PROCESSING_MIN_SECONDS="60", TASKS_PROCESSING_MAX_SECONDS="60",
                 TASKS_WORKER_CONCURRENCY="1")
    running = submitted(stack, "long")
    wait_until(lambda: status(stack, running) == "in_progress", 30, "the task to start")
    waiting = submitted(stack, "behind it")
    assert status(stack, waiting) == "new"

    refused = tasks(stack, "retry", running)
    assert (refused.returncode, refused.stdout) == (2, "")
    assert refused.stderr == f"tasks: task {running} is in_progress and cannot go to new\n"

    at_once = tasks(stack, "cancel", waiting, "--reason", "changed my mind")
    assert (at_once.returncode, at_once.stderr) == (0, "")
    assert at_once.stdout == "cancelled: the task ended in error (cancelled: changed my mind)\n"
    again = tasks(stack, "cancel", waiting)
    assert again.returncode == 2
    assert again.stderr == f"tasks: task {waiting} is error and cannot go to error\n"

    stopping = tasks(stack, "cancel", running, "--reason", "not needed")
    assert (stopping.returncode, stopping.stderr) == (0, "")
    assert stopping.stdout.startswith("stopping: its worker is cancelling it")
    watched = tasks(stack, "watch", running, timeout=15)
    assert watched.returncode == 1, watched.stderr
    lines = watched.stdout.splitlines()
    assert lines[-2].endswith("  in_progress  cancel requested: not needed")
    assert " in_progress → error " in lines[-1] and lines[-1].endswith("cancelled: not needed")
    shown = tasks(stack, "show", running).stdout
    assert "  error     cancelled: not needed\n" in shown


def test_with_keys_on_the_client_needs_one_and_its_scope_decides(stack: Stack) -> None:
    stack.api(TASKS_API_KEYS=f"ops:admin:{OPS},viewer:read:{VIEWER}")
    no_key = tasks(stack, "list")
    assert (no_key.returncode, no_key.stdout) == (2, "")
    assert no_key.stderr == "tasks: needs an API key: --api-key or TASKS_API_KEY\n"
    wrong = tasks(stack, "list", "--api-key", "guess")
    assert wrong.returncode == 2 and "refused the API key" in wrong.stderr

    task_id = submitted(stack, "guarded", "--api-key", OPS)
    listed = tasks(stack, "list", "--json", TASKS_API_KEY=VIEWER)
    assert listed.returncode == 0, listed.stderr
    assert [json.loads(line)["id"] for line in listed.stdout.splitlines()] == [task_id]
    for command in (["cancel", task_id], ["submit", "not allowed"]):
        refused = tasks(stack, *command, TASKS_API_KEY=VIEWER)
        assert (refused.returncode, refused.stdout) == (2, "")
        assert refused.stderr.startswith("tasks: the key 'viewer' has scope read; this needs ")

    cancelled = tasks(stack, "cancel", task_id, "--reason", "audit", TASKS_API_KEY=OPS)
    assert (cancelled.returncode, cancelled.stderr) == (0, "")
    history = tasks(stack, "show", task_id, "--api-key", VIEWER).stdout.split("History\n")[1]
    assert history.splitlines()[-1].split()[1:] == ["new", "error", "ops", "audit"]


def test_a_service_that_is_not_there_is_one_line_and_exit_2() -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    for args in (["list"], ["watch", str(uuid.uuid4())], ["submit", "x", "--wait"]):
        done = tasks(closed, *args)
        assert (done.returncode, done.stdout) == (2, ""), args
        assert done.stderr == (f"tasks: cannot reach the service at {closed} (connection "
                               "refused): check --url or TASKS_URL\n")
    usage = tasks(closed, "list", "--colour")
    assert usage.returncode == 2 and usage.stderr.startswith("usage: tasks")


def test_watch_resumes_where_it_was_when_the_api_comes_back(stack: Stack) -> None:
    port = str(free_port())
    stack.base_url = f"http://127.0.0.1:{port}"
    api = stack.start("api", TASKS_HTTP_PORT=port)
    stack.wait_http(api, "/health/ready")
    stack.worker(TASKS_FAILURE_RATE="0", TASKS_PROCESSING_MIN_SECONDS="6",
                 TASKS_PROCESSING_MAX_SECONDS="6")
    task_id = submitted(stack, "outlives its API")
    watch = Live(stack, "watch", task_id)
    try:
        watch.next_line()
        assert "→ in_progress" in watch.next_line()
        api.stop()
        api = stack.start("api", TASKS_HTTP_PORT=port)
        stack.wait_http(api, "/health/ready")
        assert "→ completed" in watch.next_line(timeout=30)
        assert watch.finish() == 0
        assert len(watch.seen) == 3  # each change once: nothing lost, nothing repeated
        assert "tasks: lost the event stream" in watch.stderr()
    finally:
        watch.close()


def test_prune_deletes_finished_tasks_after_a_dry_run_counts_them(stack: Stack) -> None:
    stack.api()
    stack.worker(TASKS_FAILURE_RATE="0")
    for i in range(3):
        submitted(stack, f"old {i}", "--wait")
    time.sleep(2)
    a_second = str(1 / 86_400)
    counted = tasks(stack, "prune", "--older-than", a_second, "--dry-run")
    assert (counted.returncode, counted.stderr) == (0, "")
    assert counted.stdout.startswith("would delete 3 finished tasks")
    pruned = tasks(stack, "prune", "--older-than", a_second)
    assert (pruned.returncode, pruned.stderr) == (0, "")
    assert pruned.stdout.splitlines()[-1].startswith("deleted 3 finished tasks")
    assert tasks(stack, "list").stdout == "no tasks\n"
    unset = tasks(stack, "prune")  # no --older-than, and no TASKS_RETENTION_DAYS on the API
    assert (unset.returncode, unset.stdout) == (2, "")
    assert unset.stderr == "tasks: older_than_days is required: TASKS_RETENTION_DAYS is not " \
        "set: say how old with --older-than DAYS\n"


async def test_dead_letters_shows_the_reason_and_replay_sends_them_back(
        stack: Stack, rabbitmq_url: str) -> None:
    stack.api()
    async with amqp_client(rabbitmq_url) as amqp:
        await amqp.publish(b"not json", message_id="bad-1")

        async def dead_lettered() -> bool:
            return await amqp.count("tasks.create.dlq") == 1

        await eventually(dead_lettered, 30, "the message to be dead-lettered")
    shown = await asyncio.to_thread(tasks, stack, "dead-letters")
    assert (shown.returncode, shown.stderr) == (0, "")
    lines = shown.stdout.splitlines()
    assert lines[:3] == ["QUEUE               MESSAGES", "tasks.create.dlq           1",
                         "tasks.dispatch.dlq         0"]
    assert lines[4] == "Messages (all)"
    assert lines[5].split() == ["QUEUE", "MESSAGE", "ID", "AGE", "REASON", "BODY"]
    row = lines[6]
    assert row.startswith("tasks.create.dlq  bad-1") and "JSON is malformed" in row
    assert row.endswith("  not json")
    replayed = await asyncio.to_thread(tasks, stack, "dead-letters", "--replay")
    assert (replayed.returncode, replayed.stderr) == (0, "")
    lines = replayed.stdout.splitlines()
    assert lines[0] == "replayed 1 message"
    assert lines[2].split()[:3] == ["tasks.create.dlq", "bad-1", "replayed:"]
    assert lines[-3].split() == ["QUEUE", "MESSAGES"]



def test_submit_file_creates_each_line_in_order_and_a_bad_item_names_its_line(
        stack: Stack, tmp_path: Path) -> None:
    stack.api()
    lines = [json.dumps({"title": f"import {n}", "payload": {"n": n}}) for n in range(1203)]
    file = tmp_path / "tasks.jsonl"
    file.write_text("\n".join([*lines[:600], "", *lines[600:]]) + "\n")
    done = tasks(stack, "submit", "--file", str(file), "--idempotency-key", "import-1")
    assert (done.returncode, done.stderr) == (0, "")
    ids = done.stdout.splitlines()
    assert len(ids) == 1203
    with stack.client() as http:
        titles = [http.get(f"/tasks/{task_id}").json()["title"] for task_id in ids[::100]]
    assert titles == [f"import {n}" for n in range(0, 1203, 100)]
    again = tasks(stack, "submit", "--file", str(file), "--idempotency-key", "import-1")
    assert (again.returncode, again.stdout) == (0, done.stdout)  # K/1, K/2: nothing twice

    piped = subprocess.run(
        [TASKS, "submit", "--file", "-"], env=client_env(stack.base_url), text=True,
        capture_output=True, timeout=60,
        input='{"title": "first"}\n{"title": "second", "delay_seconds": 3600}\n')
    assert piped.returncode == 0, piped.stderr
    first, second = piped.stdout.splitlines()
    with stack.client() as http:
        assert http.get(f"/tasks/{first}").json()["title"] == "first"
        assert http.get(f"/tasks/{second}").json()["run_at"] is not None

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"title": "fine"}\n{"title": ""}\n{"title": "also fine"}\n')
    refused = tasks(stack, "submit", "--file", str(bad))
    assert (refused.returncode, refused.stdout) == (2, "")
    assert refused.stderr.startswith(f"tasks: {bad}, line 2: tasks[1].title: "), refused.stderr
    not_json = tmp_path / "typo.jsonl"
    not_json.write_text('{"title": "fine"}\n{"title": "oops",}\n')
    typo = tasks(stack, "submit", "--file", str(not_json))
    assert (typo.returncode, typo.stdout) == (2, "")
    assert typo.stderr.startswith(f"tasks: {not_json}, line 2: not JSON (")
    listed = tasks(stack, "list", "--json", "--limit", "2000")
    assert len(listed.stdout.splitlines()) == 1203 + 2  # neither bad file created anything


def test_while_dispatch_is_paused_a_task_stays_new_and_show_says_why(stack: Stack) -> None:
    stack.api()
    stack.worker(TASKS_FAILURE_RATE="0", TASKS_PROCESSING_MIN_SECONDS="0.2",
                 TASKS_PROCESSING_MAX_SECONDS="0.5")
    paused = tasks(stack, "pause", "--reason", "disk swap")
    assert (paused.returncode, paused.stderr) == (0, "")
    assert paused.stdout.startswith("dispatch is paused since ")
    assert paused.stdout.rstrip().endswith(
        ": disk swap (tasks are still accepted; workers take none until resumed)")

    task_id = submitted(stack, "held back")
    time.sleep(3)  # a worker is up: without the pause, it would have taken the task by now
    assert status(stack, task_id) == "new"
    shown = tasks(stack, "show", task_id)
    assert (shown.returncode, shown.stderr) == (0, "")
    assert shown.stdout.splitlines()[2:4] == [
        "  status    new",
        "  diagnosis paused  Dispatch is paused: no worker takes a task until it is resumed."]
    as_json = json.loads(tasks(stack, "show", task_id, "--json").stdout)
    assert as_json["diagnosis"]["state"] == "paused"
    assert as_json["diagnosis"]["facts"]["reason"] == "disk swap"

    state = json.loads(tasks(stack, "resume", "--json").stdout)
    assert state["paused"] is False
    wait_until(lambda: status(stack, task_id) == "completed", 30, "the task to complete")
    finished = tasks(stack, "show", task_id).stdout.splitlines()
    assert finished[3] == "  diagnosis finished  It finished: completed."


def test_show_of_a_scheduled_task_says_when_it_starts(stack: Stack) -> None:
    stack.api()
    at = "2030-01-02T03:04:05+00:00"
    task_id = submitted(stack, "next year", "--run-at", at)
    shown = tasks(stack, "show", task_id)
    assert (shown.returncode, shown.stderr) == (0, "")
    lines = shown.stdout.splitlines()
    local = datetime.fromisoformat(at).astimezone()
    assert lines[3] == "  diagnosis scheduled  It is scheduled to start at 2030-01-02 03:04:05 UTC."
    assert f"  run at    {local:%Y-%m-%d %H:%M:%S}  in " in shown.stdout

    soon = submitted(stack, "in an hour", "--delay", "1h")
    run_at = next(line for line in tasks(stack, "show", soon).stdout.splitlines()
                  if line.startswith("  run at "))
    assert run_at.endswith(("in 59 min", "in 1 h")), run_at
