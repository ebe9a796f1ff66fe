"""``reelcart links …``: shoppable short links per (video, product, channel)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from api.cli import common

app = typer.Typer(help="Shoppable video links (/v/{code}): create and list.",
                  no_args_is_help=True)


@app.command("create")
def links_create(
    video_id: Annotated[str, typer.Argument(help="The video the link is posted with")],
    product_id: Annotated[str, typer.Argument(help="The product it leads to")],
    channel: Annotated[str, typer.Argument(help="tiktok, youtube, instagram, web, openai…")],
    destination: Annotated[str | None, typer.Option(
        "--destination", help="Lead here instead of the product page (http(s), public)")
    ] = None,
) -> None:
    """Create the link (or show the existing one, setting the destination given)."""
    from pydantic import ValidationError

    from links.schemas import LinkIn
    from links.service import create_link
    from models.errors import AppError

    settings = common.settings()
    try:
        data = LinkIn(video_id=video_id, product_id=product_id, channel=channel,
                      destination_url=destination)
    except ValidationError as exc:
        first = exc.errors()[0]
        typer.echo(f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}", err=True)
        raise typer.Exit(2) from None

    async def work(db: AsyncSession) -> tuple[dict[str, Any], bool]:
        return await create_link(db, data, policy=settings.outbound_policy(),
                                 public_base_url=settings.public_base_url)

    try:
        link, created = common.in_transaction(work)
    except AppError as exc:
        typer.echo(exc.message, err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{'created' if created else 'exists'}: {link['url']}  (code {link['code']}, "
               f"pixel {link['pixel_url']})")


@app.command("list")
def links_list(
    video_id: Annotated[str | None, typer.Option("--video")] = None,
    product_id: Annotated[str | None, typer.Option("--product")] = None,
    channel: Annotated[str | None, typer.Option("--channel")] = None,
) -> None:
    """Links, newest first (up to 500)."""
    from links.repository import list_links
    from links.schemas import link_json

    settings = common.settings()

    async def work(db: AsyncSession) -> list[dict[str, Any]]:
        rows = await list_links(db, video_id=video_id, product_id=product_id, channel=channel,
                                limit=500, offset=0)
        return [link_json(r, settings.public_base_url) for r in rows]

    for link in common.in_transaction(work):
        typer.echo(f"{link['code']}  {link['channel']:<10} {link['video_id']} → "
                   f"{link['product_id']}  {link['url']}"
                   + (f"  → {link['destination_url']}" if link["destination_url"] else ""))
