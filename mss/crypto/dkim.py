"""DKIM (RFC 6376, RFC 8463) for mail relayed between operators of the trust space.

Signing and verification use ``dkimpy``. The trust space has no DNS of its
own here, so verification keys do not come from DNS: they come from a
``DkimKeyTable``, a local table of the TXT records each operator would have
published at ``<selector>._domainkey.<domain>``, fed to dkimpy through its
``dnsfunc`` hook. The table is read from ``<pki_dir>/dkim/keys.txt``, one
record per line (``#`` starts a comment)::

    mss2026._domainkey.mss.localhost  v=DKIM1; k=ed25519;
p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=

The hub's own signing keys (``<pki_dir>/dkim/<domain>.<selector>.key``,
0600, made by ``generate_signing_key``) add their records to it. dkimpy signs
RSA in pure Python (about 100 signatures a second), so async callers use
``sign_async``/``verify_async``, which run in a worker thread; ed25519 is the
cheap choice.
"""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import dkim as dkimpy
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from mss.crypto.keys import write_private
from mss.errors import ConfigError

Algorithm = Literal["ed25519", "rsa"]
DkimStatus = Literal["pass", "fail", "none", "permerror"]
_SIGNATURE_ALGORITHM = {"ed25519": b"ed25519-sha256", "rsa": b"rsa-sha256"}


@dataclass(frozen=True)
class DkimSigningKey:
    """A private DKIM key for one selector of one domain."""

    domain: str
    selector: str
    algorithm: Algorithm
    private: bytes  # PKCS#1 PEM (RSA) or the base64 seed (ed25519), as dkimpy wants them
    public_record: str  # the TXT record value: "v=DKIM1; k=...; p=..."

    @property
    def record_name(self) -> str:
        return f"{self.selector}._domainkey.{self.domain}".lower()


def generate_signing_key(
    domain: str, selector: str, algorithm: Algorithm = "ed25519"
) -> DkimSigningKey:
    """A fresh DKIM key pair (ed25519, or RSA 2048)."""
    if algorithm == "ed25519":
        key = ed25519.Ed25519PrivateKey.generate()
        seed = key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        public = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return DkimSigningKey(
            domain,
            selector,
            "ed25519",
            base64.b64encode(seed),
            f"v=DKIM1; k=ed25519; p={base64.b64encode(public).decode()}",
        )
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = rsa_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    spki = rsa_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return DkimSigningKey(
        domain, selector, "rsa", pem, f"v=DKIM1; k=rsa; p={base64.b64encode(spki).decode()}"
    )


def key_path(pki_dir: Path, domain: str, selector: str) -> Path:
    return Path(pki_dir) / "dkim" / f"{domain.lower()}.{selector}.key"


def save_signing_key(pki_dir: Path, key: DkimSigningKey) -> Path:
    """Write the private key (0600); its first line records the algorithm and public record."""
    path = key_path(pki_dir, key.domain, key.selector)
    header = f"# {key.algorithm} {key.public_record}\n".encode()
    write_private(path, header + key.private + b"\n")
    return path


def load_signing_key(pki_dir: Path, domain: str, selector: str) -> DkimSigningKey:
    path = key_path(pki_dir, domain, selector)
    try:
        header, private = path.read_bytes().split(b"\n", 1)
    except (OSError, ValueError):
        raise ConfigError(f"no DKIM key for {selector}._domainkey.{domain} at {path}") from None
    algorithm, record = header.decode().removeprefix("# ").split(" ", 1)
    if algorithm not in _SIGNATURE_ALGORITHM:
        raise ConfigError(f"{path}: unknown DKIM key algorithm {algorithm!r}")
    return DkimSigningKey(
        domain,
        selector,
        algorithm,  # type: ignore[arg-type]
        private.strip() + (b"\n" if algorithm == "rsa" else b""),
        record,
    )


class DkimKeyTable:
    """Public DKIM keys of the trust space by record name, standing in for DNS TXT lookups."""

    def __init__(self, records: Mapping[str, str] | None = None) -> None:
        self._records: dict[str, str] = {}
        for name, value in (records or {}).items():
            self.add(name, value)

    def add(self, record_name: str, txt: str) -> None:
        self._records[record_name.lower().rstrip(".")] = txt

    def add_key(self, key: DkimSigningKey) -> None:
        self.add(key.record_name, key.public_record)

    @classmethod
    def from_file(cls, path: Path) -> DkimKeyTable:
        """Lines of ``<selector>._domainkey.<domain> <TXT value>``; a missing file is empty."""
        table = cls()
        if not Path(path).is_file():
            return table
        for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split(None, 1)
            if len(parts) != 2 or "._domainkey." not in parts[0]:
                raise ConfigError(
                    f"{path}, line {number}: expected "
                    "'<selector>._domainkey.<domain> v=DKIM1; k=...; p=...'"
                )
            table.add(parts[0], parts[1])
        return table

    @classmethod
    def from_pki(cls, pki_dir: Path) -> DkimKeyTable:
        """``<pki_dir>/dkim/keys.txt`` plus the records of the hub's own keys in that folder."""
        folder = Path(pki_dir) / "dkim"
        table = cls.from_file(folder / "keys.txt")
        for path in sorted(folder.glob("*.key")) if folder.is_dir() else []:
            header = path.read_bytes().split(b"\n", 1)[0].decode(errors="replace")
            domain, _, selector = path.name.removesuffix(".key").rpartition(".")
            if header.startswith("# ") and " " in header[2:]:
                table.add(f"{selector}._domainkey.{domain}", header[2:].split(" ", 1)[1])
        return table

    def signs(self, domain: str) -> bool:
        """The domain publishes a DKIM key here: its operator signs the mail it relays."""
        suffix = f"._domainkey.{domain.lower().rstrip('.')}"
        return any(name.endswith(suffix) for name in self._records)

    def lookup(self, name: bytes | str, timeout: int = 5) -> bytes | None:
        """The ``dnsfunc`` dkimpy calls: the TXT record for ``name``, or None."""
        text = name.decode() if isinstance(name, bytes) else name
        record = self._records.get(text.lower().rstrip("."))
        return record.encode() if record is not None else None


@dataclass(frozen=True)
class DkimResult:
    status: DkimStatus
    reason: str
    domain: str | None = None
    selector: str | None = None

    def authentication_results_clause(self) -> str:
        """``dkim=<result> header.d=<domain> header.s=<selector>`` (RFC 8601)."""
        clause = f"dkim={self.status}"
        if self.domain:
            clause += f" header.d={self.domain}"
        if self.selector:
            clause += f" header.s={self.selector}"
        return clause


def sign(message: bytes, key: DkimSigningKey, *, headers: list[bytes] | None = None) -> bytes:
    """The message with a DKIM-Signature header prepended (relaxed/simple canonicalization)."""
    signature = dkimpy.sign(
        message,
        key.selector.encode(),
        key.domain.encode(),
        key.private,
        signature_algorithm=_SIGNATURE_ALGORITHM[key.algorithm],
        include_headers=headers,
        canonicalize=(b"relaxed", b"simple"),
    )
    return bytes(signature) + message


def _tag(message: bytes, tag: str) -> str | None:
    match = re.search(rb"(?im)^DKIM-Signature:(.*(?:\r?\n[ \t].*)*)", message)
    if match is None:
        return None
    value = re.search(rb"(?:^|;)\s*" + tag.encode() + rb"\s*=\s*([^;]*)", match.group(1))
    return re.sub(rb"\s+", b"", value.group(1)).decode(errors="replace") if value else None


def verify(message: bytes, table: DkimKeyTable) -> DkimResult:
    """Verify the topmost DKIM signature with keys from ``table`` (never from DNS)."""
    domain, selector = _tag(message, "d"), _tag(message, "s")
    if domain is None and selector is None and _tag(message, "b") is None:
        return DkimResult("none", "the message carries no DKIM signature")
    if table.lookup(f"{selector}._domainkey.{domain}") is None:
        return DkimResult(
            "permerror",
            f"no DKIM key is known for {selector}._domainkey.{domain}",
            domain,
            selector,
        )
    checker = dkimpy.DKIM(message, minkey=1024)
    try:
        passed = checker.verify(dnsfunc=table.lookup)
    except dkimpy.DKIMException as exc:
        if "body hash mismatch" in str(exc):
            passed = False
        else:
            return DkimResult(
                "permerror", f"the DKIM signature cannot be checked: {exc}", domain, selector
            )
    except Exception as exc:  # noqa: BLE001 - a key of the wrong type makes nacl raise
        return DkimResult(
            "permerror", f"the DKIM signature cannot be checked: {exc}", domain, selector
        )
    if passed:
        return DkimResult("pass", f"valid DKIM signature of {domain}", domain, selector)
    return DkimResult(
        "fail",
        "the DKIM signature does not match the message (changed in "
        "transit or signed with another key)",
        domain,
        selector,
    )


ArcStatus = Literal["pass", "fail", "none"]


@dataclass(frozen=True)
class ArcResult:
    """The ARC chain validation (RFC 8617 §5.2) of a message, with the keys of ``table``."""

    status: ArcStatus
    reason: str
    instances: int = 0  # the highest i= of the chain (0: no ARC set)

    def authentication_results_clause(self) -> str:
        """``arc=<cv>`` (RFC 8617 §10.1), with the chain's length as a comment."""
        return f"arc={self.status} ({self.instances} ARC set{'s' if self.instances != 1 else ''})"


def verify_arc(message: bytes, table: DkimKeyTable) -> ArcResult:
    """Validate the ARC chain a forwarding intermediary sealed, keys from ``table`` only."""
    sets = len(re.findall(rb"(?im)^ARC-Seal:", message))
    if not sets:
        return ArcResult("none", "the message carries no ARC set")
    try:
        cv, _results, reason = dkimpy.arc_verify(message, dnsfunc=table.lookup, minkey=1024)
    except Exception as exc:  # noqa: BLE001 - malformed sets or keys of the wrong type
        return ArcResult("fail", f"the ARC chain cannot be checked: {exc}", sets)
    status = cv.decode() if isinstance(cv, bytes) else str(cv)
    text = reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)
    if status not in ("pass", "fail", "none"):
        status = "fail"
    return ArcResult(status, text or f"ARC chain {status}", sets)  # type: ignore[arg-type]


async def verify_arc_async(message: bytes, table: DkimKeyTable) -> ArcResult:
    """``verify_arc`` in a worker thread."""
    return await asyncio.to_thread(verify_arc, message, table)


async def sign_async(message: bytes, key: DkimSigningKey) -> bytes:
    """``sign`` in a worker thread, keeping the event loop free."""
    return await asyncio.to_thread(sign, message, key)


async def verify_async(message: bytes, table: DkimKeyTable) -> DkimResult:
    """``verify`` in a worker thread, keeping the event loop free."""
    return await asyncio.to_thread(verify, message, table)
