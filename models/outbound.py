"""The one policy for requests to merchant- or agent-configured URLs (SSRF guard).

Every outbound request to a URL someone configured (agent webhooks, Feed APIs, any partner
endpoint stored in the database) goes through :func:`outbound_client` (or checks a URL with
:meth:`OutboundPolicy.problem` when it is configured). The policy:

- ``http``/``https`` only (``https`` only when ``https_only``, i.e. in production); no
  credentials in the URL (``user:pass@``);
- refuses loopback, private, shared (CGNAT), link-local (cloud metadata ``169.254.169.254``),
  multicast, reserved and unspecified addresses, IPv4 hidden in IPv6 (mapped, 6to4, Teredo,
  NAT64) and IPv4 written as a decimal, octal or hex number (``2130706433``, ``0x7f.1``);
- is checked again at delivery time on the addresses DNS returns, and the connection is made
  to the very address that was checked (no DNS-rebinding window);
- applies to every request the client sends, so a redirect, were it followed, is checked
  too; the client does not follow redirects anyway.

``REELCART_OUTBOUND_ALLOW_HOSTS`` (hosts, IPs or CIDRs) lets named targets through for
development and tests; it is empty by default, so private targets are refused everywhere.

:func:`error_excerpt` turns a partner's error body into a short, printable excerpt fit for
recording and showing on the dashboard.
"""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import re
import socket
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpcore
import httpx

from models.urls import url_problem

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Names that resolve to instance metadata services on the big clouds.
METADATA_HOSTS = frozenset({"metadata", "metadata.google.internal", "metadata.goog",
                            "instance-data", "instance-data.ec2.internal"})
_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}\.?$")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=3.0)

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""host, port -> IP addresses (the system resolver unless one is given, e.g. in tests)."""


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]).split("%", 1)[0] for info in infos]


class OutboundRefused(httpx.ConnectError):
    """The policy refused a target. An ``httpx.ConnectError``, so code that handles network
    failures handles it; it is permanent, though: retrying will not help."""


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, Teredo, NAT64), if any."""
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_public_address(ip: IPAddress) -> bool:
    """Globally routable unicast: not loopback, private, shared, link-local, multicast,
    reserved, unspecified or documentation space."""
    inner = embedded_ipv4(ip)
    if inner is not None and not is_public_address(inner):
        return False
    return ip.is_global and not ip.is_multicast


def _as_ip(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


@dataclass(frozen=True)
class OutboundPolicy:
    allow_hosts: frozenset[str] = frozenset()
    allow_networks: tuple[IPNetwork, ...] = ()
    https_only: bool = False
    resolver: Resolver = field(default=system_resolver, compare=False)

    @classmethod
    def from_allow_list(cls, entries: Iterable[str], *, https_only: bool = False,
                        resolver: Resolver = system_resolver) -> OutboundPolicy:
        """``entries``: host names, IP addresses or CIDRs (``127.0.0.1``, ``10.0.0.0/8``,
        ``receiver.test``)."""
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for raw in entries:
            entry = raw.strip().lower().rstrip(".")
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                hosts.add(entry)
        return cls(frozenset(hosts), tuple(networks), https_only, resolver)

    def address_allowed(self, ip: IPAddress) -> bool:
        return any(ip in net for net in self.allow_networks) or is_public_address(ip)

    def host_listed(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.allow_hosts

    def problem(self, url: str | httpx.URL) -> str | None:
        """Why a request to ``url`` is refused before any DNS lookup, or None."""
        text = str(url)
        problem = url_problem(text)
        if problem is not None:
            return f"URL {problem}"
        try:
            parsed = url if isinstance(url, httpx.URL) else httpx.URL(text)
        except httpx.InvalidURL:
            return "URL is not valid"
        if self.https_only and parsed.scheme != "https":
            return "URL must use https"
        host = parsed.host.lower().rstrip(".")
        if not host:
            return "URL has no host"
        if self.host_listed(host):
            return None
        ip = _as_ip(host)
        if ip is not None:
            return None if self.address_allowed(ip) else f"address {ip} is not public"
        if _NUMERIC_HOST.match(host):
            return "IP addresses must be written in standard dotted or IPv6 form"
        if host in METADATA_HOSTS or host == "localhost" or host.endswith(".localhost"):
            return f"host {host} is internal"
        return None

    def check(self, url: str | httpx.URL) -> None:
        problem = self.problem(url)
        if problem is not None:
            raise OutboundRefused(f"outbound URL refused: {problem}")

    async def resolve(self, host: str, port: int) -> list[str]:
        """The addresses to connect to for ``host``, all of them checked; refuses the host
        if DNS returns any address the policy forbids (a mixed answer is an attack)."""
        ip = _as_ip(host)
        if ip is not None:
            if not (self.host_listed(host) or self.address_allowed(ip)):
                raise OutboundRefused(f"outbound URL refused: address {ip} is not public")
            return [str(ip)]
        try:
            answers = await self.resolver(host, port)
        except OSError as exc:
            raise httpx.ConnectError(f"cannot resolve {host}: {exc}") from exc
        addresses: list[str] = []
        listed = self.host_listed(host)
        for answer in answers:
            resolved = ipaddress.ip_address(answer)
            if not listed and not self.address_allowed(resolved):
                raise OutboundRefused(
                    f"outbound URL refused: {host} resolves to {resolved}, not public")
            if str(resolved) not in addresses:
                addresses.append(str(resolved))
        if not addresses:
            raise httpx.ConnectError(f"cannot resolve {host}")
        return addresses


class _CheckedNetworkBackend(httpcore.AsyncNetworkBackend):
    """Resolves, checks, then connects to the checked address (TLS still verifies the
    certificate against the host name: httpcore passes it as the server name)."""

    def __init__(self, policy: OutboundPolicy) -> None:
        self.policy = policy
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(self, host: str, port: int,  # httpcore's interface:
                          timeout: float | None = None,  # noqa: ASYNC109
                          local_address: str | None = None,
                          socket_options: Iterable[Any] | None = None
                          ) -> httpcore.AsyncNetworkStream:
        last: Exception | None = None
        try:
            addresses = await asyncio.wait_for(self.policy.resolve(host, port), timeout)
        except TimeoutError:
            raise httpx.ConnectTimeout(f"resolving {host} timed out") from None
        for address in addresses:
            try:
                return await self.inner.connect_tcp(address, port, timeout, local_address,
                                                    socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(self, path: str,
                                  timeout: float | None = None,  # noqa: ASYNC109
                                  socket_options: Iterable[Any] | None = None
                                  ) -> httpcore.AsyncNetworkStream:
        raise OutboundRefused("outbound requests never use unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


@dataclass
class OutboundTransport(httpx.AsyncBaseTransport):
    """Checks every request's URL, then sends it over connections the policy checked."""

    policy: OutboundPolicy
    max_connections: int = 100
    inner: httpx.AsyncHTTPTransport = field(init=False)

    def __post_init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport(
            trust_env=False,  # no proxy from the environment: we must see the real target
            limits=httpx.Limits(max_connections=self.max_connections,
                                max_keepalive_connections=20))
        # httpx builds its connection pool without a network-backend parameter; the pool
        # takes one, and this is where the post-DNS check lives (tests/test_outbound.py
        # proves it is in effect against a real server).
        pool = self.inner._pool
        assert isinstance(pool, httpcore.AsyncConnectionPool)
        pool._network_backend = _CheckedNetworkBackend(self.policy)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        problem = self.policy.problem(request.url)
        if problem is not None:
            raise OutboundRefused(f"outbound URL refused: {problem}", request=request)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def outbound_client(policy: OutboundPolicy, *, timeout: httpx.Timeout = DEFAULT_TIMEOUT,
                    max_connections: int = 100) -> httpx.AsyncClient:
    """The HTTP client for merchant/agent-configured targets: policy-checked, no redirects
    followed, no proxies or credentials from the environment."""
    return httpx.AsyncClient(
        transport=OutboundTransport(policy, max_connections=max_connections),
        follow_redirects=False, trust_env=False, timeout=timeout)


_TAGS = re.compile(r"<[^>]{0,200}>")
_ESCAPES = re.compile(r"\x1b(\[[0-9;?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)?|.)")
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069]+")
_SPACES = re.compile(r"\s+")
_SECRETS = re.compile(r"\b(sk|rk|pk|whsec|shpat|shpss|spt|rc)_[A-Za-z0-9_]{6,}")


def error_excerpt(body: str | bytes | None, limit: int = 200) -> str | None:
    """A short, printable excerpt of a partner's response, safe to store and display:
    markup and control characters (terminal escapes, bidi overrides) removed, whitespace
    collapsed, things that look like API keys masked, at most ``limit`` characters."""
    if body is None:
        return None
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = text[: limit * 20]
    text = _TAGS.sub(" ", text)
    text = _ESCAPES.sub(" ", text)  # terminal escape sequences, whole
    text = _CONTROLS.sub(" ", text)
    text = _SECRETS.sub(lambda m: f"{m.group(1)}_***", text)
    text = _SPACES.sub(" ", text).strip()
    if not text:
        return None
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def retry_after_seconds(value: str | None, *, cap: float, now: float | None = None
                        ) -> float | None:
    """``Retry-After`` (delta-seconds or an HTTP date) as seconds in ``[0, cap]``; None when
    absent or unreadable. Absurd values (``99999999999999999``) are clamped, never raised."""
    if not value:
        return None
    value = value.strip()
    if re.fullmatch(r"\d{1,400}(\.\d{1,20})?", value):
        return min(float(value), cap)  # float() of 400 digits is finite; min clamps
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        return None
    current = time.time() if now is None else now
    return max(0.0, min(when.timestamp() - current, cap))
