"""What the dashboard's browser tests share: Debian's Chromium under Playwright (headless),
a dashboard user, and a browser logged in to a live server with every console error and
page error collected (any of them fails a test). The live server itself is the
``live_dashboard`` fixture in ``tests/conftest.py``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import reset_database

CHROMIUM = os.environ.get("REELCART_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
USER = "ada"
PASSWORD = "browser-test-password"
PHONE = {"width": 390, "height": 844}


def require_browser() -> Any:
    """Playwright's ``sync_playwright``; without Playwright or Chromium the test skips, and
    fails in CI."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("playwright is not installed")
        pytest.skip("playwright is not installed")
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"Chromium not found at {CHROMIUM}")
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    return sync_playwright


async def seed_user(database_url: str, username: str = USER, password: str = PASSWORD
                    ) -> None:
    """A fresh database with one dashboard user."""
    from api.dashboard.auth import ScryptCost, create_user
    from models.db import create_engine, create_sessionmaker, transaction

    await reset_database(database_url)
    engine = create_engine(database_url)
    async with transaction(create_sessionmaker(engine)) as db:
        await create_user(db, username, password, ScryptCost(14))
    await engine.dispose()


@dataclass
class Dashboard:
    """A browser on the live server ``url``: ``page`` in the desktop ``context``."""

    url: str
    browser: Any
    context: Any
    page: Any
    errors: list[str] = field(default_factory=list)

    def watch(self, page: Any) -> Any:
        """Collect ``page``'s console errors and uncaught exceptions into ``errors``."""
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        return page

    def login(self, username: str = USER, password: str = PASSWORD) -> None:
        """Sign in through the login form; it lands on the overview."""
        self.page.goto(f"{self.url}/dashboard/login")
        self.page.fill("input[name=username]", username)
        self.page.fill("input[name=password]", password)
        self.page.click("button[type=submit]")
        self.page.wait_for_url("**/dashboard")

    def phone(self) -> Any:
        """A watched page at 390 px, signed in as the desktop context is."""
        context = self.browser.new_context(viewport=PHONE,
                                           storage_state=self.context.storage_state())
        return self.watch(context.new_page())

    def at_phone_width(self, path: str, shot: Path) -> Any:
        """``path`` on a new ``phone()`` page, its full-page screenshot saved to ``shot``;
        usable at that width: nothing forces sideways scrolling."""
        small = self.phone()
        small.goto(f"{self.url}{path}")
        small.screenshot(path=str(shot), full_page=True)
        assert small.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], path
        return small


@contextmanager
def dashboard_browser(url: str, *, login: bool = True, **context_options: Any
                      ) -> Iterator[Dashboard]:
    """Chromium with one watched page (``context_options`` go to ``new_context``), signed
    in as the seeded user unless ``login=False``."""
    sync_playwright = require_browser()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(**context_options)
        ui = Dashboard(url, browser, context, context.new_page())
        ui.watch(ui.page)
        if login:
            ui.login()
        try:
            yield ui
        finally:
            browser.close()
