"""Test media for provenance: a tiny valid MP4 written box by box (ISO BMFF: ``ftyp``,
``moov`` with an ``mvhd``, ``mdat``), a throwaway certificate chain made with
``cryptography`` (a root CA and an ES256 signing certificate with the key usages C2PA
requires: digitalSignature, extended key usage emailProtection, not a CA), and signing
with the official ``c2pa-python`` Builder, as a generator would."""

from __future__ import annotations

import io
import json
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import c2pa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def _full_box(kind: bytes, version: int, flags: int, payload: bytes) -> bytes:
    return _box(kind, bytes([version]) + flags.to_bytes(3, "big") + payload)


def tiny_mp4(payload: bytes = b"\x00" * 64) -> bytes:
    ftyp = _box(b"ftyp", b"isom" + struct.pack(">I", 0x200) + b"isomiso2mp41")
    mvhd = _full_box(b"mvhd", 0, 0, struct.pack(
        ">IIII", 0, 0, 1000, 1000)  # created, modified, timescale, duration
        + struct.pack(">IH", 0x00010000, 0x0100) + b"\x00" * 10  # rate, volume, reserved
        + struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)  # matrix
        + b"\x00" * 24 + struct.pack(">I", 2))  # pre-defined, next track id
    return ftyp + _box(b"moov", mvhd) + _box(b"mdat", payload)


@dataclass(frozen=True)
class CertChain:
    ca_pem: bytes
    chain_pem: bytes  # signing certificate, then the CA
    key_pem: bytes


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ReelCart Test Generator")])


def _key_usage(*, sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=sign, content_commitment=False,
                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                         key_cert_sign=not sign, crl_sign=not sign, encipher_only=False,
                         decipher_only=False)


def make_chain() -> CertChain:
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("Test Root CA"))
          .issuer_name(_name("Test Root CA")).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(_key_usage(sign=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                         critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name("Test Video Signer"))
            .issuer_name(ca.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(sign=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]),
                           critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    return CertChain(
        ca_pem=ca.public_bytes(pem), chain_pem=cert.public_bytes(pem) + ca.public_bytes(pem),
        key_pem=key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))


def generated_manifest(*, source_type: str = "trainedAlgorithmicMedia",
                       model: str = "sora-2", when: str = "2026-11-30T10:00:00Z"
                       ) -> dict[str, Any]:
    return {"claim_generator_info": [{"name": "Test Video Studio", "version": "2.0"}],
            "title": "clip.mp4",
            "assertions": [{"label": "c2pa.actions.v2", "data": {"actions": [{
                "action": "c2pa.created", "digitalSourceType": IPTC + source_type,
                "softwareAgent": {"name": model}, "when": when}]}}]}


def sign_mp4(media: bytes, manifest: dict[str, Any], chain: CertChain) -> bytes:
    info = c2pa.C2paSignerInfo(alg=c2pa.C2paSigningAlg.ES256, sign_cert=chain.chain_pem,
                               private_key=chain.key_pem, ta_url=None)
    out = io.BytesIO()
    with c2pa.Signer.from_info(info) as signer, c2pa.Builder(json.dumps(manifest)) as builder:
        builder.sign(signer, "video/mp4", io.BytesIO(media), out)
    return out.getvalue()
