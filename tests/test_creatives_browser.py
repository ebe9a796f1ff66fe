"""The experiments and provenance pages in a real browser (Playwright, headless Chromium,
under the dashboard's Content-Security-Policy): the report with its interval chart,
promoting the winner with the CSRF-checked form, flagged videos, phone width; any console
error fails the test."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from models.base import utc_now
from tests.browser import dashboard_browser
from tests.c2pa_media import tiny_mp4
from tests.conftest import AGENT_KEY, US_ADDRESS, LiveServer

MERCHANT = {"Authorization": "Bearer merchant-key"}


@pytest.fixture
def site(live_dashboard: Callable[..., LiveServer], tmp_path: Path
         ) -> tuple[LiveServer, dict[str, Any]]:
    server = live_dashboard(feeds_dir=tmp_path / "feeds")  # promoting queues a feeds rebuild
    agent = {"Authorization": f"Bearer {AGENT_KEY}", "API-Version": "2026-04-17"}
    yesterday = (utc_now().date() - timedelta(days=1)).isoformat()
    with httpx.Client(base_url=server.url, timeout=30) as client:
        def merchant(path: str, body: dict, key: str) -> dict:
            resp = client.post(path, json=body, headers={**MERCHANT, "Idempotency-Key": key})
            assert resp.status_code in (200, 201), resp.text
            return dict(resp.json())

        for vid, title in (("vid-rain", "Denim in the rain"), ("vid-sun", "Denim in the sun")):
            merchant("/videos", {"id": vid, "title": title,
                                 "products": [{"product_id": "spec-items"}]}, vid)
        for n in range(6):
            session = client.post("/checkout_sessions", headers={
                **agent, "Idempotency-Key": f"c{n}"}, json={
                "currency": "usd", "capabilities": {}, "line_items": [{"id": "item_123"}],
                "fulfillment_details": {"address": US_ADDRESS},
                "affiliate_attribution": {"provider": "tiktok", "token": "atp_browser_1",
                                          "creative_id": "vid-rain"}}).json()
            done = client.post(f"/checkout_sessions/{session['id']}/complete", headers={
                **agent, "Idempotency-Key": f"p{n}"}, json={"payment_data": {
                    "handler_id": "card_tokenized", "instrument": {"type": "card", "credential": {
                        "type": "spt", "token": "spt_test_success"}}}})
            assert done.status_code == 200, done.text
        merchant("/video-views", {"source": "tiktok", "counts": [
            {"video_id": "vid-rain", "day": yesterday, "views": 2400},
            {"video_id": "vid-sun", "day": yesterday, "views": 2600}]}, "views")
        report = merchant("/experiments", {
            "name": "Rain or sun", "product_id": "spec-items",
            "video_ids": ["vid-sun", "vid-rain"], "starts_on": yesterday, "min_views": 1000,
            "min_orders": 5}, "x")
        merchant("/videos/vid-sun/provenance",
                 {"file_base64": base64.b64encode(tiny_mp4()).decode()}, "prov")
    return server, report


def test_experiment_and_provenance_pages(site, backend: str, tmp_path: Path) -> None:
    server, report = site
    assert report["verdict"] == "winner"
    shots = Path(os.environ.get("REELCART_SCREENSHOT_DIR", tmp_path))
    with dashboard_browser(server.url) as ui:
        page = ui.page
        page.click("header >> text=Experiments")
        page.wait_for_url("**/dashboard/experiments")
        assert "no content credentials" in page.inner_text("main")  # vid-sun, unsigned
        page.screenshot(path=str(shots / "experiments.png"), full_page=True)
        page.click("text=Rain or sun")
        page.wait_for_url(f"**/dashboard/experiments/{report['id']}")
        assert "Winner: Denim in the rain" in page.inner_text("main")
        assert page.locator("svg.chart circle").count() == 2  # one mean per variant
        box = page.locator("svg.chart").bounding_box()
        assert box is not None
        assert box["width"] > 200
        page.screenshot(path=str(shots / "experiment.png"), full_page=True)
        page.click("text=Promote “Denim in the rain”")
        page.wait_for_selector("text=vid-rain is now the featured video of spec-items.")
        assert page.locator("text=Promote “Denim in the rain”").count() == 0  # no second button
        assert page.locator("td .pill", has_text="featured").count() == 1  # desktop

        page.goto(f"{server.url}/dashboard/provenance?flagged=1")
        assert "missing" in page.inner_text("main")

        for path, name in ((f"/dashboard/experiments/{report['id']}", "experiment-390.png"),
                           ("/dashboard/provenance", "provenance-390.png")):
            ui.at_phone_width(path, shots / name)
    assert ui.errors == []
