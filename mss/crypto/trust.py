"""Trust anchors, intermediates and CRLs, and certificate chain validation against them.

Anchors come from the repository's ``certs/trust/*.pem``, from
``settings.tls.trust_dir`` and from the development root when it exists;
intermediates from the development PKI; CRLs from ``settings.crl_path`` and
any CRL found in the trust folders. The chain is built and checked by
``cryptography.x509.verification`` with an extension policy that requires
the extended key usage of the purpose (emailProtection for S/MIME,
clientAuth for TLS clients, serverAuth for TLS servers). That verifier does
not look at revocation, so each link of the verified chain is then looked up
in the CRLs its issuer signed. A CRL past its nextUpdate is still applied
(its entries stay true); a certificate whose issuer published no CRL is not
considered revoked.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import logging
import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, NamedTuple

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    Policy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from mss.crypto.certificates import has_eku, subject_text, utcnow
from mss.crypto.keys import parse_certs, parse_crls
from mss.errors import ConfigError

if TYPE_CHECKING:
    from mss.config import Settings

Usage = Literal["smime", "tls_client", "tls_server"]
ChainStatus = Literal["valid", "unknown_ca", "expired", "revoked", "bad_eku"]

log = logging.getLogger("mss.trust")

REPO_TRUST_DIR = Path(__file__).resolve().parents[2] / "certs" / "trust"
_FILE_SUFFIXES = (".pem", ".crt", ".cer", ".crl")

VALID_CACHE_SIZE = 4096
FINGERPRINT_CACHE_SIZE = 4096
_SHA256 = hashes.SHA256()
_fingerprints: dict[int, tuple[x509.Certificate, bytes]] = {}

USAGE_EKU: dict[Usage, x509.ObjectIdentifier] = {
    "smime": ExtendedKeyUsageOID.EMAIL_PROTECTION,
    "tls_client": ExtendedKeyUsageOID.CLIENT_AUTH,
    "tls_server": ExtendedKeyUsageOID.SERVER_AUTH,
}
_USAGE_WORDS: dict[Usage, str] = {
    "smime": "e-mail protection (S/MIME)",
    "tls_client": "TLS client authentication",
    "tls_server": "TLS server authentication",
}


@dataclass(frozen=True)
class ChainCheck:
    """The outcome of validating one certificate: a status, a sentence, the chain built."""

    status: ChainStatus
    reason: str
    chain: tuple[x509.Certificate, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return self.status == "valid"


def _ee_policy(usage: Usage) -> ExtensionPolicy:
    wanted = USAGE_EKU[usage]

    def require_usage(policy: Policy, cert: x509.Certificate, eku: x509.ExtendedKeyUsage) -> None:
        if wanted not in eku:
            raise ValueError(f"extended key usage lacks {wanted.dotted_string}")

    return ExtensionPolicy.webpki_defaults_ee().require_present(
        x509.ExtendedKeyUsage, Criticality.AGNOSTIC, require_usage
    )


def _ca_policy() -> ExtensionPolicy:
    # CAs of health PKIs may list EKUs of their own; the leaf's EKU is what we check.
    return ExtensionPolicy.webpki_defaults_ca().may_be_present(
        x509.ExtendedKeyUsage, Criticality.AGNOSTIC, None
    )


def describe(cert: x509.Certificate) -> str:
    return subject_text(cert.subject)


class TrustStore:
    """Trust anchors, known intermediates and CRLs, read from files and reloadable."""

    def __init__(
        self,
        anchors: Sequence[Path] = (),
        intermediates: Sequence[Path] = (),
        crls: Sequence[Path] = (),
    ) -> None:
        self._sources = (
            tuple(map(Path, anchors)),
            tuple(map(Path, intermediates)),
            tuple(map(Path, crls)),
        )
        self._lock = threading.Lock()
        self._valid: dict[tuple[bytes, tuple[bytes, ...], str], _CachedValid] = {}
        self._sources_digest = b""
        self._crl_files = tuple(
            os.fspath(p) for p in self._sources[2]
        )  # str: a stat of a Path costs more
        self._crl_stamp: tuple[object, ...] | None = None
        self.generation = 0  # counts the reloads that changed an anchor, an intermediate or a CRL
        self.anchors: list[x509.Certificate] = []
        self.intermediates: list[x509.Certificate] = []
        self.crls: list[x509.CertificateRevocationList] = []
        self.reload()

    @classmethod
    def from_settings(
        cls, settings: Settings, *, repo_trust_dir: Path | None = REPO_TRUST_DIR
    ) -> TrustStore:
        """certs/trust/, settings.tls.trust_dir, the dev root; dev intermediate;
        settings.crl_path."""
        anchors = [p for p in (repo_trust_dir,) if p is not None]
        if settings.tls.trust_dir:
            anchors.append(Path(settings.tls.trust_dir))
        anchors.append(settings.pki_dir / "root-ca.pem")
        return cls(anchors, [settings.pki_dir / "intermediate-ca.pem"], [settings.crl_path])

    @classmethod
    def from_pki(cls, pki_dir: Path, *extra_anchors: Path) -> TrustStore:
        """Trust one PKI directory (its root, intermediate and CRLs), plus other anchor files."""
        pki_dir = Path(pki_dir)
        return cls(
            [pki_dir / "root-ca.pem", *extra_anchors],
            [pki_dir / "intermediate-ca.pem"],
            [pki_dir / "crl.pem"],
        )

    def reload(self) -> None:
        """Read every source again (after a CRL update or a new anchor).

        When anything changed, the generation moves on and every remembered chain check
        is forgotten, including one still running on the old CRLs (``verify``).
        """
        anchor_paths, inter_paths, crl_paths = self._sources
        crl_stamp = _stamp(
            self._crl_files
        )  # before reading: a change while reading is seen next time
        anchors: list[x509.Certificate] = []
        intermediates: list[x509.Certificate] = []
        crls: list[x509.CertificateRevocationList] = []
        digest = hashlib.sha256()
        for role, paths in (
            ("anchor", anchor_paths),
            ("intermediate", inter_paths),
            ("crl", crl_paths),
        ):
            for path in _files(paths):
                data = path.read_bytes()
                digest.update(f"{role}:{len(data)}:".encode() + data)
                certs, found_crls = _read(path, data)
                if role == "anchor":
                    anchors += certs
                elif role == "intermediate":
                    intermediates += certs
                    continue
                crls += found_crls
        with self._lock:
            self._crl_stamp = crl_stamp
            if digest.digest() == self._sources_digest:
                return  # the same files: what was checked stays true
            self._sources_digest = digest.digest()
            self.anchors, self.intermediates, self.crls = anchors, intermediates, crls
            self._store = Store(anchors) if anchors else None
            self.generation += 1
            self._valid = {}  # new anchors or CRLs: every chain is checked again

    def verify(
        self,
        leaf: x509.Certificate,
        untrusted: Iterable[x509.Certificate] = (),
        *,
        usage: Usage = "smime",
        at: dt.datetime | None = None,
    ) -> ChainCheck:
        """Validate ``leaf`` for ``usage`` at ``at``: dates, EKU, chain to an anchor, CRLs.

        A valid outcome is remembered per (leaf, offered certificates, usage) until the
        trust store is reloaded, and reused only at a time inside the validity of every
        certificate of its chain and before any revocation its CRLs announce for later.
        """
        if _stamp(self._crl_files) != self._crl_stamp:
            self._reload_for_new_crl()
        at = at or utcnow()
        untrusted = tuple(untrusted)
        key = (_fingerprint(leaf), tuple(_fingerprint(c) for c in untrusted), usage)
        with self._lock:
            cached = self._valid.get(key)
            sources = _Sources(
                self.generation, self._store, tuple(self.intermediates), tuple(self.crls)
            )
        if cached is not None and cached.valid_from <= at < cached.valid_until:
            return cached.check
        check = self._verify(leaf, untrusted, usage=usage, at=at, sources=sources)
        if check.ok and check.chain:
            window = _CachedValid.of(check, sources.crls)
            with self._lock:
                # A reload during the check (keep_trust_fresh runs it in a thread) may have
                # brought the CRL revoking this leaf: a check made on the old ones is not kept.
                if self.generation == sources.generation:
                    if len(self._valid) >= VALID_CACHE_SIZE:
                        self._valid.clear()
                    self._valid[key] = window
        return check

    def _reload_for_new_crl(self) -> None:
        """A CRL file changed (``mss pki revoke``, ``mss pki crl``, a CRL fetched by a cron job):
        read again now."""
        try:
            self.reload()
        except (
            ConfigError,
            OSError,
        ) as exc:  # a CRL being written by a tool that does not replace it
            log.warning("the revocation list changed but cannot be read yet: %s", exc)
            with self._lock:
                self._crl_stamp = _stamp(self._crl_files)  # tried again by the next reload

    def _verify(
        self,
        leaf: x509.Certificate,
        untrusted: tuple[x509.Certificate, ...],
        *,
        usage: Usage,
        at: dt.datetime,
        sources: _Sources | None = None,
    ) -> ChainCheck:
        who = describe(leaf)
        if leaf.not_valid_after_utc < at:
            return ChainCheck(
                "expired",
                f"the certificate of {who} expired on "
                f"{leaf.not_valid_after_utc:%Y-%m-%d %H:%M} UTC",
            )
        if leaf.not_valid_before_utc > at:
            return ChainCheck(
                "expired",
                f"the certificate of {who} is not valid before "
                f"{leaf.not_valid_before_utc:%Y-%m-%d %H:%M} UTC",
            )
        if not has_eku(leaf, USAGE_EKU[usage]):
            return ChainCheck(
                "bad_eku", f"the certificate of {who} is not issued for {_USAGE_WORDS[usage]}"
            )
        if sources is None:
            with self._lock:
                sources = _Sources(
                    self.generation, self._store, tuple(self.intermediates), tuple(self.crls)
                )
        store, intermediates, crls = sources.store, list(sources.intermediates), sources.crls
        if store is None:
            return ChainCheck("unknown_ca", "no trust anchor is configured")
        verifier = (
            PolicyBuilder()
            .store(store)
            .time(at)
            .extension_policies(ca_policy=_ca_policy(), ee_policy=_ee_policy(usage))
            .build_client_verifier()
        )
        candidates = [c for c in untrusted if c != leaf] + intermediates
        try:
            chain = tuple(verifier.verify(leaf, candidates).chain)
        except VerificationError as exc:
            expired = [
                c for c in candidates if c.not_valid_after_utc < at and c.subject == leaf.issuer
            ]
            if expired:
                return ChainCheck(
                    "expired",
                    f"the certificate authority {describe(expired[0])} that issued {who} expired",
                )
            detail = "" if "candidates exhausted" in str(exc) else f" ({exc})"
            return ChainCheck(
                "unknown_ca",
                f"the certificate of {who} was not issued by a "
                f"trusted certificate authority{detail}",
            )
        for child, issuer in itertools.pairwise(chain):
            entry = revocation_of(child, issuer, crls, at)
            if entry is not None:
                return ChainCheck(
                    "revoked",
                    f"the certificate of {describe(child)} was revoked on "
                    f"{entry.revocation_date_utc:%Y-%m-%d %H:%M} UTC",
                    chain,
                )
        return ChainCheck("valid", f"the certificate of {who} is valid and trusted", chain)

    def stale_crls(self, at: dt.datetime | None = None) -> list[x509.CertificateRevocationList]:
        """CRLs whose nextUpdate has passed (for ``mss doctor``)."""
        at = at or utcnow()
        return [c for c in self.crls if c.next_update_utc is not None and c.next_update_utc < at]


def _fingerprint(cert: x509.Certificate) -> bytes:
    """SHA-256 of a certificate, remembered per certificate object.

    A signature's certificates come back as the same objects for the same DER
    (``mss.crypto.cms._load_certificate``), so a sender's are hashed once. Each entry
    holds its certificate, so no other object can take its id() while the entry lives.
    """
    found = _fingerprints.get(id(cert))
    if found is not None and found[0] is cert:
        return found[1]
    fingerprint = cert.fingerprint(_SHA256)
    if len(_fingerprints) >= FINGERPRINT_CACHE_SIZE:
        _fingerprints.clear()
    _fingerprints[id(cert)] = (cert, fingerprint)
    return fingerprint


class _Sources(NamedTuple):
    """One generation of the trust sources, read together so that a check uses one of them."""

    generation: int
    store: Store | None
    intermediates: tuple[x509.Certificate, ...]
    crls: tuple[x509.CertificateRevocationList, ...]


@dataclass(frozen=True)
class _CachedValid:
    """A valid chain check and the time window in which it stays true for the same CRLs."""

    check: ChainCheck
    valid_from: dt.datetime
    valid_until: dt.datetime

    @classmethod
    def of(cls, check: ChainCheck, crls: Iterable[x509.CertificateRevocationList]) -> _CachedValid:
        until = min(c.not_valid_after_utc for c in check.chain)
        serials = {(c.issuer, c.serial_number) for c in check.chain}
        for crl in crls:  # a revocation dated in the future ends the window when it starts
            for entry in crl:
                if (crl.issuer, entry.serial_number) in serials:
                    until = min(until, entry.revocation_date_utc)
        return cls(check, max(c.not_valid_before_utc for c in check.chain), until)


def revocation_of(
    cert: x509.Certificate,
    issuer: x509.Certificate,
    crls: Iterable[x509.CertificateRevocationList],
    at: dt.datetime,
) -> x509.RevokedCertificate | None:
    """The CRL entry revoking ``cert`` at ``at``, from a CRL that ``issuer`` really signed."""
    for crl in crls:
        if crl.issuer != issuer.subject:
            continue
        try:
            signed = crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
        except (TypeError, ValueError):
            signed = False
        if not signed:
            continue
        entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
        if entry is not None and entry.revocation_date_utc <= at:
            return entry
    return None


def _stamp(paths: Iterable[str]) -> tuple[object, ...]:
    """What changes when a file is rewritten or replaced (inode, mtime in ns, size), per path: one
    stat each."""
    stamps: list[object] = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            stamps.append(None)
            continue
        stamps.append((st.st_ino, st.st_mtime_ns, st.st_size))
    return tuple(stamps)


def _files(sources: Iterable[Path]) -> list[Path]:
    found: list[Path] = []
    for source in sources:
        if source.is_dir():
            found += sorted(
                p for p in source.iterdir() if p.is_file() and p.suffix.lower() in _FILE_SUFFIXES
            )
        elif source.is_file():
            found.append(source)
    return found


def _read(
    path: Path, data: bytes
) -> tuple[list[x509.Certificate], list[x509.CertificateRevocationList]]:
    try:
        if b"-----BEGIN" in data:
            return parse_certs(data), parse_crls(data)
        if path.suffix.lower() == ".crl":
            return [], parse_crls(data)
        return parse_certs(data), []
    except ValueError as exc:
        raise ConfigError(f"{path} is not a readable certificate or CRL: {exc}") from None
