"""Client for Google's Merchant API (products_v1), over an injected ``httpx.AsyncClient``.

- OAuth 2.0 for a service account: a JWT (RS256, ``iss`` = the service account,
  ``scope`` = ``https://www.googleapis.com/auth/content``, ``aud`` = the token URI) is
  exchanged at the token URI with ``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer``.
- ``accounts.productInputs.insert`` (``POST …/productInputs:insert?dataSource=…``; an
  insert replaces an existing input with the same offer, language and feed label) and
  ``accounts.productInputs.delete`` (``DELETE …/productInputs/{name}?dataSource=…``),
  sent many at a time as one HTTP batch request (``multipart/mixed`` of
  ``application/http`` parts).
- Quota: calls are paced to a per-minute budget; ``429``/``5xx`` (whole batch or single
  part) are retried with backoff honouring ``Retry-After``; other ``4xx`` parts are final
  for that item only.
"""

from __future__ import annotations

import asyncio
import base64
import email.parser
import email.policy
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from models.outbound import OutboundRefused, error_excerpt, retry_after_seconds

SCOPE = "https://www.googleapis.com/auth/content"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
Json = dict[str, Any]


class GoogleApiError(Exception):
    pass


@dataclass(frozen=True)
class ServiceAccount:
    """The fields of a service-account JSON key that the token exchange needs."""

    client_email: str
    private_key: str
    token_uri: str = "https://oauth2.googleapis.com/token"

    @classmethod
    def from_json(cls, data: bytes | str) -> ServiceAccount:
        info = orjson.loads(data)
        return cls(client_email=info["client_email"], private_key=info["private_key"],
                   token_uri=info.get("token_uri") or cls.token_uri)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def signed_assertion(account: ServiceAccount, now: int) -> str:
    key = serialization.load_pem_private_key(account.private_key.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise GoogleApiError("the service account key is not an RSA key")
    header = _b64(orjson.dumps({"alg": "RS256", "typ": "JWT"}))
    claims = _b64(orjson.dumps({"iss": account.client_email, "scope": SCOPE,
                                "aud": account.token_uri, "iat": now, "exp": now + 3600}))
    signing_input = f"{header}.{claims}".encode()
    signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return f"{header}.{claims}.{_b64(signature)}"


@dataclass(frozen=True)
class Operation:
    key: str  # our item id
    method: str  # POST (insert) | DELETE
    path: str  # path and query, from the API root
    body: Json | None = None


@dataclass
class OperationResult:
    key: str
    status: int
    body: Json = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class MerchantApiClient:
    def __init__(self, http: httpx.AsyncClient, account: ServiceAccount, *, base_url: str,
                 batch_path: str = "/batch/products/v1", max_attempts: int = 5,
                 calls_per_minute: int = 600, max_delay: float = 60.0,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 clock: Callable[[], float] = time.time) -> None:
        self.http = http
        self.account = account
        self.base_url = base_url.rstrip("/")
        self.batch_path = batch_path
        self.max_attempts = max_attempts
        self.calls_per_minute = max(calls_per_minute, 1)
        self.max_delay = max_delay
        self._sleep = sleep
        self._clock = clock
        self._token: tuple[str, float] | None = None
        self.retries = 0
        self.calls = 0

    async def token(self) -> str:
        now = self._clock()
        if self._token and self._token[1] - 60 > now:
            return self._token[0]
        response = await self.http.post(self.account.token_uri, data={
            "grant_type": JWT_GRANT, "assertion": signed_assertion(self.account, int(now))},
            timeout=httpx.Timeout(30.0, connect=5.0))
        if response.status_code != 200:
            raise GoogleApiError(f"OAuth token exchange: HTTP {response.status_code} "
                                 f"{error_excerpt(response.text) or ''}")
        answer = response.json()
        self._token = (str(answer["access_token"]),
                       now + float(answer.get("expires_in", 3600)))
        return self._token[0]

    def _batch_body(self, operations: Sequence[Operation]) -> tuple[bytes, str]:
        boundary = f"batch_{uuid.uuid4().hex}"
        parts: list[bytes] = []
        for index, op in enumerate(operations):
            request = f"{op.method} {op.path} HTTP/1.1\r\n"
            payload = b""
            if op.body is not None:
                payload = orjson.dumps(op.body)
                request += "Content-Type: application/json\r\n"
            parts.append(
                (f"--{boundary}\r\nContent-Type: application/http\r\n"
                 f"Content-ID: <item{index}>\r\n\r\n{request}\r\n").encode() + payload
                + b"\r\n")
        return b"".join(parts) + f"--{boundary}--\r\n".encode(), boundary

    @staticmethod
    def parse_batch(content_type: str, body: bytes) -> dict[int, tuple[int, Json]]:
        """``multipart/mixed`` answer → part index → (HTTP status, JSON body)."""
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + body)
        out: dict[int, tuple[int, Json]] = {}
        for position, part in enumerate(message.iter_parts()):
            content_id = str(part.get("Content-ID", "")).strip("<>")
            index = int(content_id.rsplit("item", 1)[-1]) if "item" in content_id \
                else position
            raw = part.get_payload(decode=True)
            raw = raw if isinstance(raw, bytes) else str(part.get_payload()).encode()
            head, _, rest = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
            status_line = head.split(b"\n", 1)[0].decode(errors="replace").split()
            status = int(status_line[1]) if len(status_line) > 1 and \
                status_line[1].isdigit() else 500
            try:
                parsed = orjson.loads(rest) if rest.strip() else {}
            except orjson.JSONDecodeError:
                parsed = {"raw": rest[:200].decode(errors="replace")}
            out[index] = (status, parsed if isinstance(parsed, dict) else {})
        return out

    async def run(self, operations: Sequence[Operation]) -> list[OperationResult]:
        """One batch: every operation answered (retrying throttled/failed parts)."""
        pending = list(operations)
        results: dict[str, OperationResult] = {}
        delay = 1.0
        for attempt in range(1, self.max_attempts + 1):
            wait = delay
            await self._pace(len(pending))
            body, boundary = self._batch_body(pending)
            try:
                response = await self.http.post(
                    f"{self.base_url}{self.batch_path}", content=body,
                    headers={"Authorization": f"Bearer {await self.token()}",
                             "Content-Type": f"multipart/mixed; boundary={boundary}"},
                    timeout=httpx.Timeout(120.0, connect=5.0))
            except OutboundRefused:
                raise
            except httpx.HTTPError as exc:
                problem = type(exc).__name__
            else:
                if response.status_code == 200:
                    answers = self.parse_batch(response.headers.get("content-type", ""),
                                               response.content)
                    retry: list[Operation] = []
                    for index, op in enumerate(pending):
                        status, answer = answers.get(index, (500, {}))
                        if status == 429 or status >= 500:
                            retry.append(op)
                            results[op.key] = OperationResult(op.key, status, answer)
                        else:
                            results[op.key] = OperationResult(op.key, status, answer)
                    pending = retry
                    if not pending:
                        break
                    problem = "throttled parts"
                elif response.status_code == 429 or response.status_code >= 500:
                    problem = f"HTTP {response.status_code}"
                    wait = retry_after_seconds(response.headers.get("retry-after"),
                                               cap=self.max_delay) or delay
                elif response.status_code == 401:
                    self._token = None
                    problem = "HTTP 401"
                else:
                    raise GoogleApiError(f"batch: HTTP {response.status_code} "
                                         f"{error_excerpt(response.text) or ''}")
            if attempt == self.max_attempts:
                for op in pending:
                    results.setdefault(op.key, OperationResult(op.key, 503,
                                                               {"error": problem}))
                break
            self.retries += 1
            await self._sleep(min(wait, self.max_delay))
            delay = min(delay * 2, self.max_delay)
        return [results[op.key] for op in operations]

    async def _pace(self, calls: int) -> None:
        """Spread calls over the per-minute budget (Merchant API quotas are per minute)."""
        if self.calls:
            await self._sleep(60.0 * calls / self.calls_per_minute)
        self.calls += calls
