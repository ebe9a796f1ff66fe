"""Dashboard accounts (issue 12): attempt limits in the database (per user and per client
address, across processes), the same work for unknown users, sessions ended by a
password change, CSRF on the login form, OWASP scrypt cost with upgrade at login."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import select

from api.dashboard import auth, throttle
from api.dashboard.auth import OWASP, ScryptCost, create_user, hash_password
from api.runtime import Runtime, build_runtime
from models import DashboardUser
from tests.conftest import app_client, make_settings, sandbox_runtime
from tests.test_dashboard import FAST, csrf_of, log_in, submit_login

PASSWORD = "correct horse battery"


@pytest.fixture
async def rt(database_url: str):
    async with sandbox_runtime(database_url) as runtime:
        async with runtime.sessionmaker() as db, db.begin():
            await create_user(db, "ada", PASSWORD, FAST)
        yield runtime


async def test_login_form_needs_its_csrf_token(rt: Runtime, backend: str) -> None:
    async with app_client(rt, "https://shop.test") as client:
        forged = await client.post("/dashboard/login", data={"username": "ada",
                                                             "password": PASSWORD})
        assert forged.status_code == 403
        form = await client.get("/dashboard/login")
        token = csrf_of(form.text)
        client.cookies.clear()  # a token without its cookie (another site's form)
        forged = await client.post("/dashboard/login", data={
            "username": "ada", "password": PASSWORD, "csrf_token": token})
        assert forged.status_code == 403
        assert (await submit_login(client, "ada", PASSWORD)).status_code == 303


async def test_attempts_are_limited_per_user_even_with_the_right_password(
        rt: Runtime, database_url: str, backend: str) -> None:
    # Two API "processes" (two runtimes) share the count: it lives in the database.
    other = build_runtime(make_settings(database_url))
    try:
        async with app_client(rt, "https://shop.test") as a, \
                app_client(other, "https://shop.test") as b:
            for i in range(throttle.USER_LIMIT):
                wrong = await submit_login(a if i % 2 else b, "ada", f"guess-{i}")
                assert wrong.status_code == 401
            locked = await submit_login(a, "ada", PASSWORD)
            assert locked.status_code == 429
            assert "Too many attempts" in locked.text
            assert int(locked.headers["retry-after"]) > 0
            assert (await submit_login(b, "ada", PASSWORD)).status_code == 429
            # Another user from the same address is not locked by ada's lock.
            async with rt.sessionmaker() as db, db.begin():
                await create_user(db, "bo", PASSWORD, FAST)
            assert (await submit_login(b, "bo", PASSWORD)).status_code == 303
    finally:
        await other.close()


async def test_attempts_are_limited_per_address_across_user_names(rt: Runtime,
                                                                  backend: str) -> None:
    async with app_client(rt, "https://shop.test") as client:
        for i in range(throttle.ADDRESS_LIMIT):
            resp = await submit_login(client, f"nobody-{i}", "x")
            assert resp.status_code == 401
        assert (await submit_login(client, "ada", PASSWORD)).status_code == 429


async def test_parallel_guesses_cannot_exceed_the_limit(rt: Runtime, backend: str) -> None:
    async with app_client(rt, "https://shop.test") as client:
        form = await client.get("/dashboard/login")
        token = csrf_of(form.text)

        async def guess(i: int) -> int:
            resp = await client.post("/dashboard/login", data={
                "username": "ada", "password": f"guess-{i}", "csrf_token": token})
            return resp.status_code

        codes = await asyncio.gather(*(guess(i) for i in range(12)))
    assert codes.count(401) == throttle.USER_LIMIT
    assert codes.count(429) == 12 - throttle.USER_LIMIT


async def test_unknown_users_cost_the_same_scrypt_work(rt: Runtime, backend: str) -> None:
    """Measured in CPU time of the process (scrypt dominates it), not wall-clock time:
    an unknown user costs one hash of the target cost, like a known user (it cost two)."""
    import resource

    target = ScryptCost(rt.settings.dashboard_scrypt_log2_n)
    auth._dummy_hash(target)  # built once per process, before any attempt

    def cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    spent: dict[str, float] = {}
    for name in ("ada", "nobody-here", "ada", "nobody-here"):
        started = cpu()
        for _ in range(3):
            assert await auth.check_credentials(rt.sessionmaker, name, "wrong", target) is None
        spent[name] = spent.get(name, 0.0) + cpu() - started
    ratio = spent["nobody-here"] / spent["ada"]
    assert 0.6 < ratio < 1.5, spent


async def test_password_change_ends_sessions(rt: Runtime, backend: str) -> None:
    async with app_client(rt, "https://shop.test") as client:
        await log_in(client)
        assert (await client.get("/dashboard/orders")).status_code == 200
        async with rt.sessionmaker() as db, db.begin():
            await create_user(db, "ada", "a brand new password", FAST)
        assert (await client.get("/dashboard/orders")).status_code == 303  # to login
        async with rt.sessionmaker() as db, db.begin():  # and through configuration
            await auth.ensure_user_hash(db, "ada", hash_password("third password", FAST))
        await log_in(client, password="third password")
        async with rt.sessionmaker() as db, db.begin():
            await auth.ensure_user_hash(db, "ada", hash_password("fourth password", FAST))
        assert (await client.get("/dashboard/orders")).status_code == 303


async def test_owasp_cost_and_upgrade_at_login(database_url: str, backend: str) -> None:
    assert (OWASP.log2_n, OWASP.r, OWASP.p) == (17, 8, 1)
    owasp_hash = hash_password("pw", OWASP)
    assert owasp_hash.startswith("scrypt$ln=17,r=8,p=1$")
    assert auth.verify_password("pw", owasp_hash)
    with pytest.raises(ValueError, match="2\\^17|LOG2_N"):
        make_settings("postgresql+asyncpg://x/y", environment="production",
                      agent_api_keys=[], dashboard_scrypt_log2_n=14)
    # A hash from before (scrypt$salt$digest, N=2^14) is upgraded at the next login.
    import base64
    import hashlib
    import secrets

    salt = secrets.token_bytes(16)
    legacy = "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(
        hashlib.scrypt(PASSWORD.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)).decode()
    async with sandbox_runtime(database_url, dashboard_scrypt_log2_n=15) as rt:
        async with rt.sessionmaker() as db, db.begin():
            await auth.ensure_user_hash(db, "old", legacy)
        async with app_client(rt, "https://shop.test") as client:
            assert (await submit_login(client, "old", PASSWORD)).status_code == 303
            async with rt.sessionmaker() as db:
                stored = await db.scalar(select(DashboardUser.password_hash)
                                         .where(DashboardUser.username == "old"))
            assert stored is not None
            assert stored.startswith("scrypt$ln=15,r=8,p=1$")
            assert (await client.get("/dashboard/orders")).status_code == 200  # still in
            client.cookies.clear()
            assert (await submit_login(client, "old", PASSWORD)).status_code == 303


async def test_client_address_is_the_peer(rt: Runtime, backend: str) -> None:
    """A forged X-Forwarded-For does not reset the per-address count."""
    transport = httpx.ASGITransport(app=__import__("api.app", fromlist=["create_app"])
                                    .create_app(rt), client=("203.0.113.9", 1234))
    async with httpx.AsyncClient(transport=transport, base_url="https://shop.test") as client:
        for i in range(throttle.ADDRESS_LIMIT):
            form = await client.get("/dashboard/login")
            resp = await client.post("/dashboard/login", data={
                "username": f"u{i}", "password": "x", "csrf_token": csrf_of(form.text)},
                headers={"X-Forwarded-For": f"198.51.100.{i}"})
            assert resp.status_code == 401
        assert (await submit_login(client, "ada", PASSWORD)).status_code == 429
