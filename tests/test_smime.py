"""S/MIME sign, verify, encrypt and decrypt, with OpenSSL as the oracle both ways.

What a receiving hub must conclude for each kind of message: valid, none,
tampered, unknown CA, expired, revoked, address mismatch, wrong EKU, garbage.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from mss.crypto import pki, smime
from mss.crypto.keys import load_cert
from mss.crypto.trust import TrustStore
from tests.fixtures_pki import DevPki, Identity

OPENSSL = "/usr/bin/openssl"
DOCTOR = "jean.dupont@mss.localhost"
ID_NAT = "899700367917"
INNER = (
    b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    b"Bonjour,\r\nvotre r\xc3\xa9sultat est normal.\r\n.\r\nDr Dupont\r\n"
)
MESSAGE = (
    b"From: Dr Jean Dupont <jean.dupont@mss.localhost>\r\n"
    b"To: 180012B123456@patient.mss.localhost\r\nSubject: =?utf-8?q?R=C3=A9sultat?=\r\n"
    b"Message-ID: <1@mss.localhost>\r\n" + INNER
)
NOW = dt.datetime.now(dt.UTC)


def openssl(*args: str | Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [OPENSSL, *map(str, args)], input=stdin, capture_output=True, timeout=60, check=False
    )


def openssl_verifies(
    raw: bytes, tmp_path: Path, dev_pki: DevPki, *, tool: str = "cms", crl: bool = False
) -> subprocess.CompletedProcess[bytes]:
    path = tmp_path / "in.eml"
    path.write_bytes(raw)
    anchors = tmp_path / "anchors.pem"  # openssl cms reads CRLs from its CAfile
    anchors.write_bytes(
        dev_pki.root_cert.read_bytes() + (dev_pki.crl_path.read_bytes() if crl else b"")
    )
    extra = ["-crl_check"] if crl else []
    return openssl(
        tool, "-verify", "-in", path, "-CAfile", anchors, "-purpose", "smimesign", *extra
    )


@pytest.fixture(scope="module", params=["rsa", "ec"])
def doctor(request: pytest.FixtureRequest, dev_pki: DevPki) -> Identity:
    return dev_pki.issue_smime(DOCTOR, ID_NAT, common_name="Dr Jean Dupont", key_type=request.param)


# --- our signatures, checked by OpenSSL and by us -----------------------------------------


@pytest.mark.parametrize("detached", [True, False], ids=["detached", "opaque"])
def test_our_signature_verifies_with_openssl_and_ours(
    doctor: Identity, dev_pki: DevPki, tmp_path: Path, detached: bool
) -> None:
    raw = doctor.sign(MESSAGE, detached=detached)
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert b"From: Dr Jean Dupont <jean.dupont@mss.localhost>" in head
    assert b"Subject: =?utf-8?q?R=C3=A9sultat?=" in head
    if detached:
        assert b'protocol="application/pkcs7-signature"' in head and b"micalg=sha-256" in head
    else:
        assert b"application/pkcs7-mime; smime-type=signed-data" in head

    for tool in ("cms", "smime"):
        checked = openssl_verifies(raw, tmp_path, dev_pki, tool=tool, crl=True)
        assert checked.returncode == 0, checked.stderr.decode()
        assert checked.stdout.replace(b"\r\n", b"\n") == INNER.replace(b"\r\n", b"\n")

    result = smime.verify(raw, dev_pki.trust, from_address="jean.dupont@MSS.localhost")
    assert result.status == "valid", result.reason
    assert result.ok and result.smtp_status == "2.7.0" and result.auth_result == "pass"
    assert result.signer_address == DOCTOR
    assert result.signer_id_nat == ID_NAT
    assert "CN=899700367917" in (result.signer_subject or "")
    assert result.content == INNER
    assert f"body.smime-identifier={DOCTOR}" in result.authentication_results_clause()


def test_line_endings_changed_in_transit_still_verify(doctor: Identity, dev_pki: DevPki) -> None:
    lf_only = doctor.sign(MESSAGE).replace(b"\r\n", b"\n")
    assert smime.verify(lf_only, dev_pki.trust, from_address=DOCTOR).status == "valid"


# --- OpenSSL's signatures, checked by us ---------------------------------------------------


@pytest.mark.parametrize("mode", ["detached", "opaque", "smime-tool"])
def test_openssl_signature_verifies_with_ours(
    doctor: Identity, dev_pki: DevPki, tmp_path: Path, mode: str
) -> None:
    inner = tmp_path / "inner.txt"
    inner.write_bytes(INNER)
    chain = tmp_path / "chain.pem"
    chain.write_bytes(doctor.chain[0].public_bytes(Encoding.PEM))
    tool = "smime" if mode == "smime-tool" else "cms"
    args: list[str | Path] = [
        tool,
        "-sign",
        "-in",
        inner,
        "-signer",
        doctor.cert_path,
        "-inkey",
        doctor.key_path,
        "-certfile",
        chain,
        "-md",
        "sha256",
        "-from",
        DOCTOR,
        "-to",
        "patient@patient.mss.localhost",
        "-subject",
        "Compte rendu",
    ]
    if mode == "opaque":
        args.append("-nodetach")
    signed = openssl(*args)
    assert signed.returncode == 0, signed.stderr.decode()
    result = smime.verify(signed.stdout, dev_pki.trust, from_address=DOCTOR)
    assert result.status == "valid", result.reason
    assert result.signer_id_nat == ID_NAT
    assert (result.content or b"").replace(b"\r\n", b"\n") == INNER.replace(b"\r\n", b"\n")


def test_openssl_rsa_pss_signature(dev_pki: DevPki, tmp_path: Path) -> None:
    signer = dev_pki.issue_smime(DOCTOR, ID_NAT, key_type="rsa")
    inner = tmp_path / "inner.txt"
    inner.write_bytes(INNER)
    signed = openssl(
        "cms",
        "-sign",
        "-in",
        inner,
        "-signer",
        signer.cert_path,
        "-inkey",
        signer.key_path,
        "-keyopt",
        "rsa_padding_mode:pss",
        "-from",
        DOCTOR,
    )
    assert signed.returncode == 0, signed.stderr.decode()
    der = _signature_der(signed.stdout)
    assert b"\x2a\x86\x48\x86\xf7\x0d\x01\x01\x0a" in der  # id-RSASSA-PSS is really used
    assert smime.verify(signed.stdout, dev_pki.trust, from_address=DOCTOR).status == "valid"


# --- what must be refused ------------------------------------------------------------------


@pytest.mark.parametrize("detached", [True, False], ids=["detached", "opaque"])
def test_one_changed_byte_is_tampered(
    doctor: Identity, dev_pki: DevPki, tmp_path: Path, detached: bool
) -> None:
    raw = doctor.sign(MESSAGE, detached=detached)
    if detached:
        tampered = raw.replace(
            b"votre r\xc3\xa9sultat est normal", b"votre r\xc3\xa9sultat est anormal"
        )
    else:
        der = _opaque_der(raw)
        at = der.index(b"normal")
        changed = der[:at] + b"N" + der[at + 1 :]
        tampered = raw.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n" + base64.encodebytes(changed)
    assert tampered != raw
    result = smime.verify(tampered, dev_pki.trust, from_address=DOCTOR)
    assert result.status == "tampered", result.reason
    assert result.smtp_status == "5.7.7" and result.auth_result == "fail"
    assert "modifié" in result.reason_fr
    assert openssl_verifies(tampered, tmp_path, dev_pki).returncode != 0


def test_signature_value_changed_is_tampered(doctor: Identity, dev_pki: DevPki) -> None:
    raw = doctor.sign(MESSAGE, detached=False)
    der = bytearray(_opaque_der(raw))
    der[-5] ^= 0x01  # inside the signature value, the last field of SignerInfo
    forged = raw.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n" + base64.encodebytes(bytes(der))
    assert smime.verify(forged, dev_pki.trust, from_address=DOCTOR).status == "tampered"


def test_unknown_ca(untrusted_pki: DevPki, dev_pki: DevPki, tmp_path: Path) -> None:
    stranger = untrusted_pki.issue_smime(DOCTOR, ID_NAT)
    raw = stranger.sign(MESSAGE)
    assert smime.verify(raw, untrusted_pki.trust, from_address=DOCTOR).status == "valid"
    result = smime.verify(raw, dev_pki.trust, from_address=DOCTOR)
    assert result.status == "unknown_ca", result.reason
    assert result.smtp_status == "5.7.5"
    assert result.signer_address == DOCTOR  # who claimed to sign is still reported
    assert openssl_verifies(raw, tmp_path, dev_pki).returncode != 0


def test_look_alike_ca_with_the_same_names_is_unknown(dev_pki: DevPki, tmp_path: Path) -> None:
    impostor = pki.make_ca(tmp_path / "impostor", pki.DEV_CA_LABEL)
    forged = Identity.load(pki.issue_smime(impostor.root, DOCTOR, id_nat=ID_NAT))
    assert forged.chain[0].subject == load_cert(dev_pki.layout.intermediate_cert).subject
    assert smime.verify(forged.sign(MESSAGE), dev_pki.trust).status == "unknown_ca"


def test_expired_certificate(dev_pki: DevPki, tmp_path: Path) -> None:
    expired = dev_pki.issue_smime(
        DOCTOR,
        ID_NAT,
        not_before=NOW - dt.timedelta(days=800),
        not_after=NOW - dt.timedelta(days=1),
        label="expired",
    )
    raw = expired.sign(MESSAGE)
    result = smime.verify(raw, dev_pki.trust, from_address=DOCTOR)
    assert result.status == "expired", result.reason
    assert "expired" in result.reason and result.smtp_status == "5.7.5"
    assert openssl_verifies(raw, tmp_path, dev_pki).returncode != 0


def test_validation_time_is_injectable(doctor: Identity, dev_pki: DevPki) -> None:
    raw = doctor.sign(MESSAGE)
    later = doctor.cert.not_valid_after_utc + dt.timedelta(days=1)
    assert smime.verify(raw, dev_pki.trust, at=later).status == "expired"
    earlier = doctor.cert.not_valid_before_utc - dt.timedelta(days=1)
    assert smime.verify(raw, dev_pki.trust, at=earlier).status == "expired"
    assert smime.verify(raw, dev_pki.trust, at=NOW + dt.timedelta(days=30)).status == "valid"


def test_revoked_certificate(dev_pki: DevPki, tmp_path: Path) -> None:
    revoked = dev_pki.issue_smime(DOCTOR, ID_NAT, label="revoked-smime")
    raw = revoked.sign(MESSAGE)
    assert smime.verify(raw, dev_pki.trust, from_address=DOCTOR).status == "valid"
    assert openssl_verifies(raw, tmp_path, dev_pki, crl=True).returncode == 0
    dev_pki.revoke(revoked)
    result = smime.verify(raw, dev_pki.trust, from_address=DOCTOR)
    assert result.status == "revoked", result.reason
    assert "révoqué" in result.reason_fr
    checked = openssl_verifies(raw, tmp_path, dev_pki, crl=True)
    assert checked.returncode != 0 and b"revoked" in checked.stderr


def test_address_mismatch(doctor: Identity, dev_pki: DevPki) -> None:
    raw = doctor.sign(MESSAGE)
    result = smime.verify(raw, dev_pki.trust, from_address="Someone <marie.curie@mss.localhost>")
    assert result.status == "address_mismatch"
    assert result.smtp_status == "5.7.1"
    assert DOCTOR in result.reason and "marie.curie@mss.localhost" in result.reason


def test_a_senders_certificate_is_read_once_and_every_signature_is_still_checked(
    doctor: Identity, dev_pki: DevPki
) -> None:
    """Certificates are cached by their exact DER; the signature, digest and trust are checked
    each time."""
    from mss.crypto import cms

    cms._load_certificate.cache_clear()
    first = smime.verify(doctor.sign(MESSAGE), dev_pki.trust, from_address=DOCTOR)
    loaded = cms._load_certificate.cache_info().misses
    second = smime.verify(
        doctor.sign(MESSAGE.replace(b"normal", b"stable")), dev_pki.trust, from_address=DOCTOR
    )
    assert first.status == second.status == "valid"
    assert cms._load_certificate.cache_info().misses == loaded  # nothing parsed again
    assert cms._load_certificate.cache_info().hits >= loaded
    tampered = doctor.sign(MESSAGE).replace(b"normal", b"grave")
    assert smime.verify(tampered, dev_pki.trust, from_address=DOCTOR).status == "tampered"
    assert (
        smime.verify(
            doctor.sign(MESSAGE), dev_pki.trust, from_address="marie.curie@mss.localhost"
        ).status
        == "address_mismatch"
    )


def test_trust_fingerprints_are_remembered_per_certificate_object(
    doctor: Identity, dev_pki: DevPki, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The valid-chain cache is keyed by SHA-256 fingerprints, each computed once per certificate
    object."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    from mss.crypto import trust

    sha256 = hashes.SHA256()
    trust._fingerprints.clear()
    assert smime.verify(doctor.sign(MESSAGE), dev_pki.trust, from_address=DOCTOR).status == "valid"
    remembered = {fingerprint for _, fingerprint in trust._fingerprints.values()}
    assert remembered == {c.fingerprint(sha256) for c in (doctor.cert, *doctor.chain)}
    twin = x509.load_der_x509_certificate(doctor.cert.public_bytes(Encoding.DER))
    assert twin is not doctor.cert and trust._fingerprint(twin) == doctor.cert.fingerprint(sha256)
    monkeypatch.setattr(trust, "FINGERPRINT_CACHE_SIZE", 1)  # emptied when full, still right
    for cert in (doctor.cert, *doctor.chain, doctor.cert):
        assert trust._fingerprint(cert) == cert.fingerprint(sha256)
        assert len(trust._fingerprints) == 1


def test_certificate_without_email_protection(dev_pki: DevPki, tmp_path: Path) -> None:
    wrong = dev_pki.issue_smime(
        DOCTOR, ID_NAT, eku=[ExtendedKeyUsageOID.CLIENT_AUTH], label="client-eku"
    )
    raw = wrong.sign(MESSAGE)
    result = smime.verify(raw, dev_pki.trust, from_address=DOCTOR)
    assert result.status == "bad_eku", result.reason
    assert openssl_verifies(raw, tmp_path, dev_pki).returncode != 0


GARBAGE = [
    (
        b"From: a@b.c\r\nContent-Type: application/pkcs7-mime; smime-type=signed-data\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\nbm90IGEgQ01TIHN0cnVjdHVyZQ==\r\n"
    ),
    (
        b"From: a@b.c\r\nContent-Type: application/pkcs7-mime; smime-type=signed-data\r\n\r\n"
        b"%%% not base64 %%%\r\n"
    ),
    (
        b'From: a@b.c\r\nContent-Type: multipart/signed; protocol="application/pkcs7-signature";'
        b" boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\nhi\r\n--XX\r\n"
        b"Content-Type: application/pkcs7-signature\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"MIIBAgMEBQ==\r\n--XX--\r\n"
    ),
    (
        b'From: a@b.c\r\nContent-Type: multipart/signed; protocol="application/pkcs7-signature";'
        b" boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\nonly one part\r\n--XX--\r\n"
    ),
    (
        b'From: a@b.c\r\nContent-Type: multipart/signed; protocol="application/pkcs7-signature"'
        b"\r\n\r\nno boundary\r\n"
    ),
]


@pytest.mark.parametrize(
    "raw", GARBAGE, ids=["not-cms", "not-base64", "truncated-der", "one-part", "no-boundary"]
)
def test_garbage_is_malformed(raw: bytes, dev_pki: DevPki) -> None:
    result = smime.verify(raw, dev_pki.trust, from_address="a@b.c")
    assert result.status == "malformed", result.reason
    assert result.smtp_status == "5.7.7" and result.auth_result == "permerror"


def test_truncated_real_signature_is_malformed(doctor: Identity, dev_pki: DevPki) -> None:
    der = _opaque_der(doctor.sign(MESSAGE, detached=False))
    cut = (
        b"Content-Type: application/pkcs7-mime; smime-type=signed-data\r\n\r\n"
        + base64.encodebytes(der[: len(der) // 2])
    )
    assert smime.verify(cut, dev_pki.trust).status == "malformed"


@pytest.mark.parametrize(
    "raw",
    [
        MESSAGE,
        (
            b'From: a@b.c\r\nContent-Type: multipart/signed; protocol="application/pgp-signature";'
            b" boundary=XX\r\n\r\n--XX\r\n\r\nhi\r\n--XX\r\n\r\nsig\r\n--XX--\r\n"
        ),
    ],
    ids=["plain", "openpgp"],
)
def test_unsigned_is_none(raw: bytes, dev_pki: DevPki) -> None:
    result = smime.verify(raw, dev_pki.trust, from_address="a@b.c")
    assert result.status == "none"
    assert result.smtp_status == "5.7.1" and result.auth_result == "none"


def test_empty_trust_store_trusts_nobody(doctor: Identity) -> None:
    result = smime.verify(doctor.sign(MESSAGE), TrustStore(), from_address=DOCTOR)
    assert result.status == "unknown_ca"


# --- encryption ----------------------------------------------------------------------------


def test_encrypt_then_decrypt_with_openssl_and_ours(dev_pki: DevPki, tmp_path: Path) -> None:
    patient = dev_pki.issue_smime("180012B123456@patient.mss.localhost", key_type="rsa")
    sealed = smime.encrypt(MESSAGE, [patient.cert])
    head = sealed.split(b"\r\n\r\n", 1)[0]
    assert b"smime-type=enveloped-data" in head and b"Subject: " in head
    assert b"votre r" not in sealed
    assert smime.decrypt(sealed, patient.cert, patient.key) == INNER
    (tmp_path / "sealed.eml").write_bytes(sealed)
    opened = openssl(
        "cms",
        "-decrypt",
        "-in",
        tmp_path / "sealed.eml",
        "-recip",
        patient.cert_path,
        "-inkey",
        patient.key_path,
    )
    assert opened.returncode == 0, opened.stderr.decode()
    assert opened.stdout == INNER
    assert smime.verify(sealed, dev_pki.trust).status == "encrypted"


def test_decrypt_what_openssl_encrypted(dev_pki: DevPki, tmp_path: Path) -> None:
    patient = dev_pki.issue_smime("180012B123456@patient.mss.localhost", key_type="rsa")
    (tmp_path / "inner.txt").write_bytes(INNER)
    sealed = openssl(
        "cms",
        "-encrypt",
        "-aes256",
        "-in",
        tmp_path / "inner.txt",
        "-from",
        DOCTOR,
        patient.cert_path,
    )
    assert sealed.returncode == 0, sealed.stderr.decode()
    assert smime.decrypt(sealed.stdout, patient.cert, patient.key) == INNER


def test_signed_then_encrypted_round_trip(doctor: Identity, dev_pki: DevPki) -> None:
    patient = dev_pki.issue_smime("180012B123456@patient.mss.localhost", key_type="rsa")
    sealed = smime.encrypt(doctor.sign(MESSAGE), [patient.cert])
    inner = smime.decrypt(sealed, patient.cert, patient.key)
    assert smime.verify(inner, dev_pki.trust, from_address=DOCTOR).status == "valid"


def test_encrypting_to_an_ec_certificate_is_refused(dev_pki: DevPki) -> None:
    ec_holder = dev_pki.issue_smime("ec@mss.localhost", key_type="ec")
    with pytest.raises(TypeError):
        smime.encrypt(MESSAGE, [ec_holder.cert])


# --- helpers -------------------------------------------------------------------------------


def _opaque_der(raw: bytes) -> bytes:
    return base64.b64decode(re.sub(rb"\s+", b"", raw.split(b"\r\n\r\n", 1)[1]))


def _signature_der(raw: bytes) -> bytes:
    found = smime.extract_signed(raw)
    assert found is not None
    return found[0]


def test_multipart_parts_cuts_exactly_where_rfc_2046_puts_the_delimiters() -> None:
    """The parts of multipart/signed are found by plain search; compared with RFC 2046's rule as a
    regex."""
    import itertools
    import re

    from mss.crypto.smime import _multipart_parts

    def by_regex(body: bytes, boundary: str) -> list[bytes]:
        delimiter = re.compile(
            rb"(?:^|\r?\n)--" + re.escape(boundary.encode()) + rb"(--)?[ \t]*(?:\r?\n|$)"
        )
        parts = []
        for start, end in itertools.pairwise(delimiter.finditer(body)):
            if start.group(1):
                break
            parts.append(body[start.end() : end.start()])
        return parts

    bodies = [
        b"--b1\r\nA: 1\r\n\r\none\r\n--b1\r\nB: 2\r\n\r\ntwo\r\n--b1--\r\n",
        b"preamble\r\n--b1 \t\r\none\r\n--b1\r\ntwo\r\n--b1--",
        b"--b1\none\n--b1\ntwo\n--b1--\n",  # bare LF
        b"--b1\r\n--b1x is not a delimiter\r\n--b1\r\ntwo\r\n--b1--\r\nepilogue --b1\r\n",
        b"--b1\r\none --b1 inside a line\r\n--b1\r\ntwo",  # no closing delimiter
        b"--b1--\r\n--b1\r\nafter the close\r\n--b1\r\n",
        b"no delimiter at all",
        b"",
    ]
    for body in bodies:
        assert _multipart_parts(body, "b1") == by_regex(body, "b1"), body


# --- what kind of S/MIME a message is: the CMS contentType decides -------------------------


def _content_info(dotted: str, *, ber: bool = False) -> bytes:
    """A ContentInfo of type ``dotted`` around an empty SEQUENCE (only its type is read)."""
    from asn1crypto import core

    oid = core.ObjectIdentifier(dotted).dump()
    if ber:  # indefinite lengths, as some agents write opaque S/MIME
        return b"\x30\x80" + oid + b"\xa0\x80\x30\x00\x00\x00\x00\x00"
    body = oid + b"\xa0\x02\x30\x00"
    return b"\x30" + bytes([len(body)]) + body


@pytest.mark.parametrize(
    ("dotted", "ber", "kind", "status"),
    [
        ("1.2.840.113549.1.7.3", False, "enveloped", "encrypted"),
        ("1.2.840.113549.1.7.3", True, "enveloped", "encrypted"),
        ("1.2.840.113549.1.9.16.1.23", False, "auth_enveloped", "encrypted"),
        ("1.2.840.113549.1.9.16.1.9", False, "compressed", "compressed"),
        ("1.2.840.113549.1.7.1", False, None, "malformed"),  # plain data: no S/MIME kind at all
    ],
    ids=["enveloped", "enveloped-ber", "auth-enveloped", "compressed", "data"],
)
@pytest.mark.parametrize(
    "content_type",
    [
        b"application/pkcs7-mime; smime-type=signed-data",
        b"application/pkcs7-mime",
        b"application/x-pkcs7-mime; smime-type=enveloped-data",
    ],
    ids=["says-signed", "says-nothing", "x-says-enveloped"],
)
def test_the_cms_content_type_decides_what_an_opaque_body_is(
    dotted: str, ber: bool, kind: str | None, status: str, content_type: bytes, dev_pki: DevPki
) -> None:
    raw = (
        b"From: a@b.c\r\nContent-Type: "
        + content_type
        + b"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + smime.base64_lines(_content_info(dotted, ber=ber))
    )
    if kind is not None:
        assert smime.read_form(raw).kind == kind
    result = smime.verify(raw, dev_pki.trust, from_address="a@b.c")
    assert result.status == status, result.reason
    assert result.auth_result == {"encrypted": "neutral", "compressed": "neutral"}.get(
        status, "permerror"
    )


def test_an_opaque_signature_without_smime_type_is_verified(
    doctor: Identity, dev_pki: DevPki
) -> None:
    raw = doctor.sign(MESSAGE, detached=False).replace(b" smime-type=signed-data;", b"")
    assert b"smime-type" not in raw
    assert smime.read_form(raw).kind == "opaque_signed"
    assert smime.verify(raw, dev_pki.trust, from_address=DOCTOR).status == "valid"


def test_smime_reports_the_codes_and_sentences_the_gateway_decides_with(
    doctor: Identity, dev_pki: DevPki, untrusted_pki: DevPki
) -> None:
    """One table (mss.policy.signature): what verify reports is what the gateway answers."""
    from mss.policy.signature import decide_signature

    signed = doctor.sign(MESSAGE)
    outcomes = [smime.verify(raw, dev_pki.trust, from_address="a@b.c") for raw in GARBAGE]
    outcomes += [
        smime.verify(signed.replace(b"normal", b"grave "), dev_pki.trust, from_address=DOCTOR),
        smime.verify(
            untrusted_pki.issue_smime(DOCTOR).sign(MESSAGE), dev_pki.trust, from_address=DOCTOR
        ),
        smime.verify(signed, dev_pki.trust, from_address="autre@mss.localhost"),
    ]
    assert {r.status for r in outcomes} == {
        "malformed",
        "tampered",
        "unknown_ca",
        "address_mismatch",
    }
    for result in outcomes:
        decision = decide_signature(None, [], result.status, result.reason)
        assert decision.enhanced_status == result.smtp_status, result.status
        if result.status != "address_mismatch":  # its French sentence names both addresses
            assert decision.sentence_fr.endswith(result.reason_fr)
