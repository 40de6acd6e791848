"""Private keys and certificate files: generate, write (0600, atomically) and load."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

KeyType = Literal["rsa", "ec"]
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
KEY_TYPES: tuple[KeyType, ...] = ("rsa", "ec")

_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----\r?\n?", re.DOTALL)
_PEM_CRL = re.compile(rb"-----BEGIN X509 CRL-----.+?-----END X509 CRL-----\r?\n?", re.DOTALL)


def generate_key(key_type: KeyType = "rsa") -> PrivateKey:
    """A fresh RSA 2048 or ECDSA P-256 private key."""
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if key_type == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    raise ValueError(f"unknown key type {key_type!r}: use 'rsa' or 'ec'")


def key_type_of(key: PrivateKey) -> KeyType:
    return "ec" if isinstance(key, ec.EllipticCurvePrivateKey) else "rsa"


def write_private(path: Path, data: bytes) -> None:
    """Write a secret file readable by its owner only, replacing any previous one atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def write_public(path: Path, data: bytes) -> None:
    """Write a public file (certificate, CRL) atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def cert_pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def load_key(path: Path) -> PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        raise TypeError(f"{path}: only RSA and EC private keys are supported")
    return key


def load_certs(path: Path) -> list[x509.Certificate]:
    """Every certificate of a PEM bundle (leaf first, then its chain) or a DER file."""
    data = path.read_bytes()
    return parse_certs(data)


def parse_certs(data: bytes) -> list[x509.Certificate]:
    blocks = _PEM_CERT.findall(data)
    if blocks:
        return [x509.load_pem_x509_certificate(b) for b in blocks]
    if b"-----BEGIN" in data:
        return []
    return [x509.load_der_x509_certificate(data)]


def load_cert(path: Path) -> x509.Certificate:
    """The first (leaf) certificate of a PEM bundle."""
    certs = load_certs(path)
    if not certs:
        raise ValueError(f"{path} holds no certificate")
    return certs[0]


def parse_crls(data: bytes) -> list[x509.CertificateRevocationList]:
    """Every CRL of a PEM bundle, or one DER CRL."""
    blocks = _PEM_CRL.findall(data)
    if blocks:
        return [x509.load_pem_x509_crl(b) for b in blocks]
    if b"-----BEGIN" in data:
        return []
    return [x509.load_der_x509_crl(data)]
