"""Acceptance: after ``reelcart demo`` on a fresh database (what ``scripts/demo`` runs), the
dashboard home, orders, videos, a video page, finance and reconciliation all show real,
varied data. Runs the CLI as a subprocess (banner, load, serve), then Playwright driving
Debian's Chromium at desktop and phone width; any JavaScript console error fails.

Assertions stay on robust facts (table rows, chart points, CSV rows) so page redesigns
do not break them; screenshots land in the test's tmp directory for people to look at.
"""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.cli.server import DEMO_KEY, DEMO_MERCHANT_KEY, DEMO_PASSWORD, DEMO_USER
from tests.browser import CHROMIUM, CHROMIUM_ARGS
from tests.browser import require_browser as _require_browser
from tests.conftest import free_port

REPO = Path(__file__).resolve().parent.parent
START_TIMEOUT = 600  # seconds; the load takes ~20 s on an idle machine, far more on a busy one


class DemoServer:
    def __init__(self, url: str, process: subprocess.Popen[str], log: Path) -> None:
        self.url, self.process, self.log = url, process, log

    def banner(self) -> str:
        return self.log.read_text()


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    _require_browser()
    home = tmp_path_factory.mktemp("demo")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("REELCART_")}
    env.update(REELCART_DATABASE_URL=f"sqlite+aiosqlite:///{home}/reelcart.db",
               REELCART_FEEDS_DIR=str(home / "feeds"), REELCART_LOG_LEVEL="WARNING")
    log = home / "demo.log"
    with log.open("w") as out:
        process = subprocess.Popen(  # noqa: S603 (our own CLI, fixed arguments)
            [sys.executable, "-m", "api.cli", "demo", "--port", str(port)], cwd=REPO, env=env,
            stdout=out, stderr=subprocess.STDOUT, text=True)
    server = DemoServer(f"http://127.0.0.1:{port}", process, log)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if process.poll() is not None:
                pytest.fail(f"reelcart demo exited {process.returncode}:\n{server.banner()}")
            try:
                if httpx.get(f"{server.url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"reelcart demo did not serve in {START_TIMEOUT} s:\n"
                            f"{server.banner()}")
            time.sleep(0.5)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def test_the_banner_says_how_to_use_the_demo(demo_server: DemoServer) -> None:
    banner = demo_server.banner()
    base = demo_server.url
    for line in (f"{base}/docs", f"{base}/dashboard", f"{base}/mcp", DEMO_KEY,
                 DEMO_MERCHANT_KEY, f"user: {DEMO_USER}", f"password: {DEMO_PASSWORD}",
                 ".venv/bin/reelcart"):
        assert line in banner, banner
    assert re.search(r"demo history: \d{3} orders over 90 days", banner), banner
    # The printed keys work.
    orders = httpx.get(f"{base}/orders?limit=1",
                       headers={"Authorization": f"Bearer {DEMO_MERCHANT_KEY}"}).json()
    assert orders["total"] >= 250
    assert httpx.get(f"{base}/docs").status_code == 200


def _chart_points(page: Any) -> int:
    """The most data points (line dots or bars) any chart on the page draws."""
    counts: list[int] = page.eval_on_selector_all(
        "svg", "els => els.map(e => e.querySelectorAll('circle.point, rect.bar').length)")
    return max(counts, default=0)


def _rows(page: Any) -> int:
    return int(page.locator("table tbody tr").count())


def _csv_rows(page: Any, url: str) -> list[dict[str, str]]:
    response = page.request.get(url)
    assert response.status == 200, url
    return list(csv.DictReader(io.StringIO(response.text())))


def test_every_page_shows_the_story(demo_server: DemoServer, tmp_path: Path) -> None:
    sync_playwright = _require_browser()
    base = demo_server.url
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for width in (1280, 390):
            context = browser.new_context(viewport={"width": width, "height": 900})
            page = context.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{base}/dashboard/login")
            page.fill("input[name=username]", DEMO_USER)
            page.fill("input[name=password]", DEMO_PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_load_state()

            def visit(path: str, name: str, page: Any = page, width: int = width) -> None:
                response = page.goto(f"{base}{path}")
                assert response is not None
                assert response.status == 200, path
                page.screenshot(path=str(tmp_path / f"{name}-{width}.png"), full_page=True)

            visit("/dashboard", "home")
            assert _chart_points(page) > 20  # revenue on every day of the last 30
            assert page.locator("#top-agents-usd tbody tr").count() >= 4
            assert page.locator("#top-videos-usd tbody tr").count() >= 3
            assert page.locator("#alert-disputes a").count() >= 1  # the open dispute

            visit("/dashboard/orders", "orders")
            assert _rows(page) >= 20
            orders = _csv_rows(page, f"{base}/dashboard/orders?format=csv")
            assert len(orders) >= 250
            assert len({o["agent_id"] for o in orders}) >= 4
            assert {o["payment_status"] for o in orders} >= {
                "paid", "refunded", "partially_refunded", "dispute_lost", "disputed"}
            days = {o["created_at"][:10] for o in orders}
            assert len(days) >= 80  # sales on (nearly) every day of the 90

            visit("/dashboard/videos", "videos")
            assert _rows(page) >= 20
            videos = _csv_rows(page, f"{base}/dashboard/videos?format=csv")
            assert sum(1 for v in videos if int(v["orders"] or 0) > 0) >= 18

            visit("/dashboard/videos/rainy-denim", "video")
            assert page.get_by_text("Rainy-day denim").first.is_visible()
            assert _chart_points(page) > 5

            visit("/dashboard/funnel", "funnel")  # the last 30 days
            assert int(page.inner_text("#total-clicks").replace(",", "")) > 50
            assert _chart_points(page) > 5

            visit("/dashboard/experiments", "experiments")
            reports = page.locator("a[href^='/dashboard/experiments/exp_']")
            assert reports.count() == 2
            reports.first.click()
            page.wait_for_url("**/dashboard/experiments/exp_*")
            page.screenshot(path=str(tmp_path / f"experiment-{width}.png"), full_page=True)
            text = page.text_content("body") or ""
            # A row per variant with its orders / views, and a verdict.
            assert len(re.findall(r"\b[1-9]\d* / [1-9]\d*", text)) == 2, text
            assert "No winner yet" not in text

            visit("/dashboard/finance", "finance")
            assert _chart_points(page) > 5
            assert _rows(page) >= 10
            recon = _csv_rows(page, f"{base}/dashboard/finance?format=recon")
            assert len({r["payout_id"] for r in recon}) >= 25  # one per day of the last 30
            assert {r["status"] for r in recon} == {"matched"}
            context.close()
        browser.close()
    assert errors == []
