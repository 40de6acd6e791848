"""Recipients' S/MIME encryption certificates: imported from PEM files, read by the relay.

``mss directory import-certificates`` reads PEM files (or every ``*.pem``/``*.crt`` of a
folder); each certificate that ``mss.policy.encryption.decide_recipient_certificate``
accepts is stored once per fingerprint under each e-mail address its subjectAltName names.
The FHIR directory import carries no certificate data (the ANS annuaire's FHIR API publishes
none), so files are the one source today.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mss.crypto.certificates import rfc822_names, subject_text
from mss.crypto.keys import parse_certs
from mss.crypto.trust import TrustStore
from mss.db import utcnow
from mss.directory.imports import ImportReport
from mss.directory.models import RecipientCertificate
from mss.errors import InvalidInput
from mss.policy.encryption import decide_recipient_certificate

CERTIFICATE_SUFFIXES = (".pem", ".crt")


def certificate_files(paths: Iterable[str | Path]) -> list[Path]:
    """The files named, a folder's ``*.pem`` and ``*.crt`` in name order; InvalidInput when a
    path does not exist or a folder holds none."""
    files: list[Path] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in CERTIFICATE_SUFFIXES)
            if not found:
                raise InvalidInput(f"{path} holds no .pem or .crt file")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise InvalidInput(f"{path} does not exist")
    return files


def _key_encipherment(cert: x509.Certificate) -> bool:
    try:
        return cert.extensions.get_extension_for_class(x509.KeyUsage).value.key_encipherment
    except x509.ExtensionNotFound:
        return True  # no keyUsage: every usage is allowed (RFC 5280 §4.2.1.3)


async def import_certificates(
    session: AsyncSession,
    paths: Sequence[str | Path],
    trust: TrustStore,
    *,
    skip_invalid: bool = False,
) -> ImportReport:
    """Store the encryption certificates of ``paths`` (the first of each file; the others are its
    chain). A refused certificate refuses the whole import unless ``skip_invalid``."""
    files = certificate_files(paths)
    report = ImportReport(source=", ".join(str(p) for p in paths))
    for path in files:
        try:
            leaf, *chain = parse_certs(path.read_bytes())
        except (ValueError, OSError) as exc:
            reason = f"not a PEM certificate ({exc})"
            if not skip_invalid:
                raise InvalidInput(reason, where=str(path)) from None
            report.skipped.append((str(path), reason))
            continue
        addresses = sorted({a.lower() for a in rfc822_names(leaf)})
        check = trust.verify(leaf, chain, usage="smime")
        decision = decide_recipient_certificate(
            addresses=len(addresses),
            rsa=isinstance(leaf.public_key(), rsa.RSAPublicKey),
            key_encipherment=_key_encipherment(leaf),
            chain_status=check.status,
            chain_reason=check.reason,
        )
        if not decision.allowed:
            if not skip_invalid:
                raise InvalidInput(decision.sentence, where=str(path))
            report.skipped.append((str(path), decision.sentence))
            continue
        report.count(await _store(session, leaf, addresses, str(path)))
    return report


async def _store(
    session: AsyncSession, cert: x509.Certificate, addresses: list[str], source: str
) -> str:
    """Add the certificate under each address; "unchanged" when it was already there."""
    der = cert.public_bytes(Encoding.DER)
    outcome = "unchanged"
    for address in addresses:
        sha256 = hashlib.sha256(der + address.encode()).hexdigest()
        if await session.scalar(
            select(RecipientCertificate.id).where(RecipientCertificate.sha256 == sha256)
        ):
            continue
        session.add(
            RecipientCertificate(
                address=address,
                sha256=sha256,
                pem=cert.public_bytes(Encoding.PEM).decode(),
                subject=subject_text(cert.subject),
                not_after=cert.not_valid_after_utc,
                source=source[:255],
            )
        )
        outcome = "added"
    await session.flush()
    return outcome


async def encryption_certificates(
    session: AsyncSession, addresses: Iterable[str], *, at: dt.datetime | None = None
) -> dict[str, list[x509.Certificate]]:
    """The imported certificates, still valid at ``at``, of each address that has one."""
    wanted = sorted({a.strip().lower() for a in addresses})
    if not wanted:
        return {}
    now = at or utcnow()
    rows = await session.execute(
        select(RecipientCertificate.address, RecipientCertificate.pem)
        .where(RecipientCertificate.address.in_(wanted), RecipientCertificate.not_after > now)
        .order_by(RecipientCertificate.id)
    )
    found: dict[str, list[x509.Certificate]] = {}
    for address, pem in rows.all():
        found.setdefault(address, []).append(x509.load_pem_x509_certificate(pem.encode()))
    return found
