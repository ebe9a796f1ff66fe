"""The migrations build exactly the schema the models declare (tables, columns, indexes,
unique constraints, foreign keys): a model change without its migration, or the reverse,
fails here, on both back ends."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

import models  # noqa: F401  (every table on Base.metadata)
from models.base import Base

# The catalog's search index: raw SQL of migrations 0401/1641 on purpose (FTS5 on SQLite,
# a tsvector table on PostgreSQL), not a model.
_SEARCH_INDEX = "catalog_search"


def _ours(name: str | None, kind: str, _parent: Any) -> bool:
    return not (kind == "table" and name is not None and name.startswith(_SEARCH_INDEX))


def _differences(conn: Connection) -> list[Any]:
    context = MigrationContext.configure(conn, opts={"compare_type": False,
                                                     "include_name": _ours})
    return list(compare_metadata(context, Base.metadata))


async def test_migrated_schema_matches_the_models(database_url: str) -> None:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            differences = await conn.run_sync(_differences)
    finally:
        await engine.dispose()
    assert differences == []
