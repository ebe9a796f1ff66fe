"""A UCP platform for tests: a real HTTP server on loopback that serves a 2026-04-08
platform profile (with an order ``webhook_url``) and records the webhooks it receives."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from api.runtime import Runtime
from tests.conftest import app_client, free_port

VERSION = "2026-04-08"


def platform_profile(port: int, *, capabilities: list[str] | None = None) -> dict[str, Any]:
    names = capabilities or ["dev.ucp.shopping.checkout", "dev.ucp.shopping.fulfillment",
                             "dev.ucp.shopping.discount", "dev.ucp.shopping.order"]
    caps: dict[str, list[dict[str, Any]]] = {n: [{"version": VERSION}] for n in names}
    if "dev.ucp.shopping.order" in caps:
        caps["dev.ucp.shopping.order"][0]["config"] = {
            "webhook_url": f"http://127.0.0.1:{port}/webhooks/ucp/orders"}
    return {"ucp": {"version": VERSION, "services": {"dev.ucp.shopping": [
        {"version": VERSION, "transport": "rest"}]}, "capabilities": caps,
        "payment_handlers": {}}, "signing_keys": []}


@dataclass
class Platform:
    port: int
    profile: dict[str, Any] | str
    received: list[dict[str, Any]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def profile_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/profile.json"

    def headers(self, key: str | None = None) -> dict[str, str]:
        headers = {"UCP-Agent": f'profile="{self.profile_url}"',
                   "Content-Type": "application/json"}
        if key:
            headers["Idempotency-Key"] = key
        return headers

    def start(self) -> None:
        platform = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                body = (platform.profile if isinstance(platform.profile, str)
                        else json.dumps(platform.profile)).encode()
                self.send_response(200 if self.path == "/profile.json" else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Cache-Control", "public, max-age=60")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                platform.received.append({"path": self.path, "body": body,
                                          "headers": dict(self.headers)})
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()


@asynccontextmanager
async def ucp_platform(rt: Runtime, profile: dict[str, Any] | str | None = None
                       ) -> AsyncIterator[tuple[Platform, httpx.AsyncClient]]:
    port = free_port()
    platform = Platform(port, profile if profile is not None else platform_profile(port))
    platform.start()
    try:
        async with app_client(rt, "https://shop.test") as client:
            yield platform, client
    finally:
        platform.stop()
