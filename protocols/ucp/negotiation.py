"""Who is calling and what we both speak (overview.md "Negotiation Protocol").

The platform names its profile in ``UCP-Agent`` (an RFC 8941 dictionary:
``profile="https://…"``, optionally ``;version="YYYY-MM-DD"``). We fetch that profile
(HTTPS, no redirects, bounded time and size, through the outbound-URL policy; cached at
least 60 s) and intersect its capabilities with ours: same name, a common version, and
extensions only with their parent.
"""

from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
from http_sfv import Dictionary

from models.outbound import OutboundPolicy
from protocols.ucp import ORDER, UCP_VERSION
from protocols.ucp.errors import UcpError
from protocols.ucp.profile import CAPABILITIES

Json = dict[str, Any]
MIN_TTL = 60.0
MAX_PROFILE_BYTES = 256 * 1024


@dataclass(frozen=True)
class Platform:
    profile_url: str
    host: str
    capabilities: frozenset[str]
    webhook_url: str | None
    signing_keys: tuple[Json, ...] = ()


def parse_agent_header(value: str | None) -> tuple[str, str | None]:
    """(profile URL, requested version or None). 400 ``invalid_profile_url`` if unusable."""
    if not value:
        raise UcpError(400, "invalid_profile_url",
                       "The UCP-Agent header (profile=\"https://…\") is required.")
    try:
        parsed = Dictionary()
        parsed.parse(value.encode())
    except ValueError:
        raise UcpError(400, "invalid_profile_url",
                       "UCP-Agent is not an RFC 8941 dictionary.") from None
    member = parsed.get("profile")
    url = getattr(member, "value", None)
    if not isinstance(url, str) or not url:
        raise UcpError(400, "invalid_profile_url", "UCP-Agent has no profile URL.")
    version = member.params.get("version") if member is not None else None
    return url, version if isinstance(version, str) else None


def check_version(version: str | None) -> None:
    if version is not None and version != UCP_VERSION:
        raise UcpError(422, "version_unsupported",
                       f"Protocol version {version[:20]} is not supported. This business "
                       f"supports version {UCP_VERSION}.")


def intersect(platform_caps: Json) -> frozenset[str]:
    """Capabilities both sides list with a common version, orphaned extensions pruned."""
    ours = {name for name in CAPABILITIES
            if any(isinstance(e, dict) and e.get("version") == UCP_VERSION
                   for e in (platform_caps.get(name) or []))}
    changed = True
    while changed:
        changed = False
        for name in list(ours):
            parent = CAPABILITIES[name][2]
            if parent and parent not in ours:
                ours.discard(name)
                changed = True
    return frozenset(ours)


def _webhook_from(profile: Json) -> str | None:
    for entry in profile.get("ucp", {}).get("capabilities", {}).get(ORDER, []) or []:
        url = (entry.get("config") or {}).get("webhook_url") if isinstance(entry, dict) else None
        if isinstance(url, str):
            return url
    return None


def platform_from_profile(url: str, profile: Any, *, accept_legacy: bool) -> Platform:
    host = urlsplit(url).hostname or ""
    ucp = profile.get("ucp") if isinstance(profile, dict) else None
    if isinstance(ucp, dict) and isinstance(ucp.get("capabilities"), dict):
        version = ucp.get("version")
        if isinstance(version, str) and version < UCP_VERSION and version not in (UCP_VERSION,):
            raise UcpError(422, "version_unsupported",
                           f"Protocol version {version[:20]} is not supported. This business "
                           f"supports version {UCP_VERSION}.")
        keys = tuple(k for k in profile.get("signing_keys") or [] if isinstance(k, dict))
        return Platform(url, host, intersect(ucp["capabilities"]), _webhook_from(profile), keys)
    if accept_legacy and isinstance(profile, dict):
        # Pre-2026-04-08 agent profiles ({"agent": …, "endpoints": {"webhook": …}}), as the
        # conformance suite serves: everything we offer, the webhook from ``endpoints``.
        endpoints = profile.get("endpoints") or {}
        webhook = endpoints.get("webhook") if isinstance(endpoints, dict) else None
        return Platform(url, host, frozenset(CAPABILITIES),
                        webhook if isinstance(webhook, str) else None)
    raise UcpError(422, "profile_malformed", "The platform profile is not a UCP profile.")


class ProfileResolver:
    """Fetches and caches platform profiles. The cache is only a cache (bounded LRU): every
    process can rebuild it, so nothing breaks with several processes."""

    def __init__(self, http: httpx.AsyncClient, *, policy: OutboundPolicy,
                 accept_legacy: bool, timeout: float = 5.0, max_entries: int = 1000) -> None:
        """``http``: the outbound-policy client (``models.outbound.outbound_client``)."""
        self.http = http
        self.policy = policy
        self.accept_legacy = accept_legacy
        self.timeout = timeout
        self.max_entries = max_entries
        self._cache: OrderedDict[str, tuple[float, Platform]] = OrderedDict()

    def check_url(self, url: str) -> None:
        """The outbound-URL policy, plus UCP's rule: HTTPS only (plain HTTP only for hosts
        on the allow-list, i.e. loopback receivers in development and tests)."""
        problem = self.policy.problem(url)
        parts = urlsplit(url)
        if problem is None and parts.scheme != "https" and not self._listed(parts.hostname):
            problem = "profile URLs must use https"
        if problem is not None:
            raise UcpError(400, "invalid_profile_url", f"The profile URL is refused: {problem}.")

    def _listed(self, host: str | None) -> bool:
        """Named on REELCART_OUTBOUND_ALLOW_HOSTS (as a host, an IP or in a CIDR)."""
        if not host:
            return False
        try:
            ip = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return self.policy.host_listed(host)
        return any(ip in net for net in self.policy.allow_networks)

    async def resolve(self, url: str) -> Platform:
        now = time.monotonic()
        hit = self._cache.get(url)
        if hit is not None and hit[0] > now:
            self._cache.move_to_end(url)
            return hit[1]
        self.check_url(url)
        try:
            response = await self.http.get(url, timeout=self.timeout,
                                           headers={"Accept": "application/json"})
        except httpx.HTTPError:
            raise UcpError(424, "profile_unreachable",
                           "Unable to fetch the platform profile.") from None
        if response.status_code != 200 or len(response.content) > MAX_PROFILE_BYTES:
            raise UcpError(424, "profile_unreachable",
                           f"The platform profile answered {response.status_code}.")
        try:
            document = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise UcpError(422, "profile_malformed",
                           "The platform profile is not JSON.") from None
        platform = platform_from_profile(url, document, accept_legacy=self.accept_legacy)
        self._cache[url] = (now + max(MIN_TTL, _max_age(response)), platform)
        while len(self._cache) > self.max_entries:
            self._cache.popitem(last=False)
        return platform


def _max_age(response: httpx.Response) -> float:
    for part in response.headers.get("cache-control", "").split(","):
        name, _, value = part.strip().partition("=")
        if name.lower() == "max-age" and value.isdigit():
            return float(min(int(value), 86400))
    return MIN_TTL
