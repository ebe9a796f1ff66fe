"""The official UCP 2026-04-08 conformance suite (``tests/spec/ucp-conformance``: the public
suite, Apache-2.0, carried with its LICENSE and the three local patches listed in
``LOCAL_PATCHES.diff``; ``REELCART_UCP_CONFORMANCE_DIR`` points elsewhere) against a
real ``reelcart serve`` on loopback, seeded with the suite's flower-shop fixtures.

The suite runs as an external tool in its own virtualenv (``run_suite.sh`` installs it from
PyPI: ``ucp-sdk==0.4.4``). Every test must pass except the known deviations of the suite
from the 2026-04-08 specification listed below (README "UCP"); the five ``common/`` tests
are skipped by the suite itself (they are gated on capability names 2026-04-08 does not
define). It never skips: a missing suite is a failure.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port, reset_database

SHARED = Path(os.environ.get("REELCART_UCP_CONFORMANCE_DIR", Path(__file__).resolve()
                             .parent / "spec" / "ucp-conformance"))
FIXTURES = SHARED / "suite" / "shopping" / "fixtures" / "flower_shop"
SECRET = "conformance-simulation-secret"

# Tests that assert the suite's sample server where it contradicts the 2026-04-08 spec.
KNOWN_DEVIATIONS = {
    # PUT /orders/{id}: the 2026-04-08 order REST binding defines GET only; the business
    # is the source of truth and pushes changes to the platform as signed webhooks.
    "test_order_update", "test_order_adjustments", "test_invalid_adjustment_status",
    "test_malformed_adjustment_payload",
    # Expects a ``detail`` field; the spec's error_response allows no additional properties
    # (the message is in ``messages[].content``, which the test's text check also finds).
    "test_structured_error_messages",
}
EXPECTED_SKIPS = 5


@pytest.mark.slow
def test_official_conformance_suite(database_url: str, tmp_path: Path, backend: str) -> None:
    if not (SHARED / "run_suite.sh").is_file():
        pytest.fail(f"UCP conformance suite not found at {SHARED} (tests/spec/ucp-conformance "
                    "ships with the project; REELCART_UCP_CONFORMANCE_DIR overrides it)")
    asyncio.run(reset_database(database_url))
    port = free_port()
    merchant = tmp_path / "merchant.json"
    env = {**os.environ, "REELCART_DATABASE_URL": database_url,
           "REELCART_ENVIRONMENT": "test", "REELCART_MERCHANT_CONFIG": str(merchant),
           "REELCART_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
           "REELCART_UCP_SIMULATION_SECRET": SECRET,
           "REELCART_UCP_ACCEPT_LEGACY_AGENT_PROFILES": "true",
           "REELCART_OUTBOUND_ALLOW_HOSTS": "localhost,127.0.0.1",
           "REELCART_LOG_LEVEL": "WARNING", "REELCART_AGENT_API_KEYS": ""}
    cli = str(Path(sys.executable).parent / "reelcart")
    seeded = subprocess.run([cli, "ucp", "seed-fixtures", str(FIXTURES),
                             "--merchant-config-out", str(merchant)], env=env,
                            capture_output=True, text=True, timeout=120)
    assert seeded.returncode == 0, seeded.stdout + seeded.stderr
    log = (tmp_path / "server.log").open("wb")
    server = subprocess.Popen([cli, "serve", "--port", str(port)], env=env, stdout=log,
                              stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None, "reelcart serve exited"
            assert time.monotonic() < deadline, "reelcart serve did not become ready"
            time.sleep(0.25)
        suite_env = {k: v for k, v in os.environ.items() if not k.startswith("REELCART_")}
        suite_env.update({
            "UCP_SERVER_URL": f"http://127.0.0.1:{port}", "SIMULATION_SECRET": SECRET,
            "UCP_MOCK_WEBHOOK_PORT": str(free_port()), "UCP_MOCK_AGENT_PORT": str(free_port()),
            "UCP_SUITE_VENV": os.environ.get("UCP_SUITE_VENV", str(
                Path.home() / ".cache" / "ucp-conformance-venv"))})
        run = subprocess.run([str(SHARED / "run_suite.sh")], env=suite_env,
                             capture_output=True, text=True, timeout=900)
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    output = run.stdout + run.stderr
    ran = re.search(r"Ran (\d+) tests", output)
    assert ran, output[-3000:]
    failed = set(re.findall(r"^(?:FAIL|ERROR): (test_\w+)", output, re.MULTILINE))
    skipped = re.search(r"skipped=(\d+)", output)
    assert int(ran.group(1)) == 60, output[-3000:]
    assert failed == KNOWN_DEVIATIONS, output[-5000:]
    assert skipped is not None, output[-3000:]
    assert int(skipped.group(1)) == EXPECTED_SKIPS, output[-3000:]
    assert "Traceback" not in (tmp_path / "server.log").read_text()  # no server errors
