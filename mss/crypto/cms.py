"""Check a CMS SignedData (RFC 5652) against the exact bytes it signs.

``cryptography`` can build CMS but not verify it, so the structure is read
with ``asn1crypto``: the signer's certificate is found by its identifier,
the ``messageDigest`` signed attribute is compared with the digest of the
signed bytes, and the signature is checked over the DER of the signed
attributes (re-tagged as a SET, RFC 5652 section 5.4) with RSA PKCS#1 v1.5,
RSA-PSS or ECDSA. Trust in the certificate is decided elsewhere
(``mss.crypto.trust``).
"""

from __future__ import annotations

import functools
import hmac
from dataclasses import dataclass
from typing import Any, Literal

from asn1crypto import cms as asn1_cms
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha224": hashes.SHA224, "sha256": hashes.SHA256, "sha384": hashes.SHA384,
    "sha512": hashes.SHA512, "sha3_256": hashes.SHA3_256, "sha3_384": hashes.SHA3_384,
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
    """Parse ``der`` and check its first signer over ``detached_content`` or the embedded content."""
    try:
        return _check(der, detached_content)
    except CmsFailure:
        raise
    except Exception as exc:  # noqa: BLE001 - any parse error of hostile input is "malformed"
        raise CmsFailure("malformed", f"the CMS signature cannot be read ({type(exc).__name__})"
                         ) from None


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
        content = bytes(embedded.native) if isinstance(embedded.native, bytes) else embedded.contents
    else:
        content = detached_content
    loaded = tuple(_load_certificate(c.chosen.dump()) for c in signed["certificates"] if c.name == "certificate")
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
        if "content_type" in values and \
                values["content_type"][0].native != encap["content_type"].native:
            raise CmsFailure("malformed", "the signed content-type attribute does not match")
        declared = values["message_digest"][0].native
        if not hmac.compare_digest(declared, _digest(algorithm, content)):
            raise CmsFailure("tampered", "the message was changed after it was signed "
                             "(its digest no longer matches the signature)")
        to_verify = b"\x31" + attrs.dump()[1:]
    else:
        to_verify = content
    _verify_signature(signer, signer_info, algorithm, to_verify)
    return SignedContent(signer.certificate, tuple(c.certificate for c in loaded), content, digest_name)


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
    try:
        ski: bytes | None = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        ski = None
    try:
        key: Any = cert.public_key()
    except (ValueError, UnsupportedAlgorithm):  # then it cannot be the signer: "unsupported" if it is named
        key = None
    return _LoadedCertificate(cert, cert.issuer.public_bytes(), cert.serial_number, ski, key)


def _digest(algorithm: hashes.HashAlgorithm, data: bytes) -> bytes:
    h = hashes.Hash(algorithm)
    h.update(data)
    return h.finalize()


def _find_signer(sid: asn1_cms.SignerIdentifier,
                 certs: tuple[_LoadedCertificate, ...]) -> _LoadedCertificate:
    for cert in certs:
        if sid.name == "issuer_and_serial_number":
            wanted = sid.chosen
            if cert.serial_number == wanted["serial_number"].native and \
                    cert.issuer_der == wanted["issuer"].dump():
                return cert
        elif sid.name == "subject_key_identifier" and cert.subject_key_identifier is not None \
                and cert.subject_key_identifier == sid.chosen.native:
            return cert
    raise CmsFailure("malformed", "the signer's certificate is not included in the signature")


def _verify_signature(cert: _LoadedCertificate, signer_info: asn1_cms.SignerInfo,
                      algorithm: hashes.HashAlgorithm, data: bytes) -> None:
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
            key.verify(signature, data,
                       padding.PSS(mgf=padding.MGF1(mgf_hash()),
                                   salt_length=params["salt_length"].native), pss_hash())
        elif kind == "ecdsa" and isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(algorithm))
        else:
            raise CmsFailure("unsupported", f"the signature algorithm {kind} does not fit the "
                             "signer's key or is not accepted")
    except InvalidSignature:
        raise CmsFailure("tampered", "the signature does not match the signed content: the "
                         "message was altered or signed with another key") from None
