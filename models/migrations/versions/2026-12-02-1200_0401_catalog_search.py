"""catalog full-text search (SQLite FTS5 / PostgreSQL tsvector + GIN)

One search document per product (what search returns): the product's title (most
weight), its brand, its variants' titles / categories / options / SKUs, then the product's
and the variants' descriptions. Price, stock and availability are not in it: search filters
them live on the variants, so checkout's stock writes never touch the index.

Triggers keep the documents current on every catalog write (importer, Shopify sync,
anything else), so no writer has to remember them: a product inserted or its title, brand
or description updated; a variant inserted, deleted, or its searchable columns updated (its
product's document is rebuilt); a product deleted (its document goes).

SQLite keys the FTS5 row by the product's rowid. A ``VACUUM`` may renumber the rowids of a
table without an INTEGER PRIMARY KEY (ReelCart never runs one); after one, rebuild with
``DELETE FROM catalog_search`` and the backfill statement at the end of the upgrade.

Revision ID: 0401
Revises: 0601 (re-chained after main's head)
Create Date: 2026-12-02 12:00:00
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0401'
down_revision: str | None = '0601'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEARCHABLE_VARIANT_COLUMNS = "title, description, sku, categories, variant_options, product_id"

# -- SQLite ------------------------------------------------------------------------------

_SQLITE_DOCUMENT = """
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


def _sqlite_refresh(product_id: str) -> str:
    """Statements (inside a trigger) that rewrite one product's document."""
    return (f"DELETE FROM catalog_search WHERE rowid = "
            f"(SELECT rowid FROM products WHERE id = {product_id});\n"
            + _SQLITE_DOCUMENT.format(where=f"p.id = {product_id}") + ";")


def _sqlite_upgrade() -> None:
    op.execute("""
        CREATE VIRTUAL TABLE catalog_search USING fts5(
            product_id UNINDEXED, title, brand, tags, body,
            tokenize = 'porter unicode61 remove_diacritics 2')""")
    op.execute(f"""
        CREATE TRIGGER catalog_search_product_insert AFTER INSERT ON products BEGIN
            {_sqlite_refresh("NEW.id")}
        END""")
    op.execute(f"""
        CREATE TRIGGER catalog_search_product_update
        AFTER UPDATE OF title, brand, description ON products BEGIN
            DELETE FROM catalog_search WHERE rowid = OLD.rowid;
            {_sqlite_refresh("NEW.id")}
        END""")
    op.execute("""
        CREATE TRIGGER catalog_search_product_delete AFTER DELETE ON products BEGIN
            DELETE FROM catalog_search WHERE rowid = OLD.rowid;
        END""")
    op.execute(f"""
        CREATE TRIGGER catalog_search_variant_insert AFTER INSERT ON variants BEGIN
            {_sqlite_refresh("NEW.product_id")}
        END""")
    op.execute(f"""
        CREATE TRIGGER catalog_search_variant_update
        AFTER UPDATE OF {SEARCHABLE_VARIANT_COLUMNS} ON variants BEGIN
            {_sqlite_refresh("OLD.product_id")}
            {_sqlite_refresh("NEW.product_id")}
        END""")
    op.execute(f"""
        CREATE TRIGGER catalog_search_variant_delete AFTER DELETE ON variants BEGIN
            {_sqlite_refresh("OLD.product_id")}
        END""")
    op.execute(_SQLITE_DOCUMENT.format(where="1 = 1"))


_SQLITE_TRIGGERS = ("catalog_search_product_insert", "catalog_search_product_update",
                    "catalog_search_product_delete", "catalog_search_variant_insert",
                    "catalog_search_variant_update", "catalog_search_variant_delete")


def _sqlite_downgrade() -> None:
    for trigger in _SQLITE_TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    op.execute("DROP TABLE IF EXISTS catalog_search")


# -- PostgreSQL --------------------------------------------------------------------------

def _postgresql_upgrade() -> None:
    op.execute("""
        CREATE TABLE catalog_search (
            product_id VARCHAR(200) PRIMARY KEY
                REFERENCES products (id) ON DELETE CASCADE ON UPDATE CASCADE,
            document TSVECTOR NOT NULL)""")
    op.execute("CREATE INDEX ix_catalog_search_document ON catalog_search USING gin (document)")
    op.execute("""
        CREATE FUNCTION catalog_search_refresh(pid VARCHAR) RETURNS void
        LANGUAGE sql AS $$
            INSERT INTO catalog_search (product_id, document)
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
            WHERE p.id = pid
            ON CONFLICT (product_id) DO UPDATE SET document = EXCLUDED.document
        $$""")
    op.execute("""
        CREATE FUNCTION catalog_search_product_changed() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM catalog_search_refresh(NEW.id);
            RETURN NULL;
        END $$""")
    op.execute("""
        CREATE TRIGGER catalog_search_product
        AFTER INSERT OR UPDATE OF title, brand, description ON products
        FOR EACH ROW EXECUTE FUNCTION catalog_search_product_changed()""")
    op.execute("""
        CREATE FUNCTION catalog_search_variant_changed() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP <> 'INSERT' THEN
                PERFORM catalog_search_refresh(OLD.product_id);
            END IF;
            IF TG_OP <> 'DELETE' AND (TG_OP = 'INSERT' OR NEW.product_id <> OLD.product_id)
            THEN
                PERFORM catalog_search_refresh(NEW.product_id);
            END IF;
            RETURN NULL;
        END $$""")
    op.execute(f"""
        CREATE TRIGGER catalog_search_variant
        AFTER INSERT OR DELETE OR UPDATE OF {SEARCHABLE_VARIANT_COLUMNS} ON variants
        FOR EACH ROW EXECUTE FUNCTION catalog_search_variant_changed()""")
    op.execute("SELECT catalog_search_refresh(id) FROM products")


def _postgresql_downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS catalog_search_variant ON variants")
    op.execute("DROP TRIGGER IF EXISTS catalog_search_product ON products")
    op.execute("DROP FUNCTION IF EXISTS catalog_search_variant_changed()")
    op.execute("DROP FUNCTION IF EXISTS catalog_search_product_changed()")
    op.execute("DROP FUNCTION IF EXISTS catalog_search_refresh(VARCHAR)")
    op.execute("DROP TABLE IF EXISTS catalog_search")


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
