"""``reelcart provenance …``: a video file's C2PA Content Credentials, likeness consent."""

from __future__ import annotations

import asyncio
import json
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from api.cli import common

app = typer.Typer(help="Video provenance (C2PA Content Credentials) and likeness consent.",
                  no_args_is_help=True)


@app.command("check")
def check(
    video_id: str,
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    content_type: Annotated[str, typer.Option(help="MIME type of the file")] = "video/mp4",
) -> None:
    """Read the file's Content Credentials and record them on the video (AI-generated,
    generator, model, creation time; flagged when there are none)."""
    from creatives import provenance
    from models.errors import AppError

    settings = common.migrated()
    anchors = (settings.c2pa_trust_anchors_file.read_text()
               if settings.c2pa_trust_anchors_file else None)
    try:
        with file.open("rb") as stream:
            inspected = asyncio.run(provenance.inspect(stream, content_type,
                                                       trust_anchors_pem=anchors))
        result = common.in_transaction(lambda db: provenance.record(
            db, video_id, inspected, source="file"))
    except AppError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None
    typer.echo(json.dumps(result, indent=2))


@app.command("consent")
def consent(
    video_id: str,
    person: Annotated[str, typer.Option(help="Who appears in the video")],
    reference: Annotated[str, typer.Option(help="Where the signed consent is kept")],
    kind: Annotated[str, typer.Option(help="cameo, likeness or voice")] = "likeness",
    scope: Annotated[list[str] | None, typer.Option(help="What it covers (repeat)")] = None,
    expires_on: Annotated[str | None, typer.Option(help="YYYY-MM-DD")] = None,
) -> None:
    """Record a person's consent to appear in the video."""
    from pydantic import ValidationError

    from creatives import provenance
    from creatives.schemas import ConsentIn
    from models.errors import AppError

    try:
        data = ConsentIn(person=person, consent_reference=reference, kind=kind,
                         scope=scope or [],
                         expires_on=date.fromisoformat(expires_on) if expires_on else None)
        result = common.in_transaction(lambda db: provenance.add_consent(db, video_id, data))
    except (ValidationError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except AppError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None
    typer.echo(json.dumps(result, indent=2))
