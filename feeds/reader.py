"""The feed builds' read side: the catalog streamed as ``ProductRow``s through a connection
of its own, never the application's write engine and never on the API's event loop.

A feed build reads a million variants. It gets its own read-only connection (SQLite: a
separate ``sqlite3`` connection on the WAL database, ``query_only``, so writers are never
blocked; PostgreSQL: a separate asyncpg connection in a ``REPEATABLE READ READ ONLY``
transaction), reads the catalog in keyset chunks of plain tuples (only the columns feeds
use; no ORM entities, no per-row type machinery) and turns them into ``ProductRow``s.

``snapshot=True`` reads every chunk in one transaction: the build sees one consistent
catalog. ``snapshot=False`` gives each chunk its own short transaction: for slow consumers
(destinations pacing their API calls for hours) that must not pin an old snapshot (on
SQLite that would keep the WAL from being checkpointed).

Everything here is synchronous: it runs in a build process, a CLI command or a thread.
"""

from __future__ import annotations

import asyncio
import queue
import re
import sqlite3
import threading
from collections.abc import Callable, Coroutine, Generator, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, Protocol, TypeVar

import orjson
from sqlalchemy.engine import make_url

from feeds.builder import FEED_CHANNELS, ProductRow, VariantRow

CHUNK = 2000  # products per read
T = TypeVar("T")

# Column order = the dataclasses' field order (rows become objects positionally).
_PRODUCTS = "SELECT id, title, description, url, brand, media FROM products{where} " \
    "ORDER BY id LIMIT {limit}"
_VARIANTS = """SELECT id, title, price_amount, currency, description, sku, url, image_url,
        list_price_amount, availability, stock, requires_shipping, variant_options,
        categories, is_eligible_search, is_eligible_checkout, product_id
    FROM variants WHERE product_id >= {first} AND product_id <= {last}
    ORDER BY product_id, id"""
# The video promoted for the product (an experiment's winner, ``featured_videos``) first,
# then newest first; a video's public URL, else its source URL.
_VIDEOS = """SELECT vp.product_id, v.published_url, v.source_url, v.title, v.id
    FROM video_products vp JOIN videos v ON v.id = vp.video_id
    WHERE vp.product_id >= {first} AND vp.product_id <= {last}
    ORDER BY vp.product_id,
        CASE WHEN EXISTS (SELECT 1 FROM featured_videos fv WHERE fv.product_id = vp.product_id
                          AND fv.video_id = v.id) THEN 0 ELSE 1 END,
        v.published_at DESC, v.id"""
# Each product's shoppable links on the feed channels, newest first (the first per channel
# becomes the product's URL in that channel's feed).
_LINKS = """SELECT product_id, channel, code FROM shoppable_links
    WHERE product_id >= {first} AND product_id <= {last}
        AND channel IN ({channels})
    ORDER BY product_id, created_at DESC, code"""
_CHANNEL_LIST = ", ".join(f"'{c}'" for c in FEED_CHANNELS)  # constants, not input
_SNAPSHOT_ID = re.compile(r"[0-9A-Fa-f-]+")


class _Connection(Protocol):
    def mark(self, n: int) -> str: ...
    def begin(self, snapshot_id: str | None = None) -> None: ...
    def commit(self) -> None: ...
    def fetch(self, sql: str, params: Sequence[Any]) -> list[Sequence[Any]]: ...
    def close(self) -> None: ...


class _Sqlite:
    @staticmethod
    def mark(n: int) -> str:
        return "?"

    def __init__(self, path: str) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                                    uri=path.startswith("file:"), timeout=30)
        self.conn.execute("PRAGMA query_only = ON")  # a reader, whatever happens

    def begin(self, snapshot_id: str | None = None) -> None:
        self.conn.execute("BEGIN")  # deferred: the snapshot starts at the first read

    def commit(self) -> None:
        self.conn.execute("COMMIT")

    def fetch(self, sql: str, params: Sequence[Any]) -> list[Sequence[Any]]:
        return self.conn.execute(sql, params).fetchall()

    def close(self) -> None:
        self.conn.close()


class _Postgres:
    """asyncpg on a private event loop (this runs in a thread or a build process)."""

    @staticmethod
    def mark(n: int) -> str:
        return f"${n}"

    def __init__(self, url: str) -> None:
        import asyncpg
        from sqlalchemy.ext.asyncio import create_async_engine

        self.loop = asyncio.new_event_loop()
        engine = create_async_engine(url)  # only for the driver's connect arguments
        args, kwargs = engine.dialect.create_connect_args(make_url(url))
        self.conn = self._run(asyncpg.connect(*args, **kwargs))
        self.tx: Any = None
        self.statements: dict[str, Any] = {}

    def _run(self, work: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(work)

    def begin(self, snapshot_id: str | None = None) -> None:
        """``snapshot_id``: a snapshot another transaction exported (``shared_snapshot``):
        the processes of a parallel build all read the same catalog."""
        self.tx = self.conn.transaction(isolation="repeatable_read", readonly=True)
        self._run(self.tx.start())
        if snapshot_id is not None:
            if not _SNAPSHOT_ID.fullmatch(snapshot_id):
                raise ValueError(f"not a snapshot id: {snapshot_id!r}")
            self._run(self.conn.execute(f"SET TRANSACTION SNAPSHOT '{snapshot_id}'"))

    def export_snapshot(self) -> str:
        return str(self._run(self.conn.fetchval("SELECT pg_export_snapshot()")))

    def commit(self) -> None:
        self._run(self.tx.commit())

    def fetch(self, sql: str, params: Sequence[Any]) -> list[Sequence[Any]]:
        async def run() -> list[Sequence[Any]]:
            if sql not in self.statements:
                self.statements[sql] = await self.conn.prepare(sql)
            return list(await self.statements[sql].fetch(*params))
        return self._run(run())

    def close(self) -> None:
        try:
            self._run(self.conn.close())
        finally:
            self.loop.close()


def _connect(url: str) -> _Sqlite | _Postgres:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if not database or database == ":memory:":
            raise ValueError("feed builds read through a connection of their own: an "
                             "in-memory SQLite database cannot be shared")
        return _Sqlite(database)
    return _Postgres(url)


_loads = orjson.loads
_TEXT = (str, bytes)  # a tuple: ``str | bytes`` would build a union object on every call


def _json_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return (_loads(value) if isinstance(value, _TEXT) else value) or []


@lru_cache(maxsize=4096)
def _options(value: Any) -> tuple[tuple[str, str], ...]:
    """A stored ``variant_options`` (JSON text) as pairs; a catalog repeats a few sets."""
    return tuple((o["name"], o["value"]) for o in _json_list(value))


@lru_cache(maxsize=4096)
def _categories(value: Any) -> tuple[str, ...]:
    return tuple(_json_list(value))


def _hashable(value: Any) -> Any:
    """JSON text as stored (SQLite, asyncpg) is its own cache key; anything else is not."""
    return value if value is None or isinstance(value, _TEXT) else orjson.dumps(value)


def _rows(products: list[Sequence[Any]], variants: list[Sequence[Any]],
          videos: list[Sequence[Any]], links: Sequence[Sequence[Any]] = ()) -> list[ProductRow]:
    """Id-ordered row lists merged into products (each with its variants)."""
    by_product: dict[str, list[VariantRow]] = {}
    # The stored JSON text (SQLite, asyncpg) is its own cache key: a catalog repeats a
    # few option and category sets, each parsed once (per chunk, here; then the caches).
    options_seen: dict[Any, tuple[tuple[str, str], ...]] = {}
    categories_seen: dict[Any, tuple[str, ...]] = {}
    for (vid, title, price, currency, description, sku, url, image, list_price,
         availability, stock, shipping, options, categories, search, checkout,
         product_id) in variants:
        try:
            variant_options = options_seen[options]
        except (KeyError, TypeError):  # TypeError: an unhashable (already decoded) value
            variant_options = _options(_hashable(options))
            if isinstance(options, _TEXT):
                options_seen[options] = variant_options
        try:
            variant_categories = categories_seen[categories]
        except (KeyError, TypeError):
            variant_categories = _categories(_hashable(categories))
            if isinstance(categories, _TEXT):
                categories_seen[categories] = variant_categories
        row = VariantRow(
            vid, title, price, currency, description, sku, url, image, list_price,
            availability, stock, bool(shipping), variant_options, variant_categories,
            bool(search), bool(checkout))
        found = by_product.get(product_id)
        if found is None:
            by_product[product_id] = [row]
        else:
            found.append(row)
    featured: dict[str, list[tuple[str, str | None, str]]] = {}
    for product_id, published, source, title, video_id in videos:
        url = published or source
        if url:
            featured.setdefault(product_id, []).append((url, title, video_id))
    link_codes: dict[str, dict[str, str]] = {}
    for product_id, channel, code in links:
        link_codes.setdefault(product_id, {}).setdefault(channel, code)  # newest wins
    out = []
    for pid, title, description, url, brand, media in products:
        own = by_product.get(pid)
        if own:  # a product without variants has nothing to publish
            out.append(ProductRow(pid, title, tuple(own), description, url, brand,
                                  () if media is None or media == "[]"
                                  else tuple(_json_list(media)),
                                  tuple(featured[pid]) if pid in featured else (),
                                  tuple(link_codes[pid].items()) if pid in link_codes
                                  else ()))
    return out


def read_catalog(url: str, *, snapshot: bool = True, chunk: int = CHUNK,
                 after: str | None = None, until: str | None = None,
                 snapshot_id: str | None = None) -> Generator[list[ProductRow], None, None]:
    """The catalog in id order, ``chunk`` products at a time (see the module docstring);
    with ``after``/``until``, only the products with ``after < id <= until``; with
    ``snapshot_id`` (PostgreSQL, ``snapshot=True``), as that exported snapshot sees it."""
    conn = _connect(url)
    limit = int(chunk)
    where = []
    if until is not None:
        where.append(f"id <= {conn.mark(1)}")
    products_first = _PRODUCTS.format(
        where=f" WHERE {where[0]}" if where else "", limit=limit)
    where.append(f"id > {conn.mark(len(where) + 1)}")
    products_after = _PRODUCTS.format(where=" WHERE " + " AND ".join(where), limit=limit)
    bound = (until,) if until is not None else ()
    first, last = conn.mark(1), conn.mark(2)
    variants_sql = _VARIANTS.format(first=first, last=last)
    videos_sql = _VIDEOS.format(first=first, last=last)
    links_sql = _LINKS.format(first=first, last=last, channels=_CHANNEL_LIST)

    def fetch(after: str | None) -> tuple[list[Sequence[Any]], ...] | None:
        """One chunk's rows (products after ``after``), or None past the end."""
        if not snapshot:
            conn.begin()
        products = conn.fetch(products_first, bound) if after is None \
            else conn.fetch(products_after, (*bound, after))
        chunk = None
        if products:
            bounds = (products[0][0], products[-1][0])
            chunk = (products, conn.fetch(variants_sql, bounds),
                     conn.fetch(videos_sql, bounds), conn.fetch(links_sql, bounds))
        if not snapshot:
            conn.commit()
        return chunk

    try:
        if snapshot:
            conn.begin(snapshot_id)
        if isinstance(conn, _Sqlite):
            yield from _read_ahead(fetch, after)
        else:
            while (rows := fetch(after)) is not None:
                after = rows[0][-1][0]
                yield _rows(*rows)
        if snapshot:
            conn.commit()
    finally:
        conn.close()


READ_AHEAD = 3  # chunks read and waiting (SQLite)
_END = object()


def _read_ahead(fetch: Callable[[str | None], tuple[list[Sequence[Any]], ...] | None],
                after: str | None) -> Generator[list[ProductRow], None, None]:
    """SQLite reads the next chunks on a thread while this one is turned into rows and
    built: the database's own work (B-tree walks, sorting) runs without the interpreter
    lock, beside the building. Up to ``READ_AHEAD`` chunks wait, so that the builder
    does not wait for the reader whenever the machine gives the reader a slow moment
    (with one chunk ahead, a 1M-variant build waited ~2 of its 13 s)."""
    chunks: queue.Queue[Any] = queue.Queue(maxsize=READ_AHEAD)
    stop = threading.Event()

    def put(item: Any) -> None:
        while not stop.is_set():
            try:
                chunks.put(item, timeout=0.05)
                return
            except queue.Full:
                continue

    def read(at: str | None) -> None:
        try:
            while not stop.is_set():
                rows = fetch(at)
                if rows is None:
                    break
                put(rows)
                at = rows[0][-1][0]
            put(_END)
        except BaseException as error:  # handed to the builder, raised there
            put(error)

    reader = threading.Thread(target=read, args=(after,), name="catalog-read-ahead",
                              daemon=True)
    reader.start()
    try:
        while (rows := chunks.get()) is not _END:
            if isinstance(rows, BaseException):
                raise rows
            yield _rows(*rows)
    finally:
        stop.set()  # a chunk still being read finishes before the connection closes
        reader.join()


@contextmanager
def shared_snapshot(url: str) -> Iterator[str | None]:
    """PostgreSQL: a read transaction held open while the block runs, its snapshot
    exported (``pg_export_snapshot``) for the processes of a parallel build to share, as
    one process's build reads one snapshot. SQLite (a short transaction per chunk
    anyway): None."""
    conn = _connect(url)
    try:
        if not isinstance(conn, _Postgres):
            yield None
            return
        conn.begin()
        yield conn.export_snapshot()
        conn.commit()
    finally:
        conn.close()


def key_ranges(url: str, parts: int, snapshot_id: str | None = None
               ) -> list[tuple[str | None, str | None]]:
    """The catalog's product ids cut into ``parts`` ranges of about as many products,
    as ``(after, until)`` for ``read_catalog`` (``None``: open-ended), in id order."""
    conn = _connect(url)
    try:
        conn.begin(snapshot_id)
        total = conn.fetch("SELECT count(*) FROM products", ())[0][0]
        cuts: list[str | None] = [None]
        for k in range(1, parts):
            found = conn.fetch(f"SELECT id FROM products ORDER BY id LIMIT 1 OFFSET "
                               f"{int(total * k // parts)}", ())
            if found and found[0][0] != cuts[-1]:
                cuts.append(found[0][0])
        conn.commit()
    finally:
        conn.close()
    return [(cuts[i], cuts[i + 1] if i + 1 < len(cuts) else None)
            for i in range(len(cuts))]


def database_url(bind: Any) -> str:
    """The URL (with its password) of an engine, to open a connection of our own."""
    return str(bind.url.render_as_string(hide_password=False))

