"""S/MIME that was altered, disguised or encrypted, and refusals whose sentence is not ASCII.

Every form of a signed message (multipart/signed, opaque application/pkcs7-mime with or
without ``smime-type``, the x-pkcs7-mime alias) gets the same verdict when it was tampered
with; an encrypted message is recognised as such, never as unsigned; a revoked certificate
is refused once the CRLs are reloaded; and a refusal naming ``title=Médecin`` still reaches
the client as its 5xx, in ASCII.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import smtplib
import ssl

from mss.crypto import pki
from mss.db import utcnow
from mss.smtp_gateway.replies import reply_bytes
from tests.fixtures_pki import Identity
from tests.smtp.conftest import DOCTOR, PASSWORD, PATIENT, Hub, message


def smtplib_send(hub: Hub, raw: bytes, to: str = PATIENT) -> tuple[int, bytes]:
    """Submit ``raw`` with the standard library's client (STARTTLS, AUTH): the code and text it got."""
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
    identity = Identity.load(pki.issue_smime(
        hub.settings.pki_dir, DOCTOR, id_nat="810000000001", common_name="Jean Dupont", title="Médecin",
        not_before=past, not_after=past + dt.timedelta(days=30), label="expired-medecin"))
    code, text = await asyncio.to_thread(smtplib_send, hub, identity.sign(message(DOCTOR, PATIENT)))
    assert code == 554
    assert text.startswith(b"5.7.5 S/MIME signature refused: the signing certificate is expired")
    assert b"title=Medecin" in text and text.isascii()


def test_replies_are_ascii_without_smtputf8_and_utf8_with_it() -> None:
    refusal = "554 5.7.5 Signature refusée : title=Médecin, « Œdème » – naïve\u00a0ça ⚕"
    assert reply_bytes(refusal) == b"554 5.7.5 Signature refusee : title=Medecin, \" OEdeme \" - naive ca ?\r\n"
    assert reply_bytes(refusal, utf8=True) == refusal.encode() + b"\r\n"
    # a sentence cannot add a reply line of its own; the lines of a multi-line reply stay
    assert reply_bytes("550 5.1.1 no\r\n250 OK\n.\r") == b"550 5.1.1 no\r\n250 OK . \r\n"
    assert reply_bytes("250-first\r\n250 second") == b"250-first\r\n250 second\r\n"
