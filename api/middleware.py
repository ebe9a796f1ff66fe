"""Pure ASGI middleware (no BaseHTTPMiddleware: it costs throughput and breaks streaming)."""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterable
from typing import Any

import orjson
from fastapi.routing import iter_route_contexts
from prometheus_client import Counter, Histogram
from starlette.routing import Mount, compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import jsonbody
from api.logs import request_id_var

log = logging.getLogger("reelcart.access")

HTTP_REQUESTS = Counter("reelcart_http_requests_total", "HTTP requests",
                        ["method", "route", "status"])
HTTP_LATENCY = Histogram("reelcart_http_request_duration_seconds", "HTTP request latency",
                         ["method", "route"],
                         buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5))
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,200}$")


# Every HTML page: scripts, styles and images from our origin only, no inline script or
# style, never framed. Pages that need more (``/docs``) set their own policy.
CONTENT_SECURITY_POLICY = ("default-src 'self'; base-uri 'none'; object-src 'none'; "
                           "form-action 'self'; frame-ancestors 'none'")
_SECURITY_HEADERS = [(b"x-content-type-options", b"nosniff"),
                     (b"referrer-policy", b"no-referrer")]
_QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})  # no access log line
_Metrics = tuple[Any, Any]


class RequestContextMiddleware:
    """Request id (echoed as ``Request-Id``), access log, Prometheus metrics, and the
    security headers: ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy`` on
    every response, a ``Content-Security-Policy`` (and ``X-Frame-Options``) on every
    HTML one. One layer for all of it: each pure-ASGI layer costs a call and a wrapped
    ``send`` per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # The metrics' children per (method, route, status): ``labels()`` takes a lock
        # and builds its key on every call. Children live as long as their metric.
        self._metrics: dict[tuple[str, str, int], _Metrics] = {}
        self._routes: _RouteTable | None = None  # built on first use: the app's routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"request-id"),
                        None)
        request_id = incoming if incoming and _SAFE_REQUEST_ID.match(incoming) \
            else f"req_{os.urandom(16).hex()}"
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500
        path = scope["path"]  # as it came in (a mount rewrites the scope)

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = _response_headers(message.get("headers", ()),
                                                       request_id)
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            elapsed = time.perf_counter() - started
            template = getattr(scope.get("route"), "path", None)
            if template is None:
                if self._routes is None:
                    self._routes = _route_table(scope.get("app"))
                template = _route_template(self._routes, scope["method"], path)
            method = scope["method"]
            key = (method, template, status)
            metrics = self._metrics.get(key)
            if metrics is None:
                metrics = self._metrics[key] = (
                    HTTP_REQUESTS.labels(method, template, str(status)),
                    HTTP_LATENCY.labels(method, template))
            metrics[0].inc()
            metrics[1].observe(elapsed)
            if template not in _QUIET_ROUTES and log.isEnabledFor(logging.INFO):
                log.info("request", extra={"method": method, "path": scope["path"],
                                           "status": status,
                                           "duration_ms": round(elapsed * 1000, 2)})
            request_id_var.reset(token)


_RouteTable = list[tuple["re.Pattern[str]", frozenset[str] | None, str]]


def _route_table(app: Any) -> _RouteTable:
    """(path regex, methods or None for any, label) of every route and mount of ``app``,
    in the router's order (FastAPI's public ``iter_route_contexts`` flattens the included
    routers)."""
    table: _RouteTable = []
    for context in iter_route_contexts(getattr(getattr(app, "router", None), "routes", [])):
        template = context.path
        if not template:
            continue
        if isinstance(context.original_route, Mount):
            regex = re.compile(re.escape(template.rstrip("/")) + "(?:/.*)?$")
            table.append((regex, None, template))
            continue
        regex, _, _ = compile_path(template)
        methods = getattr(context.original_route, "methods", None)
        table.append((regex, frozenset(methods) if methods else None, template))
    return table


def _route_template(table: _RouteTable, method: str, path: str) -> str:
    """The metrics label of a request FastAPI did not name a route for: a plain Starlette
    route or mount (``/mcp``, ``/v/{code}``, ``/static``), or a request refused before
    routing (bad JSON, 413). Matched as the router would; always a declared path template
    or ``unmatched``, never the raw path."""
    partial = None
    for regex, methods, template in table:
        if regex.match(path):
            if methods is None or method in methods:
                return template
            partial = partial or template  # path matched, method not (405)
    return partial or "unmatched"


def _response_headers(headers: Iterable[tuple[bytes, bytes]], request_id: str
                      ) -> list[tuple[bytes, bytes]]:
    out = list(headers)
    present = {k.lower() for k, _ in out}
    out += [(k, v) for k, v in _SECURITY_HEADERS if k not in present]
    content_type = next((v for k, v in out if k.lower() == b"content-type"), b"")
    if content_type.startswith(b"text/html"):
        if b"content-security-policy" not in present:
            out.append((b"content-security-policy", CONTENT_SECURITY_POLICY.encode()))
        if b"x-frame-options" not in present:
            out.append((b"x-frame-options", b"DENY"))
    out.append((b"request-id", request_id.encode()))
    return out


class _BodyTooLarge(Exception):
    pass


_BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class BodyLimitMiddleware:
    """Request bodies, checked before any route sees them, in one layer:

    * over ``max_bytes`` → a flat 413, whether declared (``Content-Length``) or streamed;
    * every JSON body (or one without a content type, which FastAPI reads as JSON) is
      checked against ``api.jsonbody`` (UTF-8, nesting depth, integer range): a violation
      is an ACP-shaped 400 naming the place (``param``), UCP's error shape under /ucp/.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = None
        content_type = b""
        for k, v in scope["headers"]:
            if k == b"content-length":
                declared = v
            elif k == b"content-type":
                content_type = v
        if declared is not None:
            try:
                too_big = int(declared) > self.max_bytes
            except ValueError:
                too_big = False
            if too_big:
                await self._reject(send)
                return
        if scope["method"] in _BODY_METHODS:
            media = content_type.split(b";", 1)[0].strip().lower()
            if not media or media == b"application/json" or media.endswith(b"+json"):
                await self._json(scope, receive, send)
                return
        await self._streamed(scope, receive, send)

    async def _json(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Read the whole (bounded) body, check it, and hand it on in one message."""
        chunks: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # client went away
                await self.app(scope, _replay([message]), send)
                return
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > self.max_bytes:
                await self._reject(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        found, parsed = jsonbody.check(body)
        if parsed is not None:  # parsed once: the idempotency hash reuses it (api.deps)
            scope.setdefault("state", {})[jsonbody.STATE_KEY] = parsed
        if found is not None:
            if scope["path"].startswith("/ucp/"):  # UCP: the spec's error_response
                from protocols.ucp.errors import invalid

                payload = orjson.dumps(invalid(found.message, found.param,
                                               code=found.code).body())
            else:
                payload = orjson.dumps(found.body())
            await send({"type": "http.response.start", "status": 400,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(payload)).encode())]})
            await send({"type": "http.response.body", "body": payload})
            return
        await self.app(scope, _replay([{"type": "http.request", "body": body,
                                        "more_body": False}], receive), send)

    async def _streamed(self, scope: Scope, receive: Receive, send: Send) -> None:
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await self._reject(send)

    async def _reject(self, send: Send) -> None:
        body: dict[str, Any] = {"type": "invalid_request", "code": "request_too_large",
                                "message": f"Request bodies are limited to {self.max_bytes} bytes."}
        payload = orjson.dumps(body)
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})


def _replay(messages: list[Message], then: Receive | None = None) -> Receive:
    pending = list(messages)

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        if then is not None:
            return await then()  # after the body: disconnect notifications
        return {"type": "http.disconnect"}

    return receive
