"""A headless system chromium driven by Playwright, and the live API server of the API tests.

Playwright is pointed at the system browser (``executable_path``): a browser download fails
here, and ``playwright install`` is never run. ``.ci/run`` installs Debian's ``chromium``
when it is missing; without any chromium binary the tests here are skipped, saying so.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserType, Page, sync_playwright

from tests.api.conftest import _uvicorn, server, settings

__all__ = ["_uvicorn", "server", "settings"]

# Where a browser may be: $ATNAS_CHROMIUM, then Debian's and other distributions' names.
CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def chromium_path() -> str | None:
    """The chromium binary to drive, or None when the machine has none."""
    env = os.environ.get("ATNAS_CHROMIUM")
    if env:
        return env if Path(env).is_file() else None
    if Path("/usr/bin/chromium").is_file():
        return "/usr/bin/chromium"
    return next((p for p in map(shutil.which, CANDIDATES) if p), None)


def launch(chromium: BrowserType, path: str) -> Browser:
    """A headless browser from the binary at ``path`` (no sandbox: CI runs as root)."""
    args = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
    return chromium.launch(executable_path=path, headless=True, args=args)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Chromium under Playwright, for one test module only: Playwright's sync API keeps an
    asyncio loop running in the main thread while it is started, and tests of other packages
    that call ``asyncio.run`` must not find it there."""
    path = chromium_path()
    if path is None:
        pytest.skip(
            "no chromium binary: install Debian's chromium (apt-get install chromium; .ci/run "
            "does it as root) or set ATNAS_CHROMIUM to a chromium/chrome executable"
        )
    with sync_playwright() as p:
        b = launch(p.chromium, path)
        yield b
        b.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A page in a fresh browser context (no cache, no localStorage)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield context.new_page()
    context.close()
