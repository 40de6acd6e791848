"""S/MIME 4.0 (RFC 8551): sign, verify, encrypt and decrypt whole messages.

``sign`` moves the message's content headers into the signed MIME entity and
keeps the others (From, To, Subject, Date...) on the outer message. ``verify``
takes the signed bytes straight from the raw message: for multipart/signed
the exact bytes of the first part, put in canonical CRLF form (RFC 8551
section 3.1.1); the message is never re-serialised by the email package.

SMTP status codes chosen for each outcome (RFC 3463):

===============  ========  ==========================================================
status           code      why
===============  ========  ==========================================================
valid            2.7.0     security status: nothing to report
none             5.7.1     not authorised: a signature is required and there is none
tampered         5.7.7     message integrity failure
unknown_ca       5.7.5     cryptographic failure: the signer's certificate is not trusted
expired          5.7.5     cryptographic failure: certificate outside its validity
revoked          5.7.5     cryptographic failure: certificate revoked
bad_eku          5.7.5     cryptographic failure: certificate not for e-mail protection
address_mismatch 5.7.1     not authorised: the signer is not the sender (From)
malformed        5.7.5     cryptographic failure: the signature cannot be read
                 (5.7.6)   cryptographic algorithm not supported (digest or signature)
===============  ========  ==========================================================
"""

from __future__ import annotations

import base64
import datetime as dt
import email
import email.policy
import email.utils
import functools
import itertools
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.parser import BytesParser
from typing import Literal, NamedTuple

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.serialization import pkcs7

from mss.crypto.certificates import id_nat_from_subject, rfc822_names, subject_text
from mss.crypto.cms import CmsFailure, check_signed_data
from mss.crypto.keys import PrivateKey
from mss.crypto.trust import TrustStore
from mss.email_policy import header_fields, plain_content_type

Status = Literal["valid", "none", "tampered", "unknown_ca", "expired", "revoked",
                 "address_mismatch", "malformed", "bad_eku"]

SMTP_STATUS: dict[str, str] = {
    "valid": "2.7.0", "none": "5.7.1", "tampered": "5.7.7", "unknown_ca": "5.7.5",
    "expired": "5.7.5", "revoked": "5.7.5", "bad_eku": "5.7.5", "address_mismatch": "5.7.1",
    "malformed": "5.7.5",
}
_REASON_FR: dict[str, str] = {
    "valid": "la signature S/MIME est valide",
    "none": "le message ne porte pas de signature S/MIME",
    "tampered": "le message a été modifié après avoir été signé",
    "unknown_ca": "le certificat du signataire n'a pas été émis par une autorité de confiance",
    "expired": "le certificat du signataire est expiré ou pas encore valide",
    "revoked": "le certificat du signataire a été révoqué",
    "bad_eku": "le certificat du signataire n'est pas destiné à la signature de messages",
    "address_mismatch": "le certificat du signataire n'est pas celui de l'expéditeur du message",
    "malformed": "la signature S/MIME est illisible ou utilise un algorithme non accepté",
}
_SIGNATURE_TYPES = {"application/pkcs7-signature", "application/x-pkcs7-signature"}
_HEADERS = BytesParser(policy=email.policy.compat32)  # header blocks only (headersonly=True)
_OPAQUE_TYPES = {"application/pkcs7-mime", "application/x-pkcs7-mime"}
_SMIME_PARAMS = ("protocol", "boundary", "smime-type")
_MICALG = {"sha256": "sha-256", "sha384": "sha-384", "sha512": "sha-512", "sha224": "sha-224"}


@dataclass(frozen=True)
class SignatureResult:
    """What S/MIME verification found, with a sentence in English and French and an SMTP code."""

    status: Status
    reason: str
    reason_fr: str
    smtp_status: str
    signer_address: str | None = None
    signer_subject: str | None = None
    signer_id_nat: str | None = None
    signer_serial: str | None = None
    signer_certificate: x509.Certificate | None = field(default=None, repr=False, compare=False)
    content: bytes | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.status == "valid"

    @property
    def auth_result(self) -> str:
        """The RFC 7601 result word for the ``smime`` method."""
        return {"valid": "pass", "none": "none", "malformed": "permerror"}.get(self.status, "fail")

    def authentication_results_clause(self) -> str:
        """``smime=<result> body.smime-identifier=<address>`` (RFC 7281) for Authentication-Results."""
        clause = f"smime={self.auth_result}"
        if self.signer_address:
            clause += f" body.smime-identifier={self.signer_address}"
        if self.signer_serial:
            clause += f" body.smime-serial={self.signer_serial}"
        return clause


def _result(status: Status, reason: str, signer: x509.Certificate | None = None,
            content: bytes | None = None, reason_fr: str | None = None) -> SignatureResult:
    facts = _signer_facts(signer) if signer is not None else _SignerFacts((), None, None, None, None)
    return SignatureResult(
        status=status, reason=reason, reason_fr=reason_fr or _REASON_FR[status],
        smtp_status=SMTP_STATUS[status], signer_address=facts.address,
        signer_subject=facts.subject, signer_id_nat=facts.id_nat, signer_serial=facts.serial,
        signer_certificate=signer, content=content)


class _SignerFacts(NamedTuple):
    issued_to: tuple[str, ...]  # the certificate's e-mail addresses in lower case
    address: str | None
    subject: str | None
    id_nat: str | None
    serial: str | None


@functools.lru_cache(maxsize=1024)
def _signer_facts(cert: x509.Certificate) -> _SignerFacts:
    """What a result reports of its signer, read once per certificate: a sender signs many messages."""
    addresses = rfc822_names(cert)
    return _SignerFacts(tuple(a.lower() for a in addresses), addresses[0] if addresses else None,
                        subject_text(cert.subject), id_nat_from_subject(cert.subject),
                        format(cert.serial_number, "X"))


@functools.lru_cache(maxsize=1024)
def _sender_address(from_address: str) -> str:
    return email.utils.parseaddr(from_address)[1].strip().lower()


# --- MIME framing -------------------------------------------------------------------------

def canonical(data: bytes) -> bytes:
    """Every line ending as CRLF (RFC 8551 section 3.1.1)."""
    if data.count(b"\n") == data.count(b"\r\n"):
        return data  # every LF already ends a CRLF
    return re.sub(rb"\r?\n", b"\r\n", data)


def split_head(raw: bytes) -> tuple[bytes, bytes]:
    """Header block (with its final line break) and body of a message, without re-encoding."""
    match = re.search(rb"\r?\n\r?\n", raw)
    if match is None:
        return raw, b""
    return raw[:match.end()], raw[match.end():]


def _header_fields(head: bytes) -> list[bytes]:
    """Raw header fields, each with its folded continuation lines."""
    fields: list[bytes] = []
    for line in canonical(head).split(b"\r\n"):
        if not line:
            continue
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += b"\r\n" + line
        else:
            fields.append(line)
    return fields


def split_entity(mime_bytes: bytes) -> tuple[list[bytes], bytes]:
    """Outer header fields (From, To, Subject...) and the inner MIME entity to protect."""
    head, body = split_head(mime_bytes)
    outer: list[bytes] = []
    content: list[bytes] = []
    for f in _header_fields(head):
        name = f.split(b":", 1)[0].strip().lower()
        if name == b"mime-version":
            continue
        (content if name.startswith(b"content-") else outer).append(f)
    if not any(f.lower().startswith(b"content-type:") for f in content):
        content.insert(0, b'Content-Type: text/plain; charset="utf-8"')
    inner = b"\r\n".join(content) + b"\r\n\r\n" + canonical(body)
    return outer, inner


def _assemble(outer: Sequence[bytes], content_headers: Sequence[bytes], body: bytes) -> bytes:
    head = [*outer, b"MIME-Version: 1.0", *content_headers]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


def base64_lines(der: bytes) -> bytes:
    """Base64 in lines of 76 characters, each ending in CRLF (RFC 2045 section 6.8)."""
    text = base64.b64encode(der)
    return b"\r\n".join(text[i:i + 76] for i in range(0, len(text), 76)) + b"\r\n"


# --- signing ------------------------------------------------------------------------------

def sign(mime_bytes: bytes, cert: x509.Certificate, key: PrivateKey, *, detached: bool = True,
         chain: Sequence[x509.Certificate] = (), digest: str = "sha256") -> bytes:
    """A complete signed message: multipart/signed (detached) or application/pkcs7-mime (opaque)."""
    outer, inner = split_entity(mime_bytes)
    algorithm = {"sha256": hashes.SHA256(), "sha384": hashes.SHA384(),
                 "sha512": hashes.SHA512()}[digest]
    builder = pkcs7.PKCS7SignatureBuilder().set_data(inner).add_signer(cert, key, algorithm)  # type: ignore[arg-type]
    for extra in chain:
        if extra != cert:
            builder = builder.add_certificate(extra)
    options = [pkcs7.PKCS7Options.Binary]
    if detached:
        options.append(pkcs7.PKCS7Options.DetachedSignature)
    der = builder.sign(serialization.Encoding.DER, options)
    if not detached:
        return _assemble(outer, [
            b'Content-Type: application/pkcs7-mime; smime-type=signed-data; name="smime.p7m"',
            b"Content-Transfer-Encoding: base64",
            b'Content-Disposition: attachment; filename="smime.p7m"'], base64_lines(der))
    boundary = f"----=_mss_signed_{secrets.token_hex(12)}".encode()
    body = (b"This is an S/MIME signed message\r\n\r\n--" + boundary + b"\r\n" + inner
            + b"\r\n--" + boundary + b"\r\n"
            + b'Content-Type: application/pkcs7-signature; name="smime.p7s"\r\n'
            + b"Content-Transfer-Encoding: base64\r\n"
            + b'Content-Disposition: attachment; filename="smime.p7s"\r\n\r\n'
            + base64_lines(der) + b"\r\n--" + boundary + b"--\r\n")
    micalg = _MICALG[digest].encode()
    return _assemble(outer, [b'Content-Type: multipart/signed; protocol="application/pkcs7-'
                             b'signature"; micalg=' + micalg + b'; boundary="' + boundary + b'"'],
                     body)


# --- verification -------------------------------------------------------------------------

def _multipart_parts(body: bytes, boundary: str) -> list[bytes]:
    """The parts between delimiter lines, exactly as they are in ``body`` (RFC 2046 5.1.1).

    A delimiter line is ``--boundary`` (``--boundary--`` closes), then optional spaces
    or tabs, at the start of the body or after a line break; the line break before it
    belongs to the delimiter. Searched with ``bytes.find``: every message has its own
    boundary, and a regular expression compiled for each would cost more than the rest.
    """
    dashes = b"--" + boundary.encode()
    marks: list[tuple[int, int, bool]] = []  # (start, end, closing)
    at = body.find(dashes)
    while at != -1:
        end = _delimiter_end(body, at, len(dashes)) if at == 0 or body[at - 1] == 0x0A else None
        if end is None:
            at = body.find(dashes, at + 1)
            continue
        start = at - 2 if body[max(0, at - 2):at] == b"\r\n" else max(0, at - 1)
        marks.append((start, end, body.startswith(b"--", at + len(dashes))))
        at = body.find(dashes, end)
    parts = []
    for (_, after, closing), (before, _, _) in itertools.pairwise(marks):
        if closing:
            break
        parts.append(body[after:before])
    return parts


def _delimiter_end(body: bytes, at: int, length: int) -> int | None:
    """Where the delimiter line starting at ``at`` ends (after its line break), or None if it is not one."""
    rest = at + length
    if body.startswith(b"--", rest):
        rest += 2
    while rest < len(body) and body[rest] in (0x20, 0x09):
        rest += 1
    if rest == len(body):
        return rest
    if body.startswith(b"\r\n", rest):
        return rest + 2
    if body.startswith(b"\n", rest):
        return rest + 1
    return None


def _content_type(head: bytes) -> tuple[str, dict[str, object]]:
    """The Content-Type of a header block and the parameters S/MIME reads: directly when it is
    plainly written (``mss.email_policy``), by the email package otherwise."""
    fields = header_fields(head)
    plain = plain_content_type(fields) if fields is not None else None
    if plain is not None:
        return plain[0], {name: plain[1].get(name) for name in _SMIME_PARAMS}
    msg = _HEADERS.parsebytes(head, headersonly=True)
    return msg.get_content_type(), {name: msg.get_param(name) for name in _SMIME_PARAMS}


def _signature_der(part: bytes) -> bytes:
    der = _plain_signature_der(part)
    if der is not None:
        return der
    msg = email.message_from_bytes(part, policy=email.policy.compat32)
    if msg.get_content_type() not in _SIGNATURE_TYPES:
        raise CmsFailure("malformed", "the second part of multipart/signed is not a signature")
    payload = msg.get_payload(decode=True)
    if not isinstance(payload, bytes) or not payload:
        raise CmsFailure("malformed", "the signature part is empty")
    return payload


def _plain_signature_der(part: bytes) -> bytes | None:
    """The signature of a plainly written part in strict base64; None for the email package to decide."""
    head, body = split_head(part)
    fields = header_fields(head)
    plain = plain_content_type(fields) if fields is not None else None
    if fields is None or plain is None or plain[0] not in _SIGNATURE_TYPES:
        return None
    encoding = next((v for n, v in fields if n.lower() == "content-transfer-encoding"), "")
    if encoding.lower() != "base64":
        return None
    try:  # what the email package decodes when the base64 is strict (its decode_b)
        der = base64.b64decode(body.replace(b"\r\n", b""), validate=True)
    except ValueError:
        return None
    return der or None


def extract_signed(raw: bytes) -> tuple[bytes, bytes | None] | None:
    """(CMS DER, detached content or None) of a signed message; None when it is not S/MIME."""
    head, body = split_head(raw)
    ctype, params = _content_type(head)  # a multipart body is cut here, not parsed
    if ctype == "multipart/signed":
        protocol = str(params["protocol"] or "").lower()
        if protocol not in _SIGNATURE_TYPES:
            return None
        boundary = params["boundary"]
        if not isinstance(boundary, str) or not boundary:
            raise CmsFailure("malformed", "the multipart/signed message has no boundary")
        parts = _multipart_parts(body, boundary)
        if len(parts) != 2:
            raise CmsFailure("malformed", f"multipart/signed needs 2 parts, found {len(parts)}")
        return _signature_der(parts[1]), canonical(parts[0])
    if ctype in _OPAQUE_TYPES:
        smime_type = str(params["smime-type"] or "signed-data").lower()
        if smime_type in ("enveloped-data", "authenveloped-data"):
            raise CmsFailure("encrypted", "the message is encrypted; decrypt it before verifying")
        try:
            der = base64.b64decode(re.sub(rb"\s+", b"", body), validate=True)
        except ValueError:
            raise CmsFailure("malformed", "the application/pkcs7-mime body is not base64") from None
        return der, None
    return None


def verify(raw: bytes, trust: TrustStore, *, from_address: str | None = None,
           at: dt.datetime | None = None) -> SignatureResult:
    """Verify the S/MIME signature of a raw message against ``trust``; never raises on bad input."""
    try:
        found = extract_signed(raw)
        if found is None:
            return _result("none", "the message carries no S/MIME signature")
        der, detached = found
        signed = check_signed_data(der, detached)
    except CmsFailure as failure:
        if failure.status == "encrypted":
            return _result("none", failure.sentence,
                           reason_fr="le message est chiffré : il faut le déchiffrer avant de "
                           "vérifier sa signature")
        status: Status = "tampered" if failure.status == "tampered" else "malformed"
        result = _result(status, failure.sentence)
        if failure.status == "unsupported":
            return SignatureResult(**{**result.__dict__, "smtp_status": "5.7.6"})
        return result
    check = trust.verify(signed.signer, signed.certificates, usage="smime", at=at)
    if not check.ok:
        return _result(check.status, check.reason, signed.signer, signed.content)
    signer = _signer_facts(signed.signer)
    if from_address is not None:
        sender = _sender_address(from_address)
        issued_to = signer.issued_to
        if sender not in issued_to:
            shown = ", ".join(issued_to) or "no address"
            return _result("address_mismatch", f"the message is signed by {shown}, not by the "
                           f"sender {sender or from_address}", signed.signer, signed.content,
                           reason_fr=f"le message est signé par {shown} et non par l'expéditeur "
                           f"{sender or from_address}")
    return _result("valid", f"valid S/MIME signature of {signer.subject}", signed.signer, signed.content)


# --- encryption ---------------------------------------------------------------------------

def encrypt(mime_bytes: bytes, recipient_certs: Sequence[x509.Certificate]) -> bytes:
    """An application/pkcs7-mime enveloped-data message (AES-256-CBC) for RSA recipients."""
    outer, inner = split_entity(mime_bytes)
    builder = pkcs7.PKCS7EnvelopeBuilder().set_data(inner)
    for cert in recipient_certs:
        builder = builder.add_recipient(cert)
    builder = builder.set_content_encryption_algorithm(algorithms.AES256)
    der = builder.encrypt(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])
    return _assemble(outer, [
        b'Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name="smime.p7m"',
        b"Content-Transfer-Encoding: base64",
        b'Content-Disposition: attachment; filename="smime.p7m"'], base64_lines(der))


def decrypt(raw: bytes, cert: x509.Certificate, key: PrivateKey) -> bytes:
    """The inner MIME entity of an enveloped-data message; ValueError if it is not one for us."""
    head, body = split_head(raw)
    msg = _HEADERS.parsebytes(head, headersonly=True)
    if msg.get_content_type() not in _OPAQUE_TYPES:
        raise ValueError("the message is not an application/pkcs7-mime message")
    der = base64.b64decode(re.sub(rb"\s+", b"", body))
    return pkcs7.pkcs7_decrypt_der(der, cert, key, [])  # type: ignore[arg-type]
