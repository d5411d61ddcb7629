"""Headless Chromium for the dashboard's tests: Debian's browser, driven by Playwright."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

#: The machine's own `chromium` package (`.ci/run` installs it when missing), never one that
#: `playwright install` downloads. A test that needs it and does not find it fails saying so.
CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync",
        "--disable-dev-shm-usage"]
LAPTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
#: How Chromium notes a 4xx answer; the page expects some (a 401 asks for a key, a 409 is shown).
ANSWERED = "Failed to load resource: the server responded with a status of 4"
#: Where a run may also leave its screenshots (the README's come from there).
SCREENSHOT_DIR = "TASKS_SCREENSHOT_DIR"


def require_chromium() -> None:
    if not CHROMIUM.exists():
        pytest.fail(f"the dashboard tests need Debian's Chromium at {CHROMIUM}: "
                    "apt-get install chromium (.ci/run does it when it is missing)")


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    require_chromium()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@dataclass
class Watched:
    """A page whose requests, console errors and uncaught exceptions are recorded."""

    page: Page
    base_url: str
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def outside(self) -> list[str]:
        """Requests to any other origin than the service's (the page must make none)."""
        return [url for url in self.requests
                if not (url.startswith(self.base_url + "/") or url.startswith("data:"))]


@asynccontextmanager
async def opened(browser: Browser, base_url: str, viewport: dict[str, int],
                 path: str = "/ui") -> AsyncIterator[Watched]:
    context = await browser.new_context(viewport=viewport, color_scheme="light",
                                        locale="en-GB", timezone_id="UTC")
    page = await context.new_page()
    watched = Watched(page, base_url)
    page.on("request", lambda request: watched.requests.append(request.url))
    page.on("pageerror", lambda error: watched.errors.append(f"uncaught: {error}"))
    page.on("console", lambda message: watched.errors.append(f"console: {message.text}")
            if message.type == "error" and not message.text.startswith(ANSWERED) else None)
    try:
        await page.goto(base_url + path)
        yield watched
    finally:
        await context.close()


class Screenshots:
    """Saves PNGs under the test's tmp_path, and also in $TASKS_SCREENSHOT_DIR when set."""

    def __init__(self, tmp_path: Path) -> None:
        self.folder = tmp_path / "screenshots"
        self.folder.mkdir(parents=True, exist_ok=True)
        extra = os.environ.get(SCREENSHOT_DIR)
        self.extra = Path(extra) if extra else None

    async def take(self, page: Page, name: str, full_page: bool = False) -> Path:
        path = self.folder / f"{name}.png"
        await page.screenshot(path=str(path), full_page=full_page, animations="disabled")
        assert path.stat().st_size > 5_000, f"{name}: the screenshot is empty"
        if self.extra is not None:
            self.extra.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, self.extra / path.name)
        return path


async def scrolls_sideways(page: Page) -> bool:
    return bool(await page.evaluate(
        "document.documentElement.scrollWidth > document.documentElement.clientWidth"))


#: Installed in a page: records every status a row of the list shows, in order, per task id,
#: so that a test sees each step even if it passes faster than the test polls.
RECORD_ROW_STATUSES = """() => {
  window.seen = {};
  const note = () => {
    for (const row of document.querySelectorAll('#tasks li[data-id]')) {
      const status = row.querySelector('.badge').textContent;
      const seen = (window.seen[row.dataset.id] ||= []);
      if (seen[seen.length - 1] !== status) seen.push(status);
    }
  };
  note();
  new MutationObserver(note).observe(document.getElementById('tasks'),
    {subtree: true, childList: true, characterData: true});
}"""
