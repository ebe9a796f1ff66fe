"""One publish concept: every destination runs on its own (one failing never blocks the
others), every delivery leaves a finished record, visible in ``/feeds/pushes`` and on the
dashboard's per-destination health."""

from __future__ import annotations

import socket
from pathlib import Path

import asyncssh
import pytest
from pytest_httpx import HTTPXMock
from sqlalchemy import select

from api.runtime import Runtime
from feeds import repository
from feeds.destinations import (
    FeedDestination,
    GoogleMerchantDestination,
    OpenAISftpDestination,
    Outcome,
    PublishContext,
    StripeCatalogDestination,
    publish_all,
)
from feeds.google_client import MerchantApiClient
from feeds.publish import build_feeds
from feeds.sftp import SftpTarget
from feeds.stripe_catalog import StripeCatalogClient
from models import FeedDelivery
from tests.conftest import app_client, sandbox_runtime
from tests.test_dashboard import log_in
from tests.test_feed_google import (
    ACCOUNT,
    DATA_SOURCE,
    FakeMerchantApi,
    google,  # noqa: F401 (fixture)
    service_account,
)
from tests.test_feed_google import API as GOOGLE_API
from tests.test_feed_stripe import API as STRIPE_API
from tests.test_feed_stripe import (
    FakeCatalogImports,
    stripe_catalog,  # noqa: F401 (fixture)
)


class Exploding:
    """A destination that records a delivery and then fails unexpectedly."""

    name: str = "exploding"

    async def publish(self, ctx: PublishContext) -> Outcome:
        async with ctx.sessionmaker() as db, db.begin():
            await repository.start_delivery(db, destination=self.name, run_id=ctx.run_id,
                                            mode="full")
        raise RuntimeError("boom")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def no_wait(seconds: float) -> None:
    return None


async def test_destinations_are_independent_and_every_delivery_is_finished(
        database_url: str, google: FakeMerchantApi,  # noqa: F811
        stripe_catalog: FakeCatalogImports, httpx_mock: HTTPXMock,  # noqa: F811
        tmp_path: Path, backend: str) -> None:
    stripe_catalog.create_faults = [400]  # Stripe refuses this run
    async with sandbox_runtime(database_url, feeds_dir=tmp_path,
                               merchant_api_keys=["merchant-key"]) as rt:
        config = rt.settings.feed_config(rt.profile)
        report = await build_feeds(rt.sessionmaker, tmp_path, config,
                                   openai_formats=("jsonl",))
        unreachable = SftpTarget(host="127.0.0.1", port=closed_port(), username="u",
                                 host_key=asyncssh.generate_private_key("ssh-ed25519")
                                 .export_public_key().decode(), password="p")
        destinations: list[FeedDestination] = [
            OpenAISftpDestination(unreachable, attempts=2, sleep=no_wait),
            GoogleMerchantDestination(
                MerchantApiClient(rt.outbound_http, service_account(google), base_url=GOOGLE_API,
                                  sleep=no_wait),
                account_id=ACCOUNT, data_source_id=DATA_SOURCE),
            StripeCatalogDestination(StripeCatalogClient(rt.outbound_http, "sk_test_catalog",
                                                         base_url=STRIPE_API, sleep=no_wait)),
            Exploding(),
        ]
        ctx = PublishContext(rt.sessionmaker, config, tmp_path, report)
        outcomes = {o.destination: o.status for o in await publish_all(destinations, ctx)}
        assert outcomes == {"openai_sftp": "failed", "google_merchant": "succeeded",
                            "stripe_catalog": "failed", "exploding": "failed"}
        assert len(google.inputs) >= 72  # Google got the catalog despite the others
        async with rt.read_sessionmaker() as db:
            records = list(await db.scalars(select(FeedDelivery)))
        assert {r.destination for r in records} == set(outcomes)
        assert all(r.status != "running" for r in records)
        boom = next(r for r in records if r.destination == "exploding")
        assert "RuntimeError: boom" in (boom.error or "")
        await check_pushes_endpoint_and_dashboard(rt)


async def check_pushes_endpoint_and_dashboard(rt: Runtime) -> None:
    async with app_client(rt, "https://shop.test") as client:
        listed = await client.get("/feeds/pushes",
                                  headers={"Authorization": "Bearer merchant-key"})
        assert listed.status_code == 200
        by_destination = {d["destination"]: d for d in listed.json()["deliveries"]}
        sftp = by_destination["openai_sftp"]
        assert sftp["file"] == "products-00001.jsonl.gz"
        assert len(sftp["checksum"]) == 64
        assert sftp["size_bytes"] > 0
        assert sftp["status"] == "failed"
        assert sftp["attempts"] == 2
        assert by_destination["google_merchant"]["items_sent"] >= 72
        from api.dashboard.auth import create_user

        async with rt.sessionmaker() as db, db.begin():
            await create_user(db, "ada", "correct horse battery")
        await log_in(client)
        page = await client.get("/dashboard/catalog")
    assert page.status_code == 200
    html = page.text
    assert "Feed destinations" in html
    for name in ("openai_sftp", "google_merchant", "stripe_catalog", "exploding"):
        assert name in html
    assert "products-00001.jsonl.gz" in html
    assert "OpenAI spec currently-stable" in html
    assert "style=" not in html
    assert "<script>" not in html


def test_feeds_publish_command_builds_and_reports_each_destination(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from api.cli import app

    monkeypatch.setenv("REELCART_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'r.db'}")
    monkeypatch.setenv("REELCART_FEEDS_DIR", str(tmp_path / "feeds"))
    result = CliRunner().invoke(app, ["feeds", "publish"])
    assert result.exit_code == 0, result.output
    assert "OpenAI spec currently-stable" in result.output
    assert "acp_feed_api" in result.output
    assert (tmp_path / "feeds" / "report.json").is_file()


async def test_deliveries_left_running_by_a_stopped_process_are_closed_next_run(
        database_url: str, tmp_path: Path, backend: str) -> None:
    from datetime import timedelta

    from models import FeedPush
    from models.base import utc_now

    async with sandbox_runtime(database_url, feeds_dir=tmp_path) as rt:
        async with rt.sessionmaker() as db, db.begin():
            old = await repository.start_delivery(db, destination="openai_sftp",
                                                  run_id="run_old", mode="full")
            fresh = await repository.start_delivery(db, destination="openai_sftp",
                                                    run_id="run_now", mode="full")
            record = await db.get(FeedDelivery, old)
            assert record is not None
            record.started_at = utc_now() - timedelta(hours=7)
            db.add(FeedPush(id="fp_old", agent_id="agt_development", status="running",
                            started_at=utc_now() - timedelta(hours=7)))
        await rt.feed_refresher().run()
        async with rt.read_sessionmaker() as db:
            old_row = await db.get(FeedDelivery, old)
            fresh_row = await db.get(FeedDelivery, fresh)
            push = await db.get(FeedPush, "fp_old")
    assert old_row is not None
    assert fresh_row is not None
    assert push is not None
    assert old_row.status == "failed"
    assert "interrupted" in (old_row.error or "")
    assert push.status == "failed"
    assert fresh_row.status == "running"  # a delivery in progress elsewhere is left alone
