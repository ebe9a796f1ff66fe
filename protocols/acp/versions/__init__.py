"""ACP versions: negotiation and the chain of version changes.

``SUPPORTED_VERSIONS`` (newest first, as ACP's ``Error.supported_versions``) lists every
``API-Version`` value we accept; ``2025-09-12`` is the label agents use for 2025-09-29.
``negotiate(header)`` returns the ``AcpVersion`` that brings requests up to the core's
shape (2026-04-17) and responses and errors down to the requested one.
"""

from __future__ import annotations

import re
from typing import TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from models.errors import AppError, InvalidRequest
from protocols.acp.errors import from_validation_errors
from protocols.acp.render import VERSION as CURRENT
from protocols.acp.versions import v2025_09_29, v2025_12_12, v2026_01_16, v2026_01_30
from protocols.acp.versions.base import Json, Op, UpContext, VersionChange

# Newest first: CHANGES[i] turns the version before it into CHANGES[i].version.
CHANGES: tuple[VersionChange, ...] = (v2026_01_30.CHANGE, v2026_01_16.CHANGE,
                                      v2025_12_12.CHANGE, v2025_09_29.CHANGE)
ALIASES = {"2025-09-12": "2025-09-29"}
SUPPORTED_VERSIONS = [CURRENT, *(c.version for c in CHANGES), *ALIASES]

M = TypeVar("M", bound=BaseModel)
# A request JSONPath inside an error message: ``$.line_items[0].quantity``.
_JSON_PATH = re.compile(r"\$(?:\.[A-Za-z_][A-Za-z0-9_]*|\[\d+\])+")


class AcpVersion:
    """One negotiated ``API-Version``: ``label`` as the agent sent it."""

    def __init__(self, label: str, chain: tuple[VersionChange, ...]) -> None:
        self.label = label
        self.version = chain[-1].version if chain else CURRENT
        self.chain = chain
        oldest = chain[-1] if chain else None
        self.idempotency_key_required = oldest is None or oldest.idempotency_key_required
        self.conflict_status = oldest.conflict_status if oldest else 422
        self.conflict_type = oldest.conflict_type if oldest else "invalid_request"

    @property
    def is_current(self) -> bool:
        return not self.chain

    def parse(self, op: Op, model: type[M], raw: bytes, ctx: UpContext) -> M:
        """The request body (in this version's shape) as the core's request model."""
        try:
            if not self.chain:
                return model.model_validate_json(raw or b"{}")
            body = orjson.loads(raw or b"{}")
            if not isinstance(body, dict):
                raise InvalidRequest("The request body must be a JSON object.",
                                     code="invalid_type")
            for change in reversed(self.chain):
                body = change.request_up(op, body, ctx)
            return model.model_validate(body)
        except ValidationError as exc:
            raise self.error(from_validation_errors(exc.errors())) from None
        except orjson.JSONDecodeError:
            raise InvalidRequest("The request body is not valid JSON.",
                                 code="invalid_json") from None
        except AppError as exc:
            raise self.error(exc) from None

    def render(self, body: Json) -> Json:
        """A 2026-04-17 ``CheckoutSession`` body → this version's."""
        if not self.chain:
            return body
        body = orjson.loads(orjson.dumps(body))  # never touch the core's snapshot lists
        messages = body.get("messages", [])
        for change in self.chain:
            for message in messages:
                if "param" in message:
                    message["param"] = change.param_down(message["param"])
            body = change.response_down(body)
            messages = body.get("messages", [])
        if "protocol" in body:
            body["protocol"] = {"version": self.label}
        return body

    def param_down(self, param: str) -> str:
        """A 2026-04-17 request JSONPath → this version's."""
        for change in self.chain:
            param = change.param_down(param)
        return param

    def error(self, exc: AppError) -> AppError:
        """An error in this version's terms (its request paths, its idempotency rules)."""
        if not self.chain:
            return exc
        if exc.param and exc.param.startswith("$"):
            exc.param = self.param_down(exc.param)
        # The message names the client's own fields too (``$.items[0].quantity: …``).
        exc.message = _JSON_PATH.sub(lambda m: self.param_down(m.group(0)), exc.message)
        if exc.code == "idempotency_conflict":
            exc.status_code = self.conflict_status
            exc.type = self.conflict_type
        return exc


_BY_LABEL: dict[str, AcpVersion] = {CURRENT: AcpVersion(CURRENT, ())}
for _index, _change in enumerate(CHANGES):
    _BY_LABEL[_change.version] = AcpVersion(_change.version, CHANGES[:_index + 1])
for _alias, _target in ALIASES.items():
    _BY_LABEL[_alias] = AcpVersion(_alias, _BY_LABEL[_target].chain)


def negotiate(value: str | None) -> AcpVersion:
    """The version a request asked for, or 400 ``missing``/``unsupported_api_version``."""
    if value is None or not value.strip():
        raise InvalidRequest("The API-Version header is required.",
                             code="missing_api_version", param="API-Version",
                             extra={"supported_versions": SUPPORTED_VERSIONS})
    found = _BY_LABEL.get(value.strip())
    if found is None:
        raise InvalidRequest(f"API-Version {value[:40]!r} is not supported.",
                             code="unsupported_api_version", param="API-Version",
                             extra={"supported_versions": SUPPORTED_VERSIONS})
    return found


def check(value: str | None) -> str:
    return negotiate(value).label


__all__ = ["CURRENT", "SUPPORTED_VERSIONS", "AcpVersion", "Op", "UpContext",
           "negotiate"]
