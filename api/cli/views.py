"""``reelcart views …``: platform-reported view counts per video and day."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from api.cli import common

app = typer.Typer(help="Platform view counts per video, day and source.", no_args_is_help=True)


@app.command("import")
def views_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True,
                                         help="CSV (or .csv.gz) with a header: "
                                              "video_id,day,views")],
    source: Annotated[str, typer.Option(help="The platform that counted the views: "
                                             "tiktok, youtube, instagram …")],
) -> None:
    """Store daily view counts. Idempotent per (video, day, source): importing a file
    again replaces its counts and reports them unchanged. Bad lines are reported with
    their numbers and skipped (exit 1); the good ones are stored."""
    import re

    from sqlalchemy.ext.asyncio import AsyncSession

    from creatives.schemas import SOURCE_PATTERN, ViewImportReport
    from creatives.views import import_views, parse_csv

    if not re.fullmatch(SOURCE_PATTERN, source):
        typer.echo("--source must be lower-case letters, digits, '_', '.' or '-' "
                   "(at most 32)", err=True)
        raise typer.Exit(2)
    rows, problems = parse_csv(common.open_lines(file))

    async def run(db: AsyncSession) -> ViewImportReport:
        return await import_views(db, source, rows, all_or_nothing=False)

    report = common.in_transaction(run)
    rejected = problems + report.rejected
    typer.echo(f"views ({source}): {report.inserted} inserted, {report.updated} updated, "
               f"{report.unchanged} unchanged, {len(rejected)} rejected")
    for problem in rejected[:50]:
        typer.echo(f"  {problem['param']}: {problem['message']}", err=True)
    if rejected:
        raise typer.Exit(1)
