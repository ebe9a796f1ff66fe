"""Production never starts on the demo's defaults: the demo merchant profile (no
REELCART_MERCHANT_CONFIG, or one that keeps the demo store's name, merchant id, links or feed
id) and the demo's public address are refused with one line naming what to set, before
anything is served; a complete configuration gets past the guard (to the database)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from api.settings import DEMO_PROFILE_FIELDS, Settings, settings_error_line
from protocols.ucp.signing import SigningKey
from tests.conftest import free_port

OWN_PROFILE = {
    "name": "Acme Outfitters", "merchant_id": "acct_1AcmeOutfitters",
    "store_url": "https://acme.test", "terms_url": "https://acme.test/terms",
    "privacy_url": "https://acme.test/privacy", "return_policy_url": "https://acme.test/returns",
    "support_email": "help@acme.test", "feed_id": "acme-feed",
}
SIGNING_KEY = SigningKey.generate_pem()


def production(tmp_path: Path, profile: dict[str, Any] | None = OWN_PROFILE,
               **overrides: Any) -> dict[str, Any]:
    """Everything production needs; ``overrides`` (None deletes) make it incomplete."""
    values: dict[str, Any] = {
        "environment": "production", "database_url": "postgresql+asyncpg://u:p@db/reelcart",
        "payments_provider": "stripe", "stripe_api_key": "sk_live_x",
        "ucp_signing_key": SIGNING_KEY, "public_base_url": "https://api.acme.test"}
    if profile is not None:
        config = tmp_path / "merchant.json"
        config.write_text(json.dumps(profile))
        values["merchant_config"] = str(config)
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


def refusal(**values: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        Settings(_env_file=None, **values)
    line = settings_error_line(caught.value)
    assert "\n" not in line
    return line


def test_complete_production_configuration_is_accepted(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, **production(tmp_path))
    assert settings.merchant_profile().merchant_id == OWN_PROFILE["merchant_id"]


def test_production_refuses_the_builtin_demo_profile(tmp_path: Path) -> None:
    line = refusal(**production(tmp_path, profile=None))
    assert "production needs REELCART_MERCHANT_CONFIG" in line
    assert "demo store profile" in line


@pytest.mark.parametrize("kept", [DEMO_PROFILE_FIELDS, ("merchant_id",), ("terms_url",),
                                  ("feed_id", "support_email")])
def test_production_refuses_a_profile_that_keeps_demo_values(tmp_path: Path,
                                                             kept: tuple[str, ...]) -> None:
    profile = {k: v for k, v in OWN_PROFILE.items() if k not in kept}
    line = refusal(**production(tmp_path, profile=profile))
    assert line.endswith("production refuses the demo store's merchant profile: set "
                         f"{', '.join(f for f in DEMO_PROFILE_FIELDS if f in kept)} in "
                         "REELCART_MERCHANT_CONFIG")


@pytest.mark.parametrize("url", [None, "http://127.0.0.1:8000", "http://api.acme.test"])
def test_production_refuses_the_demo_public_address(tmp_path: Path, url: str | None) -> None:
    values = production(tmp_path, public_base_url=url)
    line = refusal(**values)
    assert "production needs REELCART_PUBLIC_BASE_URL: the https:// address agents reach" \
        in line


def test_production_reports_an_unusable_profile_file(tmp_path: Path) -> None:
    missing = refusal(**production(tmp_path, merchant_config=str(tmp_path / "nope.json")))
    assert "REELCART_MERCHANT_CONFIG cannot be read: No such file or directory" in missing
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert "REELCART_MERCHANT_CONFIG is not a valid merchant profile" in refusal(
        **production(tmp_path, merchant_config=str(broken)))
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({**OWN_PROFILE, "store_url": "ftp://acme.test"}))
    assert "not a valid merchant profile (store_url: " in refusal(
        **production(tmp_path, merchant_config=str(wrong)))


def _serve(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``reelcart serve`` as the Docker image runs it (REELCART_ENVIRONMENT=production)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("REELCART_")}
    return subprocess.run([str(Path(sys.executable).parent / "reelcart"), "serve"],
                          env={**base, **env}, capture_output=True, text=True, timeout=120,
                          check=False)


def test_production_serve_refuses_demo_defaults_in_one_line(tmp_path: Path) -> None:
    values = production(tmp_path, profile=None)
    env = {f"REELCART_{k.upper()}": str(v) for k, v in values.items()}
    refused = _serve(env)
    assert refused.returncode == 2, refused.stderr
    assert "Traceback" not in refused.stdout + refused.stderr
    assert refused.stderr.strip().splitlines() == [
        "error: invalid configuration: production needs REELCART_MERCHANT_CONFIG (your "
        "merchant profile JSON: name, merchant_id, store and policy URLs, rates); without "
        "it the built-in demo store profile would be served"]
    # The same configuration with the merchant's own profile passes the guard and goes on
    # to the database (here: nothing listening, which is its own one-line error).
    closed = free_port()
    complete = production(tmp_path, database_url=f"postgresql+asyncpg://u@127.0.0.1:{closed}/x")
    env = {f"REELCART_{k.upper()}": str(v) for k, v in complete.items()}
    started = _serve(env)
    assert started.returncode == 1, started.stderr
    assert started.stderr.startswith("error: cannot reach the database"), started.stderr
