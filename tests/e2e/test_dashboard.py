"""The dashboard in headless Chromium, against real `tasks api` and `tasks worker` processes."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, Route, expect

from entrypoints.wire import MAX_PAYLOAD_DEPTH
from tests.support.browser import (
    LAPTOP,
    PHONE,
    RECORD_ROW_STATUSES,
    Screenshots,
    chromium,
    opened,
    scrolls_sideways,
)
from tests.support.processes import Stack

ADMIN_SECRET = "admin-secret-7Qx2"
READ_SECRET = "read-secret-9Lm4"
KEYS = f"ops:admin:{ADMIN_SECRET},viewer:read:{READ_SECRET}"
FINAL = re.compile(r"^(completed|error)$")
WAIT = 20_000  # ms: the longest a step may take on a loaded machine
SAMPLES = [("Send welcome email", {"user_id": 1071}),
           ("Build monthly report", {"month": "2026-10"}),
           ("Resize image 17", {"image_id": 17, "width": 1280}), ("Sync CRM contacts", {}),
           ("Transcode video 8", {"video_id": 8, "format": "h264"}),
           ("Charge invoice 5531", {"invoice": 5531}), ("Refresh search index", {"shard": 3}),
           ("Email receipt 204", {"order": 204})]


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as running:
        yield running


@pytest.fixture
def shots(tmp_path: Path) -> Screenshots:
    return Screenshots(tmp_path)


def row(page: Page, title: str):  # type: ignore[no-untyped-def]
    return page.locator("#tasks li", has_text=title)


async def test_a_task_created_in_the_page_is_seen_moving_and_opened_without_a_reload(
    stack: Stack, browser: Browser, shots: Screenshots
) -> None:
    stack.env.update(TASKS_PROCESSING_MIN_SECONDS="1.5", TASKS_PROCESSING_MAX_SECONDS="3",
                     TASKS_FAILURE_RATE="0.3", TASKS_RANDOM_SEED="5",
                     TASKS_WORKER_CONCURRENCY="3", TASKS_WORKER_HTTP_PORT="0")
    api = stack.api()
    async with opened(browser, stack.base_url, LAPTOP) as tab:
        page = tab.page
        streams: list[dict[str, str]] = []
        page.on("request", lambda r: streams.append(r.headers) if "/events" in r.url else None)
        await expect(page.locator("#live")).to_have_text("Live", timeout=WAIT)
        await page.evaluate(RECORD_ROW_STATUSES)
        await page.evaluate("window.sameDocument = true")

        form = page.locator("#create-form")
        await form.get_by_label("Title").fill("Resize image 42")
        await form.get_by_label("Description").fill("To 640 px wide, keeping the ratio.")
        await form.get_by_label("Payload").fill("[640, 480]")
        await form.get_by_role("button", name="Create task").click()
        await expect(page.locator("#create-message")).to_have_text(
            'The payload must be a JSON object, such as {"image_id": 42}.')
        await form.get_by_label("Payload").fill('{"image_id": 42, "width": 640')
        await form.get_by_role("button", name="Create task").click()
        await expect(page.locator("#create-message")).to_contain_text("not valid JSON")
        too_deep = '{"a": ' * MAX_PAYLOAD_DEPTH + "{}" + "}" * MAX_PAYLOAD_DEPTH
        await form.get_by_label("Payload").fill(too_deep)  # valid JSON the service refuses
        await form.get_by_role("button", name="Create task").click()
        await expect(page.locator("#create-message")).to_contain_text("Not created: ")
        await expect(page.locator("#create-message")).to_contain_text("nested deeper than")
        await form.get_by_label("Payload").fill(
            '{"image_id": 42, "width": 640, "note": "a\\u0000b"}')
        await form.get_by_role("button", name="Create task").click()
        await expect(page.locator("#create-message")).to_have_text("Created “Resize image 42”.")

        mine = row(page, "Resize image 42")
        await expect(mine.locator(".badge")).to_have_text("new", timeout=WAIT)
        stack.worker()  # only now, so that the page is seen showing the task as `new` first
        await expect(mine.locator(".badge")).to_have_text("in progress", timeout=WAIT)
        await expect(mine.locator(".badge")).to_have_text(FINAL, timeout=WAIT)
        task_id = await mine.get_attribute("data-id")
        seen = await page.evaluate("id => window.seen[id]", task_id)
        assert seen[:2] == ["new", "in progress"], seen
        assert seen[2] in ("completed", "error") and len(seen) == 3, seen
        assert await page.evaluate("window.sameDocument"), "the page was reloaded"

        await mine.get_by_role("button").click()
        detail = page.locator("#detail")
        await expect(detail).to_be_visible()
        await expect(detail.locator("#detail-title")).to_have_text("Resize image 42")
        await expect(detail.locator("#detail-payload")).to_contain_text('"image_id": 42')
        # U+0000 is stored and shown back escaped, as JSON writes it
        await expect(detail.locator("#detail-payload")).to_contain_text('"note": "a\\u0000b"')
        history = detail.locator("#detail-history > li")
        await expect(history).to_have_count(3, timeout=WAIT)
        await expect(history.nth(0)).to_contain_text("created")
        await expect(history.nth(1)).to_contain_text("new→in progress")
        await expect(history.nth(2)).to_contain_text(f"in progress→{seen[2]}")
        await expect(history.nth(2)).to_contain_text("worker ")
        await shots.take(page, "laptop-detail")
        await page.keyboard.press("Escape")
        await expect(detail).to_be_hidden()

        # A few more tasks, so that the counts, the chart and the list have something to show.
        async with httpx.AsyncClient(base_url=stack.base_url) as http:
            for title, payload in SAMPLES:
                created = await http.post("/tasks", json={"title": title, "payload": payload})
                assert created.status_code == 201, created.text
        await expect(row(page, SAMPLES[-1][0])).to_be_visible(timeout=WAIT)
        newest_first = [title for title, _ in reversed(SAMPLES)] + ["Resize image 42"]
        await expect(page.locator("#tasks .title")).to_have_text(newest_first)
        await expect(page.locator("#tasks .badge", has_text="in progress").first).to_be_visible()
        await expect(page.locator("[data-count=new]")).not_to_have_text("\N{EN DASH}")
        await page.wait_for_timeout(3000)  # some finish, and the chart gets a sample more
        await page.mouse.move(0, 0)  # no row under the pointer, no focus ring: a calm picture
        await page.evaluate("document.activeElement.blur()")
        await shots.take(page, "laptop", full_page=True)
        assert not await scrolls_sideways(page)

        await page.locator(".filter").get_by_label("completed").check()
        badges = page.locator("#tasks .badge")
        await expect(badges.filter(has_not_text="completed")).to_have_count(0)
        await expect(badges.first).to_have_text("completed")
        await page.locator(".filter").get_by_label("completed").uncheck()
        await expect(row(page, SAMPLES[-1][0])).to_be_visible()
        assert tab.errors == [], tab.errors

        # The API restarts: the page says so, reconnects by itself and resumes right after
        # the last event it had (Last-Event-ID), still without a reload.
        api.stop()
        await expect(page.locator("#live")).to_have_text("Reconnecting…", timeout=WAIT)
        stack.api(port=int(stack.base_url.rsplit(":", 1)[1]))
        await expect(page.locator("#live")).to_have_text("Live", timeout=WAIT)
        assert streams[0].get("last-event-id") is None
        assert re.fullmatch(r"\d{39}", streams[-1].get("last-event-id", "")), streams[-1]
        async with httpx.AsyncClient(base_url=stack.base_url) as http:
            assert (await http.post("/tasks", json={"title": "After the restart"})).is_success
        await expect(row(page, "After the restart")).to_be_visible(timeout=WAIT)
        assert await page.evaluate("window.sameDocument"), "the page was reloaded"
        assert tab.outside() == [], tab.outside()
        assert all("ERR_CONNECTION_REFUSED" in e for e in tab.errors), tab.errors  # while down

    async with opened(browser, stack.base_url, PHONE) as phone:
        page = phone.page
        await expect(row(page, "Resize image 42")).to_be_visible(timeout=WAIT)
        await expect(page.locator("#live")).to_have_text("Live")
        assert not await scrolls_sideways(page), "the page scrolls sideways at 390 px"
        await shots.take(page, "phone", full_page=True)
        await row(page, "Resize image 42").get_by_role("button").click()
        await expect(page.locator("#detail-history > li")).to_have_count(3, timeout=WAIT)
        assert not await scrolls_sideways(page)
        await shots.take(page, "phone-detail")
        assert phone.errors == [], phone.errors


async def test_with_api_keys_the_page_asks_for_one_and_offers_only_what_it_allows(
    stack: Stack, browser: Browser, shots: Screenshots
) -> None:
    stack.env.update(TASKS_API_KEYS=KEYS, TASKS_PROCESSING_MIN_SECONDS="30",
                     TASKS_PROCESSING_MAX_SECONDS="40", TASKS_WORKER_HTTP_PORT="0")
    stack.api()
    stack.worker()
    async with opened(browser, stack.base_url, LAPTOP) as tab:
        page = tab.page
        key_panel = page.locator("#key-panel")
        await expect(key_panel).to_be_visible(timeout=WAIT)
        await expect(page.locator("#board")).to_be_hidden()
        await shots.take(page, "keys-asked")
        await key_panel.get_by_label("API key").fill("not-a-key")
        await key_panel.get_by_role("button", name="Use this key").click()
        await expect(page.locator("#key-message")).to_have_text("That key was not accepted.")

        await key_panel.get_by_label("API key").fill(ADMIN_SECRET)
        await key_panel.get_by_role("button", name="Use this key").click()
        await expect(page.locator("#who")).to_have_text("Key: ops (admin)", timeout=WAIT)
        await expect(page.locator("#live")).to_have_text("Live", timeout=WAIT)
        form = page.locator("#create-form")
        await form.get_by_label("Title").fill("Long import")
        await form.get_by_role("button", name="Create task").click()
        mine = row(page, "Long import")
        await expect(mine.locator(".badge")).to_have_text("in progress", timeout=WAIT)

        await mine.get_by_role("button").click()
        detail = page.locator("#detail")
        await detail.get_by_label("Reason").fill("wrong input file")
        await detail.get_by_role("button", name="Cancel task").click()
        await expect(detail.locator("#actions-message")).to_contain_text("stopping it")
        await expect(detail.locator("#detail-status .badge")).to_have_text("error", timeout=WAIT)
        await expect(detail.locator("#detail-error")).to_contain_text("cancelled")
        await expect(detail.locator("#detail-history > li").last).to_contain_text("by ops")
        await expect(detail.locator("#detail-history")).to_contain_text("wrong input file")
        await expect(mine.locator(".badge")).to_have_text("error")

        # Another operator retries it first: the page's own retry gets the service's 409.
        async def retried_elsewhere_first(route: Route) -> None:
            async with httpx.AsyncClient(base_url=stack.base_url) as http:
                other = await http.post(route.request.url, headers={"X-API-Key": ADMIN_SECRET})
                assert other.status_code == 200, other.text
            await route.continue_()

        await page.route("**/retry", retried_elsewhere_first)
        await detail.get_by_role("button", name="Retry").click()
        await expect(detail.locator("#actions-message")).to_contain_text("Not possible now: ")
        await page.unroute("**/retry")
        await expect(detail.locator("#detail-status .badge")).to_have_text("in progress",
                                                                           timeout=WAIT)
        await detail.get_by_role("button", name="Cancel task").click()
        await expect(detail.locator("#detail-status .badge")).to_have_text("error", timeout=WAIT)
        await detail.get_by_role("button", name="Retry").click()
        await expect(detail.locator("#actions-message")).to_contain_text("Sent back to new")
        await expect(mine.locator(".badge")).to_have_text("in progress", timeout=WAIT)
        await page.keyboard.press("Escape")

        await page.get_by_role("button", name="Forget key").click()
        await expect(key_panel).to_be_visible()
        await key_panel.get_by_label("API key").fill(READ_SECRET)
        await key_panel.get_by_role("button", name="Use this key").click()
        await expect(page.locator("#who")).to_have_text("Key: viewer (read)", timeout=WAIT)
        await expect(page.locator("#notice")).to_contain_text("can only read")
        await expect(page.locator("#create-panel")).to_be_hidden()
        await expect(mine.locator(".badge")).to_have_text("in progress", timeout=WAIT)
        await mine.get_by_role("button").click()
        await expect(detail.locator("#detail-history")).to_contain_text("by ops")
        await expect(detail.get_by_role("button", name="Cancel task")).to_be_hidden()
        await expect(detail.locator("#actions-denied")).to_have_text(
            "Retry and cancel need an admin key.")
        await page.keyboard.press("Escape")

        # Still live with a read key: a task created elsewhere appears without a reload.
        async with httpx.AsyncClient(base_url=stack.base_url,
                                     headers={"X-API-Key": ADMIN_SECRET}) as http:
            created = await http.post("/tasks", json={"title": "Made elsewhere"})
            assert created.status_code == 201, created.text
        await expect(row(page, "Made elsewhere")).to_be_visible(timeout=WAIT)
        await shots.take(page, "keys-read-only", full_page=True)

        leaked = [url for url in tab.requests if ADMIN_SECRET in url or READ_SECRET in url]
        assert leaked == [], "a secret went into a URL"
        assert tab.outside() == [], tab.outside()
        assert tab.errors == [], tab.errors


async def test_pausing_from_the_page_holds_new_tasks_and_their_detail_says_why_live(
    stack: Stack, browser: Browser, shots: Screenshots
) -> None:
    stack.env.update(TASKS_API_KEYS=KEYS, TASKS_PROCESSING_MIN_SECONDS="1",
                     TASKS_PROCESSING_MAX_SECONDS="2", TASKS_FAILURE_RATE="0",
                     TASKS_WORKER_HTTP_PORT="0")
    stack.api()
    stack.worker()
    admin = {"X-API-Key": ADMIN_SECRET}
    async with opened(browser, stack.base_url, LAPTOP) as tab:
        page = tab.page
        await use_key(page, ADMIN_SECRET)
        banner = page.locator("#paused-banner")
        await expect(banner).to_be_hidden()

        await page.get_by_role("button", name="Pause dispatch").click()
        pausing = page.locator("#pause-dialog")
        await pausing.get_by_label("Reason").fill("swapping the disk of db-2")
        await pausing.get_by_role("button", name="Pause now").click()
        await expect(pausing).to_be_hidden()
        await expect(banner).to_be_visible()
        await expect(banner).to_contain_text("Dispatch is paused since ")
        await expect(banner).to_contain_text("by ops: swapping the disk of db-2")
        await expect(page.get_by_role("button", name="Pause dispatch")).to_be_hidden()

        form = page.locator("#create-form")
        await form.get_by_label("Title").fill("Resize image 42")
        await form.get_by_label("Payload").fill('{"image_id": 42, "width": 640}')
        await form.get_by_role("button", name="Create task").click()
        held = row(page, "Resize image 42")
        await expect(held.locator(".badge")).to_have_text("new", timeout=WAIT)
        await held.get_by_role("button").click()
        detail = page.locator("#detail")
        diagnosis = detail.locator("#detail-diagnosis")
        await expect(diagnosis.locator(".badge")).to_have_text("paused", timeout=WAIT)
        await expect(diagnosis).to_contain_text(
            "Dispatch is paused by ops: no worker takes a task until it is resumed.")
        await page.wait_for_timeout(3000)  # a worker is up: without the pause it would run
        await expect(detail.locator("#detail-status .badge")).to_have_text("new")
        await page.evaluate("document.activeElement.blur()")
        await shots.take(page, "dashboard-diagnosis")

        # Another operator resumes: the open detail follows by itself, to the task's end.
        async with httpx.AsyncClient(base_url=stack.base_url, headers=admin) as http:
            assert (await http.post("/dispatch/resume")).status_code == 200
        await expect(diagnosis.locator(".badge")).to_have_text(
            re.compile("^(queued|running|finished)$"), timeout=WAIT)
        await expect(diagnosis.locator(".badge")).to_have_text("finished", timeout=WAIT)
        await expect(diagnosis).to_contain_text("It finished: completed.")
        await page.keyboard.press("Escape")
        await expect(banner).to_be_hidden(timeout=WAIT)  # the page reads /dispatch every 5 s
        await expect(page.get_by_role("button", name="Pause dispatch")).to_be_visible()

        # Paused elsewhere: the banner appears by itself, and Resume on the page ends it.
        async with httpx.AsyncClient(base_url=stack.base_url, headers=admin) as http:
            answer = await http.post("/dispatch/pause", json={"reason": "nightly backup"})
            assert answer.status_code == 200
        await expect(banner).to_contain_text("by ops: nightly backup", timeout=WAIT)
        await banner.get_by_role("button", name="Resume dispatch").click()
        await expect(banner).to_be_hidden()
        async with httpx.AsyncClient(base_url=stack.base_url, headers=admin) as http:
            assert (await http.get("/dispatch")).json()["paused"] is False

        # Scheduled from the form, by a delay and by a time: the list and the detail say when.
        await form.get_by_label("Title").fill("Nightly report")
        await form.get_by_text("Start later").click()
        await form.get_by_label("Or after").fill("2")
        await form.get_by_label("Unit of the delay").select_option("hours")
        await form.get_by_role("button", name="Create task").click()
        await expect(page.locator("#create-message")).to_contain_text(
            "Created “Nightly report”, to start ")
        later = row(page, "Nightly report")
        await expect(later.locator(".starts")).to_have_text(re.compile(r"^starts in (1|2) h"))
        start = (datetime.now(UTC) + timedelta(hours=3)).replace(microsecond=0)
        await form.get_by_label("Title").fill("Archive logs")
        await form.get_by_label("At").fill(start.strftime("%Y-%m-%dT%H:%M:%S"))
        await form.get_by_role("button", name="Create task").click()
        archive = row(page, "Archive logs")
        await expect(archive.locator(".starts")).to_have_text(re.compile(r"^starts in (2|3) h"))
        await archive.get_by_role("button").click()
        await expect(diagnosis.locator(".badge")).to_have_text("scheduled", timeout=WAIT)
        await expect(diagnosis).to_contain_text(
            f"It is scheduled to start at {start:%Y-%m-%d %H:%M:%S} UTC.")
        starts = detail.locator("#detail-starts")
        await expect(starts.locator("time").first).to_have_attribute(
            "datetime", start.strftime("%Y-%m-%dT%H:%M:%SZ"))
        await expect(starts).to_contain_text(f"{start:%H:%M:%S} · in 2 h")
        await shots.take(page, "dashboard-scheduled")
        await page.keyboard.press("Escape")

        # A read key sees the banner, and no button it could not use.
        async with httpx.AsyncClient(base_url=stack.base_url, headers=admin) as http:
            assert (await http.post("/dispatch/pause", json={"reason": "upgrade"})).is_success
        await page.get_by_role("button", name="Forget key").click()
        await use_key(page, READ_SECRET)
        await expect(banner).to_be_visible(timeout=WAIT)
        await expect(banner.get_by_role("button", name="Resume dispatch")).to_be_hidden()
        await expect(banner.locator("#resume-denied")).to_have_text(
            "Resuming needs an admin key.")
        await expect(page.get_by_role("button", name="Pause dispatch")).to_be_hidden()
        assert tab.outside() == [], tab.outside()
        assert tab.errors == [], tab.errors

    async with opened(browser, stack.base_url, PHONE) as phone:
        page = phone.page
        await use_key(page, ADMIN_SECRET)
        banner = page.locator("#paused-banner")
        await expect(banner).to_contain_text("by ops: upgrade", timeout=WAIT)
        await page.locator("#create-panel > summary").click()
        await page.locator("#create-form").get_by_text("Start later").click()
        await expect(page.locator("#create-form").get_by_label("Or after")).to_be_visible()
        assert not await scrolls_sideways(page), "the page scrolls sideways at 390 px"
        await shots.take(page, "dashboard-paused-phone", full_page=True)
        await row(page, "Resize image 42").get_by_role("button").click()
        await expect(page.locator("#detail-diagnosis .badge")).to_have_text("finished",
                                                                            timeout=WAIT)
        async with httpx.AsyncClient(base_url=stack.base_url, headers=admin) as http:
            created = await http.post("/tasks", json={"title": "Send welcome email",
                                                      "payload": {"user_id": 1071}})
            assert created.status_code == 201, created.text
        await page.keyboard.press("Escape")
        await row(page, "Send welcome email").get_by_role("button").click()
        await expect(page.locator("#detail-diagnosis .badge")).to_have_text("paused",
                                                                            timeout=WAIT)
        assert not await scrolls_sideways(page)
        await page.evaluate("document.activeElement.blur()")
        await shots.take(page, "dashboard-diagnosis-phone")
        assert phone.errors == [], phone.errors


async def use_key(page: Page, secret: str) -> None:
    panel = page.locator("#key-panel")
    await panel.get_by_label("API key").fill(secret)
    await panel.get_by_role("button", name="Use this key").click()
    await expect(page.locator("#live")).to_have_text("Live", timeout=WAIT)
