"""S/MIME 4.0 (RFC 8551): sign, verify, encrypt and decrypt whole messages.

``sign`` moves the message's content headers into the signed MIME entity and
keeps the others (From, To, Subject, Date...) on the outer message. ``verify``
takes the signed bytes straight from the raw message: for multipart/signed
the exact bytes of the first part, put in canonical CRLF form (RFC 8551
section 3.1.1); the message is never re-serialised by the email package.

What kind of S/MIME a message is (``read_form``) is read once, the same way for
every reader (the gateway's content stage, ``verify``, the portal, DMP filing):
multipart/signed with a pkcs7-signature protocol is a detached signature; an
``application/pkcs7-mime`` (or ``x-pkcs7-mime``) body is what its CMS contentType
OID says (signed-data, enveloped-data, authEnveloped-data, compressed-data),
whatever its ``smime-type`` parameter says or omits (RFC 8551 §3.2.2).

The status codes and sentences of each outcome are ``mss.policy.signature``'s
table (``signature_verdict``), the one the gateway decides with.
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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.parser import BytesParser
from typing import Literal, NamedTuple

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.serialization import pkcs7

from mss.crypto.certificates import id_nat_from_subject, rfc822_names, subject_text
from mss.crypto.cms import CmsFailure, check_signed_data, content_kind
from mss.crypto.keys import PrivateKey
from mss.crypto.trust import TrustStore
from mss.email_policy import header_fields, plain_content_type
from mss.policy.signature import signature_verdict

Status = Literal[
    "valid",
    "none",
    "encrypted",
    "compressed",
    "tampered",
    "unknown_ca",
    "expired",
    "revoked",
    "address_mismatch",
    "malformed",
    "unsupported",
    "bad_eku",
]
# What a message is, S/MIME-wise, at its top level.
Kind = Literal["signed", "opaque_signed", "enveloped", "auth_enveloped", "compressed", "unsigned"]
_KIND_OF_CONTENT: dict[str, Kind] = {
    "signed_data": "opaque_signed",
    "enveloped_data": "enveloped",
    "authenticated_enveloped_data": "auth_enveloped",
    "compressed_data": "compressed",
}
_AUTH_RESULT = {
    "valid": "pass",
    "none": "none",
    "encrypted": "neutral",
    "compressed": "neutral",
    "malformed": "permerror",
    "unsupported": "permerror",
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
        return auth_result_word(self.status)

    def authentication_results_clause(self) -> str:
        """``smime=<result> body.smime-identifier=<address>`` (RFC 7281) for
        Authentication-Results."""
        clause = f"smime={self.auth_result}"
        if self.signer_address:
            clause += f" body.smime-identifier={self.signer_address}"
        if self.signer_serial:
            clause += f" body.smime-serial={self.signer_serial}"
        return clause


def auth_result_word(status: str) -> str:
    """The RFC 8601 / RFC 7281 result word of the ``smime`` method for a verification status.

    An encrypted or compressed message is ``neutral``: its signature, if any, is inside.
    """
    return _AUTH_RESULT.get(status, "fail")


def _result(
    status: Status,
    reason: str,
    signer: x509.Certificate | None = None,
    content: bytes | None = None,
    reason_fr: str | None = None,
) -> SignatureResult:
    facts = (
        _signer_facts(signer) if signer is not None else _SignerFacts((), None, None, None, None)
    )
    enhanced, _, french = signature_verdict(status)
    return SignatureResult(
        status=status,
        reason=reason,
        reason_fr=reason_fr or french,
        smtp_status=enhanced,
        signer_address=facts.address,
        signer_subject=facts.subject,
        signer_id_nat=facts.id_nat,
        signer_serial=facts.serial,
        signer_certificate=signer,
        content=content,
    )


class _SignerFacts(NamedTuple):
    issued_to: tuple[str, ...]  # the certificate's e-mail addresses in lower case
    address: str | None
    subject: str | None
    id_nat: str | None
    serial: str | None


@functools.lru_cache(maxsize=1024)
def _signer_facts(cert: x509.Certificate) -> _SignerFacts:
    """What a result reports of its signer, read once per certificate: a sender signs many
    messages."""
    addresses = rfc822_names(cert)
    return _SignerFacts(
        tuple(a.lower() for a in addresses),
        addresses[0] if addresses else None,
        subject_text(cert.subject),
        id_nat_from_subject(cert.subject),
        format(cert.serial_number, "X"),
    )


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
    return raw[: match.end()], raw[match.end() :]


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
    return b"\r\n".join(text[i : i + 76] for i in range(0, len(text), 76)) + b"\r\n"


# --- signing ------------------------------------------------------------------------------


def sign(
    mime_bytes: bytes,
    cert: x509.Certificate,
    key: PrivateKey,
    *,
    detached: bool = True,
    chain: Sequence[x509.Certificate] = (),
    digest: str = "sha256",
) -> bytes:
    """A complete signed message: multipart/signed (detached) or application/pkcs7-mime (opaque)."""
    outer, inner = split_entity(mime_bytes)
    algorithm = {"sha256": hashes.SHA256(), "sha384": hashes.SHA384(), "sha512": hashes.SHA512()}[
        digest
    ]
    builder = pkcs7.PKCS7SignatureBuilder().set_data(inner).add_signer(cert, key, algorithm)  # type: ignore[arg-type]
    for extra in chain:
        if extra != cert:
            builder = builder.add_certificate(extra)
    options = [pkcs7.PKCS7Options.Binary]
    if detached:
        options.append(pkcs7.PKCS7Options.DetachedSignature)
    der = builder.sign(serialization.Encoding.DER, options)
    if not detached:
        return _assemble(
            outer,
            [
                b'Content-Type: application/pkcs7-mime; smime-type=signed-data; name="smime.p7m"',
                b"Content-Transfer-Encoding: base64",
                b'Content-Disposition: attachment; filename="smime.p7m"',
            ],
            base64_lines(der),
        )
    boundary = f"----=_mss_signed_{secrets.token_hex(12)}".encode()
    body = (
        b"This is an S/MIME signed message\r\n\r\n--"
        + boundary
        + b"\r\n"
        + inner
        + b"\r\n--"
        + boundary
        + b"\r\n"
        + b'Content-Type: application/pkcs7-signature; name="smime.p7s"\r\n'
        + b"Content-Transfer-Encoding: base64\r\n"
        + b'Content-Disposition: attachment; filename="smime.p7s"\r\n\r\n'
        + base64_lines(der)
        + b"\r\n--"
        + boundary
        + b"--\r\n"
    )
    micalg = _MICALG[digest].encode()
    return _assemble(
        outer,
        [
            b'Content-Type: multipart/signed; protocol="application/pkcs7-'
            b'signature"; micalg=' + micalg + b'; boundary="' + boundary + b'"'
        ],
        body,
    )


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
        start = at - 2 if body[max(0, at - 2) : at] == b"\r\n" else max(0, at - 1)
        marks.append((start, end, body.startswith(b"--", at + len(dashes))))
        at = body.find(dashes, end)
    parts = []
    for (_, after, closing), (before, _, _) in itertools.pairwise(marks):
        if closing:
            break
        parts.append(body[after:before])
    return parts


def _delimiter_end(body: bytes, at: int, length: int) -> int | None:
    """Where the delimiter line starting at ``at`` ends (after its line break), or None if it is
    not one."""
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
    """The signature of a plainly written part in strict base64; None for the email package to
    decide."""
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


@dataclass(frozen=True)
class SmimeForm:
    """What a message is at its top level, S/MIME-wise, and the CMS bytes to check when it is
    signed."""

    kind: Kind
    der: bytes = field(
        default=b"", repr=False
    )  # the CMS ContentInfo (opaque body or signature part)
    detached: bytes | None = field(
        default=None, repr=False
    )  # the signed entity of multipart/signed

    @property
    def signed(self) -> bool:
        return self.kind in ("signed", "opaque_signed")

    @property
    def encrypted(self) -> bool:
        return self.kind in ("enveloped", "auth_enveloped")


UNSIGNED = SmimeForm("unsigned")


def framing(
    content_type: str, params: Mapping[str, object]
) -> Literal["multipart", "opaque"] | None:
    """From the top-level Content-Type alone: multipart/signed S/MIME, an opaque CMS body, or
    neither."""
    if content_type == "multipart/signed":
        return (
            "multipart" if str(params.get("protocol") or "").lower() in _SIGNATURE_TYPES else None
        )
    return "opaque" if content_type in _OPAQUE_TYPES else None


def content_type_of(head: bytes) -> tuple[str, dict[str, object]]:
    """The Content-Type of a header block and the parameters S/MIME reads (protocol, boundary,
    smime-type)."""
    return _content_type(head)


def read_form(
    raw: bytes, content_type: tuple[str, Mapping[str, object]] | None = None
) -> SmimeForm:
    """The one reading of what kind of S/MIME ``raw`` is; CmsFailure("malformed") when it cannot
    be read.

    ``content_type`` is the top-level Content-Type when the caller already read it. An
    opaque body's kind is its CMS contentType OID: ``smime-type`` is optional and a
    sender's word (RFC 8551 §3.2.2), so a missing or contradicting one changes nothing.
    """
    head, body = split_head(raw)
    ctype, params = content_type if content_type is not None else _content_type(head)
    shape = framing(ctype, params)
    if shape is None:
        return UNSIGNED
    if shape == "multipart":  # a multipart body is cut here, not parsed
        boundary = params.get("boundary")
        if not isinstance(boundary, str) or not boundary:
            raise CmsFailure("malformed", "the multipart/signed message has no boundary")
        parts = _multipart_parts(body, boundary)
        if len(parts) != 2:
            raise CmsFailure("malformed", f"multipart/signed needs 2 parts, found {len(parts)}")
        return SmimeForm("signed", _signature_der(parts[1]), canonical(parts[0]))
    try:
        der = base64.b64decode(re.sub(rb"\s+", b"", body), validate=True)
    except ValueError:
        raise CmsFailure("malformed", f"the {ctype} body is not base64") from None
    kind = _KIND_OF_CONTENT.get(content_kind(der))
    if kind is None:
        raise CmsFailure(
            "malformed",
            f"the {ctype} body is a CMS {content_kind(der)}, "
            "neither signed, encrypted nor compressed",
        )
    return SmimeForm(kind, der)


def extract_signed(raw: bytes) -> tuple[bytes, bytes | None] | None:
    """(CMS DER, detached content or None) of a signed message; None when it is not signed S/MIME.

    CmsFailure("encrypted") for an encrypted message, ("malformed") for an unreadable one.
    """
    form = read_form(raw)
    if form.signed:
        return form.der, form.detached
    if form.encrypted:
        raise CmsFailure("encrypted", "the message is encrypted; decrypt it before verifying")
    return None


def verify(
    raw: bytes,
    trust: TrustStore,
    *,
    from_address: str | None = None,
    at: dt.datetime | None = None,
    content_type: tuple[str, Mapping[str, object]] | None = None,
) -> SignatureResult:
    """Verify the S/MIME signature of a raw message against ``trust``; never raises on bad input.

    ``content_type``: the top-level Content-Type when the caller already read it (``read_form``).
    """
    try:
        form = read_form(raw, content_type)
        if form.kind == "unsigned":
            return _result("none", "the message carries no S/MIME signature")
        if form.encrypted:
            return _result(
                "encrypted",
                "the message is encrypted (CMS "
                f"{'authEnveloped' if form.kind == 'auth_enveloped' else 'enveloped'}-data): "
                "its signature cannot be checked without decrypting it",
            )
        if form.kind == "compressed":
            return _result(
                "compressed",
                "the message is compressed (CMS compressed-data): its "
                "signature, if any, is inside and is not checked",
            )
        signed = check_signed_data(form.der, form.detached)
    except CmsFailure as failure:
        if failure.status == "encrypted":  # a signature part holding enveloped-data
            return _result("encrypted", failure.sentence)
        status: Status = (
            failure.status if failure.status in ("tampered", "unsupported") else "malformed"
        )
        return _result(status, failure.sentence)
    check = trust.verify(signed.signer, signed.certificates, usage="smime", at=at)
    if not check.ok:
        return _result(check.status, check.reason, signed.signer, signed.content)
    signer = _signer_facts(signed.signer)
    if from_address is not None:
        sender = _sender_address(from_address)
        issued_to = signer.issued_to
        if sender not in issued_to:
            shown = ", ".join(issued_to) or "no address"
            return _result(
                "address_mismatch",
                f"the message is signed by {shown}, not by the sender {sender or from_address}",
                signed.signer,
                signed.content,
                reason_fr=f"le message est signé par {shown} et non par l'expéditeur "
                f"{sender or from_address}",
            )
    return _result(
        "valid", f"valid S/MIME signature of {signer.subject}", signed.signer, signed.content
    )


# --- encryption ---------------------------------------------------------------------------


def encrypt(mime_bytes: bytes, recipient_certs: Sequence[x509.Certificate]) -> bytes:
    """An application/pkcs7-mime enveloped-data message (AES-256-CBC) for RSA recipients."""
    outer, inner = split_entity(mime_bytes)
    builder = pkcs7.PKCS7EnvelopeBuilder().set_data(inner)
    for cert in recipient_certs:
        builder = builder.add_recipient(cert)
    builder = builder.set_content_encryption_algorithm(algorithms.AES256)
    der = builder.encrypt(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])
    return _assemble(
        outer,
        [
            b'Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name="smime.p7m"',
            b"Content-Transfer-Encoding: base64",
            b'Content-Disposition: attachment; filename="smime.p7m"',
        ],
        base64_lines(der),
    )


def decrypt(raw: bytes, cert: x509.Certificate, key: PrivateKey) -> bytes:
    """The inner MIME entity of an enveloped-data message; ValueError if it is not one for us."""
    head, body = split_head(raw)
    msg = _HEADERS.parsebytes(head, headersonly=True)
    if msg.get_content_type() not in _OPAQUE_TYPES:
        raise ValueError("the message is not an application/pkcs7-mime message")
    der = base64.b64decode(re.sub(rb"\s+", b"", body))
    return pkcs7.pkcs7_decrypt_der(der, cert, key, [])  # type: ignore[arg-type]
