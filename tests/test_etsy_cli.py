"""`reelcart etsy connect` (OAuth 2.0 + PKCE, two steps) and `reelcart catalog sync-etsy`,
run as the merchant runs them, against the fake Etsy."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest
from cryptography.fernet import Fernet
from pytest_httpx import HTTPXMock
from typer.testing import CliRunner

from api.cli import app
from tests.conftest import reset_database
from tests.fake_etsy import API_PATTERN, KEYSTRING, SHARED_SECRET, SHOP_ID, FakeEtsy


@pytest.fixture
def fake_etsy(httpx_mock: HTTPXMock) -> FakeEtsy:
    fake = FakeEtsy()
    httpx_mock.add_callback(fake, url=API_PATTERN, is_reusable=True, is_optional=True)
    fake.add_listing(2001, "Walnut spoon", [{"sku": "SPOON", "price": 1800, "quantity": 4}])
    return fake


def test_connect_then_sync_from_the_command_line(
        database_url: str, fake_etsy: FakeEtsy, monkeypatch: pytest.MonkeyPatch,
        backend: str) -> None:
    asyncio.run(reset_database(database_url))
    for name, value in {"DATABASE_URL": database_url, "ENVIRONMENT": "test",
                        "ETSY_KEYSTRING": KEYSTRING, "ETSY_SHARED_SECRET": SHARED_SECRET,
                        "ETSY_TOKEN_KEY": Fernet.generate_key().decode(),
                        "ETSY_REDIRECT_URI": "https://merchant.test/etsy/callback"}.items():
        monkeypatch.setenv(f"REELCART_{name}", value)
    runner = CliRunner()
    first = runner.invoke(app, ["etsy", "connect"], input="")  # prints the URL, no code yet
    match = re.search(r"https://www\.etsy\.com/oauth/connect\?\S+", first.output)
    assert match, first.output
    url = httpx.URL(match.group(0))
    assert url.params["client_id"] == KEYSTRING
    assert url.params["redirect_uri"] == "https://merchant.test/etsy/callback"
    assert url.params["scope"] == "listings_r listings_w transactions_r transactions_w shops_r"
    fake_etsy.challenges["auth-code-1"] = url.params["code_challenge"]
    state = url.params["state"]
    wrong = runner.invoke(app, ["etsy", "connect", "--code",
                                "https://merchant.test/etsy/callback?code=auth-code-1&state=x"])
    assert wrong.exit_code != 0
    done = runner.invoke(app, ["etsy", "connect", "--code",
                               f"https://merchant.test/etsy/callback?code=auth-code-1&state={state}"])
    assert done.exit_code == 0, done.output
    assert f"connected: Etsy shop {SHOP_ID}" in done.output
    synced = runner.invoke(app, ["catalog", "sync-etsy"])
    assert synced.exit_code == 0, synced.output
    assert "products: 1 created" in synced.output
    assert fake_etsy.count("getListingsByShop") == 1
    again = runner.invoke(app, ["catalog", "sync-etsy"])
    assert "incremental" in again.output
    pushed = runner.invoke(app, ["etsy", "push-stock"])
    assert "listings queued: 1" in pushed.output, pushed.output
