"""Videos as first-class records: CRUD, remix lineage, featured products, JSONL import,
and feeds that carry each product's videos."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from api.runtime import build_runtime
from tests.acp_schema import assert_valid
from tests.conftest import app_client, make_settings, reset_database
from tests.test_catalog_import import run_cli

MERCHANT = {"Authorization": "Bearer merchant-key"}
VIDEO = {"id": "vid-jacket-1", "title": "Denim in the rain", "generator": "sora-2",
         "prompt": "a denim jacket in neon rain", "source_url": "https://cdn.test/v1.mp4",
         "thumbnail_url": "https://cdn.test/v1.jpg", "duration_seconds": 12,
         "platform": "tiktok", "published_url": "https://tiktok.test/@shop/v1",
         "published_at": "2026-11-01T10:00:00Z", "campaign": "fall-drop", "creator": "@ava",
         "products": [{"product_id": "denim-jacket", "variant_id": "denim-jacket-m"}]}


@pytest.fixture
async def merchant(database_url: str):
    await reset_database(database_url)
    rt = build_runtime(make_settings(database_url, merchant_api_keys=["merchant-key"]))
    async with app_client(rt, "http://t") as client:
        yield client, rt
    await rt.close()


async def post(client: httpx.AsyncClient, body: dict, key: str) -> httpx.Response:
    return await client.post("/videos", json=body,
                             headers={**MERCHANT, "Idempotency-Key": key})


async def test_video_crud_and_remix_lineage(merchant, backend: str) -> None:
    client, _ = merchant
    assert (await post(client, VIDEO, "v1")).status_code == 201
    remix = {**VIDEO, "id": "vid-jacket-2", "generator": "veo-3",
             "parent_video_id": "vid-jacket-1", "published_url": "https://yt.test/v2"}
    assert (await post(client, remix, "v2")).status_code == 201
    remix_of_remix = {**VIDEO, "id": "vid-jacket-3", "parent_video_id": "vid-jacket-2"}
    assert (await post(client, remix_of_remix, "v3")).status_code == 201
    got = (await client.get("/videos/vid-jacket-3", headers=MERCHANT)).json()
    assert got["lineage"] == ["vid-jacket-2", "vid-jacket-1"]
    assert got["products"] == [{"product_id": "denim-jacket", "variant_id": "denim-jacket-m"}]
    listed = (await client.get("/videos?generator=veo-3", headers=MERCHANT)).json()
    assert [v["id"] for v in listed["data"]] == ["vid-jacket-2"]
    by_product = (await client.get("/videos?product_id=denim-jacket", headers=MERCHANT)).json()
    assert by_product["total"] == 3
    # A cycle, an unknown parent, an unknown product and a self-parent are all refused.
    cycle = {**VIDEO, "parent_video_id": "vid-jacket-3"}
    for body, param in ((cycle, "$.parent_video_id"),
                        ({**VIDEO, "id": "x", "parent_video_id": "nope"}, "$.parent_video_id"),
                        ({**VIDEO, "id": "y", "products": [{"product_id": "nope"}]},
                         "$.products[0].product_id"),
                        ({**VIDEO, "parent_video_id": "vid-jacket-1", "id": "vid-jacket-1"},
                         "$.parent_video_id")):
        resp = await post(client, body, f"bad-{body['id']}-{body.get('parent_video_id')}")
        assert resp.status_code == 400, body
        assert resp.json()["param"] == param
    deleted = await client.post("/videos/vid-jacket-3/delete",
                                headers={**MERCHANT, "Idempotency-Key": "del"})
    assert deleted.json()["deleted"] is True
    assert (await client.get("/videos/vid-jacket-3", headers=MERCHANT)).status_code == 404


async def test_feeds_carry_the_videos_of_each_product(merchant, tmp_path: Path,
                                                      backend: str) -> None:
    from feeds.publish import build_feeds

    client, rt = merchant
    await post(client, VIDEO, "v1")
    report = await build_feeds(rt.sessionmaker, tmp_path, rt.settings.feed_config(),
                               openai_formats=("jsonl",))
    products = [json.loads(line) for line in
                (tmp_path / "acp/products-00001.jsonl").read_text().splitlines()]
    jacket = next(p for p in products if p["id"] == "denim-jacket")
    assert_valid(jacket, "Product", "schema.feed.json")
    assert {"type": "video", "url": "https://tiktok.test/@shop/v1",
            "alt_text": "Denim in the rain"} in jacket["media"]
    import gzip
    with gzip.open(tmp_path / "openai/products-00001.jsonl.gz") as f:
        items = [json.loads(line) for line in f]
    assert {i["video_url"] for i in items if i.get("group_id") == "denim-jacket"} == {
        "https://tiktok.test/@shop/v1"}
    assert all("video_url" not in i for i in items if i.get("group_id") != "denim-jacket")
    # The product link carries the video, so a buyer landing through it is attributed.
    jacket_item = next(i for i in items if i.get("group_id") == "denim-jacket")
    assert "rc_video=vid-jacket-1" in jacket_item["url"]
    assert "rc_video" not in next(i for i in items if i.get("group_id") == "ebook")["url"]
    from feeds.builder import validate_openai_item

    assert report.variants == len(items)
    assert all(validate_openai_item(i) == [] for i in items if i.get("group_id") == "denim-jacket")


async def test_cli_import_handles_remixes_before_parents(tmp_path: Path) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'videos.db'}"
    catalog = tmp_path / "catalog.jsonl"
    catalog.write_text(json.dumps({"id": "denim-jacket", "title": "Jacket", "variants": [
        {"id": "denim-jacket-m", "title": "M",
         "price": {"amount": 100, "currency": "USD"}}]}) + "\n")
    assert run_cli("catalog", "import", str(catalog), db_url=db_url).returncode == 0
    videos = tmp_path / "videos.jsonl"
    remix = {**VIDEO, "id": "remix", "parent_video_id": "vid-jacket-1"}
    videos.write_text("\n".join([json.dumps(remix), json.dumps(VIDEO),
                                 json.dumps({"id": "bad id!"}),
                                 json.dumps({**VIDEO, "id": "orphan",
                                             "parent_video_id": "missing"})]) + "\n")
    result = run_cli("videos", "import", str(videos), db_url=db_url)
    assert "2 created, 0 updated, 0 unchanged, 2 rejected" in result.stdout, \
        result.stdout + result.stderr
    assert "line 3: id:" in result.stderr
    assert "line 4: Parent video 'missing' does not exist." in result.stderr
