"""The quick reading of strict-DER signatures judges every signature exactly as asn1crypto's.

``mss.crypto.cms._check_strict_der`` answers only for a signature it reads in full
and that verifies; anything else goes to ``_check``. Hostile input is the point:
every byte of real signatures is changed in turn, signed attributes are crafted
(repeated, contradictory, non-minimal object identifiers), and each time the
outcome of ``check_signed_data`` (its content, or its status and sentence) must be
the one ``_check`` alone gives.
"""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import pytest
from asn1crypto import cms as asn1_cms
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from mss.crypto import cms, smime
from mss.crypto.cms import CmsFailure, SignedContent
from tests.fixtures_pki import DevPki, Identity
from tests.test_plain_headers import signed_corpus
from tests.test_smime import DOCTOR, ID_NAT, MESSAGE

Outcome = SignedContent | tuple[str, str]


def outcome(der: bytes, detached: bytes | None, *, quick: bool = True) -> Outcome:
    """The content ``check_signed_data`` finds, or its status and sentence; with ``_check`` alone
    unless quick."""
    with mock.patch.object(
        cms, "_check_strict_der", cms._check_strict_der if quick else lambda der, c: None
    ):
        try:
            return cms.check_signed_data(der, detached)
        except CmsFailure as failure:
            return failure.status, failure.sentence


def assert_judged_as_before(der: bytes, detached: bytes | None) -> bool:
    """Same outcome both ways; True when the quick reading answered."""
    try:
        quick = cms._check_strict_der(der, detached)
    except Exception:  # noqa: BLE001 - the quick reading gives up by raising, too
        quick = None
    full = outcome(der, detached, quick=False)
    assert outcome(der, detached) == full
    if quick is not None:
        assert quick == full
    return quick is not None


@pytest.fixture(scope="module")
def rsa_doctor(dev_pki: DevPki) -> Identity:
    return dev_pki.issue_smime(DOCTOR, ID_NAT, key_type="rsa")


def test_real_signatures_are_read_quickly_and_the_same(dev_pki: DevPki, tmp_path: Path) -> None:
    answered = []
    for raw, _ in signed_corpus(dev_pki, tmp_path):
        try:
            found = smime.extract_signed(raw)
        except CmsFailure:
            continue  # encrypted
        assert found is not None
        answered.append(assert_judged_as_before(*found))
    # ours (RSA, EC; detached, opaque), convocations, OpenSSL's (detached, opaque, keyid, sha512);
    # not OpenSSL's RSA-PSS nor its signature without signed attributes: asn1crypto reads those
    assert sum(answered) >= 12 and not all(answered)


@pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")
@pytest.mark.parametrize("detached", [True, False], ids=["detached", "opaque"])
def test_changed_bytes_are_judged_as_before(rsa_doctor: Identity, detached: bool) -> None:
    """Every byte of the structure around the certificates (a few of theirs), twice changed."""
    der, content = smime.extract_signed(rsa_doctor.sign(MESSAGE, detached=detached)) or (b"", None)
    signed = cms._elements(der, cms._elements(der, 0, len(der))[0].start, len(der))[1]
    fields = cms._elements(der, cms._elements(der, signed.start, signed.end)[0].start, signed.end)
    certificates = fields[3]
    step = 1 if detached else 4
    around = [
        *range(0, certificates.start + 40, step),
        *range(certificates.end - 40, len(der), step),
        *range(certificates.start + 40, certificates.end - 40, 9 * step),
    ]
    for at in around:
        for flip in (0x01, 0x80):
            changed = der[:at] + bytes([der[at] ^ flip]) + der[at + 1 :]
            assert_judged_as_before(changed, content)
    for length in range(0, len(der), 7):
        assert_judged_as_before(der[:length], content)
    assert_judged_as_before(der + b"\x00", content)
    assert_judged_as_before(der, (content or b"") + b"x" if detached else None)


def resigned(identity: Identity, der: bytes, attributes: list[asn1_cms.CMSAttribute]) -> bytes:
    """The same signature with other signed attributes in this order, signed again by
    ``identity``."""
    info = asn1_cms.ContentInfo.load(der)
    signer_info = info["content"]["signer_infos"][0]
    contents = b"".join(a.dump() for a in attributes)  # not CMSAttributes(...): it would sort them
    signer_info["signed_attrs"] = asn1_cms.CMSAttributes.load(
        b"\x31" + _length(len(contents)) + contents
    )
    signed = b"\x31" + signer_info["signed_attrs"].dump()[1:]
    signer_info["signature"] = identity.key.sign(signed, padding.PKCS1v15(), hashes.SHA256())  # type: ignore[call-arg, arg-type]
    return info.dump()


def _length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    size = (length.bit_length() + 7) // 8
    return bytes([0x80 | size]) + length.to_bytes(size, "big")


def attribute(name: str, *values: object) -> asn1_cms.CMSAttribute:
    return asn1_cms.CMSAttribute({"type": name, "values": list(values)})


def raw_attribute(oid: bytes, value: bytes) -> asn1_cms.CMSAttribute:
    """An attribute whose type is written as given (a non-minimal encoding, for one)."""
    inner = b"\x06" + bytes([len(oid)]) + oid + b"\x31" + bytes([len(value)]) + value
    return asn1_cms.CMSAttribute.load(b"\x30" + bytes([len(inner)]) + inner)


def test_crafted_signed_attributes_are_judged_as_before(rsa_doctor: Identity) -> None:
    der, content = smime.extract_signed(rsa_doctor.sign(MESSAGE)) or (b"", None)
    assert content is not None
    digest = cms._digest(hashes.SHA256(), content)
    wrong = bytes(32)
    md_oid = bytes.fromhex("2a864886f70d010904")  # 1.2.840.113549.1.9.4, messageDigest
    md_oid_padded = bytes.fromhex("2a80864886f70d010904")  # the same arcs, one with a zero group
    data = "data"
    cases = {
        "as-signed": (
            [attribute("content_type", data), attribute("message_digest", digest)],
            "valid",
        ),
        "no-content-type": ([attribute("message_digest", digest)], "valid"),
        "right-digest-last": (
            [attribute("message_digest", wrong), attribute("message_digest", digest)],
            "valid",
        ),
        "wrong-digest-last": (
            [attribute("message_digest", digest), attribute("message_digest", wrong)],
            "tampered",
        ),
        "two-digest-values": (
            [raw_attribute(md_oid, b"\x04\x20" + digest + b"\x04\x20" + wrong)],
            "valid",
        ),
        "two-digest-values-wrong-first": (
            [raw_attribute(md_oid, b"\x04\x20" + wrong + b"\x04\x20" + digest)],
            "tampered",
        ),
        "other-content-type": (
            [attribute("content_type", "signed_data"), attribute("message_digest", digest)],
            "malformed",
        ),
        "two-content-types": (
            [attribute("content_type", data, "signed_data"), attribute("message_digest", digest)],
            "valid",
        ),
        "no-digest": ([attribute("content_type", data)], "malformed"),
        "unknown-padded-oid": (
            [
                attribute("message_digest", digest),
                raw_attribute(bytes.fromhex("2a80030405"), b"\x05\x00"),
            ],
            "valid",
        ),
        "padded-digest-oid-last": (
            [
                attribute("message_digest", digest),
                raw_attribute(md_oid_padded, b"\x04\x20" + wrong),
            ],
            "tampered",
        ),
        "minimal-digest-oid-raw": ([raw_attribute(md_oid, b"\x04\x20" + digest)], "valid"),
    }
    read_quickly = {"as-signed", "no-content-type", "right-digest-last", "minimal-digest-oid-raw"}
    for name, (attributes, expected) in cases.items():
        crafted = resigned(rsa_doctor, der, attributes)
        assert assert_judged_as_before(crafted, content) is (name in read_quickly), name
        result = outcome(crafted, content)
        status = "valid" if isinstance(result, SignedContent) else result[0]
        assert status == expected, name
