"""S/MIME at the gateway: a professional writing to a patient must sign; a broken signature is
refused."""

from __future__ import annotations

import datetime as dt
import shutil

import aiosmtplib
import pytest

from mss.db import utcnow
from tests.fixtures_pki import DevPki, Identity
from tests.smtp.conftest import DOCTOR, OTHER_DOCTOR, PATIENT, Hub, message, signed


async def send(hub: Hub, raw: bytes, to: str = PATIENT) -> tuple[int, str]:
    client = await hub.login_client(DOCTOR)
    try:
        await client.sendmail(DOCTOR, [to], raw)
        return 250, ""
    except aiosmtplib.SMTPDataError as refused:
        return refused.code, refused.message
    finally:
        await client.quit()


async def test_valid_signature_is_recorded_with_the_message(hub: Hub) -> None:
    identity = hub.pki.issue_smime(DOCTOR, id_nat="810000000001")
    assert await send(hub, signed(identity, DOCTOR, PATIENT)) == (250, "")
    stored = (await hub.stored(PATIENT))[0]
    assert stored.signature_status == "valid" and stored.signer_address == DOCTOR
    assert stored.signer_id_nat == "810000000001"
    header = stored.raw.split(b"\r\n\r\n", 1)[0]
    assert b"smime=pass" in header and b"idNat=810000000001" in header


async def test_unsigned_message_to_a_patient_is_refused(hub: Hub) -> None:
    code, text = await send(hub, message(DOCTOR, PATIENT))
    assert (code, text) == (
        554,
        (
            "5.7.1 A message from a professional to a patient must carry a valid "
            "S/MIME signature of its sender"
        ),
    )
    assert await hub.stored(PATIENT) == []


async def test_unsigned_between_professionals_is_accepted(hub: Hub) -> None:
    assert (await send(hub, message(DOCTOR, OTHER_DOCTOR), OTHER_DOCTOR))[0] == 250


async def test_tampered_signature_refused(hub: Hub) -> None:
    raw = signed(hub.pki.issue_smime(DOCTOR), DOCTOR, PATIENT, body="Dose : 1 comprimé\r\n")
    tampered = raw.replace(b"Dose : 1", b"Dose : 9")
    assert tampered != raw
    code, text = await send(hub, tampered)
    assert code == 554 and text.startswith(
        "5.7.7 S/MIME signature refused: the message was modified"
    )


async def test_unknown_ca_refused(hub: Hub, untrusted_pki: DevPki) -> None:
    code, text = await send(hub, signed(untrusted_pki.issue_smime(DOCTOR), DOCTOR, PATIENT))
    assert code == 554 and text.startswith(
        "5.7.5 S/MIME signature refused: the signing certificate "
        "does not chain to a trusted authority"
    )


async def test_expired_certificate_refused(hub: Hub) -> None:
    past = utcnow() - dt.timedelta(days=400)
    identity = hub.pki.issue_smime(
        DOCTOR, not_before=past, not_after=past + dt.timedelta(days=30), label="expired-doctor"
    )
    code, text = await send(hub, signed(identity, DOCTOR, PATIENT))
    assert code == 554 and text.startswith(
        "5.7.5 S/MIME signature refused: the signing certificate is expired"
    )


async def test_revoked_certificate_refused(hub: Hub) -> None:
    identity: Identity = hub.pki.issue_smime(DOCTOR, label=f"revoked-{hub.settings.data_dir[-12:]}")
    hub.pki.revoke(identity)
    shutil.copyfile(hub.pki.crl_path, hub.settings.crl_path)
    hub.services.trust_store().reload()
    code, text = await send(hub, signed(identity, DOCTOR, PATIENT))
    assert code == 554 and text.startswith(
        "5.7.5 S/MIME signature refused: the signing certificate is revoked"
    )


async def test_signature_of_another_address_refused(hub: Hub) -> None:
    code, text = await send(hub, signed(hub.pki.issue_smime(OTHER_DOCTOR), DOCTOR, PATIENT))
    assert code == 554 and text.startswith(
        "5.7.1 S/MIME signature refused: the signing certificate belongs to another address"
    )


async def test_forged_authentication_results_is_stripped(hub: Hub) -> None:
    raw = message(DOCTOR, OTHER_DOCTOR).replace(
        b"Subject:",
        b"Authentication-Results: localhost; smime=pass header.from=x\r\n"
        b"Authentication-Results: elsewhere.example; spf=pass\r\nSubject:",
        1,
    )
    assert (await send(hub, raw, OTHER_DOCTOR))[0] == 250
    header = (await hub.stored(OTHER_DOCTOR))[0].raw.split(b"\r\n\r\n", 1)[0]
    assert header.count(b"Authentication-Results: localhost;") == 1
    assert b"smime=none" in header and b"header.from=x" not in header
    assert b"Authentication-Results: elsewhere.example; spf=pass" in header


@pytest.mark.parametrize("detached", [False])
async def test_opaque_signed_message_accepted(hub: Hub, detached: bool) -> None:
    identity = hub.pki.issue_smime(DOCTOR)
    raw = identity.sign(message(DOCTOR, PATIENT), detached=detached)
    assert (await send(hub, raw))[0] == 250


async def test_small_messages_are_verified_on_the_loop_large_ones_in_a_thread(hub: Hub) -> None:
    """The same verdict either way; only a message over INLINE_VERIFY_SIZE leaves the loop's
    thread."""
    import threading

    from mss.crypto.trust import TrustStore
    from mss.message import parse_message
    from mss.smtp_gateway.content import INLINE_VERIFY_SIZE, verify_signature

    threads: list[int] = []

    class RecordingTrust(TrustStore):
        def verify(self, *args: object, **kwargs: object) -> object:  # type: ignore[override]
            threads.append(threading.get_ident())
            return super().verify(*args, **kwargs)  # type: ignore[arg-type]

    trust = RecordingTrust.from_settings(hub.settings, repo_trust_dir=None)
    identity = hub.pki.issue_smime(DOCTOR, id_nat="810000000001")
    small = signed(identity, DOCTOR, PATIENT)
    large = signed(
        identity, DOCTOR, PATIENT, body="Compte rendu détaillé.\r\n" * (INLINE_VERIFY_SIZE // 20)
    )
    assert len(small) < INLINE_VERIFY_SIZE < len(large)
    outcomes = [await verify_signature(parse_message(raw), trust) for raw in (small, large)]
    assert [(o.status, o.signer_address) for o in outcomes] == [("valid", DOCTOR)] * 2
    assert threads[0] == threading.get_ident() and threads[1] != threading.get_ident()


async def test_a_certificate_revoked_while_the_hub_runs_is_refused_on_the_next_message(
    hub: Hub,
) -> None:
    """``mss pki revoke`` rewrites the CRL file; the running gateway applies it to the next message.

    No restart and no wait for the minute's reload of the trust folders (keep_trust_fresh): the
    CRL file is seen to change and read again, and what was remembered as valid is forgotten.
    """
    from mss.crypto import pki

    identity = Identity.load(
        pki.issue_smime(hub.settings.pki_dir, DOCTOR, label="revoked-while-running")
    )
    assert await send(hub, signed(identity, DOCTOR, PATIENT)) == (250, "")
    assert await send(hub, signed(identity, DOCTOR, PATIENT)) == (250, "")  # remembered as valid
    pki.revoke(hub.settings.pki_dir, identity.cert.serial_number, crl_path=hub.settings.crl_path)
    code, text = await send(hub, signed(identity, DOCTOR, PATIENT))
    assert code == 554 and text.startswith(
        "5.7.5 S/MIME signature refused: the signing certificate is revoked"
    ), text
    assert len(await hub.stored(PATIENT)) == 2
