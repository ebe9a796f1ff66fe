"""catalog search: batch maintenance during an import (triggers deferred per transaction)

Migration 0401's per-row triggers rebuild a product's search document on every insert or
searchable update of the product or of one of its variants: an import of a product with 4
variants rebuilt it 5 times on PostgreSQL (and ran 2 no-op statements per variant on
SQLite). The catalog importer now defers the insert/update triggers inside its own write
transaction and rebuilds the documents of the products it touched once, in one statement,
before that transaction ends. Every other writer keeps the triggers, unchanged.

- SQLite: the triggers skip while ``catalog_search_deferred`` holds a row. Only the
  importer writes that row, inside its write transaction (SQLite has one writer, so no
  other connection ever sees it), and deletes it before the transaction ends. The view
  ``catalog_search_documents`` is the one definition of a product's document, used by the
  triggers and by the importer's batch rebuild.
- PostgreSQL: the insert/update triggers skip while the transaction-local setting
  ``reelcart.catalog_search_deferred`` is ``on`` (``set_config(..., true)``: it ends with
  the transaction, whatever happens). ``catalog_search_refresh_many(ids)`` rebuilds many
  documents in one set-based statement; ``catalog_search_refresh(id)`` calls it. Deletes of
  variants are never deferred (their own trigger).

Revision ID: 1641
Revises: 1901
Create Date: 2026-12-02 17:00:00
"""
from collections.abc import Sequence

from alembic import op

revision: str = '1641'
down_revision: str | None = '1901'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEARCHABLE_VARIANT_COLUMNS = "title, description, sku, categories, variant_options, product_id"

# -- SQLite ------------------------------------------------------------------------------

_SQLITE_VIEW = """
    CREATE VIEW catalog_search_documents AS
    SELECT p.rowid AS product_rowid, p.id AS product_id, p.title AS title,
        coalesce(p.brand, '') AS brand,
        coalesce((SELECT group_concat(v.title || ' ' || coalesce(v.categories, '') || ' '
                                      || coalesce(v.variant_options, '') || ' '
                                      || coalesce(v.sku, ''), ' ')
                  FROM variants v WHERE v.product_id = p.id), '') AS tags,
        coalesce(p.description, '') || ' '
        || coalesce((SELECT group_concat(DISTINCT v.description)
                     FROM variants v WHERE v.product_id = p.id), '') AS body
    FROM products p"""

_SQLITE_LIVE = "WHEN NOT EXISTS (SELECT 1 FROM catalog_search_deferred)"


def _sqlite_refresh(product_id: str) -> str:
    """Statements (inside a trigger) that rewrite one product's document."""
    return (f"DELETE FROM catalog_search WHERE rowid = "
            f"(SELECT rowid FROM products WHERE id = {product_id});\n"
            f"INSERT INTO catalog_search (rowid, product_id, title, brand, tags, body)\n"
            f"SELECT product_rowid, product_id, title, brand, tags, body\n"
            f"FROM catalog_search_documents WHERE product_id = {product_id};")


_SQLITE_DEFERRABLE = ("catalog_search_product_insert", "catalog_search_product_update",
                      "catalog_search_variant_insert", "catalog_search_variant_update")


def _sqlite_upgrade() -> None:
    op.execute("CREATE TABLE catalog_search_deferred (id INTEGER PRIMARY KEY CHECK (id = 1))")
    op.execute(_SQLITE_VIEW)
    for trigger in _SQLITE_DEFERRABLE:
        op.execute(f"DROP TRIGGER {trigger}")
    op.execute(f"""
        CREATE TRIGGER catalog_search_product_insert AFTER INSERT ON products
        {_SQLITE_LIVE} BEGIN
            {_sqlite_refresh("NEW.id")}
        END""")
    op.execute(f"""
        CREATE TRIGGER catalog_search_product_update
        AFTER UPDATE OF title, brand, description ON products {_SQLITE_LIVE} BEGIN
            DELETE FROM catalog_search WHERE rowid = OLD.rowid;
            {_sqlite_refresh("NEW.id")}
        END""")
    op.execute(f"""
        CREATE TRIGGER catalog_search_variant_insert AFTER INSERT ON variants
        {_SQLITE_LIVE} BEGIN
            {_sqlite_refresh("NEW.product_id")}
        END""")
    op.execute(f"""
        CREATE TRIGGER catalog_search_variant_update
        AFTER UPDATE OF {SEARCHABLE_VARIANT_COLUMNS} ON variants {_SQLITE_LIVE} BEGIN
            {_sqlite_refresh("OLD.product_id")}
            {_sqlite_refresh("NEW.product_id")}
        END""")


# 0401's definitions, for the downgrade.
_SQLITE_0401_DOCUMENT = """
    INSERT INTO catalog_search (rowid, product_id, title, brand, tags, body)
    SELECT p.rowid, p.id, p.title, coalesce(p.brand, ''),
        coalesce((SELECT group_concat(v.title || ' ' || coalesce(v.categories, '') || ' '
                                      || coalesce(v.variant_options, '') || ' '
                                      || coalesce(v.sku, ''), ' ')
                  FROM variants v WHERE v.product_id = p.id), ''),
        coalesce(p.description, '') || ' '
        || coalesce((SELECT group_concat(DISTINCT v.description)
                     FROM variants v WHERE v.product_id = p.id), '')
    FROM products p WHERE {where}"""


def _sqlite_0401_refresh(product_id: str) -> str:
    return (f"DELETE FROM catalog_search WHERE rowid = "
            f"(SELECT rowid FROM products WHERE id = {product_id});\n"
            + _SQLITE_0401_DOCUMENT.format(where=f"p.id = {product_id}") + ";")


def _sqlite_downgrade() -> None:
    for trigger in _SQLITE_DEFERRABLE:
        op.execute(f"DROP TRIGGER {trigger}")
    op.execute(f"""
        CREATE TRIGGER catalog_search_product_insert AFTER INSERT ON products BEGIN
            {_sqlite_0401_refresh("NEW.id")}
        END""")
    op.execute(f"""
        CREATE TRIGGER catalog_search_product_update
        AFTER UPDATE OF title, brand, description ON products BEGIN
            DELETE FROM catalog_search WHERE rowid = OLD.rowid;
            {_sqlite_0401_refresh("NEW.id")}
        END""")
    op.execute(f"""
        CREATE TRIGGER catalog_search_variant_insert AFTER INSERT ON variants BEGIN
            {_sqlite_0401_refresh("NEW.product_id")}
        END""")
    op.execute(f"""
        CREATE TRIGGER catalog_search_variant_update
        AFTER UPDATE OF {SEARCHABLE_VARIANT_COLUMNS} ON variants BEGIN
            {_sqlite_0401_refresh("OLD.product_id")}
            {_sqlite_0401_refresh("NEW.product_id")}
        END""")
    op.execute("DROP VIEW catalog_search_documents")
    op.execute("DROP TABLE catalog_search_deferred")


# -- PostgreSQL --------------------------------------------------------------------------

_PG_LIVE = ("WHEN (current_setting('reelcart.catalog_search_deferred', true) "
            "IS DISTINCT FROM 'on')")


# The search document of the products ``p.id = {match}`` (0401's, for any number of ids).
_PG_DOCUMENT_UPSERT = """            INSERT INTO catalog_search (product_id, document)
            SELECT p.id,
                   setweight(to_tsvector('english', coalesce(p.title, '')), 'A')
                || setweight(to_tsvector('english', coalesce(p.brand, '')), 'B')
                || setweight(to_tsvector('english', coalesce(v.tags, '')), 'C')
                || setweight(to_tsvector('english',
                       coalesce(p.description, '') || ' ' || coalesce(v.body, '')), 'D')
            FROM products p LEFT JOIN LATERAL (
                SELECT string_agg(v.title || ' ' || coalesce(v.categories::text, '') || ' '
                                  || coalesce(v.variant_options::text, '') || ' '
                                  || coalesce(v.sku, ''), ' ') AS tags,
                       string_agg(DISTINCT v.description, ' ') AS body
                FROM variants v WHERE v.product_id = p.id) v ON true
            WHERE p.id = {match}
            ON CONFLICT (product_id) DO UPDATE SET document = EXCLUDED.document"""


def _postgresql_upgrade() -> None:
    op.execute(f"""
        CREATE FUNCTION catalog_search_refresh_many(pids VARCHAR[]) RETURNS void
        LANGUAGE sql AS $$
{_PG_DOCUMENT_UPSERT.format(match="ANY(pids)")}
        $$""")
    op.execute("""
        CREATE OR REPLACE FUNCTION catalog_search_refresh(pid VARCHAR) RETURNS void
        LANGUAGE sql AS $$ SELECT catalog_search_refresh_many(ARRAY[pid]) $$""")
    op.execute("DROP TRIGGER catalog_search_product ON products")
    op.execute(f"""
        CREATE TRIGGER catalog_search_product
        AFTER INSERT OR UPDATE OF title, brand, description ON products
        FOR EACH ROW {_PG_LIVE} EXECUTE FUNCTION catalog_search_product_changed()""")
    op.execute("DROP TRIGGER catalog_search_variant ON variants")
    op.execute(f"""
        CREATE TRIGGER catalog_search_variant
        AFTER INSERT OR UPDATE OF {SEARCHABLE_VARIANT_COLUMNS} ON variants
        FOR EACH ROW {_PG_LIVE} EXECUTE FUNCTION catalog_search_variant_changed()""")
    op.execute("""
        CREATE TRIGGER catalog_search_variant_delete AFTER DELETE ON variants
        FOR EACH ROW EXECUTE FUNCTION catalog_search_variant_changed()""")


def _postgresql_downgrade() -> None:
    op.execute("DROP TRIGGER catalog_search_variant_delete ON variants")
    op.execute("DROP TRIGGER catalog_search_variant ON variants")
    op.execute(f"""
        CREATE TRIGGER catalog_search_variant
        AFTER INSERT OR DELETE OR UPDATE OF {SEARCHABLE_VARIANT_COLUMNS} ON variants
        FOR EACH ROW EXECUTE FUNCTION catalog_search_variant_changed()""")
    op.execute("DROP TRIGGER catalog_search_product ON products")
    op.execute("""
        CREATE TRIGGER catalog_search_product
        AFTER INSERT OR UPDATE OF title, brand, description ON products
        FOR EACH ROW EXECUTE FUNCTION catalog_search_product_changed()""")
    op.execute(f"""
        CREATE OR REPLACE FUNCTION catalog_search_refresh(pid VARCHAR) RETURNS void
        LANGUAGE sql AS $$
{_PG_DOCUMENT_UPSERT.format(match="pid")}
        $$""")
    op.execute("DROP FUNCTION catalog_search_refresh_many(VARCHAR[])")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _postgresql_upgrade()
    else:
        _sqlite_upgrade()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _postgresql_downgrade()
    else:
        _sqlite_downgrade()
