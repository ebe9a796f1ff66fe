"""Dashboard pages for creative experiments (report, promote the winner) and video
provenance (Content Credentials, AI label, likeness consent). Thin: the same services as
the API; the promote form is CSRF-checked."""

from __future__ import annotations

from html import escape
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Query, Request
from starlette.responses import RedirectResponse, Response

from api.dashboard.routes import ViewerDep, check_csrf, page
from creatives import experiments, provenance
from creatives.errors import ExperimentNotFound
from models.errors import AppError

router = APIRouter(prefix="/dashboard", include_in_schema=False)


def interval_chart(variants: list[dict[str, Any]], *, title: str) -> str:
    """Each variant's conversion: posterior mean (dot) and 95 % credible interval (bar),
    on one scale. Drawn like the dashboard's bar charts: the label above its bar,
    horizontal positions in percent and text in pixels, so it reads the same on a phone."""
    usable = [v for v in variants if not v["problem"]]
    if not usable:
        return f'<p class="muted">No data for {escape(title.lower())}.</p>'
    top = max(max(v["conversion"]["high"] for v in usable), 1e-9)
    row, span = 46, 72.0  # the interval's value text fits in the last 28 %
    height = row * len(usable) + 24
    parts = []
    for i, v in enumerate(usable):
        y = 2 + i * row
        c = v["conversion"]
        x0, x1, xm = (span * c[k] / top for k in ("low", "high", "mean"))
        label = escape(str(v["title"] or v["video_id"])[:60])
        parts.append(
            f'<g><title>{label}: {c["mean"]:.2%} ({c["low"]:.3%} – {c["high"]:.3%})</title>'
            f'<text x="0" y="{y + 15}" class="label">{label}</text>'
            f'<rect class="bar" x="{x0:.2f}%" y="{y + 24}" width="{max(x1 - x0, 0.4):.2f}%" '
            f'height="8" rx="3"/>'
            f'<circle class="point" cx="{xm:.2f}%" cy="{y + 28}" r="5"/>'
            f'<text x="{x1:.2f}%" dx="8" y="{y + 33}" class="value">{c["mean"]:.2%}</text>'
            f"</g>")
    axis_y = 2 + len(usable) * row + 2
    parts.append(f'<line x1="0" y1="{axis_y}" x2="{span}%" y2="{axis_y}" class="axis"/>'
                 f'<text x="0" y="{axis_y + 16}" class="value">0%</text>'
                 f'<text x="{span}%" y="{axis_y + 16}" text-anchor="end" class="value">'
                 f'{top:.2%}</text>')
    return (f'<svg class="chart bars" width="100%" height="{height}" role="img" '
            f'aria-label="{escape(title)}"><title>{escape(title)}</title>{"".join(parts)}'
            f"</svg>")


@router.get("/experiments")
async def experiment_list(request: Request, who: ViewerDep) -> Response:
    async with who.runtime.read_sessionmaker() as db:
        found = await experiments.list_experiments(db, product_id=None, limit=100, offset=0)
        flagged = await provenance.provenance_list(db, flagged_only=True, limit=10, offset=0)
    return page(request, "dashboard/experiments.html", who, experiments=found["data"],
                flagged=flagged["data"])


@router.get("/experiments/{experiment_id}")
async def experiment_detail(request: Request, who: ViewerDep, experiment_id: str,
                            notice: Annotated[str | None, Query(max_length=300)] = None
                            ) -> Response:
    async with who.runtime.read_sessionmaker() as db:
        try:
            report = await experiments.report(db, experiment_id[:64])
        except ExperimentNotFound:
            return page(request, "dashboard/missing.html", who,
                        what=f"Experiment {experiment_id}")
    return page(request, "dashboard/experiment.html", who, x=report, notice=notice,
                chart=interval_chart(report["variants"],
                                     title="Conversion per view, 95% credible intervals"))


@router.post("/experiments/{experiment_id}/promote")
async def promote(who: ViewerDep, experiment_id: str,
                  csrf_token: Annotated[str, Form(max_length=100)] = "",
                  video_id: Annotated[str, Form(max_length=100)] = "") -> Response:
    check_csrf(who, csrf_token)
    target = f"/dashboard/experiments/{quote(experiment_id[:64])}"
    try:
        async with who.runtime.sessionmaker() as db, db.begin():
            result = await experiments.promote(db, experiment_id[:64], video_id or None)
    except AppError as exc:
        return RedirectResponse(f"{target}?notice={quote(exc.message)}", status_code=303)
    who.runtime.wake_worker()  # a feeds refresh may be queued
    message = (f"{result['video_id']} is now the featured video of {result['product_id']}."
               if result["changed"] else f"{result['video_id']} was already promoted.")
    return RedirectResponse(f"{target}?notice={quote(message)}", status_code=303)


@router.get("/provenance")
async def provenance_page(request: Request, who: ViewerDep,
                          flagged: Annotated[int, Query(ge=0, le=1)] = 0) -> Response:
    async with who.runtime.read_sessionmaker() as db:
        found = await provenance.provenance_list(db, flagged_only=bool(flagged), limit=200,
                                                 offset=0)
    return page(request, "dashboard/provenance.html", who, rows=found["data"],
                flagged=flagged)
