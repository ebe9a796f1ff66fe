"""OpenAI feed delivery over SFTP, against a real asyncssh SFTP server on loopback:
pinned host key, password or key login, temp-name-then-rename, retry with backoff, a
delivery record per file, scheduled after each build."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from sqlalchemy import delete, select, update

from api.runtime import Runtime
from feeds.destinations import OpenAISftpDestination, PublishContext, publish_all
from feeds.publish import build_feeds
from feeds.sftp import SftpTarget
from models import FeedDelivery, Product, Variant
from tests.conftest import sandbox_runtime
from tests.test_feeds import read_jsonl_gz

USER, PASSWORD = "merchant-feeds", "s3cret-pass"


@dataclass
class SftpServer:
    root: Path
    host_key: asyncssh.SSHKey
    client_key: asyncssh.SSHKey
    port: int = 0
    server: Any = None
    logins: int = 0

    async def start(self) -> None:
        outer = self

        class Server(asyncssh.SSHServer):
            def begin_auth(self, username: str) -> bool:
                return True

            def password_auth_supported(self) -> bool:
                return True

            def validate_password(self, username: str, password: str) -> bool:
                ok = username == USER and password == PASSWORD
                outer.logins += ok
                return ok

            def public_key_auth_supported(self) -> bool:
                return True

            def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
                ok = username == USER and key.public_data == outer.client_key.public_data
                outer.logins += ok
                return ok

        def sftp_factory(chan: asyncssh.SSHServerChannel) -> asyncssh.SFTPServer:
            return asyncssh.SFTPServer(chan, chroot=str(outer.root).encode())

        self.server = await asyncssh.create_server(
            Server, "127.0.0.1", self.port, server_host_keys=[self.host_key],
            sftp_factory=sftp_factory, reuse_address=True)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self.server.close()
        await self.server.wait_closed()

    def target(self, **kw: Any) -> SftpTarget:
        values: dict[str, Any] = {
            "host": "127.0.0.1", "port": self.port, "username": USER,
            "host_key": self.host_key.export_public_key().decode(), "password": PASSWORD,
            "remote_dir": "openai"}
        values.update(kw)
        return SftpTarget(**values)


@pytest.fixture
async def sftp_server(tmp_path: Path) -> AsyncIterator[SftpServer]:
    root = tmp_path / "sftp-root"
    root.mkdir()
    server = SftpServer(root, asyncssh.generate_private_key("ssh-ed25519"),
                        asyncssh.generate_private_key("ssh-ed25519"))
    await server.start()
    yield server
    await server.stop()


async def deliveries(rt: Runtime) -> list[FeedDelivery]:
    async with rt.read_sessionmaker() as db:
        return list(await db.scalars(select(FeedDelivery).order_by(FeedDelivery.started_at)))


async def publish(rt: Runtime, out: Path, destination: OpenAISftpDestination) -> str:
    config = rt.settings.feed_config(rt.profile)
    report = await build_feeds(rt.sessionmaker, out, config, openai_formats=("jsonl",))
    ctx = PublishContext(rt.sessionmaker, config, out, report)
    [outcome] = await publish_all([destination], ctx)
    return outcome.status


async def test_first_publish_incremental_change_and_deletion_over_sftp(
        database_url: str, sftp_server: SftpServer, tmp_path: Path, backend: str) -> None:
    async with sandbox_runtime(database_url) as rt:
        out = tmp_path / "feeds"
        destination = OpenAISftpDestination(sftp_server.target())
        assert await publish(rt, out, destination) == "succeeded"
        remote = sftp_server.root / "openai" / "products-00001.jsonl.gz"
        local = out / "openai" / "products-00001.jsonl.gz"
        assert remote.read_bytes() == local.read_bytes()
        assert [p.name for p in remote.parent.iterdir()] == [remote.name]  # no temp file
        [first] = await deliveries(rt)
        assert (first.destination, first.status, first.file) == (
            "openai_sftp", "succeeded", "products-00001.jsonl.gz")
        assert first.size_bytes == local.stat().st_size
        assert first.checksum == hashlib.sha256(local.read_bytes()).hexdigest()
        assert first.attempts == 1
        assert first.finished_at is not None
        # An incremental change: the stable file is overwritten with the new snapshot.
        async with rt.sessionmaker() as db, db.begin():
            await db.execute(update(Variant).where(Variant.id == "ceramic-mug-sand")
                             .values(price_amount=2650))
            await db.execute(delete(Variant).where(Variant.product_id == "poster"))
            await db.execute(delete(Product).where(Product.id == "poster"))
        assert await publish(rt, out, destination) == "succeeded"
        items = {i["item_id"]: i for i in read_jsonl_gz(remote)}
        assert items["ceramic-mug-sand"]["price"] == "26.50 USD"
        assert not any(i.startswith("poster-") for i in items)  # deletion: gone
        second = (await deliveries(rt))[-1]
        assert second.checksum == hashlib.sha256(remote.read_bytes()).hexdigest()
        assert second.checksum != first.checksum


async def test_key_authentication_and_a_retry_after_the_server_was_down(
        database_url: str, sftp_server: SftpServer, tmp_path: Path, backend: str) -> None:
    port = sftp_server.port
    await sftp_server.stop()  # the partner is down at the first attempt
    waits: list[float] = []

    async def restart_then_continue(seconds: float) -> None:
        waits.append(seconds)
        if sftp_server.server is not None and len(waits) == 1:
            sftp_server.port = port
            await sftp_server.start()

    key = sftp_server.client_key.export_private_key().decode()
    destination = OpenAISftpDestination(
        sftp_server.target(port=port, password=None, private_key=key),
        sleep=restart_then_continue)
    async with sandbox_runtime(database_url) as rt:
        assert await publish(rt, tmp_path / "feeds", destination) == "succeeded"
        [record] = await deliveries(rt)
    assert waits == [1.0]  # backed off once
    assert record.attempts == 2
    assert record.status == "succeeded"
    assert (sftp_server.root / "openai" / "products-00001.jsonl.gz").is_file()


async def test_a_host_key_that_does_not_match_the_pin_is_refused_without_retry(
        database_url: str, sftp_server: SftpServer, tmp_path: Path, backend: str) -> None:
    impostor = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    waits: list[float] = []

    async def no_wait(seconds: float) -> None:
        waits.append(seconds)

    destination = OpenAISftpDestination(sftp_server.target(host_key=impostor), sleep=no_wait)
    async with sandbox_runtime(database_url) as rt:
        assert await publish(rt, tmp_path / "feeds", destination) == "failed"
        [record] = await deliveries(rt)
    assert record.status == "failed"
    assert "HostKeyNotVerifiable" in (record.error or "")
    assert waits == []
    assert sftp_server.logins == 0
    assert not (sftp_server.root / "openai").exists()


async def test_wrong_password_fails_and_is_recorded(
        database_url: str, sftp_server: SftpServer, tmp_path: Path, backend: str) -> None:
    destination = OpenAISftpDestination(sftp_server.target(password="wrong"))
    async with sandbox_runtime(database_url) as rt:
        assert await publish(rt, tmp_path / "feeds", destination) == "failed"
        [record] = await deliveries(rt)
    assert record.status == "failed"
    assert "PermissionDenied" in (record.error or "")


async def test_scheduled_after_each_build_when_configured(
        database_url: str, sftp_server: SftpServer, tmp_path: Path, backend: str) -> None:
    """The worker's refresh builds, then delivers over SFTP (configured by settings)."""
    from api.worker import run_once
    from feeds.refresh import request_refresh

    target = sftp_server.target()
    async with sandbox_runtime(
            database_url, feeds_dir=tmp_path / "feeds", openai_sftp_host="127.0.0.1",
            openai_sftp_port=sftp_server.port, openai_sftp_username=USER,
            openai_sftp_password=PASSWORD, openai_sftp_host_key=target.host_key,
            openai_sftp_remote_dir="inbox") as rt:
        async with rt.sessionmaker() as db, db.begin():
            await request_refresh(db, "catalog_import")
        await run_once(rt, wait=60)  # the build runs in a process of its own
        records = await deliveries(rt)
    assert [r.file for r in records if r.destination == "openai_sftp"] == [
        "products-00001.jsonl.gz"]
    assert (sftp_server.root / "inbox" / "products-00001.jsonl.gz").is_file()


async def test_the_sftp_host_passes_the_outbound_policy_at_delivery_time(
        database_url: str, sftp_server: SftpServer, tmp_path: Path, backend: str) -> None:
    """A private/loopback SFTP host is refused unless allow-listed (issue 12): nothing is
    dialled, the delivery is recorded as failed."""
    target = sftp_server.target()
    async with sandbox_runtime(
            database_url, feeds_dir=tmp_path / "feeds", outbound_allow_hosts=[],
            openai_sftp_host="127.0.0.1", openai_sftp_port=sftp_server.port,
            openai_sftp_username=USER, openai_sftp_password=PASSWORD,
            openai_sftp_host_key=target.host_key) as rt:
        report, outcomes = await rt.feed_refresher().run()
        records = await deliveries(rt)
    sftp = next(o for o in outcomes if o.destination == "openai_sftp")
    assert sftp.status == "failed"
    assert "not public" in sftp.detail
    [record] = [r for r in records if r.destination == "openai_sftp"]
    assert record.status == "failed"
    assert sftp_server.logins == 0


async def test_the_remote_shard_set_follows_the_snapshot(
        database_url: str, sftp_server: SftpServer, tmp_path: Path, backend: str) -> None:
    """OpenAI's overview: keep the shard set stable and replace it on each update; a shard
    the catalog no longer fills is removed remotely too (no stale items left behind)."""
    from feeds.publish import FeedBuilder, catalog_rows

    destination = OpenAISftpDestination(sftp_server.target())
    remote = sftp_server.root / "openai"
    async with sandbox_runtime(database_url) as rt:
        config = rt.settings.feed_config(rt.profile)
        for max_items, expected in ((30, 3), (60, 2)):
            out = tmp_path / f"build-{max_items}"
            builder = FeedBuilder(out, config, openai_formats=("jsonl",), max_items=max_items)
            async for product in catalog_rows(rt.sessionmaker):
                builder.add(product)
            ctx = PublishContext(rt.sessionmaker, config, out, builder.finish())
            [outcome] = await publish_all([destination], ctx)
            assert outcome.status == "succeeded"
            assert sorted(p.name for p in remote.iterdir()) == [
                f"products-0000{i}.jsonl.gz" for i in range(1, expected + 1)]
        (remote / "unrelated.txt").write_text("kept")
        [outcome] = await publish_all([destination], ctx)
    assert (remote / "unrelated.txt").read_text() == "kept"  # only our shards are pruned
