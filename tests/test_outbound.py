"""The outbound-URL policy (SSRF guard): configuration time, delivery time after DNS (on the
very address checked), redirects, allow-list; error excerpts; Retry-After clamping; the
http(s) type for URLs we render."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from pydantic import BaseModel, ValidationError

from api.runtime import Runtime
from models.outbound import (
    OutboundPolicy,
    OutboundRefused,
    error_excerpt,
    outbound_client,
    retry_after_seconds,
)
from models.urls import HttpUrlStr, is_http_url
from tests.conftest import app_client, free_port, sandbox_runtime

REFUSED = [
    "http://127.0.0.1/hook", "http://169.254.169.254/latest/meta-data/", "http://10.1.2.3/",
    "http://192.168.0.10/", "http://172.16.0.1/", "http://100.64.0.1/", "http://0.0.0.0/",
    "http://224.0.0.1/", "http://240.0.0.1/", "http://[::1]/", "http://[fe80::1]/",
    "http://[fd00:ec2::254]/", "http://[::ffff:127.0.0.1]/", "http://[64:ff9b::a9fe:a9fe]/",
    "http://[2002:7f00:1::]/", "http://2130706433/", "http://0x7f000001/",
    "http://0x7f.0.0.1/", "http://0177.0.0.1/", "http://127.1/", "http://localhost:8000/",
    "http://metadata.google.internal/computeMetadata/v1/", "http://user:pass@example.com/",
    "ftp://example.com/", "file:///etc/passwd", "gopher://example.com/", "javascript:alert(1)",
    "http://exa mple.com/", "",
]


@pytest.mark.parametrize("url", REFUSED)
def test_policy_refuses_internal_and_odd_targets(url: str) -> None:
    assert OutboundPolicy().problem(url) is not None


@pytest.mark.parametrize("url", ["https://agent.example.com/hooks", "http://8.8.8.8/x",
                                 "https://[2001:4860:4860::8888]/"])
def test_policy_accepts_public_targets(url: str) -> None:
    assert OutboundPolicy().problem(url) is None


def test_https_only_in_production_and_allow_list() -> None:
    prod = OutboundPolicy.from_allow_list([], https_only=True)
    assert prod.problem("http://agent.example.com/") is not None
    assert prod.problem("https://agent.example.com/") is None
    dev = OutboundPolicy.from_allow_list(["127.0.0.1", "10.0.0.0/8", "Receiver.Test"])
    assert dev.problem("http://127.0.0.1:9000/") is None
    assert dev.problem("http://10.9.8.7/") is None
    assert dev.problem("http://receiver.test/") is None
    assert dev.problem("http://192.168.1.1/") is not None
    assert dev.problem("http://169.254.169.254/") is not None


@pytest.fixture
def loopback_server() -> Iterator[tuple[int, list[dict[str, str]]]]:
    """A real HTTP server on 127.0.0.1 that records request headers; ``/redirect``
    answers 302 to the metadata address."""
    seen: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            seen.append(dict(self.headers))
            if self.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield port, seen
    server.shutdown()
    server.server_close()


async def test_refused_after_dns_resolution(loopback_server) -> None:
    """A public-looking name that resolves to loopback is refused when it resolves, before
    any connection."""
    port, seen = loopback_server

    async def rebinding_dns(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    policy = OutboundPolicy.from_allow_list([], resolver=rebinding_dns)
    assert policy.problem(f"http://innocent.example:{port}/") is None  # passes at config
    async with outbound_client(policy) as http:
        with pytest.raises(OutboundRefused, match="resolves to 127.0.0.1"):
            await http.get(f"http://innocent.example:{port}/")
    assert seen == []


async def test_mixed_dns_answer_is_refused(loopback_server) -> None:
    port, seen = loopback_server

    async def mixed_dns(host: str, port: int) -> list[str]:
        return ["93.184.215.14", "127.0.0.1"]

    async with outbound_client(OutboundPolicy(resolver=mixed_dns)) as http:
        with pytest.raises(OutboundRefused):
            await http.get(f"http://innocent.example:{port}/")
    assert seen == []


async def test_connects_to_the_address_it_checked(loopback_server) -> None:
    """The connection goes to the address the policy resolved and checked (no second
    lookup that could answer differently); the Host header still names the host."""
    port, seen = loopback_server
    lookups: list[str] = []

    async def dns(host: str, port: int) -> list[str]:
        lookups.append(host)
        return ["127.0.0.1"]

    policy = OutboundPolicy.from_allow_list(["127.0.0.0/8"], resolver=dns)
    async with outbound_client(policy) as http:
        response = await http.get(f"http://agent.invalid:{port}/hello")
    assert response.status_code == 200
    assert lookups == ["agent.invalid"]  # .invalid never resolves in real DNS
    assert seen[0]["Host"] == f"agent.invalid:{port}"


async def test_system_resolver_is_checked(loopback_server) -> None:
    """The machine's own name resolves to loopback here (/etc/hosts): refused at delivery."""
    import socket

    port, _ = loopback_server
    name = socket.gethostname()
    if OutboundPolicy().problem(f"http://{name}/") is not None:
        pytest.skip("host name is refused statically already")
    async with outbound_client(OutboundPolicy()) as http:
        try:
            await http.get(f"http://{name}:{port}/")
        except OutboundRefused:
            return
        except httpx.ConnectError:
            pytest.skip("host name does not resolve here")
    resolved = socket.gethostbyname(name)
    assert OutboundPolicy().problem(f"http://{resolved}/") is None, "reached a private host"


async def test_redirects_are_not_followed(loopback_server) -> None:
    port, seen = loopback_server
    policy = OutboundPolicy.from_allow_list(["127.0.0.1"])
    async with outbound_client(policy) as http:
        response = await http.get(f"http://127.0.0.1:{port}/redirect")
        assert response.status_code == 302
        # Following it by hand goes through the same policy.
        with pytest.raises(OutboundRefused):
            await http.get(response.headers["location"])
    assert len(seen) == 1


async def test_webhook_and_feed_config_refuse_internal_urls(database_url: str,
                                                            backend: str) -> None:
    async with sandbox_runtime(database_url, merchant_api_keys=["merchant-key"],
                               outbound_allow_hosts=[]) as rt, app_client(rt) as http:
        agent_id = await _agent_id(rt, http)
        for i, url in enumerate(["http://127.0.0.1:9/x", "http://169.254.169.254/",
                                 "http://2130706433/", "https://user:pw@agent.example/",
                                 "http://10.0.0.5/feeds"]):
            for path, body in ((f"/agents/{agent_id}/webhook",
                                {"url": url, "secret": "s" * 20}),
                               (f"/agents/{agent_id}/feed", {"url": url})):
                resp = await http.post(path, json=body, headers={
                    "Authorization": "Bearer merchant-key", "Idempotency-Key": f"{path}{i}"})
                assert resp.status_code == 400, (url, resp.text)
                assert resp.json()["param"] == "$.url"
        resp = await http.post(f"/agents/{agent_id}/webhook", json={
            "url": "https://agent.example/hooks", "secret": "s" * 20}, headers={
            "Authorization": "Bearer merchant-key", "Idempotency-Key": "ok"})
        assert resp.status_code == 200, resp.text


async def _agent_id(rt: Runtime, http: httpx.AsyncClient) -> str:
    agents = (await http.get("/agents", headers={"Authorization": "Bearer merchant-key"}))
    return str(next(a["id"] for a in agents.json()["data"] if a["name"] == "development"))


def test_error_excerpt_is_short_and_printable() -> None:
    body = ("<html><body><h1>Forbidden</h1>\x1b[31m\u202e evil " + "x" * 5000
            + " sk_live_abcdefghijkl</body></html>")
    excerpt = error_excerpt(body)
    assert excerpt is not None
    assert len(excerpt) <= 200
    assert excerpt.startswith("Forbidden")
    assert not {"\x1b", "\u202e", "<"} & set(excerpt)
    assert "sk_live_abc" not in (error_excerpt("denied sk_live_abcdefghijkl") or "")
    assert error_excerpt(b"\xff\xfe bad bytes") == "\ufffd\ufffd bad bytes"
    assert error_excerpt("   ") is None


def test_retry_after_is_clamped() -> None:
    assert retry_after_seconds("99999999999999999", cap=3600) == 3600
    assert retry_after_seconds("9" * 400, cap=60) == 60
    assert retry_after_seconds("120", cap=3600) == 120
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", cap=60) == 0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", cap=60,
                               now=1445412480 - 30) == 30
    assert retry_after_seconds("soon", cap=60) is None
    assert retry_after_seconds(None, cap=60) is None


class _Rendered(BaseModel):
    url: HttpUrlStr


@pytest.mark.parametrize("url", ["javascript:alert(1)", "JavaScript:alert(1)",
                                 " javascript:alert(1)", "data:text/html,<script>",
                                 "//evil.example/x", "/relative", "vbscript:msgbox",
                                 "https://user:pw@x.example/", "http://", "https://a b.example/",
                                 "https://x.example/\nSet-Cookie:", "https:\\\\evil.example"])
def test_rendered_urls_must_be_http(url: str) -> None:
    assert not is_http_url(url)
    with pytest.raises(ValidationError):
        _Rendered(url=url)


def test_rendered_url_type_keeps_the_string() -> None:
    url = "https://shop.example/p/1?utm_source=x#frag"
    assert _Rendered(url=url).url == url
    assert is_http_url("http://shop.example")
