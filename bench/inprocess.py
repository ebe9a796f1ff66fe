"""The ReelCart app driven inside the bench's own process, without HTTP or a load client,
for the profiling benches (`create_profile.py`, `complete_profile.py`): a fresh database
with the 20-variant catalog of `checkout_load.py`, the app's lifespan, and POSTs straight
into the ASGI app."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
from starlette.types import ASGIApp as App
from starlette.types import Message

sys.path.insert(0, str(Path(__file__).resolve().parent))
from checkout_load import write_catalog  # noqa: E402  (the same 20-variant catalog)

KEY = "bench-key"


def prepare(prefix: str, database_url: str | None) -> None:
    """Point the app (through its environment) at a migrated database holding the bench
    catalog: a new SQLite file under a temporary directory, or ``database_url``."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    os.environ.update(
        REELCART_DATABASE_URL=database_url or f"sqlite+aiosqlite:///{tmp / 'bench.db'}",
        REELCART_AGENT_API_KEYS=KEY, REELCART_LOG_LEVEL="WARNING",
        REELCART_RUN_WORKER_IN_PROCESS="false")
    catalog = tmp / "catalog.jsonl"
    write_catalog(catalog)
    cli = [sys.executable, "-m", "api.cli"]
    subprocess.run([*cli, "migrate"], check=True, capture_output=True)
    subprocess.run([*cli, "catalog", "import", str(catalog)], check=True, capture_output=True)


@asynccontextmanager
async def running(app: App) -> AsyncIterator[None]:
    """The app's lifespan: started up on entry, shut down on exit."""
    startup: asyncio.Queue[Message] = asyncio.Queue()
    ready = asyncio.Event()

    async def lifespan_send(message: Message) -> None:
        if message["type"].endswith(".failed"):
            raise RuntimeError(message)
        if message["type"] == "lifespan.startup.complete":
            ready.set()

    async def run_lifespan() -> None:
        await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}},
                  startup.get, lifespan_send)

    await startup.put({"type": "lifespan.startup"})
    lifespan = asyncio.create_task(run_lifespan())
    await ready.wait()
    try:
        yield
    finally:
        await startup.put({"type": "lifespan.shutdown"})
        await lifespan


async def post(app: App, path: str, payload: dict[str, Any]) -> tuple[int, bytes]:
    """One ACP POST (the bench key, a fresh idempotency key): its status and body."""
    body = orjson.dumps(payload)
    headers = [(b"host", b"bench"), (b"content-length", str(len(body)).encode()),
               (b"content-type", b"application/json"),
               (b"authorization", f"Bearer {KEY}".encode()),
               (b"api-version", b"2026-04-17"),
               (b"idempotency-key", str(uuid.uuid4()).encode())]
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": path,
             "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": headers, "server": ("127.0.0.1", 8000),
             "client": ("127.0.0.1", 50000), "state": {}}
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    status: list[int] = []
    chunks: list[bytes] = []

    async def receive() -> Message:
        if messages:
            return messages.pop()
        await asyncio.Event().wait()  # no disconnect while the app works
        raise AssertionError

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status[0], b"".join(chunks)
