"""One ACP version change: how a request in an older version is brought *up* to the next
newer version, and how a response (and an error) of the newer version is brought *down*.

The core always speaks the newest version (2026-04-17). A request for an older version
walks the chain of changes (Stripe's API-versioning model): each change module cites the
spec differences it encodes and knows nothing of any other version.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

Json = dict[str, Any]


class Op(StrEnum):
    create = "create"
    update = "update"
    complete = "complete"
    cancel = "cancel"
    get = "get"


@dataclass(frozen=True, slots=True)
class UpContext:
    """What a request in an old shape may lack and the merchant supplies."""

    default_currency: str


class VersionChange:
    """Newer version → ``version``. Subclasses override what their spec changed."""

    version: str = ""
    # Idempotency rules of ``version`` (before 2026-04-17 the key was optional and a key
    # reused with another body was 409 ``request_not_idempotent``).
    idempotency_key_required: bool = False
    conflict_status: int = 409
    conflict_type: str = "request_not_idempotent"

    def request_up(self, op: Op, body: Json, ctx: UpContext) -> Json:
        """A request body in ``version``'s shape → the next newer version's shape."""
        return body

    def response_down(self, body: Json) -> Json:
        """A ``CheckoutSession`` (with order) of the newer version → ``version``'s shape.
        ``body`` is a private deep copy: change it in place and return it."""
        return body

    def param_down(self, param: str) -> str:
        """A JSONPath into a newer request → the same field in ``version``'s request."""
        return param


def pick(source: Json, keys: tuple[str, ...] | frozenset[str]) -> Json:
    """Only the allowed keys (every ACP object is ``additionalProperties: false``)."""
    return {k: source[k] for k in keys if k in source}


def replace_prefix(param: str, old: str, new: str) -> str:
    if param == old or param.startswith((old + ".", old + "[")):
        return new + param[len(old):]
    return param
