"""Hosted feeds: agent platforms fetch the latest generated files by URL.

``ETag`` / ``Last-Modified`` on every file and ``304 Not Modified`` for conditional
requests, so a platform polling hourly downloads a multi-GB feed only when it changed.
"""

from __future__ import annotations

import hashlib
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter
from fastapi import Path as PathParam
from starlette.requests import Request
from starlette.responses import FileResponse, Response

from api.deps import MerchantCallDep, RuntimeDep
from models.errors import NotFound

router = APIRouter(prefix="/feeds", tags=["feeds"])
CONTENT_TYPES = {".gz": "application/gzip", ".jsonl": "application/x-ndjson",
                 ".json": "application/json"}


def _resolve(root: Path, relative: str) -> Path:
    """The published path of a feed file. Checked resolved, but served through the
    published links (``feeds.generations``), so that opening it always finds the set
    current at that moment, never a generation removed meanwhile."""
    missing = NotFound(f"No feed file {relative[:100]!r}.", code="feed_not_found")
    try:
        candidate = (root / relative).resolve()
        inside = root.resolve() in candidate.parents
        private = candidate == (root / REPORT).resolve()
        hidden = any(part.startswith(".") for part in Path(relative).parts)  # generations
        if not inside or private or hidden or not candidate.is_file():
            raise missing
    except OSError:  # e.g. a name longer than the filesystem allows
        raise missing from None
    return root / relative


REPORT = "report.json"  # the build's validation report: the merchant's, not public


@router.get("/validation", response_class=Response, operation_id="feedValidationReport")
@router.get("/report.json", response_class=Response, include_in_schema=False)
async def validation_report(call: MerchantCallDep) -> Response:
    """The last build's report: counts per problem with the first examples (merchant key:
    it lists product problems, which are nobody else's business)."""
    report = Path(call.runtime.settings.feeds_dir) / REPORT
    if not report.is_file():
        raise NotFound("No feed has been built yet (run `reelcart feeds build`).",
                       code="feed_not_built")
    return Response(report.read_bytes(), media_type="application/json")


@router.get("/pushes", response_class=Response, operation_id="listFeedPushes")
async def list_pushes(call: MerchantCallDep) -> Response:
    """Every push to agent Feed APIs (``data``: counts, duration, errors) and every
    delivery to the other destinations (``deliveries``: OpenAI SFTP files with size and
    checksum, Google Merchant API runs, Stripe catalog imports with their status)."""
    from sqlalchemy import select

    from feeds.repository import recent_deliveries
    from models import FeedPush

    async def handler(db: Any) -> dict[str, Any]:
        rows = await db.scalars(select(FeedPush).order_by(FeedPush.started_at.desc())
                                .limit(100))
        deliveries = await recent_deliveries(db)
        return {"deliveries": [
            {"id": d.id, "destination": d.destination, "run_id": d.run_id, "mode": d.mode,
             "status": d.status, "file": d.file, "size_bytes": d.size_bytes,
             "checksum": d.checksum, "items_sent": d.items_sent,
             "items_deleted": d.items_deleted, "items_failed": d.items_failed,
             "attempts": d.attempts, "remote_ref": d.remote_ref,
             "remote_status": d.remote_status, "error": d.error,
             "duration_ms": d.duration_ms, "started_at": d.started_at.isoformat(),
             "finished_at": d.finished_at.isoformat() if d.finished_at else None}
            for d in deliveries],
            "data": [{"id": p.id, "agent_id": p.agent_id, "feed_id": p.feed_id,
                          "status": p.status, "products_total": p.products_total,
                          "products_sent": p.products_sent, "batches": p.batches,
                          "retries": p.retries, "error": p.error,
                          "duration_ms": p.duration_ms,
                          "started_at": p.started_at.isoformat()} for p in rows]}
    return await call.read(handler)


@router.post("/refresh", status_code=202, response_class=Response,
             operation_id="refreshFeeds")
async def refresh_feeds(call: MerchantCallDep) -> Response:
    """Rebuild the hosted feeds and publish them to every configured destination now (in
    the worker): agents' Feed APIs, OpenAI SFTP, Google Merchant API, Stripe catalog."""
    from feeds.refresh import request_refresh

    async def handler(db: Any) -> dict[str, Any]:
        return {"queued": await request_refresh(db, "merchant_request")}
    return await call.enqueue(handler)


@router.get("/{relative:path}", response_class=Response, operation_id="getFeedFile")
async def feed_file(request: Request, runtime: RuntimeDep,
                    relative: Annotated[str, PathParam(max_length=300)]) -> Response:
    path = _resolve(Path(runtime.settings.feeds_dir), relative)
    stat = path.stat()
    etag = '"' + hashlib.md5(f"{stat.st_mtime_ns}-{stat.st_size}".encode(),
                             usedforsecurity=False).hexdigest() + '"'
    last_modified = formatdate(stat.st_mtime, usegmt=True)
    headers = {"ETag": etag, "Last-Modified": last_modified,
               "Cache-Control": "public, max-age=300"}
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        if etag in [t.strip() for t in if_none_match.split(",")] or if_none_match == "*":
            return Response(status_code=304, headers=headers)
    elif (since := request.headers.get("if-modified-since")) is not None:
        try:
            if int(stat.st_mtime) <= int(parsedate_to_datetime(since).timestamp()):
                return Response(status_code=304, headers=headers)
        except (TypeError, ValueError):
            pass
    media_type = CONTENT_TYPES.get(path.suffix, "text/plain")
    return FileResponse(path, media_type=media_type, headers=headers)
