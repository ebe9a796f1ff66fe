"""Provenance: a video signed in the test with c2pa-python (certificate chain made in the
test) is read back — AI-generated, generator, model, creation time, signer — through an
upload and through a URL fetched under the outbound-URL policy; unsigned, tampered and
unchecked videos stay allowed but flagged; likeness consent is recorded and revoked."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest
from pytest_httpx import HTTPXMock

from tests.c2pa_media import CertChain, generated_manifest, make_chain, sign_mp4, tiny_mp4
from tests.conftest import app_client, sandbox_runtime

MERCHANT = {"Authorization": "Bearer merchant-key"}


@pytest.fixture(scope="module")
def chain() -> CertChain:
    return make_chain()


@pytest.fixture
async def shop(database_url: str, chain: CertChain, tmp_path: Path):
    anchors = tmp_path / "anchors.pem"
    anchors.write_bytes(chain.ca_pem)
    async with sandbox_runtime(database_url, merchant_api_keys=["merchant-key"],
                               c2pa_trust_anchors_file=anchors) as rt, \
            app_client(rt) as client:
        for vid in ("vid-ai", "vid-plain", "vid-never"):
            resp = await post(client, "/videos", {"id": vid, "title": vid}, f"v-{vid}")
            assert resp.status_code == 201, resp.text
        yield client, rt


async def post(client: httpx.AsyncClient, path: str, body: dict, key: str) -> httpx.Response:
    return await client.post(path, json=body, headers={**MERCHANT, "Idempotency-Key": key})


def upload(data: bytes) -> dict:
    return {"file_base64": base64.b64encode(data).decode(), "content_type": "video/mp4"}


async def test_signed_video_is_read_back(shop, chain: CertChain, backend: str) -> None:
    client, _ = shop
    signed = sign_mp4(tiny_mp4(), generated_manifest(), chain)
    resp = await post(client, "/videos/vid-ai/provenance", upload(signed), "p1")
    assert resp.status_code == 200, resp.text
    got = resp.json()
    assert got["status"] == "trusted"
    assert got["flagged"] is False
    assert got["flags"] == []
    assert got["ai_generated"] is True
    assert got["ai_label"] == "AI-generated"
    assert got["digital_source_type"].endswith("/trainedAlgorithmicMedia")
    assert got["generator"] == "Test Video Studio 2.0"
    assert got["model"] == "sora-2"
    assert got["created_at"] == "2026-11-30T10:00:00Z"
    assert got["signer"] == "Test Video Signer (ReelCart Test Generator)"
    assert got["manifest_label"].startswith("urn:c2pa:")
    assert got["validation_codes"] == []
    assert got["content_bytes"] == len(signed)
    # The video had no generator: the credentials fill it.
    video = (await client.get("/videos/vid-ai", headers=MERCHANT)).json()
    assert video["generator"] == "sora-2"
    assert (await client.get("/videos/vid-ai/provenance", headers=MERCHANT)).json() == got


async def test_a_url_is_fetched_through_the_outbound_policy(
        database_url: str, chain: CertChain, httpx_mock: HTTPXMock, backend: str) -> None:
    signed = sign_mp4(tiny_mp4(), generated_manifest(source_type="digitalCapture",
                                                     model="camera-app"), chain)
    httpx_mock.add_response(url="https://cdn.example.com/clip.mp4", content=signed,
                            headers={"Content-Type": "video/mp4"})
    # No trust anchors configured: a valid signature by a signer on no trust list.
    async with sandbox_runtime(database_url, merchant_api_keys=["merchant-key"]) as rt, \
            app_client(rt) as client:
        await post(client, "/videos", {"id": "vid-cam"}, "v")
        resp = await post(client, "/videos/vid-cam/provenance",
                          {"url": "https://cdn.example.com/clip.mp4"}, "u1")
        assert resp.status_code == 200, resp.text
        got = resp.json()
        assert got["status"] == "valid"
        assert got["flags"] == ["signer_not_on_trust_list"]
        assert got["ai_generated"] is False
        assert got["ai_label"] is None
        assert got["validation_codes"] == []  # trust is not checked without anchors
        assert (got["source"], got["source_url"]) == ("url", "https://cdn.example.com/clip.mp4")
        # Private and metadata addresses are refused before any request is made.
        for i, url in enumerate(("http://169.254.169.254/latest/meta-data",
                                 "http://10.0.0.5/v.mp4", "http://localhost/v.mp4")):
            refused = await post(client, "/videos/vid-cam/provenance", {"url": url}, f"r{i}")
            assert refused.status_code == 422, refused.text
            assert refused.json()["code"] == "video_fetch_failed"
        httpx_mock.add_response(url="https://cdn.example.com/gone.mp4", status_code=404)
        gone = await post(client, "/videos/vid-cam/provenance",
                          {"url": "https://cdn.example.com/gone.mp4"}, "g")
        assert gone.status_code == 422
        assert "HTTP 404" in gone.json()["message"]
        # Nothing was overwritten by the refused registrations.
        kept = (await client.get("/videos/vid-cam/provenance", headers=MERCHANT)).json()
        assert kept["status"] == "valid"
    assert len(httpx_mock.get_requests()) == 2


async def test_unsigned_tampered_and_unchecked_videos_are_flagged(shop, chain: CertChain,
                                                                  backend: str) -> None:
    client, _ = shop
    plain = await post(client, "/videos/vid-plain/provenance", upload(tiny_mp4()), "p2")
    assert plain.status_code == 200, plain.text
    assert plain.json()["status"] == "missing"
    assert plain.json()["flagged"] is True
    assert plain.json()["flags"] == ["no_content_credentials"]
    assert plain.json()["ai_generated"] is None

    signed = bytearray(sign_mp4(tiny_mp4(), generated_manifest(), chain))
    signed[-10] ^= 0xFF  # one byte of the media data changed after signing
    tampered = await post(client, "/videos/vid-ai/provenance", upload(bytes(signed)), "p3")
    assert tampered.json()["status"] == "invalid"
    assert tampered.json()["flags"] == ["invalid_content_credentials"]
    assert "assertion.bmffHash.mismatch" in tampered.json()["validation_codes"]

    flagged = (await client.get("/video-provenance?flagged=true", headers=MERCHANT)).json()
    assert {p["video_id"]: p["status"] for p in flagged["data"]} == {
        "vid-ai": "invalid", "vid-plain": "missing", "vid-never": "not_checked"}

    junk = await post(client, "/videos/vid-plain/provenance", upload(b"not a video"), "p4")
    assert junk.status_code == 400
    assert junk.json()["code"] == "unreadable_media"
    bad64 = await post(client, "/videos/vid-plain/provenance", {"file_base64": "%%%"}, "p5")
    assert bad64.status_code == 400
    assert bad64.json()["param"] == "$.file_base64"
    unknown = await post(client, "/videos/vid-ghost/provenance", upload(tiny_mp4()), "p6")
    assert unknown.status_code == 404


async def test_likeness_consent(shop, backend: str) -> None:
    client, _ = shop
    body = {"person": "Ava Stone", "kind": "cameo", "consent_reference": "cameo-grant-8812",
            "scope": ["tiktok", "paid-ads"], "granted_on": "2026-11-01",
            "expires_on": "2099-12-31"}
    made = await post(client, "/videos/vid-ai/consents", body, "c1")
    assert made.status_code == 201, made.text
    consent = made.json()
    assert consent["active"] is True
    assert consent["scope"] == ["tiktok", "paid-ads"]
    got = (await client.get("/videos/vid-ai/provenance", headers=MERCHANT)).json()
    assert got["status"] == "not_checked"
    assert got["consents"] == [consent]
    revoked = await post(client, f"/videos/vid-ai/consents/{consent['id']}/revoke", {}, "c2")
    assert revoked.json()["active"] is False
    assert revoked.json()["revoked_at"]
    again = await post(client, f"/videos/vid-ai/consents/{consent['id']}/revoke", {}, "c3")
    assert again.json()["revoked_at"] == revoked.json()["revoked_at"]
    other = await post(client, f"/videos/vid-plain/consents/{consent['id']}/revoke", {}, "c4")
    assert other.status_code == 404
    assert other.json()["code"] == "consent_not_found"
    bad = await post(client, "/videos/vid-ai/consents",
                     {**body, "expires_on": "2026-01-01"}, "c5")
    assert bad.status_code == 400


def test_cli_check_reads_a_local_file(tmp_path: Path, chain: CertChain) -> None:
    import asyncio

    from models import Video
    from models.db import create_engine, create_sessionmaker, transaction
    from models.migrate import upgrade
    from tests.test_catalog_import import run_cli

    db_url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(sign_mp4(tiny_mp4(), generated_manifest(model="veo-3"), chain))
    upgrade(db_url)

    async def seed() -> None:
        engine = create_engine(db_url)
        async with transaction(create_sessionmaker(engine)) as db:
            db.add(Video(id="vid-cli"))
        await engine.dispose()

    asyncio.run(seed())
    result = run_cli("provenance", "check", "vid-cli", str(clip), db_url=db_url)
    assert result.returncode == 0, result.stderr
    assert '"model": "veo-3"' in result.stdout
    assert '"status": "valid"' in result.stdout
    consent = run_cli("provenance", "consent", "vid-cli", "--person", "Bo", "--reference",
                      "doc-1", "--scope", "tiktok", db_url=db_url)
    assert consent.returncode == 0
    assert '"person": "Bo"' in consent.stdout
