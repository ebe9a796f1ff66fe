"""What an agent may ask of the catalog: search filters, paging, limits."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from enum import StrEnum

from catalog.errors import InvalidCursor

MAX_QUERY_TERMS = 8
_TERM = re.compile(r"\w+", re.UNICODE)


class Availability(StrEnum):
    """Catalog availability statuses (the feed's ``availability.status``)."""

    in_stock = "in_stock"
    limited_stock = "limited_stock"
    backorder = "backorder"
    preorder = "preorder"
    out_of_stock = "out_of_stock"
    discontinued = "discontinued"
    unknown = "unknown"


BUYABLE = (Availability.in_stock, Availability.limited_stock, Availability.backorder,
           Availability.preorder)


def query_terms(text: str | None) -> list[str]:
    """Words of a free-text query (punctuation and operators dropped), lower-cased."""
    return [t.lower() for t in _TERM.findall(text or "")][:MAX_QUERY_TERMS]


@dataclass(frozen=True, slots=True)
class SearchFilters:
    """``terms`` must all match (stemmed; the last one also as a prefix). Prices are in
    minor units of ``currency`` (required with a price bound)."""

    terms: tuple[str, ...] = ()
    min_price: int | None = None
    max_price: int | None = None
    currency: str | None = None
    available_only: bool = False
    category: str | None = None
    brand: str | None = None


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, value = raw.partition(":")
        offset = int(value)
    except (ValueError, UnicodeDecodeError):
        raise InvalidCursor() from None
    if kind != "o" or not 0 <= offset <= 100_000:
        raise InvalidCursor()
    return offset
