"""``reelcart videos …``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.cli import common

app = typer.Typer(help="The generated videos that feature our products.", no_args_is_help=True)


@app.command("import")
def videos_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
) -> None:
    """Upsert videos from JSONL (one video per line: id, generator, prompt, urls, products,
    parent_video_id …). Remixes may come before their parents in the file."""
    from pydantic import ValidationError

    from attribution.schemas import VideoIn
    from attribution.service import upsert_video
    from models.errors import AppError

    settings = common.migrated()
    parsed: list[tuple[int, VideoIn]] = []
    rejected: list[tuple[int, str]] = []
    for number, line in enumerate(common.open_lines(file), start=1):
        if not line.strip():
            continue
        try:
            parsed.append((number, VideoIn.model_validate_json(line)))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "line"
            rejected.append((number, f"{where}: {first['msg']}"))
    in_file = {v.id for _, v in parsed}
    # Parents first: a remix waits until the video it was remixed from is stored.
    ordered = sorted(parsed, key=lambda item: (item[1].parent_video_id in in_file, item[0]))

    async def run(sessionmaker: async_sessionmaker[AsyncSession]) -> tuple[int, int]:
        created = updated = 0
        pending = ordered
        for _ in range(len(ordered) + 1):  # bounded passes for deep lineages
            retry: list[tuple[int, VideoIn]] = []
            for number, video in pending:
                try:
                    async with sessionmaker() as db, db.begin():
                        _, was_created = await upsert_video(db, video)
                    created += was_created
                    updated += not was_created
                except AppError as exc:
                    if video.parent_video_id in in_file and "Parent" in exc.message:
                        retry.append((number, video))
                    else:
                        rejected.append((number, exc.message))
            if not retry or len(retry) == len(pending):
                rejected.extend((n, f"parent {v.parent_video_id!r} could not be stored")
                                for n, v in retry)
                break
            pending = retry
        return created, updated

    created, updated = common.with_database(run, settings)
    typer.echo(f"videos: {created} created, {updated} updated, {len(rejected)} rejected")
    for number, reason in sorted(rejected)[:50]:
        typer.echo(f"  line {number}: {reason}", err=True)
