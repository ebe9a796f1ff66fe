"""The command line as an operator meets it: a user's error is one line on stderr and a
non-zero exit (never a traceback); keys and users can be listed and revoked/deleted; a
taken name is refused unless the operator says what they want; imports refuse a file that is
not what ``--format`` says and report what did not change.

Run through the real CLI: ``reelcart`` in a subprocess where the printed output matters
(tracebacks, stderr lines), typer's CliRunner (the same root group) for the rest."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from api.cli import app
from api.dashboard.auth import check_credentials
from api.runtime import build_runtime
from models import Video
from models.db import create_engine, create_sessionmaker
from tests.conftest import API_VERSION, app_client, free_port, make_settings

REELCART = str(Path(sys.executable).parent / "reelcart")
PASSWORD = "correct horse battery"
PRODUCT: dict[str, Any] = {"id": "cli-shirt", "title": "Shirt", "variants": [
    {"id": "cli-shirt-m", "title": "Shirt M", "price": {"amount": 1999, "currency": "USD"}}]}


def reelcart(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The installed ``reelcart`` entry point, with ``env`` over a clean REELCART_* slate."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("REELCART_")}
    return subprocess.run([REELCART, *args], capture_output=True, text=True, timeout=120,
                          env={**base, "REELCART_LOG_LEVEL": "WARNING", **env}, check=False)


def assert_one_line_error(result: Any, code: int, *expected: str) -> str:
    """``result``: a subprocess result or a CliRunner result."""
    stdout, stderr = str(result.stdout), str(result.stderr)
    returned = getattr(result, "returncode", getattr(result, "exit_code", None))
    assert "Traceback" not in stdout + stderr, stdout + stderr
    assert returned == code, stdout + stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), lines
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


def cli(database_url: str, *args: str, **env: str) -> Any:
    """CliRunner on the real root group (same error handling as the entry point)."""
    result = CliRunner().invoke(app, list(args), env={
        **{k: None for k in os.environ if k.startswith("REELCART_")},
        "REELCART_DATABASE_URL": database_url, "REELCART_ENVIRONMENT": "test",
        "REELCART_LOG_LEVEL": "WARNING", **env})
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        result.exception  # a user's error never escapes as an exception (a traceback)
    return result


def unique(stem: str) -> str:
    return f"{stem}-{uuid.uuid4().hex[:8]}"


# ---------------------------------------------------------------- one line, no traceback


def test_feeds_push_without_feed_api_is_one_line(database_url: str, backend: str) -> None:
    """The installed entry point itself: one line, exit 1, no traceback."""
    name = unique("no-feed")
    assert cli(database_url, "agent-key", "create", name).exit_code == 0
    result = reelcart("feeds", "push", "--agent", name, REELCART_DATABASE_URL=database_url)
    assert_one_line_error(result, 1, f"Agent '{name}' has no Feed API configured")
    unknown = cli(database_url, "feeds", "push", "--agent", unique("nobody"))
    assert_one_line_error(unknown, 1, "No agent named")


def test_production_without_database_url_is_one_line() -> None:
    assert_one_line_error(reelcart("serve", REELCART_ENVIRONMENT="production"), 2,
                          "invalid configuration: production needs PostgreSQL "
                          "(REELCART_DATABASE_URL)")


@pytest.mark.parametrize(("env", "code", "expected"), [
    ({"REELCART_DATABASE_POOL_SIZE": "ten"}, 2, "REELCART_DATABASE_POOL_SIZE: "),
    ({"REELCART_DATABASE_URL": "mysql+nosuchdriver://db/x"}, 1,
     "REELCART_DATABASE_URL is not a database URL we can use"),
    ({"REELCART_DATABASE_URL": "sqlite+aiosqlite:////nonexistent-dir/reelcart.db"}, 1,
     "cannot reach the database (REELCART_DATABASE_URL)"),
], ids=["bad-value", "unknown-driver", "sqlite-folder-missing"])
def test_configuration_errors_are_one_line(tmp_path: Path, env: dict[str, str], code: int,
                                           expected: str) -> None:
    database = f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"
    assert_one_line_error(cli(database, "migrate", **env), code, expected)


@pytest.mark.parametrize(("args", "expected"), [
    (["user", "create", "bob", "--password", "short"],
     "error: Invalid value for password: use at least 8 characters "
     "(see `reelcart user create --help`)"),  # typer.BadParameter raised by the command
    (["feeds", "build", "--formats", "xml"],
     "error: Invalid value: --formats takes jsonl, csv, tsv (see `reelcart feeds build --help`)"),
    (["serve", "--port", "eighty"], "error: Invalid value for '--port': "),  # type check
    (["serve", "--workers", "0"], "error: Invalid value for '--workers': "),  # min=1
    (["payouts", "statements", "--bogus"], "error: No such option: --bogus"),
    (["videos", "nosuch"], "error: No such command 'nosuch'. (see `reelcart videos --help`)"),
    (["--bogus"], "error: No such option: --bogus (see `reelcart --help`)"),
    (["agent-key", "create", ""], "error: Invalid value for 'name': the agent name must not "
     "be empty (see `reelcart agent-key create --help`)"),
    (["merchant-key", "create", "ops\tteam"], "error: Invalid value for 'name': the merchant "
     "key name must not contain control characters"),
    (["user", "create", " ada", "--password", "long enough pw"], "error: Invalid value for "
     "'username': the user name must not start or end with blanks"),
], ids=["bad-parameter", "bad-parameter-no-hint", "not-an-int", "out-of-range",
        "unknown-option", "unknown-command", "unknown-root-option", "empty-agent-name",
        "merchant-key-name", "user-name"])
def test_bad_parameters_are_one_line_not_a_panel(tmp_path: Path, args: list[str],
                                                 expected: str) -> None:
    """A bad parameter reads like every other CLI error: one line, exit code 2, no box
    drawn around it and no usage block above it."""
    result = CliRunner().invoke(app, args, prog_name="reelcart", env={
        "REELCART_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"})
    line = assert_one_line_error(result, 2, expected)
    assert line.endswith("--help`)")
    assert not [c for c in "╭│╰" if c in result.stderr]
    assert "Usage:" not in result.stderr
    assert result.stdout == ""


def test_no_arguments_still_shows_the_help() -> None:
    result = CliRunner().invoke(app, ["videos"], prog_name="reelcart")
    assert "Usage: reelcart videos" in result.stdout + result.stderr
    assert "error:" not in result.stdout + result.stderr


def test_bad_parameter_from_the_entry_point_is_one_line(tmp_path: Path) -> None:
    result = reelcart("serve", "--port", "eighty",
                      REELCART_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    assert_one_line_error(result, 2, "Invalid value for '--port': ",
                          "(see `reelcart serve --help`)")


def test_unreachable_database_is_one_line() -> None:
    closed = free_port()  # nothing listens there
    url = f"postgresql+asyncpg://reelcart@127.0.0.1:{closed}/reelcart"
    assert_one_line_error(reelcart("migrate", REELCART_DATABASE_URL=url), 1,
                          "cannot reach the database (REELCART_DATABASE_URL): ")
    for args in (("agent-key", "list"), ("catalog", "sync-shopify")):
        result = cli(url, *args, REELCART_SHOPIFY_SHOP="acme.myshopify.com",
                     REELCART_SHOPIFY_ACCESS_TOKEN="shpat_x")
        assert_one_line_error(result, 1, "cannot reach the database")


def test_settings_error_never_echoes_the_value(tmp_path: Path) -> None:
    line = assert_one_line_error(cli(
        f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", "migrate",
        REELCART_DATABASE_POOL_SIZE="sk_live_secretvalue"), 2)
    assert "sk_live_secretvalue" not in line


# ---------------------------------------------------------------- agent keys


async def _status(database_url: str, key: str, merchant: bool = False) -> int:
    """What the API answers this key now (a fresh runtime, as after a restart)."""
    rt = build_runtime(make_settings(database_url, agent_api_keys=[]))
    try:
        async with app_client(rt) as http:
            if merchant:
                response = await http.get("/orders", headers={"Authorization": f"Bearer {key}"})
            else:
                response = await http.get("/checkout_sessions/cs_missing", headers={
                    "Authorization": f"Bearer {key}", "API-Version": API_VERSION})
            return response.status_code
    finally:
        await rt.close()


def status(database_url: str, key: str, merchant: bool = False) -> int:
    return asyncio.run(_status(database_url, key, merchant))


async def _ensure_dev_agent(database_url: str) -> None:
    runtime = build_runtime(make_settings(database_url))
    try:
        await runtime.ensure_dev_agent()
    finally:
        await runtime.close()


def test_the_development_agent_is_listed_with_the_environments_keys(
        database_url: str, backend: str) -> None:
    """The agent that REELCART_AGENT_API_KEYS authenticate as (the demo's) has no stored
    key; the list says where its keys come from instead of "no key"."""
    asyncio.run(_ensure_dev_agent(database_url))
    listed = cli(database_url, "agent-key", "list")
    line = next(line for line in listed.stdout.splitlines() if line.startswith("development "))
    assert line.endswith("keys from REELCART_AGENT_API_KEYS"), line


def test_agent_key_create_list_rotate_revoke(database_url: str, backend: str) -> None:
    name = unique("agent")
    first = cli(database_url, "agent-key", "create", name)
    assert first.exit_code == 0, first.output
    key1 = first.stdout.strip()
    assert key1.startswith("rck_")
    assert f"new agent {name}" in first.stderr
    assert status(database_url, key1) == 404  # authenticated; the session does not exist

    again = cli(database_url, "agent-key", "create", name)
    assert again.exit_code == 1
    assert again.stdout == ""
    assert f"agent '{name}' already has 1 active key(s) ({key1[:12]}…)" in again.stderr
    assert "--rotate" in again.stderr

    listed = cli(database_url, "agent-key", "list")
    mine = [line for line in listed.stdout.splitlines() if line.startswith(name + " ")]
    assert len(mine) == 1
    assert f"{key1[:12]}…" in mine[0]
    assert "active" in mine[0]
    assert key1 not in listed.output  # only the prefix, never the key

    key2 = cli(database_url, "agent-key", "create", name, "--add").stdout.strip()
    assert status(database_url, key1) == 404
    assert status(database_url, key2) == 404

    revoked = cli(database_url, "agent-key", "revoke", name, "--key", key1[:12])
    assert revoked.exit_code == 0
    assert "1 key(s) revoked" in revoked.stdout
    assert status(database_url, key1) == 401
    assert status(database_url, key2) == 404

    rotated = cli(database_url, "agent-key", "create", name, "--rotate")
    key3 = rotated.stdout.strip()
    assert "1 old key(s) revoked" in rotated.stderr
    assert status(database_url, key2) == 401
    assert status(database_url, key3) == 404

    assert cli(database_url, "agent-key", "revoke", name).stdout.strip() \
        == f"agent {name}: 1 key(s) revoked"
    assert status(database_url, key3) == 401
    states = [line.split()[-3] if "revoked" in line else line.split()[-1]
              for line in cli(database_url, "agent-key", "list").stdout.splitlines()
              if line.startswith(name + " ")]
    assert states == ["revoked"] * 3

    both = cli(database_url, "agent-key", "create", name, "--rotate", "--add")
    assert both.exit_code == 2
    assert "not both" in both.stderr
    unknown = cli(database_url, "agent-key", "revoke", unique("nobody"))
    assert unknown.exit_code == 1
    assert "no agent named" in unknown.stderr


@pytest.mark.parametrize("command", [("agent-key", "create"), ("merchant-key", "create"),
                                     ("user", "create")])
@pytest.mark.parametrize("name", ["", "   ", " padded", "tab\there"])
def test_empty_or_unprintable_names_are_refused(database_url: str, backend: str,
                                                command: tuple[str, str], name: str) -> None:
    """A bad name is a bad parameter: exit 2, one ``error:`` line, nothing stored."""
    result = cli(database_url, *command, name, REELCART_NEW_USER_PASSWORD=PASSWORD)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr.startswith("error: Invalid value for '")
    assert "name must not" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


# ---------------------------------------------------------------- merchant keys


def test_merchant_key_create_list_revoke(database_url: str, backend: str) -> None:
    name = unique("ops")
    key1 = cli(database_url, "merchant-key", "create", name).stdout.strip()
    assert key1.startswith("rcm_")
    assert status(database_url, key1, merchant=True) == 200

    again = cli(database_url, "merchant-key", "create", name)
    assert again.exit_code == 1
    assert "already has 1 active key(s)" in again.stderr
    listed = [line for line in cli(database_url, "merchant-key", "list").stdout.splitlines()
              if line.startswith(name + " ")]
    assert len(listed) == 1
    assert f"{key1[:12]}…" in listed[0]

    key2 = cli(database_url, "merchant-key", "create", name, "--rotate").stdout.strip()
    assert status(database_url, key1, merchant=True) == 401
    assert status(database_url, key2, merchant=True) == 200
    assert "1 key(s) revoked" in cli(database_url, "merchant-key", "revoke", name).stdout
    assert status(database_url, key2, merchant=True) == 401
    nothing = cli(database_url, "merchant-key", "revoke", name)
    assert nothing.exit_code == 0
    assert "no active key to revoke" in nothing.stdout


# ---------------------------------------------------------------- dashboard users


async def _login(database_url: str, username: str, password: str) -> bool:
    engine = create_engine(database_url)
    try:
        from api.dashboard.auth import ScryptCost

        user = await check_credentials(create_sessionmaker(engine), username, password,
                                       ScryptCost(14))
        return user is not None
    finally:
        await engine.dispose()


def login(database_url: str, username: str, password: str) -> bool:
    return asyncio.run(_login(database_url, username, password))


def test_user_create_refuses_reset_without_flag_list_delete(database_url: str,
                                                            backend: str) -> None:
    name = unique("ada")
    made = cli(database_url, "user", "create", name, REELCART_NEW_USER_PASSWORD=PASSWORD)
    assert made.exit_code == 0
    assert "is ready" in made.stdout
    assert login(database_url, name, PASSWORD)

    again = cli(database_url, "user", "create", name,
                REELCART_NEW_USER_PASSWORD="another long password")
    assert again.exit_code == 1
    assert "already exists: pass --reset-password" in again.stderr
    assert login(database_url, name, PASSWORD)  # the password was not touched

    reset = cli(database_url, "user", "create", name, "--reset-password",
                REELCART_NEW_USER_PASSWORD="another long password")
    assert reset.exit_code == 0
    assert "new password" in reset.stdout
    assert login(database_url, name, "another long password")
    assert not login(database_url, name, PASSWORD)

    stranger = cli(database_url, "user", "create", unique("bob"), "--reset-password",
                   REELCART_NEW_USER_PASSWORD=PASSWORD)
    assert stranger.exit_code == 1
    assert "no dashboard user named" in stranger.stderr

    listed = [line for line in cli(database_url, "user", "list").stdout.splitlines()
              if line.startswith(name + " ")]
    assert len(listed) == 1
    assert "0 open session(s)" in listed[0]

    assert cli(database_url, "user", "delete", name).exit_code == 0
    assert not login(database_url, name, "another long password")
    gone = cli(database_url, "user", "delete", name)
    assert gone.exit_code == 1
    assert gone.stderr.strip() == \
        f"error: no dashboard user named '{name}' (see `reelcart user list`)"


# ---------------------------------------------------------------- imports


CSV_HEADER = "item_id,title,price\ncli-shirt-m,Shirt M,19.99 USD\n"


@pytest.mark.parametrize(("name", "content", "args", "expected"), [
    ("products.jsonl", json.dumps(PRODUCT) + "\n", ["--format", "csv"],
     "products.jsonl is not an OpenAI flat-file CSV (--format csv): it looks like JSON"),
    ("products.csv", CSV_HEADER, ["--format", "acp"],
     "products.csv is not ACP Product JSONL (--format acp): it looks like an OpenAI "
     "flat-file CSV (pass --format csv)"),
    ("products.csv", CSV_HEADER, ["--format", "tsv"], "(pass --format csv)"),
    ("products.tsv", CSV_HEADER.replace(",", "\t"), ["--format", "csv"],
     "it looks like an OpenAI flat-file TSV (pass --format tsv)"),
    ("products.csv", "sku,name\n1,x\n", [],
     "the header lacks the required column(s) 'item_id', 'title', 'price'"),
    ("products.jsonl", "not json\n", [], "its first line is not a JSON object"),
    ("products.csv", "", [], "products.csv is empty"),
], ids=["jsonl-as-csv", "csv-as-acp", "csv-as-tsv", "tsv-as-csv", "no-columns", "not-json",
        "empty"])
def test_catalog_import_refuses_a_file_of_another_format(
        tmp_path: Path, name: str, content: str, args: list[str], expected: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    database = tmp_path / "untouched.db"
    result = cli(f"sqlite+aiosqlite:///{database}", "catalog", "import", str(path), *args)
    assert_one_line_error(result, 1, expected)
    assert not database.exists()  # refused before the database was opened


def test_catalog_import_format_error_from_the_entry_point(tmp_path: Path) -> None:
    path = tmp_path / "products.csv"
    path.write_text(CSV_HEADER)
    result = reelcart("catalog", "import", str(path), "--format", "acp",
                      REELCART_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    assert_one_line_error(result, 1, "(pass --format csv)")


@pytest.mark.parametrize(("name", "content", "expected"), [
    ("latin1.csv", "item_id,title,price\nx,Caf\xe9,1.00 USD\n".encode("latin-1"),
     "latin1.csv: not UTF-8 text"),
    ("products.csv.gz", CSV_HEADER.encode(), "products.csv.gz: not a readable gzip file"),
], ids=["not-utf8", "not-gzip"])
def test_unreadable_import_files_are_one_line(tmp_path: Path, name: str, content: bytes,
                                              expected: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    db = f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"
    assert_one_line_error(cli(db, "catalog", "import", str(path)), 1, expected)
    assert_one_line_error(cli(db, "videos", "import", str(path)), 1, expected)


def test_reimport_reports_unchanged_and_strict_videos(database_url: str, backend: str,
                                                      tmp_path: Path) -> None:
    product = {**PRODUCT, "id": unique("cli-shirt")}
    product["variants"] = [{**PRODUCT["variants"][0], "id": product["id"] + "-m"}]
    catalog = tmp_path / "products.jsonl"
    catalog.write_text(json.dumps(product) + "\n")
    first = cli(database_url, "catalog", "import", str(catalog))
    assert "1 created, 0 updated, 0 unchanged, 0 rejected" in first.stdout, first.output
    second = cli(database_url, "catalog", "import", str(catalog))
    assert "0 created, 0 updated, 1 unchanged, 0 rejected" in second.stdout
    assert "catalog unchanged" in second.stdout

    parent, remix = unique("vid"), unique("remix")
    lines = [{"id": remix, "parent_video_id": parent, "title": "Remix",
              "products": [{"product_id": product["id"]}]},
             {"id": parent, "title": "Original", "generator": "veo-3",
              "published_at": "2026-01-02T03:04:05Z",
              "source_url": "https://videos.example/a.mp4",
              "products": [{"product_id": product["id"], "variant_id": product["id"] + "-m"}]}]
    videos = tmp_path / "videos.jsonl"
    videos.write_text("".join(json.dumps(v) + "\n" for v in lines) + '{"id": "bad id!"}\n')
    loose = cli(database_url, "videos", "import", str(videos))
    assert loose.exit_code == 0, loose.output
    assert "2 created, 0 updated, 0 unchanged, 1 rejected" in loose.stdout
    assert "line 3: id:" in loose.stderr
    strict = cli(database_url, "videos", "import", str(videos), "--strict")
    assert strict.exit_code == 1
    assert "0 created, 0 updated, 2 unchanged, 1 rejected" \
        in strict.stdout
    before = asyncio.run(_updated_at(database_url, parent))

    videos.write_text("".join(json.dumps(v) + "\n" for v in lines))
    clean = cli(database_url, "videos", "import", str(videos), "--strict")
    assert clean.exit_code == 0
    assert "videos unchanged" in clean.stdout
    assert asyncio.run(_updated_at(database_url, parent)) == before  # not even touched

    lines[1]["title"] = "Original, recut"
    videos.write_text("".join(json.dumps(v) + "\n" for v in lines))
    changed = cli(database_url, "videos", "import", str(videos))
    assert "0 created, 1 updated, 1 unchanged, 0 rejected" in changed.stdout


async def _updated_at(database_url: str, video_id: str) -> object:
    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine)() as db:
            return await db.scalar(select(Video.updated_at).where(Video.id == video_id))
    finally:
        await engine.dispose()
