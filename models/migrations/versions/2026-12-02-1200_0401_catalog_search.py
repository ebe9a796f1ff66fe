"""catalog full-text search (SQLite FTS5 / PostgreSQL tsvector + GIN)

One search document per variant: its title with the product's title (most weight), the
brand, categories / options / SKU, then the descriptions. Triggers keep it current on every
catalog write (importer, Shopify sync, anything else), so no writer has to remember it:

* variant inserted, or its searchable columns updated → its document is rewritten
  (stock and price changes do not touch the index: checkout writes stay cheap);
* product title, brand or description updated → the documents of all its variants;
* variant deleted → its document (SQLite: trigger; PostgreSQL: ON DELETE CASCADE).

SQLite keys the FTS5 row by the variant's rowid. A ``VACUUM`` may renumber the rowids of
a table without an INTEGER PRIMARY KEY (ReelCart never runs one); after one, rebuild with
``DELETE FROM catalog_search`` and the backfill statement at the end of the upgrade.

Revision ID: 0401
Revises: 0009
Create Date: 2026-12-02 12:00:00
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0401'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEARCHABLE_VARIANT_COLUMNS = "title, description, sku, categories, variant_options, product_id"

# -- SQLite ------------------------------------------------------------------------------

_SQLITE_ROW = """
    {rowid}, {v}.id,
    {v}.title || ' ' || coalesce(p.title, ''),
    coalesce(p.brand, ''),
    coalesce({v}.categories, '') || ' ' || coalesce({v}.variant_options, '') || ' '
        || coalesce({v}.sku, ''),
    coalesce({v}.description, '') || ' ' || coalesce(p.description, '')"""
_SQLITE_INSERT = "INSERT INTO catalog_search (rowid, variant_id, title, brand, tags, body)"


def _sqlite_upgrade() -> None:
    op.execute("""
        CREATE VIRTUAL TABLE catalog_search USING fts5(
            variant_id UNINDEXED, title, brand, tags, body,
            tokenize = 'porter unicode61 remove_diacritics 2')""")
    new_row = _SQLITE_ROW.format(rowid="NEW.rowid", v="NEW")
    op.execute(f"""
        CREATE TRIGGER catalog_search_variant_insert AFTER INSERT ON variants BEGIN
            {_SQLITE_INSERT} SELECT {new_row}
            FROM (SELECT 1) LEFT JOIN products p ON p.id = NEW.product_id;
        END""")
    op.execute(f"""
        CREATE TRIGGER catalog_search_variant_update
        AFTER UPDATE OF {SEARCHABLE_VARIANT_COLUMNS} ON variants BEGIN
            DELETE FROM catalog_search WHERE rowid = OLD.rowid;
            {_SQLITE_INSERT} SELECT {new_row}
            FROM (SELECT 1) LEFT JOIN products p ON p.id = NEW.product_id;
        END""")
    op.execute("""
        CREATE TRIGGER catalog_search_variant_delete AFTER DELETE ON variants BEGIN
            DELETE FROM catalog_search WHERE rowid = OLD.rowid;
        END""")
    variant_row = _SQLITE_ROW.format(rowid="v.rowid", v="v")
    op.execute(f"""
        CREATE TRIGGER catalog_search_product_update
        AFTER UPDATE OF title, brand, description ON products BEGIN
            DELETE FROM catalog_search
                WHERE rowid IN (SELECT rowid FROM variants WHERE product_id = NEW.id);
            {_SQLITE_INSERT} SELECT {variant_row}
            FROM variants v JOIN products p ON p.id = v.product_id WHERE v.product_id = NEW.id;
        END""")
    op.execute(f"""{_SQLITE_INSERT} SELECT {variant_row}
                   FROM variants v LEFT JOIN products p ON p.id = v.product_id""")


def _sqlite_downgrade() -> None:
    for trigger in ("catalog_search_variant_insert", "catalog_search_variant_update",
                    "catalog_search_variant_delete", "catalog_search_product_update"):
        op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    op.execute("DROP TABLE IF EXISTS catalog_search")


# -- PostgreSQL --------------------------------------------------------------------------

def _postgresql_upgrade() -> None:
    op.execute("""
        CREATE TABLE catalog_search (
            variant_id VARCHAR(200) PRIMARY KEY
                REFERENCES variants (id) ON DELETE CASCADE ON UPDATE CASCADE,
            document TSVECTOR NOT NULL)""")
    op.execute("CREATE INDEX ix_catalog_search_document ON catalog_search USING gin (document)")
    op.execute("""
        CREATE FUNCTION catalog_search_document(v variants, p products) RETURNS tsvector
        LANGUAGE sql STABLE AS $$
            SELECT setweight(to_tsvector('english',
                       coalesce(v.title, '') || ' ' || coalesce(p.title, '')), 'A')
                || setweight(to_tsvector('english', coalesce(p.brand, '')), 'B')
                || setweight(to_tsvector('english',
                       coalesce(v.categories::text, '') || ' '
                       || coalesce(v.variant_options::text, '') || ' '
                       || coalesce(v.sku, '')), 'C')
                || setweight(to_tsvector('english',
                       coalesce(v.description, '') || ' ' || coalesce(p.description, '')), 'D')
        $$""")
    op.execute("""
        CREATE FUNCTION catalog_search_variant_changed() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO catalog_search (variant_id, document)
            SELECT NEW.id, catalog_search_document(NEW, p)
            FROM (SELECT 1) AS one LEFT JOIN products p ON p.id = NEW.product_id
            ON CONFLICT (variant_id) DO UPDATE SET document = EXCLUDED.document;
            RETURN NULL;
        END $$""")
    op.execute(f"""
        CREATE TRIGGER catalog_search_variant
        AFTER INSERT OR UPDATE OF {SEARCHABLE_VARIANT_COLUMNS} ON variants
        FOR EACH ROW EXECUTE FUNCTION catalog_search_variant_changed()""")
    op.execute("""
        CREATE FUNCTION catalog_search_product_changed() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO catalog_search (variant_id, document)
            SELECT v.id, catalog_search_document(v, NEW) FROM variants v
            WHERE v.product_id = NEW.id
            ON CONFLICT (variant_id) DO UPDATE SET document = EXCLUDED.document;
            RETURN NULL;
        END $$""")
    op.execute("""
        CREATE TRIGGER catalog_search_product
        AFTER UPDATE OF title, brand, description ON products
        FOR EACH ROW EXECUTE FUNCTION catalog_search_product_changed()""")
    op.execute("""
        INSERT INTO catalog_search (variant_id, document)
        SELECT v.id, catalog_search_document(v, p)
        FROM variants v LEFT JOIN products p ON p.id = v.product_id""")


def _postgresql_downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS catalog_search_product ON products")
    op.execute("DROP TRIGGER IF EXISTS catalog_search_variant ON variants")
    op.execute("DROP FUNCTION IF EXISTS catalog_search_product_changed()")
    op.execute("DROP FUNCTION IF EXISTS catalog_search_variant_changed()")
    op.execute("DROP TABLE IF EXISTS catalog_search")
    op.execute("DROP FUNCTION IF EXISTS catalog_search_document(variants, products)")


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
