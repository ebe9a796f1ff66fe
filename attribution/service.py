"""Videos: upsert with lineage checks, featured products, reads."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from attribution import repository
from attribution.errors import InvalidVideo, VideoNotFound
from attribution.schemas import VideoIn, video_json
from models import Video
from models.base import utc_now


async def upsert_video(db: AsyncSession, data: VideoIn) -> tuple[dict[str, Any], bool]:
    """Create or replace a video. Returns (video, created)."""
    if data.parent_video_id:
        if data.parent_video_id == data.id:
            raise InvalidVideo("A video cannot be remixed from itself.",
                               param="$.parent_video_id")
        if await db.get(Video, data.parent_video_id) is None:
            raise InvalidVideo(f"Parent video {data.parent_video_id!r} does not exist.",
                               param="$.parent_video_id")
        if data.id in await repository.lineage(db, data.parent_video_id):
            raise InvalidVideo("That parent would make the remix lineage a cycle.",
                               param="$.parent_video_id")
    known = await repository.existing_products(db, (p.product_id for p in data.products))
    for index, featured in enumerate(data.products):
        if featured.product_id not in known:
            raise InvalidVideo(f"Unknown product {featured.product_id!r}.",
                               param=f"$.products[{index}].product_id")
    video = await db.get(Video, data.id, with_for_update=True)
    created = video is None
    fields = data.model_dump(mode="python", exclude={"id", "products"})
    for key in ("source_url", "thumbnail_url", "published_url"):
        fields[key] = str(fields[key]) if fields[key] is not None else None
    now = utc_now()
    if video is None:
        video = Video(id=data.id, created_at=now, updated_at=now, **fields)
        db.add(video)
    else:
        for key, value in fields.items():
            setattr(video, key, value)
        video.updated_at = now
    await db.flush()
    products = list(dict.fromkeys((p.product_id, p.variant_id) for p in data.products))
    await repository.replace_products(db, data.id, products)
    await db.flush()
    return video_json(video, products), created


async def get_video(db: AsyncSession, video_id: str) -> dict[str, Any]:
    video = await db.get(Video, video_id)
    if video is None:
        raise VideoNotFound(video_id)
    products = (await repository.products_of(db, [video_id]))[video_id]
    out = video_json(video, products)
    out["lineage"] = await repository.lineage(db, video_id)
    return out


async def delete_video(db: AsyncSession, video_id: str) -> None:
    video = await db.get(Video, video_id, with_for_update=True)
    if video is None:
        raise VideoNotFound(video_id)
    await db.delete(video)
