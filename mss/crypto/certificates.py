"""X.509 certificate profiles of the hub: CAs, TLS server, operator, S/MIME and client.

Subjects follow the French health PKI (IGC-Santé) where it matters to a
reader of the certificate: a professional's S/MIME certificate carries the
holder's national identifier (idNat: ``8`` + RPPS, or ``0`` + ADELI) as the
commonName of a multi-valued RDN ``SN=<surname>+CN=<idNat>+GN=<given name>``,
then ``title=<profession>`` and ``C=FR`` (the layout of CPS card
certificates, e.g. ``SN=DOC0036791+CN=899700367917+GN=KIT,title=Médecin,C=FR``).
Older CPS certificates carried the identifier in a ``serialNumber``
attribute; ``id_nat_from_subject`` reads both.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import re
from collections.abc import Iterable, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mss.crypto.keys import PrivateKey, key_type_of

_ID_NAT = re.compile(r"^(8\d{11}|0[0-9A-Z]{9})$")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def name(*pairs: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in pairs])


def ca_subject(label: str, role: str) -> x509.Name:
    return name(
        (NameOID.COUNTRY_NAME, "FR"),
        (NameOID.ORGANIZATION_NAME, label),
        (NameOID.COMMON_NAME, f"{label} {role}"),
    )


def professional_subject(id_nat: str, common_name: str | None, title: str | None) -> x509.Name:
    """``SN=<surname>+CN=<idNat>+GN=<given>,title=<profession>,C=FR`` as IGC-Santé does."""
    words = (common_name or "").replace("Dr ", "").replace("Pr ", "").split()
    surname = words[-1] if words else id_nat
    given = " ".join(words[:-1]) if len(words) > 1 else None
    holder = [
        x509.NameAttribute(NameOID.SURNAME, surname.upper()),
        x509.NameAttribute(NameOID.COMMON_NAME, id_nat),
    ]
    if given:
        holder.append(x509.NameAttribute(NameOID.GIVEN_NAME, given.upper()))
    rdns = [x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COUNTRY_NAME, "FR")])]
    if title:
        rdns.append(x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.TITLE, title)]))
    rdns.append(x509.RelativeDistinguishedName(holder))
    return x509.Name(rdns)


def mailbox_subject(address: str, common_name: str | None, organisation: str) -> x509.Name:
    return name(
        (NameOID.COUNTRY_NAME, "FR"),
        (NameOID.ORGANIZATION_NAME, organisation),
        (NameOID.COMMON_NAME, common_name or address),
    )


PATIENT_SPACE_UNIT = "Espace patient, signature du service"


def patient_space_subject(address: str, common_name: str | None, organisation: str) -> x509.Name:
    """``CN=<patient's name>,OU=Espace patient, signature du service,O=<hub>,C=FR``: the
    certificate says the hub signs for the patient's space, not a key the patient holds."""
    return name(
        (NameOID.COUNTRY_NAME, "FR"),
        (NameOID.ORGANIZATION_NAME, organisation),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, PATIENT_SPACE_UNIT),
        (NameOID.COMMON_NAME, common_name or address),
    )


def operator_subject(domain: str, siret: str | None = None) -> x509.Name:
    """``CN=<domain>,OU=<SIRET>,O=MSS hub dev operator,C=FR`` (RFC 4514 order)."""
    return name(
        (NameOID.COUNTRY_NAME, "FR"),
        (NameOID.ORGANIZATION_NAME, "MSS hub dev operator"),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, siret or siret_like(domain)),
        (NameOID.COMMON_NAME, domain),
    )


def siret_like(seed: str) -> str:
    """A stable 14-digit, Luhn-valid number derived from ``seed`` (a stand-in for a SIRET)."""
    digits = [int(c) for c in str(int(hashlib.sha256(seed.encode()).hexdigest(), 16))[:13]]
    for check in range(10):
        candidate = digits + [check]
        total = 0
        for i, d in enumerate(reversed(candidate)):
            d = d * 2 if i % 2 else d
            total += d - 9 if d > 9 else d
        if total % 10 == 0:
            return "".join(map(str, candidate))
    raise AssertionError("unreachable: one Luhn check digit always exists")


_SHORT_NAMES = {
    NameOID.GIVEN_NAME: "GN",
    NameOID.SURNAME: "SN",
    NameOID.TITLE: "title",
    NameOID.SERIAL_NUMBER: "serialNumber",
    NameOID.EMAIL_ADDRESS: "emailAddress",
}


def subject_text(subject: x509.Name) -> str:
    """RFC 4514 text of a name, with the short attribute names of French health certificates."""
    return subject.rfc4514_string(_SHORT_NAMES) or "(empty subject)"


def id_nat_from_subject(subject: x509.Name) -> str | None:
    """The professional's idNat in a subject: its commonName (IGC-Santé) or serialNumber (CPS2)."""
    for oid in (NameOID.COMMON_NAME, NameOID.SERIAL_NUMBER, NameOID.USER_ID):
        for attr in subject.get_attributes_for_oid(oid):
            value = str(attr.value).strip()
            if _ID_NAT.match(value):
                return value
    return None


def issuer_public_key(cert: x509.Certificate) -> rsa.RSAPublicKey | ec.EllipticCurvePublicKey:
    """A CA certificate's public key; the hub's CAs have RSA or EC keys (``KeyType``)."""
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise ValueError(
            f"the CA {subject_text(cert.subject)} has a {type(key).__name__}: "
            "the hub's CAs have RSA or EC keys"
        )
    return key


def _key_usage(*, ca: bool, key: PrivateKey | None, encryption_only: bool) -> x509.KeyUsage:
    rsa_leaf = key is not None and key_type_of(key) == "rsa" and not ca
    return x509.KeyUsage(
        digital_signature=not ca and not encryption_only,
        content_commitment=False,
        key_encipherment=rsa_leaf,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def build_certificate(
    subject: x509.Name,
    key: PrivateKey,
    issuer: tuple[x509.Certificate, PrivateKey] | None,
    *,
    ca: bool = False,
    path_length: int | None = None,
    eku: Sequence[x509.ObjectIdentifier] = (),
    san: Iterable[x509.GeneralName] = (),
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    days: int = 365,
    encryption_only: bool = False,
) -> x509.Certificate:
    """Sign a certificate for ``key``; ``issuer=None`` makes it self-signed (a root).

    ``encryption_only``: keyUsage keyEncipherment alone (an S/MIME encryption certificate,
    RFC 8550 §4.4.2), not digitalSignature.
    """
    start = not_before or utcnow() - dt.timedelta(minutes=5)
    end = not_after or start + dt.timedelta(days=days)
    issuer_name = issuer[0].subject if issuer else subject
    signing_key = issuer[1] if issuer else key
    public = key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(
            x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), critical=True
        )
        .add_extension(_key_usage(ca=ca, key=key, encryption_only=encryption_only), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    )
    aki_source = issuer_public_key(issuer[0]) if issuer else public
    builder = builder.add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(aki_source), critical=False
    )
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
    names = list(san)
    if names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(names), critical=len(subject) == 0
        )
    return builder.sign(signing_key, hashes.SHA256())


def server_names(hostnames: Sequence[str]) -> list[x509.GeneralName]:
    """SAN of the hub's TLS certificate: localhost, the given hostnames, 127.0.0.1 and ::1."""
    dns: list[str] = []
    for host in ["localhost", *hostnames]:
        if host and host not in dns:
            dns.append(host)
    names: list[x509.GeneralName] = [x509.DNSName(h) for h in dns]
    names += [
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    return names


SERVER_EKU = (ExtendedKeyUsageOID.SERVER_AUTH,)
OPERATOR_EKU = (ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH)
CLIENT_EKU = (ExtendedKeyUsageOID.CLIENT_AUTH,)
SMIME_EKU = (ExtendedKeyUsageOID.EMAIL_PROTECTION,)


def rfc822_names(cert: x509.Certificate) -> list[str]:
    """E-mail addresses a certificate is issued to: SAN rfc822Name, then subject emailAddress."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        found = [str(a) for a in san.get_values_for_type(x509.RFC822Name)]
    except x509.ExtensionNotFound:
        found = []
    found += [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.EMAIL_ADDRESS)]
    return found


def has_eku(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> bool:
    try:
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return oid in usages or ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in usages
