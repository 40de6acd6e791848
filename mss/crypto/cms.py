"""Check a CMS SignedData (RFC 5652) against the exact bytes it signs.

``cryptography`` can build CMS but not verify it, so the structure is read
with ``asn1crypto``: the signer's certificate is found by its identifier,
the ``messageDigest`` signed attribute is compared with the digest of the
signed bytes, and the signature is checked over the DER of the signed
attributes (re-tagged as a SET, RFC 5652 section 5.4) with RSA PKCS#1 v1.5,
RSA-PSS or ECDSA. A signature in strict DER is first read by a small DER
walker that checks the same things much faster (``_check_strict_der``);
whatever it does not accept goes to asn1crypto. Trust in the certificate is
decided elsewhere (``mss.crypto.trust``).
"""

from __future__ import annotations

import functools
import hmac
import re
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from asn1crypto import algos as asn1_algos
from asn1crypto import cms as asn1_cms
from asn1crypto import core as asn1_core
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
    "sha3_256": hashes.SHA3_256,
    "sha3_384": hashes.SHA3_384,
    "sha3_512": hashes.SHA3_512,
}

FailureStatus = Literal["malformed", "tampered", "unsupported", "encrypted"]


class CmsFailure(Exception):
    """The CMS structure is unreadable, unsupported, or does not match the signed bytes."""

    def __init__(self, status: FailureStatus, sentence: str) -> None:
        super().__init__(sentence)
        self.status = status
        self.sentence = sentence


@dataclass(frozen=True)
class SignedContent:
    """A signature that matches its content; the signer's certificate is not yet trusted."""

    signer: x509.Certificate
    certificates: tuple[x509.Certificate, ...]
    content: bytes
    digest_algorithm: str


def check_signed_data(der: bytes, detached_content: bytes | None = None) -> SignedContent:
    """Parse ``der`` and check its first signer over ``detached_content`` or the embedded
    content."""
    try:
        checked = _check_strict_der(der, detached_content)
    except Exception:  # noqa: BLE001 - whatever the quick reading cannot take, the full one judges
        checked = None
    if checked is not None:
        return checked
    try:
        return _check(der, detached_content)
    except CmsFailure:
        raise
    except Exception as exc:  # noqa: BLE001 - any parse error of hostile input is "malformed"
        raise CmsFailure(
            "malformed", f"the CMS signature cannot be read ({type(exc).__name__})"
        ) from None


def content_kind(der: bytes) -> str:
    """The contentType of a CMS ContentInfo (RFC 5652 §3) by its asn1crypto name: ``signed_data``,
    ``enveloped_data``, ``authenticated_enveloped_data`` (RFC 5083), ``compressed_data`` (RFC
    3274)...

    This OID, not the ``smime-type`` parameter a sender chose, says what an opaque S/MIME body
    is (RFC 8551 §3.2.2). Read from the DER headers alone; by asn1crypto when not strict DER (BER).
    CmsFailure("malformed") when it cannot be read.
    """
    try:  # DER headers only: the content itself is skipped, not read
        (info,) = _elements(der, 0, len(der), 1)
        inner = _elements(der, info.start, info.end, 2) if info.tag == 0x30 else []
        if inner and inner[0].tag == 0x06:
            name = _CONTENT_TYPE_NAMES.get(_oid(der, inner[0]))
            if name is not None:
                return name
    except (ValueError, IndexError):
        pass
    try:
        name = asn1_cms.ContentInfo.load(der, strict=True)["content_type"].native
    except Exception:  # noqa: BLE001 - any parse error of hostile input is "malformed"
        raise CmsFailure("malformed", "the S/MIME body is not a CMS structure") from None
    return str(name)


def _check(der: bytes, detached_content: bytes | None) -> SignedContent:
    info = asn1_cms.ContentInfo.load(der, strict=True)
    kind = info["content_type"].native
    if kind in ("enveloped_data", "authenticated_enveloped_data"):
        raise CmsFailure("encrypted", "the message is encrypted; decrypt it before verifying")
    if kind != "signed_data":
        raise CmsFailure("malformed", f"the CMS content is {kind}, not a signature")
    signed = info["content"]
    encap = signed["encap_content_info"]
    if detached_content is None:
        embedded = encap["content"]
        if embedded.native is None:
            raise CmsFailure("malformed", "the signature carries no content and none was given")
        content = (
            bytes(embedded.native) if isinstance(embedded.native, bytes) else embedded.contents
        )
    else:
        content = detached_content
    loaded = tuple(
        _load_certificate(c.chosen.dump())
        for c in signed["certificates"]
        if c.name == "certificate"
    )
    if len(signed["signer_infos"]) == 0:
        raise CmsFailure("malformed", "the CMS signature has no signer")
    signer_info = signed["signer_infos"][0]
    signer = _find_signer(signer_info["sid"], loaded)
    digest_name = signer_info["digest_algorithm"]["algorithm"].native
    if digest_name not in _HASHES:
        raise CmsFailure("unsupported", f"the digest algorithm {digest_name} is not accepted")
    algorithm = _HASHES[digest_name]()
    attrs = signer_info["signed_attrs"]
    if attrs.contents is not None and len(attrs) > 0:
        values = {a["type"].native: a["values"] for a in attrs}
        if "message_digest" not in values:
            raise CmsFailure("malformed", "the signed attributes lack the message digest")
        if (
            "content_type" in values
            and values["content_type"][0].native != encap["content_type"].native
        ):
            raise CmsFailure("malformed", "the signed content-type attribute does not match")
        declared = values["message_digest"][0].native
        if not hmac.compare_digest(declared, _digest(algorithm, content)):
            raise CmsFailure(
                "tampered",
                "the message was changed after it was signed "
                "(its digest no longer matches the signature)",
            )
        to_verify = b"\x31" + attrs.dump()[1:]
    else:
        to_verify = content
    _verify_signature(signer, signer_info, algorithm, to_verify)
    return SignedContent(
        signer.certificate, tuple(c.certificate for c in loaded), content, digest_name
    )


# --- the quick reading of a signature in strict DER ----------------------------------------
#
# Building the asn1crypto structure cost more than everything else of a verification. A
# signature as S/MIME agents write it (strict DER, the certificates included, signed
# attributes, RSA PKCS#1 v1.5 or ECDSA) is read here with a small DER walker that checks
# the same things as ``_check``: it answers only when the signature verifies, and returns
# None for anything else (other shapes, BER, RSA-PSS, a wrong digest or signature) so that
# ``_check`` decides, with its own status and sentence. It accepts a subset of what
# ``_check`` accepts (every structure it reads must be exactly the expected one), and its
# tables come from asn1crypto's, so both read the same names (tests/test_cms_strict_der.py).

_SIGNED_DATA = asn1_core.ObjectIdentifier("1.2.840.113549.1.7.2").contents
_CONTENT_TYPE_NAMES = {
    asn1_core.ObjectIdentifier(dotted).contents: name
    for dotted, name in asn1_cms.ContentType._map.items()
}
_DIGEST_NAMES = {
    asn1_core.ObjectIdentifier(dotted).contents: name
    for dotted, name in asn1_algos.DigestAlgorithmId._map.items()
    if name in _HASHES
}
_ATTRIBUTE_NAMES = {
    asn1_core.ObjectIdentifier(dotted).contents: name
    for dotted, name in asn1_cms.CMSAttributeType._map.items()
}


def _signature_kinds() -> dict[bytes, str]:
    kinds = {}
    for dotted, name in asn1_algos.SignedDigestAlgorithmId._map.items():
        kind = asn1_algos.SignedDigestAlgorithm({"algorithm": name}).signature_algo
        if kind in ("rsassa_pkcs1v15", "ecdsa"):
            kinds[asn1_core.ObjectIdentifier(dotted).contents] = kind
    return kinds


_SIGNATURE_KINDS = _signature_kinds()
_NON_MINIMAL_ARC = re.compile(rb"(?:\A|[\x00-\x7f])\x80")  # an arc starting with a zero group
# version, digestAlgorithms, encapContentInfo, [0] certificates, [1] crls (optional), signerInfos
_SIGNED_DATA_SHAPES = {(0x02, 0x31, 0x30, 0xA0, 0x31), (0x02, 0x31, 0x30, 0xA0, 0xA1, 0x31)}
# version, sid (issuerAndSerialNumber or [0] subjectKeyIdentifier), digestAlgorithm,
# [0] signedAttrs, signatureAlgorithm, signature, [1] unsignedAttrs (optional)
_SIGNER_INFO_SHAPES = {
    (0x02, sid, 0x30, 0xA0, 0x30, 0x04, *unsigned)
    for sid in (0x30, 0x80)
    for unsigned in ((), (0xA1,))
}


class _Element(NamedTuple):
    """One DER element of ``der``: its tag byte, where its header, contents and end are."""

    tag: int
    at: int
    start: int
    end: int


def _elements(der: bytes, start: int, end: int, most: int | None = None) -> list[_Element]:
    """The elements that exactly fill ``der[start:end]``; ValueError unless in strict DER or past
    ``most``."""
    found: list[_Element] = []
    at = start
    while at < end:
        if most is not None and len(found) == most:  # hostile input: stop before reading on
            raise ValueError("more elements than the structure has")
        tag, length, contents = der[at], der[at + 1], at + 2
        if tag & 0x1F == 0x1F:
            raise ValueError("high tag number")
        if length & 0x80:
            size = length & 0x7F
            if not 1 <= size <= 4 or der[contents] == 0:
                raise ValueError("indefinite or non-minimal length")
            length = int.from_bytes(der[contents : contents + size], "big")
            contents += size
            if length < 0x80:
                raise ValueError("non-minimal length")
        if contents + length > end:
            raise ValueError("truncated element")
        found.append(_Element(tag, at, contents, contents + length))
        at = contents + length
    return found


def _inside(der: bytes, element: _Element, *shape: int) -> list[_Element]:
    """The elements inside ``element``, which must have exactly these tags."""
    inner = _elements(der, element.start, element.end, len(shape))
    if tuple(e.tag for e in inner) != shape:
        raise ValueError(f"unexpected structure {[e.tag for e in inner]}")
    return inner


def _oid(der: bytes, element: _Element) -> bytes:
    """An OBJECT IDENTIFIER in its only (minimal) encoding, so that equal bytes mean equal names."""
    contents = der[element.start : element.end]
    if (
        element.tag != 0x06
        or not contents
        or contents[-1] & 0x80
        or _NON_MINIMAL_ARC.search(contents)
    ):
        raise ValueError("not a minimal object identifier")
    return contents


def _algorithm(der: bytes, element: _Element, names: dict[bytes, str]) -> str | None:
    """The name of an AlgorithmIdentifier without parameters or with NULL ones; None if not in
    ``names``."""
    inner = _elements(der, element.start, element.end, 2)
    if len(inner) == 2 and der[inner[1].at : inner[1].end] == b"\x05\x00":
        inner.pop()
    return names.get(_oid(der, inner[0])) if len(inner) == 1 else None


def _value(der: bytes, element: _Element) -> bytes:
    return der[element.start : element.end]


def _check_strict_der(der: bytes, detached_content: bytes | None) -> SignedContent | None:
    """``_check`` for a signature in strict DER that verifies; None (or an exception) for
    ``_check`` to judge."""
    (info,) = _elements(der, 0, len(der), 1)
    if info.tag != 0x30:
        return None
    kind, wrapped = _inside(der, info, 0x06, 0xA0)
    if _oid(der, kind) != _SIGNED_DATA:
        return None
    (signed,) = _inside(der, wrapped, 0x30)
    fields = _elements(der, signed.start, signed.end, 6)
    if tuple(f.tag for f in fields) not in _SIGNED_DATA_SHAPES:
        return None
    _, _, encap, certificates, *_, signer_infos = fields
    encap_fields = _elements(der, encap.start, encap.end, 2)
    if tuple(f.tag for f in encap_fields) not in ((0x06,), (0x06, 0xA0)):
        return None
    content_type = _oid(der, encap_fields[0])
    if detached_content is not None:
        content = detached_content
    else:
        (embedded,) = _inside(der, encap_fields[1], 0x04)  # IndexError when there is none
        content = _value(der, embedded)
    certs = _elements(der, certificates.start, certificates.end)
    if any(c.tag != 0x30 for c in certs):
        return None
    loaded = tuple(_load_certificate(der[c.at : c.end]) for c in certs)
    signer_info = _elements(der, signer_infos.start, signer_infos.end)[0]
    parts = _elements(der, signer_info.start, signer_info.end, 7)
    if signer_info.tag != 0x30 or tuple(p.tag for p in parts) not in _SIGNER_INFO_SHAPES:
        return None
    _, sid, digest_algorithm, attrs, signature_algorithm, signature = parts[:6]
    signer = _strict_signer(der, sid, loaded)
    digest_name = _algorithm(der, digest_algorithm, _DIGEST_NAMES)
    kind_name = _algorithm(der, signature_algorithm, _SIGNATURE_KINDS)
    if signer is None or digest_name is None or kind_name is None:
        return None
    values: dict[object, _Element] = {}
    for attr in _elements(der, attrs.start, attrs.end):
        if attr.tag != 0x30:
            return None
        name, attr_values = _inside(der, attr, 0x06, 0x31)
        oid = _oid(der, name)
        values[_ATTRIBUTE_NAMES.get(oid, oid)] = attr_values  # the last one wins, as in _check
    if "message_digest" not in values:
        return None
    if "content_type" in values:
        (declared_type,) = _elements(
            der, values["content_type"].start, values["content_type"].end, 1
        )
        if _oid(der, declared_type) != content_type:
            return None
    (declared,) = _inside(der, values["message_digest"], 0x04)
    algorithm = _HASHES[digest_name]()
    if not hmac.compare_digest(_value(der, declared), _digest(algorithm, content)):
        return None
    to_verify = b"\x31" + der[attrs.at + 1 : attrs.end]
    key = signer.public_key
    if kind_name == "rsassa_pkcs1v15" and isinstance(key, rsa.RSAPublicKey):
        key.verify(_value(der, signature), to_verify, padding.PKCS1v15(), algorithm)
    elif kind_name == "ecdsa" and isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(_value(der, signature), to_verify, ec.ECDSA(algorithm))
    else:
        return None
    return SignedContent(
        signer.certificate, tuple(c.certificate for c in loaded), content, digest_name
    )


def _strict_signer(
    der: bytes, sid: _Element, certs: tuple[_LoadedCertificate, ...]
) -> _LoadedCertificate | None:
    """``_find_signer`` on the DER of the signer identifier."""
    if sid.tag == 0x30:
        issuer, serial = _inside(der, sid, 0x30, 0x02)
        issuer_der = der[issuer.at : issuer.end]
        serial_number = int.from_bytes(_value(der, serial), "big", signed=True)
        return next(
            (c for c in certs if c.serial_number == serial_number and c.issuer_der == issuer_der),
            None,
        )
    ski = _value(der, sid)
    return next((c for c in certs if c.subject_key_identifier == ski), None)


@dataclass(frozen=True)
class _LoadedCertificate:
    """A certificate of a signature, with what finding and checking the signer reads of it."""

    certificate: x509.Certificate
    issuer_der: bytes
    serial_number: int
    subject_key_identifier: bytes | None
    public_key: Any


@functools.lru_cache(maxsize=1024)
def _load_certificate(der: bytes) -> _LoadedCertificate:
    """Keyed by the exact DER: a sender's certificates come with each of their messages, and
    parsing them, their issuer name and their public key again each time cost more than the
    signature check itself."""
    cert = x509.load_der_x509_certificate(der)
    # cryptography reads the names lazily: a subject it cannot parse (found by the fuzzer) must
    # make this signature "malformed" here, not raise later in whoever names the signer.
    cert.subject.rfc4514_string()
    cert.issuer.rfc4514_string()
    try:
        ski: bytes | None = cert.extensions.get_extension_for_class(
            x509.SubjectKeyIdentifier
        ).value.digest
    except x509.ExtensionNotFound:
        ski = None
    try:
        key: Any = cert.public_key()
    except (
        ValueError,
        UnsupportedAlgorithm,
    ):  # then it cannot be the signer: "unsupported" if it is named
        key = None
    return _LoadedCertificate(cert, cert.issuer.public_bytes(), cert.serial_number, ski, key)


def _digest(algorithm: hashes.HashAlgorithm, data: bytes) -> bytes:
    h = hashes.Hash(algorithm)
    h.update(data)
    return h.finalize()


def _find_signer(
    sid: asn1_cms.SignerIdentifier, certs: tuple[_LoadedCertificate, ...]
) -> _LoadedCertificate:
    for cert in certs:
        if sid.name == "issuer_and_serial_number":
            wanted = sid.chosen
            if (
                cert.serial_number == wanted["serial_number"].native
                and cert.issuer_der == wanted["issuer"].dump()
            ):
                return cert
        elif (
            sid.name == "subject_key_identifier"
            and cert.subject_key_identifier is not None
            and cert.subject_key_identifier == sid.chosen.native
        ):
            return cert
    raise CmsFailure("malformed", "the signer's certificate is not included in the signature")


def _verify_signature(
    cert: _LoadedCertificate,
    signer_info: asn1_cms.SignerInfo,
    algorithm: hashes.HashAlgorithm,
    data: bytes,
) -> None:
    sig_algo = signer_info["signature_algorithm"]
    kind = sig_algo.signature_algo
    signature = signer_info["signature"].native
    key = cert.public_key
    try:
        if kind == "rsassa_pkcs1v15" and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), algorithm)
        elif kind == "rsassa_pss" and isinstance(key, rsa.RSAPublicKey):
            params = sig_algo["parameters"]
            pss_hash = _HASHES.get(params["hash_algorithm"]["algorithm"].native)
            mgf_hash = _HASHES.get(params["mask_gen_algorithm"]["parameters"]["algorithm"].native)
            if pss_hash is None or mgf_hash is None:
                raise CmsFailure("unsupported", "the RSA-PSS parameters use an unaccepted hash")
            key.verify(
                signature,
                data,
                padding.PSS(mgf=padding.MGF1(mgf_hash()), salt_length=params["salt_length"].native),
                pss_hash(),
            )
        elif kind == "ecdsa" and isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(algorithm))
        else:
            raise CmsFailure(
                "unsupported",
                f"the signature algorithm {kind} does not fit the signer's key or is not accepted",
            )
    except InvalidSignature:
        raise CmsFailure(
            "tampered",
            "the signature does not match the signed content: the "
            "message was altered or signed with another key",
        ) from None
