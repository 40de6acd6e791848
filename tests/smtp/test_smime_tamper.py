"""S/MIME that was altered, disguised or encrypted, and refusals whose sentence is not ASCII.

Every form of a signed message (multipart/signed, opaque application/pkcs7-mime with or
without ``smime-type``, the x-pkcs7-mime alias) gets the same verdict when it was tampered
with; an encrypted message is recognised as such, never as unsigned, and decrypted when
the hub holds its recipient's key (refused otherwise); a revoked certificate
is refused once the CRLs are reloaded; and a refusal naming ``title=Médecin`` still reaches
the client as its 5xx, in ASCII.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import re
import smtplib
import ssl

import pytest

from mss.crypto import pki, smime
from mss.crypto.keys import load_certs
from mss.db import utcnow
from mss.smtp_gateway.replies import reply_bytes
from tests.fixtures_pki import Identity
from tests.smtp.conftest import DOCTOR, OTHER_DOCTOR, PASSWORD, PATIENT, Hub, message
from tests.smtp.test_signatures import send

OPAQUE_TYPE = b'Content-Type: application/pkcs7-mime; smime-type=signed-data; name="smime.p7m"'
# How the top-level Content-Type of an opaque signed message may be written by a sender.
OPAQUE_FORMS = {
    "smime-type": OPAQUE_TYPE,
    "no-smime-type": b'Content-Type: application/pkcs7-mime; name="smime.p7m"',
    "x-pkcs7-mime": b'Content-Type: application/x-pkcs7-mime; name="smime.p7m"',
    "smime-type-says-enveloped": b"Content-Type: application/pkcs7-mime; smime-type=enveloped-data",
    "smime-type-says-certs-only": b"Content-Type: application/pkcs7-mime; smime-type=certs-only",
}
FORMS = ["multipart/signed", *OPAQUE_FORMS]


def signed_as(identity: Identity, form: str, to: str, body: str = "Dose : 1 comprimé\r\n") -> bytes:
    """A message from DOCTOR to ``to`` signed by ``identity`` in one of FORMS."""
    raw = message(DOCTOR, to, body=body)
    if form == "multipart/signed":
        return identity.sign(raw)
    opaque = identity.sign(raw, detached=False)
    assert OPAQUE_TYPE in opaque
    return opaque.replace(OPAQUE_TYPE, OPAQUE_FORMS[form])


def tampered(raw: bytes) -> bytes:
    """``raw`` with its dose changed from 1 to 9, inside the signed content wherever the form
    keeps it."""
    if b"multipart/signed" in raw.split(b"\r\n\r\n", 1)[0]:
        changed = raw.replace(b"Dose : 1", b"Dose : 9")
    else:
        head, body = raw.split(b"\r\n\r\n", 1)
        der = base64.b64decode(re.sub(rb"\s+", b"", body))
        assert der.count(b"Dose : 1") == 1
        changed = head + b"\r\n\r\n" + smime.base64_lines(der.replace(b"Dose : 1", b"Dose : 9"))
    assert changed != raw
    return changed


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("to", [OTHER_DOCTOR, PATIENT], ids=["to-professional", "to-patient"])
async def test_a_tampered_message_is_refused_whatever_its_form(
    hub: Hub, form: str, to: str
) -> None:
    identity = hub.pki.issue_smime(DOCTOR, id_nat="810000000001")
    code, text = await send(hub, tampered(signed_as(identity, form, to)), to)
    assert code == 554 and text.startswith(
        "5.7.7 S/MIME signature refused: the message was modified"
    ), text
    assert await hub.stored(to) == []


@pytest.mark.parametrize("form", FORMS)
async def test_an_intact_signed_message_is_verified_whatever_its_form(hub: Hub, form: str) -> None:
    identity = hub.pki.issue_smime(DOCTOR, id_nat="810000000001")
    assert await send(hub, signed_as(identity, form, PATIENT)) == (250, "")
    stored = (await hub.stored(PATIENT))[0]
    assert stored.signature_status == "valid" and stored.signer_id_nat == "810000000001"
    assert b"smime=pass" in stored.raw.split(b"\r\n\r\n", 1)[0]


def encrypted(
    hub: Hub, to: str, *, signed_inside: bool, smime_type: bool = True, hub_key: bool = True
) -> bytes:
    """A message encrypted to ``to``'s encryption certificate at the hub (``hub_key``), or to
    its signing certificate, whose key the hub does not hold."""
    if hub_key:
        recipient = load_certs(pki.issue_encryption(hub.settings.pki_dir, to).cert)[0]
    else:
        recipient = hub.pki.issue_smime(to).cert
    inner = message(DOCTOR, to)
    if signed_inside:
        inner = hub.pki.issue_smime(DOCTOR).sign(inner)
    sealed = smime.encrypt(inner, [recipient])
    return sealed if smime_type else sealed.replace(b" smime-type=enveloped-data;", b"")


@pytest.mark.parametrize(
    ("signed_inside", "smime_type"),
    [(False, True), (True, True), (True, False)],
    ids=["encrypted", "signed-then-encrypted", "no-smime-type"],
)
async def test_an_encrypted_message_is_decrypted_and_its_inside_verified(
    hub: Hub, signed_inside: bool, smime_type: bool
) -> None:
    """Recognised by its CMS OID whatever ``smime-type`` says, never taken as unsigned."""
    raw = encrypted(hub, OTHER_DOCTOR, signed_inside=signed_inside, smime_type=smime_type)
    assert await send(hub, raw, OTHER_DOCTOR) == (250, "")
    stored = (await hub.stored(OTHER_DOCTOR))[0]
    assert stored.arrived_encrypted
    assert stored.signature_status == ("valid" if signed_inside else "none")
    head = stored.raw.split(b"\r\n\r\n", 1)[0]
    assert b"(decrypted: enveloped-data)" in head and b"pkcs7-mime" not in head


async def test_an_encrypted_message_the_hub_cannot_open_is_refused_with_its_own_sentence(
    hub: Hub,
) -> None:
    code, text = await send(hub, encrypted(hub, PATIENT, signed_inside=True, hub_key=False))
    assert (code, text) == (
        554,
        (
            "5.7.5 Encrypted message refused: the message is encrypted but "
            f"{PATIENT} has no encryption certificate at this hub, so it cannot be "
            "decrypted; send it signed, not encrypted, or ask "
            f"{PATIENT} for their encryption certificate"
        ),
    )
    assert await hub.stored(PATIENT) == []


def smtplib_send(hub: Hub, raw: bytes, to: str = PATIENT) -> tuple[int, bytes]:
    """Submit ``raw`` with the standard library's client (STARTTLS, AUTH): the code and text it
    got."""
    context = ssl.create_default_context(cafile=str(hub.pki.root_cert))
    with smtplib.SMTP("localhost", hub.ports["submission"], timeout=10) as client:
        client.starttls(context=context)
        client.login(DOCTOR, PASSWORD)
        try:
            client.sendmail(DOCTOR, [to], raw)
        except smtplib.SMTPDataError as refused:
            return refused.smtp_code, refused.smtp_error
        return 250, b""


async def test_a_refusal_naming_a_non_ascii_subject_keeps_its_5xx(hub: Hub) -> None:
    past = utcnow() - dt.timedelta(days=400)
    identity = Identity.load(
        pki.issue_smime(
            hub.settings.pki_dir,
            DOCTOR,
            id_nat="810000000001",
            common_name="Jean Dupont",
            title="Médecin",
            not_before=past,
            not_after=past + dt.timedelta(days=30),
            label="expired-medecin",
        )
    )
    code, text = await asyncio.to_thread(smtplib_send, hub, identity.sign(message(DOCTOR, PATIENT)))
    assert code == 554
    assert text.startswith(b"5.7.5 S/MIME signature refused: the signing certificate is expired")
    assert b"title=Medecin" in text and text.isascii()


def test_replies_are_ascii_without_smtputf8_and_utf8_with_it() -> None:
    refusal = "554 5.7.5 Signature refusée : title=Médecin, « Œdème » – naïve\u00a0ça ⚕"
    assert (
        reply_bytes(refusal)
        == b'554 5.7.5 Signature refusee : title=Medecin, " OEdeme " - naive ca ?\r\n'
    )
    assert reply_bytes(refusal, utf8=True) == refusal.encode() + b"\r\n"
    # a sentence cannot add a reply line of its own; the lines of a multi-line reply stay
    assert reply_bytes("550 5.1.1 no\r\n250 OK\n.\r") == b"550 5.1.1 no\r\n250 OK . \r\n"
    assert reply_bytes("250-first\r\n250 second") == b"250-first\r\n250 second\r\n"
