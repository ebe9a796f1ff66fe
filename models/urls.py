"""URLs we render or publish (tracking links, product, image and video URLs, policy links).

Only absolute ``http``/``https`` URLs with a host pass: ``javascript:``, ``data:``,
``vbscript:``, relative and protocol-relative URLs, credentials (``user:pass@``) and
whitespace or control characters are refused. Use :data:`HttpUrlStr` as the pydantic type
of every such field (it keeps the value a plain ``str``), or :func:`is_http_url` in code.
"""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field

MAX_URL_LENGTH = 2048
_BAD_CHARS = re.compile(r"[\x00-\x20\x7f\\]")  # controls, space, backslash (parser tricks)
# The common shape, accepted without parsing (a catalog import checks millions): scheme,
# a plain host (no credentials, port or brackets), then anything without the characters
# above. Whatever it matches, the full check below would accept too.
_PLAIN_HTTP_URL = re.compile(r"(?i:https?)://[A-Za-z0-9.-]+(?:[/?#][^\x00-\x20\x7f\\]*)?")


def url_problem(value: str) -> str | None:
    """Why ``value`` is not a URL we may render or publish, or None when it is."""
    if not value:
        return "is empty"
    if len(value) > MAX_URL_LENGTH:
        return f"is longer than {MAX_URL_LENGTH} characters"
    if _PLAIN_HTTP_URL.fullmatch(value):
        return None
    if _BAD_CHARS.search(value):
        return "contains whitespace, control characters or a backslash"
    try:
        parts = urlsplit(value)
        port = parts.port  # raises on a malformed port
    except ValueError:
        return "is not a valid URL"
    del port
    if parts.scheme.lower() not in ("http", "https"):
        return "must be an absolute http or https URL"
    if not parts.hostname:
        return "has no host"
    if parts.username is not None or parts.password is not None:
        return "must not contain credentials"
    return None


def is_http_url(value: object) -> bool:
    return isinstance(value, str) and url_problem(value) is None


def check_http_url(value: str) -> str:
    problem = url_problem(value)
    if problem is not None:
        raise ValueError(f"URL {problem}")
    return value


HttpUrlStr = Annotated[str, Field(max_length=MAX_URL_LENGTH), AfterValidator(check_http_url)]
"""A ``str`` that is an absolute http(s) URL (see :func:`url_problem`)."""
