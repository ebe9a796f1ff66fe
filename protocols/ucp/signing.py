"""RFC 9421 HTTP Message Signatures as UCP profiles them (signatures.md): ECDSA P-256
(ES256) with raw ``r||s`` signatures, RFC 9530 ``Content-Digest`` (sha-256 of the raw body),
keys published as JWK in ``signing_keys`` of ``/.well-known/ucp``.

Written against the RFCs (no signing library): the tests verify what we sign with an
independent implementation (the ``http-message-signatures`` package).
"""

from __future__ import annotations

import base64
import hashlib
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

_P256_BYTES = 32


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def content_digest(body: bytes) -> str:
    return "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode() + ":"


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: ec.EllipticCurvePrivateKey

    @classmethod
    def from_pem(cls, kid: str, pem: str) -> SigningKey:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
            raise ValueError("the UCP signing key must be an EC P-256 private key (PEM)")
        return cls(kid, key)

    @classmethod
    def derived(cls, kid: str, seed: bytes) -> SigningKey:
        """A deterministic key (development only: every process derives the same one)."""
        order = int("FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551", 16)
        scalar = int.from_bytes(hashlib.sha256(seed).digest(), "big") % (order - 1) + 1
        return cls(kid, ec.derive_private_key(scalar, ec.SECP256R1()))

    @staticmethod
    def generate_pem() -> str:
        key = ec.generate_private_key(ec.SECP256R1())
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption()).decode()

    def public_jwk(self) -> dict[str, Any]:
        numbers = self.private_key.public_key().public_numbers()
        return {"kid": self.kid, "kty": "EC", "crv": "P-256",
                "x": _b64url(numbers.x.to_bytes(_P256_BYTES, "big")),
                "y": _b64url(numbers.y.to_bytes(_P256_BYTES, "big")),
                "use": "sig", "alg": "ES256"}

    def sign(self, data: bytes) -> bytes:
        der = self.private_key.sign(data, ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return r.to_bytes(_P256_BYTES, "big") + s.to_bytes(_P256_BYTES, "big")


def verify_raw(jwk: dict[str, Any], data: bytes, signature: bytes) -> bool:
    """Check an ES256 ``r||s`` signature with a public JWK (used for inbound checks)."""
    from cryptography.exceptions import InvalidSignature

    def _int(value: str) -> int:
        return int.from_bytes(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)), "big")

    if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256" or len(signature) != 64:
        return False
    public = ec.EllipticCurvePublicNumbers(_int(jwk["x"]), _int(jwk["y"]),
                                           ec.SECP256R1()).public_key()
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"),
                               int.from_bytes(signature[32:], "big"))
    try:
        public.verify(der, data, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def _component_value(name: str, *, method: str, url: str, headers: dict[str, str]) -> str:
    parts = urlsplit(url)
    if name == "@method":
        return method.upper()
    if name == "@authority":
        host = (parts.hostname or "").lower()
        port = parts.port
        default = {"http": 80, "https": 443}.get(parts.scheme)
        return host if port is None or port == default else f"{host}:{port}"
    if name == "@path":
        return parts.path or "/"
    if name == "@query":
        return "?" + parts.query
    value = headers[name]
    return " ".join(value.strip().split("\n"))


def sign_request(key: SigningKey, *, method: str, url: str, body: bytes | None,
                 headers: dict[str, str], created: int | None = None,
                 label: str = "sig1") -> dict[str, str]:
    """Headers to add to an outgoing request (webhooks): ``Content-Digest`` (when a body is
    sent), ``Signature-Input`` and ``Signature``, covering the components signatures.md
    requires for a REST request."""
    lowered = {k.lower(): v for k, v in headers.items()}
    added: dict[str, str] = {}
    components = ["@method", "@authority", "@path"]
    if urlsplit(url).query:
        components.append("@query")
    if "ucp-agent" in lowered:
        components.append("ucp-agent")
    if "idempotency-key" in lowered:
        components.append("idempotency-key")
    if body:
        lowered["content-digest"] = added["Content-Digest"] = content_digest(body)
        lowered.setdefault("content-type", "application/json")
        components += ["content-digest", "content-type"]
    created = int(time.time()) if created is None else created
    params = f'({" ".join(f"{chr(34)}{c}{chr(34)}" for c in components)})' \
             f';created={created};keyid="{key.kid}"'
    lines = [f'"{c}": {_component_value(c, method=method, url=url, headers=lowered)}'
             for c in components]
    lines.append(f'"@signature-params": {params}')
    signature = key.sign("\n".join(lines).encode())
    added["Signature-Input"] = f"{label}={params}"
    added["Signature"] = f"{label}=:{base64.b64encode(signature).decode()}:"
    return added


def verify_request(*, method: str, url: str, headers: dict[str, str], body: bytes,
                   jwks: list[dict[str, Any]]) -> tuple[str, str] | None:
    """Check a platform's signed request (signatures.md "REST Request Verification").
    Returns None when valid, else (error code, reason): ``signature_invalid``,
    ``key_not_found``, ``digest_mismatch``, ``algorithm_unsupported``."""
    from http_sfv import Dictionary

    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        inputs = Dictionary()
        inputs.parse(lowered["signature-input"].encode())
        values = Dictionary()
        values.parse(lowered.get("signature", "").encode())
    except (KeyError, ValueError):
        return "signature_invalid", "Signature-Input / Signature are not RFC 8941 dictionaries"
    label = next(iter(inputs.keys()), None)
    if label is None or label not in values:
        return "signature_invalid", "no signature for the Signature-Input label"
    params = inputs[label]
    kid = params.params.get("keyid")
    jwk = next((k for k in jwks if k.get("kid") == kid), None)
    if jwk is None:
        return "key_not_found", f"key {str(kid)[:60]!r} is not in the platform's signing_keys"
    if jwk.get("crv") != "P-256":
        return "algorithm_unsupported", "only ES256 (P-256) signatures are accepted"
    components = [str(getattr(c, "value", c)) for c in params]
    required = {"@method", "@authority", "@path"}
    if body:
        required |= {"content-digest"}
    if not required <= set(components):
        return "signature_invalid", f"the signature must cover {', '.join(sorted(required))}"
    if "content-digest" in components and lowered.get("content-digest") != content_digest(body):
        return "digest_mismatch", "Content-Digest does not match the body"
    try:
        lines = [f'"{c}": {_component_value(c, method=method, url=url, headers=lowered)}'
                 for c in components]
    except KeyError as missing:
        return "signature_invalid", f"signed header {missing} is absent"
    lines.append(f'"@signature-params": {params}')
    signature = values[label].value
    if not isinstance(signature, bytes) or not verify_raw(jwk, "\n".join(lines).encode(),
                                                          signature):
        return "signature_invalid", "the signature does not verify"
    return None
