"""The development PKI under ``settings.pki_dir``: CAs, hub and operator certificates, S/MIME, CRL.

The layout is described in ``certs/README.md``. Every issued certificate is
recorded in ``index.json`` (serial, kind, subject, expiry, revocation) so
that ``revoke`` and ``write_crls`` can rebuild the CRLs at any time. Private
keys are written 0600 and generated here, never committed.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from mss.crypto import certificates as profiles
from mss.crypto.certificates import build_certificate, issuer_public_key, utcnow
from mss.crypto.keys import (
    KeyType,
    PrivateKey,
    cert_pem,
    generate_key,
    key_pem,
    key_type_of,
    load_cert,
    load_certs,
    load_key,
    write_private,
    write_public,
)
from mss.errors import InvalidInput

DEV_CA_LABEL = "MSS hub dev"
CRL_VALIDITY = dt.timedelta(days=7)


class Issued(NamedTuple):
    """Paths of an issued certificate (PEM: leaf then intermediate) and its private key."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class PkiLayout:
    """Where each file of a PKI directory lives."""

    root: Path

    @property
    def root_cert(self) -> Path:
        return self.root / "root-ca.pem"

    @property
    def root_key(self) -> Path:
        return self.root / "root-ca.key"

    @property
    def intermediate_cert(self) -> Path:
        return self.root / "intermediate-ca.pem"

    @property
    def intermediate_key(self) -> Path:
        return self.root / "intermediate-ca.key"

    @property
    def chain(self) -> Path:
        return self.root / "ca-chain.pem"

    @property
    def server(self) -> Issued:
        return Issued(self.root / "server.pem", self.root / "server.key")

    @property
    def operator(self) -> Issued:
        return Issued(self.root / "operator.pem", self.root / "operator.key")

    @property
    def crl(self) -> Path:
        return self.root / "crl.pem"

    @property
    def root_crl(self) -> Path:
        return self.root / "root-crl.pem"

    @property
    def intermediate_crl(self) -> Path:
        return self.root / "intermediate-crl.pem"

    @property
    def index(self) -> Path:
        return self.root / "index.json"

    @property
    def issued(self) -> Path:
        return self.root / "issued"

    def exists(self) -> bool:
        return self.root_cert.is_file() and self.intermediate_key.is_file()


def _safe(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9@._+-]", "_", label.lower())


def _read_index(layout: PkiLayout) -> dict[str, Any]:
    if layout.index.is_file():
        data: dict[str, Any] = json.loads(layout.index.read_text(encoding="utf-8"))
        return data
    return {"crl_number": 0, "certificates": []}


def _write_index(layout: PkiLayout, index: dict[str, Any]) -> None:
    write_public(layout.index, json.dumps(index, indent=2, sort_keys=True).encode() + b"\n")


def _record(layout: PkiLayout, cert: x509.Certificate, kind: str, issuer: str, path: Path) -> None:
    index = _read_index(layout)
    index["certificates"].append(
        {
            "serial": format(cert.serial_number, "X"),
            "kind": kind,
            "issuer": issuer,
            "subject": profiles.subject_text(cert.subject),
            "path": str(path.relative_to(layout.root)),
            "not_after": cert.not_valid_after_utc.isoformat(),
            "revoked_at": None,
            "reason": None,
        }
    )
    _write_index(layout, index)


def _intermediate(layout: PkiLayout) -> tuple[x509.Certificate, PrivateKey]:
    if not layout.exists():
        raise InvalidInput(f"no PKI in {layout.root}: run 'mss pki init' first")
    return load_cert(layout.intermediate_cert), load_key(layout.intermediate_key)


def make_ca(
    directory: Path,
    label: str,
    *,
    key_type: KeyType = "rsa",
    force: bool = False,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> PkiLayout:
    """A root and an intermediate CA in ``directory`` (kept as is unless ``force``)."""
    layout = PkiLayout(Path(directory))
    if layout.exists() and not force:
        return layout
    if force:
        for stale in layout.root.glob("*"):
            shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
    layout.root.mkdir(parents=True, exist_ok=True)
    layout.root.chmod(0o700)
    root_key = generate_key(key_type)
    root = build_certificate(
        profiles.ca_subject(label, "Root CA"),
        root_key,
        None,
        ca=True,
        path_length=1,
        days=3650,
        not_before=not_before,
        not_after=not_after,
    )
    inter_key = generate_key(key_type)
    inter = build_certificate(
        profiles.ca_subject(label, "Intermediate CA"),
        inter_key,
        (root, root_key),
        ca=True,
        path_length=0,
        days=1825,
        not_before=not_before,
        not_after=not_after,
    )
    write_private(layout.root_key, key_pem(root_key))
    write_private(layout.intermediate_key, key_pem(inter_key))
    write_public(layout.root_cert, cert_pem(root))
    write_public(layout.intermediate_cert, cert_pem(inter))
    write_public(layout.chain, cert_pem(inter, root))
    _write_index(layout, {"crl_number": 0, "label": label, "certificates": []})
    _record(layout, root, "root", "root", layout.root_cert)
    _record(layout, inter, "intermediate", "root", layout.intermediate_cert)
    write_crls(layout.root)
    return layout


def init_pki(
    pki_dir: Path,
    hostnames: Sequence[str],
    *,
    operator_domain: str | None = None,
    key_type: KeyType = "rsa",
    force: bool = False,
    crl_path: Path | None = None,
    label: str = DEV_CA_LABEL,
    dkim_selector: str = "dev",
) -> PkiLayout:
    """The development PKI: CAs, the hub's TLS and operator certificates, CRLs, a DKIM key.

    An existing PKI is kept (missing pieces are added) unless ``force``.
    """
    layout = make_ca(Path(pki_dir), label, key_type=key_type, force=force)
    if force or not layout.server.cert.is_file():
        _issue(
            layout,
            "server",
            profiles.mailbox_subject(
                hostnames[0] if hostnames else "localhost", None, DEV_CA_LABEL
            ),
            profiles.server_names(hostnames),
            profiles.SERVER_EKU,
            layout.server,
            key_type,
            days=397,
        )
    domain = operator_domain or (hostnames[-1] if hostnames else "localhost")
    if force or not layout.operator.cert.is_file():
        _issue(
            layout,
            "operator",
            profiles.operator_subject(domain),
            [x509.DNSName(domain)],
            profiles.OPERATOR_EKU,
            layout.operator,
            key_type,
            days=397,
        )
    _ensure_dkim_key(layout, domain, dkim_selector)
    write_crls(layout.root, crl_path=crl_path)
    return layout


def _ensure_dkim_key(layout: PkiLayout, domain: str, selector: str) -> None:
    """An ed25519 DKIM key for the operator domain, made once (see mss/crypto/dkim.py)."""
    from mss.crypto import dkim

    if not any((layout.root / "dkim").glob(f"{domain.lower()}.*.key")):
        dkim.save_signing_key(layout.root, dkim.generate_signing_key(domain, selector))


def _issue(
    layout: PkiLayout,
    kind: str,
    subject: x509.Name,
    san: Sequence[x509.GeneralName],
    eku: Sequence[x509.ObjectIdentifier],
    target: Issued,
    key_type: KeyType | None,
    *,
    days: int = 730,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    encryption_only: bool = False,
) -> Issued:
    inter, inter_key = _intermediate(layout)
    key = generate_key(key_type or key_type_of(inter_key))
    cert = build_certificate(
        subject,
        key,
        (inter, inter_key),
        eku=eku,
        san=san,
        days=days,
        not_before=not_before,
        not_after=not_after,
        encryption_only=encryption_only,
    )
    write_private(target.key, key_pem(key))
    write_public(target.cert, cert_pem(cert, inter))
    _record(layout, cert, kind, "intermediate", target.cert)
    return target


def issue_smime(
    pki_dir: Path,
    address: str,
    *,
    id_nat: str | None = None,
    common_name: str | None = None,
    title: str | None = None,
    key_type: KeyType | None = None,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    eku: Sequence[x509.ObjectIdentifier] | None = None,
    days: int = 730,
    label: str | None = None,
) -> Issued:
    """An S/MIME signing certificate for ``address`` (emailProtection, SAN rfc822Name, idNat)."""
    layout = PkiLayout(Path(pki_dir))
    address = _check_address(address)
    subject = (
        profiles.professional_subject(id_nat, common_name, title)
        if id_nat
        else profiles.mailbox_subject(address, common_name, DEV_CA_LABEL)
    )
    target = _target(layout, "smime", label or address)
    return _issue(
        layout,
        "smime",
        subject,
        [x509.RFC822Name(address)],
        profiles.SMIME_EKU if eku is None else eku,
        target,
        key_type,
        days=days,
        not_before=not_before,
        not_after=not_after,
    )


def issue_encryption(
    pki_dir: Path,
    address: str,
    *,
    common_name: str | None = None,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    days: int = 730,
) -> Issued:
    """The S/MIME encryption certificate of a hub mailbox: RSA, keyUsage keyEncipherment only,
    emailProtection, SAN rfc822Name (RFC 8550 §4.4.2).

    Peers encrypt to it (RFC 8551 enveloped-data); the hub keeps its key and decrypts at the
    gateway (``mss.crypto.decryption``). RSA because CMS key transport (RFC 5652 §6.2.1) is
    what every S/MIME agent and ``cryptography``'s envelope builder speak.
    """
    layout = PkiLayout(Path(pki_dir))
    address = _check_address(address)
    return _issue(
        layout,
        "encryption",
        profiles.mailbox_subject(address, common_name, DEV_CA_LABEL),
        [x509.RFC822Name(address)],
        profiles.SMIME_EKU,
        encryption_target(pki_dir, address),
        "rsa",
        days=days,
        not_before=not_before,
        not_after=not_after,
        encryption_only=True,
    )


def issue_patient_signing(
    pki_dir: Path,
    address: str,
    *,
    common_name: str | None = None,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    days: int = 730,
) -> Issued:
    """The signing certificate the hub holds for a patient mailbox (``mss.crypto.space_signing``):
    emailProtection, SAN rfc822Name = the patient's address, subject
    ``CN=<name>,OU=Espace patient, signature du service,O=MSS hub dev,C=FR``; the key stays with
    the hub (0600) under ``issued/patient/<address>.key``."""
    layout = PkiLayout(Path(pki_dir))
    address = _check_address(address)
    return _issue(
        layout,
        "patient",
        profiles.patient_space_subject(address, common_name, DEV_CA_LABEL),
        [x509.RFC822Name(address)],
        profiles.SMIME_EKU,
        patient_signing_target(pki_dir, address),
        None,
        days=days,
        not_before=not_before,
        not_after=not_after,
    )


def patient_signing_target(pki_dir: Path, address: str) -> Issued:
    """Where the hub's signing certificate and key for a patient mailbox live
    (issued/patient/...)."""
    return _target(PkiLayout(Path(pki_dir)), "patient", address.strip())


def encryption_target(pki_dir: Path, address: str) -> Issued:
    """Where the encryption certificate and key of ``address`` live (issued/encryption/...)."""
    return _target(PkiLayout(Path(pki_dir)), "encryption", address.strip())


def issue_client(
    pki_dir: Path,
    address: str,
    *,
    id_nat: str | None = None,
    common_name: str | None = None,
    title: str | None = None,
    key_type: KeyType | None = None,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    days: int = 730,
    label: str | None = None,
) -> Issued:
    """A TLS client-authentication certificate: an applicative (APP) mailbox's, or with ``id_nat``
    a professional's, whose subject carries the idNat as the health PKI's (IGC-Santé) cards do.
    """
    layout = PkiLayout(Path(pki_dir))
    address = _check_address(address)
    target = _target(layout, "client", label or address)
    subject = (
        profiles.professional_subject(id_nat, common_name, title)
        if id_nat
        else profiles.mailbox_subject(address, common_name, DEV_CA_LABEL)
    )
    return _issue(
        layout,
        "client",
        subject,
        [x509.RFC822Name(address)],
        profiles.CLIENT_EKU,
        target,
        key_type,
        days=days,
        not_before=not_before,
        not_after=not_after,
    )


def issue_operator(
    pki_dir: Path,
    domain: str,
    *,
    siret: str | None = None,
    key_type: KeyType | None = None,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    days: int = 397,
    label: str | None = None,
) -> Issued:
    """An operator certificate for relay mutual TLS (clientAuth + serverAuth, SAN DNS domain)."""
    layout = PkiLayout(Path(pki_dir))
    target = _target(layout, "operator", label or domain)
    return _issue(
        layout,
        "operator",
        profiles.operator_subject(domain, siret),
        [x509.DNSName(domain)],
        profiles.OPERATOR_EKU,
        target,
        key_type,
        days=days,
        not_before=not_before,
        not_after=not_after,
    )


def issue_server(
    pki_dir: Path,
    hostnames: Sequence[str],
    *,
    key_type: KeyType | None = None,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    days: int = 397,
    label: str | None = None,
) -> Issued:
    """A TLS server certificate for ``hostnames`` (plus localhost, 127.0.0.1 and ::1)."""
    layout = PkiLayout(Path(pki_dir))
    host = hostnames[0] if hostnames else "localhost"
    target = _target(layout, "server", label or host)
    return _issue(
        layout,
        "server",
        profiles.mailbox_subject(host, None, DEV_CA_LABEL),
        profiles.server_names(hostnames),
        profiles.SERVER_EKU,
        target,
        key_type,
        days=days,
        not_before=not_before,
        not_after=not_after,
    )


def _target(layout: PkiLayout, kind: str, label: str) -> Issued:
    """issued/<kind>/<label>.pem and .key; issuing the same label again replaces the files."""
    folder, stem = layout.issued / kind, _safe(label)
    return Issued(folder / f"{stem}.pem", folder / f"{stem}.key")


def _check_address(address: str) -> str:
    address = address.strip()
    if not re.fullmatch(r"[^@\s<>]+@[A-Za-z0-9.-]+\.[A-Za-z0-9-]+|[^@\s<>]+@localhost", address):
        raise InvalidInput(f"{address!r} is not an e-mail address")
    return address


def _serial_of(layout: PkiLayout, cert_or_serial: str | Path | int) -> int:
    if isinstance(cert_or_serial, int):
        return cert_or_serial
    path = Path(cert_or_serial)
    if path.is_file():
        try:
            return load_cert(path).serial_number
        except ValueError:
            raise InvalidInput(f"{path} is not a certificate") from None
    text = str(cert_or_serial).strip().replace(":", "").lower().removeprefix("0x")
    if not re.fullmatch(r"[0-9a-f]+", text):
        raise InvalidInput(f"{cert_or_serial!r} is neither a certificate file nor a hex serial")
    return int(text, 16)


def revoke(
    pki_dir: Path,
    cert_or_serial: str | Path | int,
    *,
    reason: x509.ReasonFlags = x509.ReasonFlags.unspecified,
    at: dt.datetime | None = None,
    crl_path: Path | None = None,
) -> int:
    """Revoke a certificate of this PKI (by file or hex serial) and rewrite the CRLs."""
    layout = PkiLayout(Path(pki_dir))
    _intermediate(layout)  # refuses early when there is no PKI
    serial = _serial_of(layout, cert_or_serial)
    index = _read_index(layout)
    entry = next((e for e in index["certificates"] if int(e["serial"], 16) == serial), None)
    if entry is None:
        raise InvalidInput(f"serial {serial:X} was not issued by the PKI in {layout.root}")
    if entry["kind"] == "root":
        raise InvalidInput("the root CA cannot be revoked: replace it with 'mss pki init --force'")
    if entry["revoked_at"] is None:
        entry["revoked_at"] = (at or utcnow()).isoformat()
        entry["reason"] = reason.value
        _write_index(layout, index)
    write_crls(layout.root, crl_path=crl_path, at=at)
    return serial


def write_crls(
    pki_dir: Path,
    *,
    crl_path: Path | None = None,
    at: dt.datetime | None = None,
    validity: dt.timedelta = CRL_VALIDITY,
) -> Path:
    """Re-sign both CRLs (root's and intermediate's) with a fresh nextUpdate; returns crl_path."""
    layout = PkiLayout(Path(pki_dir))
    now = at or utcnow()
    index = _read_index(layout)
    index["crl_number"] = int(index.get("crl_number", 0)) + 1
    _write_index(layout, index)
    pems = []
    for issuer, cert_path, key_path, out in (
        (
            "intermediate",
            layout.intermediate_cert,
            layout.intermediate_key,
            layout.intermediate_crl,
        ),
        ("root", layout.root_cert, layout.root_key, layout.root_crl),
    ):
        ca, ca_key = load_cert(cert_path), load_key(key_path)
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(ca.subject)
            .last_update(now)
            .next_update(now + validity)
            .add_extension(x509.CRLNumber(index["crl_number"]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public_key(ca)),
                critical=False,
            )
        )
        for entry in index["certificates"]:
            if entry["issuer"] != issuer or entry["revoked_at"] is None or entry["kind"] == "root":
                continue
            revoked = (
                x509.RevokedCertificateBuilder()
                .serial_number(int(entry["serial"], 16))
                .revocation_date(dt.datetime.fromisoformat(entry["revoked_at"]))
            )
            if entry["reason"] and entry["reason"] != "unspecified":
                revoked = revoked.add_extension(
                    x509.CRLReason(x509.ReasonFlags(entry["reason"])), critical=False
                )
            builder = builder.add_revoked_certificate(revoked.build())
        pem = builder.sign(ca_key, hashes.SHA256()).public_bytes(Encoding.PEM)
        write_public(out, pem)
        pems.append(pem)
    target = Path(crl_path) if crl_path else layout.crl
    write_public(target, b"".join(pems))
    return target


@dataclass(frozen=True)
class CertificateEntry:
    serial: str
    kind: str
    subject: str
    path: Path
    not_after: dt.datetime
    revoked_at: dt.datetime | None


def list_certificates(pki_dir: Path) -> list[CertificateEntry]:
    """Every certificate the PKI issued, with its expiry and revocation."""
    layout = PkiLayout(Path(pki_dir))
    if not layout.index.is_file():
        raise InvalidInput(f"no PKI in {layout.root}: run 'mss pki init' first")
    return [
        CertificateEntry(
            e["serial"],
            e["kind"],
            e["subject"],
            layout.root / e["path"],
            dt.datetime.fromisoformat(e["not_after"]),
            dt.datetime.fromisoformat(e["revoked_at"]) if e["revoked_at"] else None,
        )
        for e in _read_index(layout)["certificates"]
    ]


def export_pkcs12(
    pki_dir: Path, address: str, password: str, target: Path, *, kind: str = "smime"
) -> Path:
    """Write the issued certificate of ``address``, its whole chain up to the root, and its key
    (0600).

    The root is included so that a client that builds the chain from the
    file alone (mutt's ``smime_keys``) finds it valid; Thunderbird and
    Outlook still ask the user to trust the root (docs/mail-clients.md).
    """
    from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12

    layout = PkiLayout(Path(pki_dir))
    issued = _target(layout, kind, _check_address(address))
    if not issued.cert.is_file() or not issued.key.is_file():
        raise InvalidInput(
            f"no {kind} certificate for {address} in {Path(pki_dir).resolve()}: "
            f"run 'mss pki issue {address}' first (or point mss at the data folder "
            "that holds it with --data-dir or --config)"
        )
    leaf, *chain = load_certs(issued.cert)
    if layout.root_cert.is_file():
        chain += [root for root in load_certs(layout.root_cert) if root not in chain]
    data = pkcs12.serialize_key_and_certificates(
        address.encode(),
        load_key(issued.key),
        leaf,
        chain or None,  # type: ignore[arg-type]
        BestAvailableEncryption(password.encode()),
    )
    write_private(target, data)
    return target


def export_encryption_certificate(pki_dir: Path, address: str, target: Path) -> Path | None:
    """Write the encryption certificate of ``address`` and its chain (PEM, public) for the peers
    that encrypt to this mailbox; None when the mailbox has none. Its key stays with the hub."""
    issued = encryption_target(pki_dir, _check_address(address))
    if not issued.cert.is_file():
        return None
    write_public(target, issued.cert.read_bytes())
    return target
