"""Merchant API: the generated videos that feature our products."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from starlette.responses import Response

from api.deps import MerchantCallDep
from attribution import repository, service
from attribution.schemas import VideoIn, video_json

router = APIRouter(prefix="/videos", tags=["merchant: videos"])
VideoId = Annotated[str, Path(max_length=100)]
ERROR = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
         "description": "ACP flat error"}


@router.post("", status_code=201, response_class=Response, responses={400: ERROR},
             operation_id="upsertVideo")
async def upsert_video(body: VideoIn, call: MerchantCallDep) -> Response:
    """Create or replace a video (idempotent by id)."""
    async def handler(db: Any) -> dict[str, Any]:
        video, _ = await service.upsert_video(db, body)
        return video
    return await call.write(handler, status_code=201)


@router.get("", response_class=Response, operation_id="listVideos")
async def list_videos(
    call: MerchantCallDep,
    product_id: Annotated[str | None, Query(max_length=200)] = None,
    campaign: Annotated[str | None, Query(max_length=200)] = None,
    generator: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=10**7)] = 0,
) -> Response:
    async def handler(db: Any) -> dict[str, Any]:
        total, videos = await repository.page(db, limit=limit, offset=offset,
                                              product_id=product_id, campaign=campaign,
                                              generator=generator)
        products = await repository.products_of(db, (v.id for v in videos))
        return {"data": [video_json(v, products[v.id]) for v in videos], "total": total,
                "limit": limit, "offset": offset}
    return await call.read(handler)


@router.get("/{video_id}", response_class=Response, responses={404: ERROR},
            operation_id="getVideo")
async def get_video(video_id: VideoId, call: MerchantCallDep) -> Response:
    return await call.read(lambda db: service.get_video(db, video_id))


@router.post("/{video_id}/delete", response_class=Response, responses={404: ERROR},
             operation_id="deleteVideo")
async def delete_video(video_id: VideoId, call: MerchantCallDep) -> Response:
    async def handler(db: Any) -> dict[str, Any]:
        await service.delete_video(db, video_id)
        return {"id": video_id, "deleted": True}
    return await call.write(handler)
