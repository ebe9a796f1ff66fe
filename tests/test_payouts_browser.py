"""The payouts dashboard in a real browser (Playwright, headless Chromium), under the
strict CSP every dashboard page must work with: a finance person previews the payout run,
pays it, opens the run and the payee's statement, creates a read-only link, opens it
logged out, revokes it. Any console error (a CSP violation included), on the login page
or after it, fails the test; ``test_payout_templates_are_csp_clean`` checks our templates'
source."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from models.base import utc_now
from models.db import create_engine, create_sessionmaker, transaction
from tests.browser import CHROMIUM, CHROMIUM_ARGS
from tests.browser import require_browser as _require_browser
from tests.commission_world import base_world, contract, order, payee
from tests.conftest import LiveServer, make_settings, reset_database, start_live_server

PASSWORD = "browser-test-password"
CSP = "default-src 'self'; frame-ancestors 'none'"


async def _seed(database_url: str) -> None:
    from api.dashboard.auth import create_user

    await reset_database(database_url)
    engine = create_engine(database_url)
    async with transaction(create_sessionmaker(engine)) as db:
        await create_user(db, "fin", PASSWORD)
        await base_world(db)
        await payee(db, "alice", account="acct_1Alice")
        await payee(db, "bob", kind="likeness")
        await contract(db, "c-v1", "video", "v1", [("alice", 3), ("bob", 1)], rate_bps=1000)
        await order(db, touches=[("v1", 1)], lines=[("jacket", 2, 40000)],
                    at=utc_now() - timedelta(days=45))
        await order(db, touches=[("v1", 1)], lines=[("jacket", 1, 8000)])
    await engine.dispose()


@pytest.fixture
def site(database_url: str) -> Iterator[LiveServer]:
    asyncio.run(_seed(database_url))
    server = start_live_server(make_settings(database_url, database_pool_size=5,
                                             public_base_url="http://127.0.0.1"))
    yield server
    server.stop()


def test_payouts_dashboard_in_a_real_browser(site: LiveServer, backend: str,
                                             tmp_path: Path) -> None:
    sync_playwright = _require_browser()
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context()

        def enforce_csp(route: Any) -> None:  # serve every page under the strict CSP
            response = route.fetch(max_redirects=0)
            route.fulfill(response=response, headers={**response.headers,
                                                      "content-security-policy": CSP})

        context.route("**/*", enforce_csp)
        page = context.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{site.url}/dashboard/login")
        assert errors == []  # the shared layout is CSP-clean too
        page.fill("input[name=username]", "fin")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/dashboard")

        page.goto(f"{site.url}/dashboard/payouts")
        liabilities = page.inner_text("#liabilities")
        assert "Alice" in liabilities
        assert "Bob" in liabilities
        page.click("#preview")
        plan = page.inner_text("#plan")
        assert "30.00 USD" in plan  # alice: 3/4 of 10 % of 400.00, locked
        assert "no_connect_account" in plan  # bob accrues
        page.click("#run-payouts")
        page.wait_for_url("**/dashboard/payouts/runs/**")
        assert page.inner_text("#run-status") == "completed"
        assert "paid" in page.inner_text("#payouts")

        page.click("#payouts a[href^='/dashboard/statements/']")
        page.wait_for_url("**/dashboard/statements/**")
        assert page.inner_text("#statement-status") == "paid"
        # 30.00 earned and locked, 30.00 paid out; 6.00 still in its return window
        assert page.inner_text("#closing-usd") == "6.00 USD"
        page.click("#share")
        link = page.get_attribute("#shared-link", "href")
        assert link is not None
        assert "/statements/shared/" in link

        anonymous = browser.new_context()
        anonymous.route("**/*", enforce_csp)
        payee_page = anonymous.new_page()
        payee_page.on("console",
                      lambda m: errors.append(m.text) if m.type == "error" else None)
        shared_url = site.url + link[link.index("/statements/shared/"):]
        payee_page.goto(shared_url)
        assert payee_page.inner_text("#closing-usd") == "6.00 USD"
        assert payee_page.locator("#share").count() == 0  # read-only

        page.click("button.revoke")
        page.wait_for_selector("text=revoked")
        seen = len(errors)
        response = payee_page.goto(shared_url)
        assert response is not None
        assert response.status == 404
        expected_404 = [e for e in errors[seen:] if "status of 404" in e]
        assert len(expected_404) == 1  # the revoked link itself, nothing else
        errors.remove(expected_404[0])

        page.goto(f"{site.url}/dashboard/payees/bob")
        assert "no Connect account" in page.inner_text("main")
        phone = browser.new_context(viewport={"width": 390, "height": 844},
                                    storage_state=context.storage_state())
        small = phone.new_page()
        small.goto(f"{site.url}/dashboard/payouts")
        assert small.evaluate("document.documentElement.scrollWidth") <= 390
        browser.close()
    assert errors == []


OURS = ["payouts.html", "payout_run.html", "payee.html", "statement.html",
        "_statement_body.html"]


@pytest.mark.parametrize("name", OURS)
def test_payout_templates_are_csp_clean(repo_root: Path, name: str) -> None:
    """No inline script, style or event handler; every link relative or http(s)."""
    import re

    source = (repo_root / "api" / "templates" / "dashboard" / name).read_text()
    assert not re.search(r"<script|<style|\sstyle=|\son[a-z]+=|javascript:", source, re.I)
    for url in re.findall(r'(?:href|src|action)="([^"]*)"', source):
        assert url.startswith(("/", "?", "{{", "http://", "https://")), url
