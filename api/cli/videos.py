"""``reelcart videos …``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.cli import common

app = typer.Typer(help="The generated videos that feature our products.", no_args_is_help=True)


@app.command("import")
def videos_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    strict: Annotated[bool, typer.Option(help="Exit 1 if any line is rejected")] = False,
) -> None:
    """Upsert videos from JSONL (one video per line: id, generator, prompt, urls, products,
    parent_video_id …). Remixes may come before their parents in the file. A video that is
    already stored as the line describes it is left untouched ("unchanged")."""
    from pydantic import ValidationError

    from attribution.schemas import VideoIn
    from attribution.service import get_video, upsert_video
    from models.errors import AppError, NotFound

    _check_jsonl(file)
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

    async def run(sessionmaker: async_sessionmaker[AsyncSession]) -> tuple[int, int, int]:
        created = updated = unchanged = 0
        pending = ordered
        for _ in range(len(ordered) + 1):  # bounded passes for deep lineages
            retry: list[tuple[int, VideoIn]] = []
            for number, video in pending:
                try:
                    async with sessionmaker() as db, db.begin():
                        try:
                            before = _comparable(await get_video(db, video.id))
                        except NotFound:
                            before = None
                        stored, was_created = await upsert_video(db, video)
                        if before is not None and before == _comparable(stored):
                            raise _Unchanged  # roll back: not even updated_at moves
                    created += was_created
                    updated += not was_created
                except _Unchanged:
                    unchanged += 1
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
        return created, updated, unchanged

    created, updated, unchanged = common.with_database(run, settings)
    typer.echo(f"videos: {created} created, {updated} updated, {unchanged} unchanged, "
               f"{len(rejected)} rejected")
    if unchanged and not (created or updated or rejected):
        typer.echo("videos unchanged: every video in the file is already up to date")
    for number, reason in sorted(rejected)[:50]:
        typer.echo(f"  line {number}: {reason}", err=True)
    if len(rejected) > 50:
        typer.echo(f"  … and {len(rejected) - 50} more", err=True)
    if strict and rejected:
        raise typer.Exit(1)


class _Unchanged(Exception):
    """Raised inside the transaction to roll back an upsert that changed nothing."""


def _comparable(video: dict[str, Any]) -> dict[str, Any]:
    """A stored video as the file describes it (no derived fields, products as a set)."""
    return {**{k: v for k, v in video.items() if k not in ("lineage", "products")},
            "products": sorted((p["product_id"], p["variant_id"] or "")
                               for p in video["products"])}


def _check_jsonl(path: Path) -> None:
    """Refuse a file that is not JSONL before touching the database."""
    from api.cli.errors import CliError

    first = next((line for line in common.open_lines(path) if line.strip()), None)
    if first is None:
        raise CliError(f"{path.name} is empty: nothing to import")
    try:
        parsed = json.loads(first)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        raise CliError(f"{path.name} is not JSONL (one video object per line): "
                       "its first line is not a JSON object")
