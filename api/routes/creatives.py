"""Merchant API: platform view counts, creative experiments, provenance and consent."""

from __future__ import annotations

import base64
import binascii
from datetime import date
from typing import IO, Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from api.deps import MerchantCallDep
from api.settings import Settings
from creatives import experiments, provenance, repository, views
from creatives.errors import InvalidViewCounts
from creatives.schemas import (
    SOURCE_PATTERN,
    ConsentIn,
    ExperimentIn,
    PromoteIn,
    ProvenanceIn,
    ViewImportIn,
)
from models.errors import InvalidRequest

router = APIRouter(tags=["merchant: creatives"])
ERROR = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
         "description": "ACP flat error"}
VideoId = Annotated[str, Path(max_length=100)]
ExperimentId = Annotated[str, Path(max_length=64)]


class ViewCsvIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str = Field(pattern=SOURCE_PATTERN, examples=["tiktok"])
    csv: str = Field(min_length=1, max_length=900_000,
                     description="CSV text with a header: video_id,day,views")


# ------------------------------------------------------------------------------ views

@router.post("/video-views", response_class=Response, responses={400: ERROR},
             operation_id="importViewCounts")
async def import_view_counts(body: ViewImportIn, call: MerchantCallDep) -> Response:
    """Daily view counts of one source; all or nothing (any bad row refuses the batch,
    every problem listed in ``errors``). Re-sending a count replaces it."""
    async def handler(db: Any) -> dict[str, Any]:
        report = await views.import_views(db, body.source, views.rows_from_json(body),
                                          all_or_nothing=True)
        return {"source": body.source} | report.json()
    return await call.write(handler)


@router.post("/video-views/import", response_class=Response, responses={400: ERROR},
             operation_id="importViewCountsCsv")
async def import_view_counts_csv(body: ViewCsvIn, call: MerchantCallDep) -> Response:
    """The same CSV the CLI imports (``video_id,day,views``): good rows are stored, bad
    ones reported with their line numbers."""
    rows, problems = views.parse_csv(views.csv_lines(body.csv.encode()))
    if problems and not rows:
        raise InvalidViewCounts(problems)

    async def handler(db: Any) -> dict[str, Any]:
        report = await views.import_views(db, body.source, rows, all_or_nothing=False)
        report.rejected[:0] = problems
        return {"source": body.source} | report.json()
    return await call.write(handler)


@router.get("/video-views", response_class=Response, operation_id="listViewCounts")
async def list_view_counts(
    call: MerchantCallDep,
    video_id: Annotated[str | None, Query(max_length=100)] = None,
    source: Annotated[str | None, Query(pattern=SOURCE_PATTERN)] = None,
    start: Annotated[date | None, Query(alias="from")] = None,
    end: Annotated[date | None, Query(alias="to")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Annotated[int, Query(ge=0, le=10**7)] = 0,
) -> Response:
    async def handler(db: Any) -> dict[str, Any]:
        rows = await repository.view_counts(db, video_id=video_id, start=start, end=end,
                                            source=source, limit=limit, offset=offset)
        return {"data": [{"video_id": r.video_id, "day": r.day.isoformat(),
                          "source": r.source, "views": r.views} for r in rows],
                "limit": limit, "offset": offset}
    return await call.read(handler)


# ------------------------------------------------------------------------ experiments

@router.post("/experiments", status_code=201, response_class=Response,
             responses={400: ERROR}, operation_id="createExperiment")
async def create_experiment(body: ExperimentIn, call: MerchantCallDep) -> Response:
    currency = call.runtime.profile.currencies[0]

    async def handler(db: Any) -> dict[str, Any]:
        return await experiments.create_experiment(db, body, default_currency=currency)
    return await call.write(handler, status_code=201)


@router.get("/experiments", response_class=Response, operation_id="listExperiments")
async def list_experiments(
    call: MerchantCallDep,
    product_id: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=10**7)] = 0,
) -> Response:
    return await call.read(lambda db: experiments.list_experiments(
        db, product_id=product_id, limit=limit, offset=offset))


@router.get("/experiments/{experiment_id}", response_class=Response, responses={404: ERROR},
            operation_id="getExperimentReport")
async def experiment_report(experiment_id: ExperimentId, call: MerchantCallDep) -> Response:
    """Each variant's views, orders, conversion and revenue per 1,000 views with 95 %
    credible intervals, its probability to be best, and the verdict."""
    return await call.read(lambda db: experiments.report(db, experiment_id))


@router.post("/experiments/{experiment_id}/promote", response_class=Response,
             responses={404: ERROR, 409: ERROR}, operation_id="promoteExperimentWinner")
async def promote_winner(experiment_id: ExperimentId, body: PromoteIn,
                         call: MerchantCallDep) -> Response:
    """Make the winner the product's video in feeds and catalog results (idempotent)."""
    async def handler(db: Any) -> dict[str, Any]:
        return await experiments.promote(db, experiment_id, body.video_id)
    response = await call.write(handler)
    call.runtime.wake_worker()  # a feeds refresh may be queued
    return response


# ------------------------------------------------------------------------- provenance

def trust_anchors(settings: Settings) -> str | None:
    path = settings.c2pa_trust_anchors_file
    return path.read_text() if path else None


@router.post("/videos/{video_id}/provenance", response_class=Response,
             responses={400: ERROR, 404: ERROR, 422: ERROR}, operation_id="registerVideoFile")
async def register_video_file(video_id: VideoId, body: ProvenanceIn,
                              call: MerchantCallDep) -> Response:
    """Read the file's C2PA Content Credentials (a URL is fetched through the outbound-URL
    policy first, outside any transaction)."""
    runtime = call.runtime
    async with runtime.read_sessionmaker() as db:
        await provenance.get_provenance(db, video_id)  # 404 before any fetch
    stream: IO[bytes]
    if body.url is not None:
        stream = await provenance.fetch_video(
            runtime.outbound_http, body.url,
            max_bytes=runtime.settings.provenance_max_video_bytes)
    else:
        stream = provenance.spooled()
        try:
            stream.write(base64.b64decode(body.file_base64 or "", validate=True))
        except (binascii.Error, ValueError):
            raise InvalidRequest("file_base64 is not valid base64.",
                                 param="$.file_base64") from None
    with stream:
        inspected = await provenance.inspect(stream, body.content_type,
                                             trust_anchors_pem=trust_anchors(runtime.settings))

    async def handler(db: Any) -> dict[str, Any]:
        return await provenance.record(db, video_id, inspected,
                                       source="url" if body.url else "upload",
                                       source_url=body.url)
    return await call.write(handler)


@router.get("/videos/{video_id}/provenance", response_class=Response, responses={404: ERROR},
            operation_id="getVideoProvenance")
async def get_video_provenance(video_id: VideoId, call: MerchantCallDep) -> Response:
    return await call.read(lambda db: provenance.get_provenance(db, video_id))


@router.get("/video-provenance", response_class=Response, operation_id="listVideoProvenance")
async def list_video_provenance(
    call: MerchantCallDep,
    flagged: bool = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=10**7)] = 0,
) -> Response:
    """Every video's provenance status; ``flagged=true``: only videos without valid
    Content Credentials (never checked, none, or invalid)."""
    return await call.read(lambda db: provenance.provenance_list(
        db, flagged_only=flagged, limit=limit, offset=offset))


@router.post("/videos/{video_id}/consents", status_code=201, response_class=Response,
             responses={400: ERROR, 404: ERROR}, operation_id="recordLikenessConsent")
async def record_consent(video_id: VideoId, body: ConsentIn, call: MerchantCallDep
                         ) -> Response:
    """Consent of a person appearing in the video (who, the consent reference, scope)."""
    async def handler(db: Any) -> dict[str, Any]:
        return await provenance.add_consent(db, video_id, body)
    return await call.write(handler, status_code=201)


@router.post("/videos/{video_id}/consents/{consent_id}/revoke", response_class=Response,
             responses={404: ERROR}, operation_id="revokeLikenessConsent")
async def revoke_consent(video_id: VideoId, consent_id: Annotated[str, Path(max_length=64)],
                         call: MerchantCallDep) -> Response:
    async def handler(db: Any) -> dict[str, Any]:
        return await provenance.revoke_consent(db, video_id, consent_id)
    return await call.write(handler)
