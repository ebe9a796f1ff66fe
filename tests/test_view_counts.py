"""Platform view counts: idempotent per (video, day, source) through the API, the CSV
upload and the CLI; unknown videos, negative counts and bad dates refused clearly."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from api.runtime import Runtime
from models import VideoViewCount
from tests.conftest import app_client, reset_database
from tests.test_catalog_import import run_cli

MERCHANT = {"Authorization": "Bearer merchant-key"}


@pytest.fixture
async def shop(merchant_runtime: Runtime):
    async with app_client(merchant_runtime) as client:
        for vid in ("vid-a", "vid-b"):
            resp = await client.post("/videos", json={
                "id": vid, "products": [{"product_id": "spec-items"}]},
                headers={**MERCHANT, "Idempotency-Key": vid})
            assert resp.status_code == 201, resp.text
        yield client, merchant_runtime


async def post(client: httpx.AsyncClient, path: str, body: dict, key: str) -> httpx.Response:
    return await client.post(path, json=body, headers={**MERCHANT, "Idempotency-Key": key})


async def stored(rt: Runtime) -> dict[tuple[str, str, str], int]:
    async with rt.sessionmaker() as db:
        rows = await db.scalars(select(VideoViewCount))
        return {(r.video_id, r.day.isoformat(), r.source): r.views for r in rows}


COUNTS = [{"video_id": "vid-a", "day": "2026-11-28", "views": 1200},
          {"video_id": "vid-a", "day": "2026-11-29", "views": 900},
          {"video_id": "vid-b", "day": "2026-11-28", "views": 4000}]


async def test_json_import_is_idempotent_per_video_day_and_source(shop, backend: str) -> None:
    client, rt = shop
    first = await post(client, "/video-views", {"source": "tiktok", "counts": COUNTS}, "1")
    assert first.status_code == 200, first.text
    assert first.json() | {"errors": []} == {"source": "tiktok", "inserted": 3, "updated": 0,
                                            "unchanged": 0, "rejected": 0, "errors": []}
    # The same counts again (a new request, not a replay): nothing changes.
    again = await post(client, "/video-views", {"source": "tiktok", "counts": COUNTS}, "2")
    assert (again.json()["inserted"], again.json()["updated"],
            again.json()["unchanged"]) == (0, 0, 3)
    # A corrected count replaces the stored one; a new day is inserted.
    fixed = [{**COUNTS[0], "views": 1300}, COUNTS[1],
             {"video_id": "vid-b", "day": "2026-11-29", "views": 10}]
    third = await post(client, "/video-views", {"source": "tiktok", "counts": fixed}, "3")
    assert (third.json()["inserted"], third.json()["updated"],
            third.json()["unchanged"]) == (1, 1, 1)
    # Another source is another row for the same video and day.
    yt = await post(client, "/video-views", {"source": "youtube", "counts": COUNTS[:1]}, "4")
    assert yt.json()["inserted"] == 1
    assert await stored(rt) == {
        ("vid-a", "2026-11-28", "tiktok"): 1300, ("vid-a", "2026-11-29", "tiktok"): 900,
        ("vid-b", "2026-11-28", "tiktok"): 4000, ("vid-b", "2026-11-29", "tiktok"): 10,
        ("vid-a", "2026-11-28", "youtube"): 1200}
    listed = (await client.get("/video-views?video_id=vid-a&source=tiktok",
                               headers=MERCHANT)).json()["data"]
    assert [(r["day"], r["views"]) for r in listed] == [("2026-11-28", 1300),
                                                        ("2026-11-29", 900)]


@pytest.mark.parametrize(("count", "param", "words"), [
    ({"video_id": "vid-a", "day": "2026-11-28", "views": -5}, "$.counts[1].views",
     "greater than or equal to 0"),
    ({"video_id": "vid-a", "day": "2026-13-45", "views": 5}, "$.counts[1].day", "date"),
    ({"video_id": "vid-a", "day": "2026-11-28", "views": "12"}, "$.counts[1].views",
     "integer"),
])
async def test_bad_rows_are_refused_at_their_field(shop, backend: str, count: dict, param: str,
                                                   words: str) -> None:
    client, rt = shop
    resp = await post(client, "/video-views",
                      {"source": "tiktok", "counts": [COUNTS[0], count]}, "bad")
    assert resp.status_code == 400, resp.text
    body = resp.json()
    assert body["param"] == param
    assert words in body["message"].lower()
    assert await stored(rt) == {}  # nothing half-written


async def test_unknown_videos_future_days_and_duplicates_refuse_the_batch(shop, backend: str
                                                                         ) -> None:
    client, rt = shop
    counts = [COUNTS[0], {"video_id": "vid-nope", "day": "2026-11-28", "views": 1},
              {"video_id": "vid-b", "day": "2999-01-01", "views": 1},
              {**COUNTS[0], "views": 7}]
    resp = await post(client, "/video-views", {"source": "tiktok", "counts": counts}, "k")
    assert resp.status_code == 400
    body = resp.json()
    assert body["code"] == "invalid_view_counts"
    assert body["message"].startswith("Unknown video 'vid-nope'")
    assert "2 more" in body["message"]
    assert [e["param"] for e in body["errors"]] == [
        "$.counts[1].video_id", "$.counts[2].day", "$.counts[3].day"]
    assert "also given at $.counts[0]" in body["errors"][2]["message"]
    assert await stored(rt) == {}


async def test_csv_upload_stores_good_rows_and_reports_bad_lines(shop, backend: str) -> None:
    client, rt = shop
    text = ("video_id,day,views,extra\nvid-a,2026-11-28,1200,x\nvid-b,28/11/2026,5,\n"
            "vid-b,2026-11-28,-3,\nvid-zzz,2026-11-28,4,\nvid-b,2026-11-29,4000,\n")
    resp = await post(client, "/video-views/import", {"source": "tiktok", "csv": text}, "c1")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["inserted"], body["rejected"]) == (2, 3)
    assert [e["param"] for e in body["errors"]] == ["line 3: day", "line 4: views",
                                                   "line 5: video_id"]
    again = await post(client, "/video-views/import", {"source": "tiktok", "csv": text}, "c2")
    assert (again.json()["inserted"], again.json()["unchanged"]) == (0, 2)
    header = await post(client, "/video-views/import",
                        {"source": "tiktok", "csv": "video,date\nvid-a,2026-11-28\n"}, "c3")
    assert header.status_code == 400
    assert "header must name" in header.json()["message"]
    assert len(await stored(rt)) == 2


def test_cli_import_is_idempotent(tmp_path, database_url: str, backend: str) -> None:
    import asyncio

    from models.db import create_engine, create_sessionmaker, transaction
    from models.video import Video

    async def seed() -> None:
        await reset_database(database_url)
        engine = create_engine(database_url)
        async with transaction(create_sessionmaker(engine)) as db:
            db.add(Video(id="vid-cli"))
        await engine.dispose()

    asyncio.run(seed())
    path = tmp_path / "views.csv"
    path.write_text("video_id,day,views\nvid-cli,2026-11-28,10\nvid-cli,2026-11-29,20\n")
    first = run_cli("views", "import", str(path), "--source", "tiktok", db_url=database_url)
    assert first.returncode == 0, first.stderr
    assert "2 inserted, 0 updated, 0 unchanged, 0 rejected" in first.stdout
    second = run_cli("views", "import", str(path), "--source", "tiktok", db_url=database_url)
    assert "0 inserted, 0 updated, 2 unchanged, 0 rejected" in second.stdout
    path.write_text("video_id,day,views\nvid-cli,2026-11-28,11\nvid-cli,2026-11-30,x\n"
                    "ghost,2026-11-28,1\n")
    third = run_cli("views", "import", str(path), "--source", "tiktok", db_url=database_url)
    assert third.returncode == 1
    assert "0 inserted, 1 updated, 0 unchanged, 2 rejected" in third.stdout
    assert "line 3: views: views 'x' is not a whole number." in third.stderr
    assert "line 4: video_id: Unknown video 'ghost'." in third.stderr
    bad_source = run_cli("views", "import", str(path), "--source", "TikTok!",
                         db_url=database_url)
    assert bad_source.returncode == 2
