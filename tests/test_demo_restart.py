"""``reelcart demo`` started again: the merchant's data stays as it is (the catalog is not
imported again, so stock already sold stays sold), and a port another process listens on
is refused in one line before anything is loaded."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from sqlalchemy import update

from api.cli.server import _load_demo
from api.runtime import build_runtime
from models import Variant
from tests.conftest import make_settings, reset_database
from tests.test_cli import assert_one_line_error

REPO = Path(__file__).resolve().parents[1]


async def test_starting_the_demo_again_keeps_stock_already_sold(database_url: str) -> None:
    await reset_database(database_url)
    first = await _load_demo(make_settings(database_url))
    assert "demo history" in first
    runtime = build_runtime(make_settings(database_url))
    try:
        async with runtime.sessionmaker() as db, db.begin():  # as if 3 more jackets sold
            await db.execute(update(Variant).where(Variant.id == "denim-jacket-m")
                             .values(stock=Variant.stock - 3))
        async with runtime.sessionmaker() as db:
            before = await db.get(Variant, "denim-jacket-m")
        assert before is not None
        assert before.stock is not None
        again = await _load_demo(make_settings(database_url))
        async with runtime.sessionmaker() as db:
            after = await db.get(Variant, "denim-jacket-m")
    finally:
        await runtime.close()
    assert "demo history already loaded" in again
    assert "updated" not in again
    assert after is not None
    assert after.stock == before.stock


def test_a_busy_port_is_refused_in_one_line_before_loading(tmp_path: Path) -> None:
    database = tmp_path / "reelcart.db"
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "api.cli", "demo", "--port", str(port)], cwd=REPO,
            capture_output=True, text=True, timeout=120, check=False,
            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                 "REELCART_DATABASE_URL": f"sqlite+aiosqlite:///{database}"})
    assert_one_line_error(result, 1, f"cannot listen on 127.0.0.1:{port}",
                          "choose another --port")
    assert "serving on" not in result.stdout
    assert not database.exists()  # nothing migrated, nothing loaded
