"""S/MIME encryption both ways (RFC 8551, CMS EnvelopedData RFC 5652 §6).

In: a client encrypts a signed message to a hub mailbox's encryption certificate (``openssl
smime -encrypt``, ``openssl cms`` for AuthEnvelopedData, or ``cryptography``), sends it over
SMTP; the hub decrypts it, verifies the inner signature as for signed mail and stores the
decrypted signed message, recording that it arrived encrypted. What it cannot decrypt is
refused at DATA. Out: the relay encrypts to the recipient's imported certificate; the
partner's MTA (an aiosmtpd sink) decrypts with the key only it holds.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

import aiosmtplib
import pytest
from click.testing import CliRunner, Result

from mss.cli import main as mss_main
from mss.crypto import pki, smime
from mss.crypto.keys import load_certs, load_key
from mss.directory.recipient_certificates import encryption_certificates
from mss.smtp_gateway.dsn import as_email
from tests.fixtures_pki import DevPki
from tests.smtp.conftest import (
    DOCTOR,
    OTHER_DOCTOR,
    PARTNER_DOMAIN,
    PATIENT,
    Hub,
    message,
    signed,
)
from tests.smtp.test_relay import relay_client, start_partner

PARTNER = f"dr.house@{PARTNER_DOMAIN}"


def hub_encryption(hub: Hub, address: str) -> pki.Issued:
    """The encryption certificate and key of a hub mailbox, issued in the hub's own PKI."""
    return pki.issue_encryption(hub.settings.pki_dir, address)


def peer_encryption(dev_pki: DevPki, tmp_path: Path, address: str) -> pki.Issued:
    """An encryption certificate from the same CAs, issued outside the hub's PKI folder (the
    session's PKI is copied into every hub: issuing there would give later hubs the key)."""
    folder = tmp_path / "peer-pki"
    if not folder.exists():
        shutil.copytree(dev_pki.dir, folder, ignore=shutil.ignore_patterns("issued"))
    return pki.issue_encryption(folder, address)


def openssl_encrypt(raw: bytes, cert: Path, tmp_path: Path, *, cms_gcm: bool = False) -> bytes:
    """``raw`` encrypted as a mail client does: the content headers and body inside, From, To,
    Subject outside. ``openssl smime -encrypt`` (AES-256-CBC enveloped-data), or ``openssl cms
    -encrypt -aes-256-gcm`` (authEnveloped-data, RFC 5083)."""
    outer, inner = smime.split_entity(raw)
    source = tmp_path / "inner.eml"
    source.write_bytes(inner)
    command = ["cms", "-aes-256-gcm"] if cms_gcm else ["smime", "-aes256"]
    done = subprocess.run(
        ["openssl", command[0], "-encrypt", "-binary", "-crlfeol", command[1]]
        + ["-in", str(source), "-outform", "SMIME", str(cert)],
        capture_output=True,
        check=True,
    )
    sealed = done.stdout
    assert b"pkcs7-mime; smime-type=" in sealed.split(b"\r\n\r\n", 1)[0]  # x-pkcs7-mime
    return b"\r\n".join(outer) + b"\r\n" + sealed


async def import_command(hub: Hub, tmp_path: Path, *paths: Path) -> Result:
    """``mss directory import-certificates`` as an operator runs it (its own loop, in a thread)."""
    config = tmp_path / "mss.toml"
    config.write_text("", encoding="utf-8")
    return await asyncio.to_thread(
        CliRunner().invoke,
        mss_main,
        ["--config", str(config), "--data-dir", hub.settings.data_dir]
        + ["directory", "import-certificates", *map(str, paths)],
        env={"MSS_DATABASE_URL": hub.settings.database_url},
    )


async def send(hub: Hub, raw: bytes, to: str, login: str = DOCTOR) -> tuple[int, str]:
    client = await hub.login_client(login)
    try:
        await client.sendmail(login, [to], raw)
        return 250, ""
    except aiosmtplib.SMTPDataError as refused:
        return refused.code, refused.message
    finally:
        await client.quit()


async def test_signed_then_encrypted_to_a_patient_is_decrypted_verified_and_stored(
    hub: Hub, tmp_path: Path
) -> None:
    sealed_for = hub_encryption(hub, PATIENT)
    doctor = hub.pki.issue_smime(DOCTOR, id_nat="810000000001")
    raw = signed(doctor, DOCTOR, PATIENT, subject="Résultats chiffrés", body="Glycémie 0,9\r\n")
    encrypted = openssl_encrypt(raw, sealed_for.cert, tmp_path)
    assert b"Glyc" not in encrypted
    assert await send(hub, encrypted, PATIENT) == (250, "")
    (stored,) = await hub.stored(PATIENT)
    assert stored.arrived_encrypted is True
    assert stored.signature_status == "valid" and stored.signer_id_nat == "810000000001"
    head, body = stored.raw.split(b"\r\n\r\n", 1)
    assert b"pkcs7-mime" not in head and b"multipart/signed" in head
    assert b"Glyc" in body  # stored decrypted, the signature inside
    assert b"smime=pass" in head and b"(decrypted: enveloped-data)" in head
    # the stored message verifies again on its own: the signed bytes are the sender's
    assert smime.verify(stored.raw, hub.pki.trust, from_address=DOCTOR).ok


async def test_auth_enveloped_data_from_another_operator_is_decrypted(
    hub: Hub, tmp_path: Path
) -> None:
    sealed_for = hub_encryption(hub, DOCTOR)
    partner_doctor = hub.pki.issue_smime(PARTNER)
    raw = partner_doctor.sign(message(PARTNER, DOCTOR, subject="Adressage"), detached=False)
    encrypted = openssl_encrypt(raw, sealed_for.cert, tmp_path, cms_gcm=True)
    client = await relay_client(hub, hub.pki.issue_operator(PARTNER_DOMAIN))
    errors, _ = await client.sendmail(PARTNER, [DOCTOR], encrypted)
    await client.quit()
    assert errors == {}
    (stored,) = await hub.stored(DOCTOR)
    assert stored.arrived_encrypted and stored.signature_status == "valid"
    assert b"(decrypted: authEnveloped-data)" in stored.raw.split(b"\r\n\r\n", 1)[0]


async def test_rsa_oaep_key_transport_is_decrypted_with_openssl_cms(
    hub: Hub, tmp_path: Path
) -> None:
    """RSAES-OAEP (RFC 8551 §2.3), which ``cryptography`` does not open: ``openssl cms``."""
    sealed_for = hub_encryption(hub, PATIENT)
    raw = signed(hub.pki.issue_smime(DOCTOR), DOCTOR, PATIENT, body="OAEP\r\n")
    outer, inner = smime.split_entity(raw)
    (tmp_path / "inner.eml").write_bytes(inner)
    done = subprocess.run(
        ["openssl", "cms", "-encrypt", "-aes256", "-binary", "-outform", "DER"]
        + ["-in", str(tmp_path / "inner.eml"), "-recip", str(sealed_for.cert)]
        + ["-keyopt", "rsa_padding_mode:oaep"],
        capture_output=True,
        check=True,
    )
    encrypted = smime.encrypt(raw, load_certs(sealed_for.cert)[:1]).split(b"\r\n\r\n")[0]
    encrypted += b"\r\n\r\n" + smime.base64_lines(done.stdout)
    assert await send(hub, encrypted, PATIENT) == (250, "")
    (stored,) = await hub.stored(PATIENT)
    assert stored.arrived_encrypted and stored.signature_status == "valid"
    assert b"OAEP" in stored.raw


async def test_a_deprecated_cipher_is_refused_as_unsupported(hub: Hub, tmp_path: Path) -> None:
    sealed_for = hub_encryption(hub, PATIENT)
    raw = signed(hub.pki.issue_smime(DOCTOR), DOCTOR, PATIENT)
    outer, inner = smime.split_entity(raw)
    (tmp_path / "inner.eml").write_bytes(inner)
    done = subprocess.run(
        ["openssl", "smime", "-encrypt", "-des3", "-binary", "-crlfeol", "-outform", "SMIME"]
        + ["-in", str(tmp_path / "inner.eml"), str(sealed_for.cert)],
        capture_output=True,
        check=True,
    )
    code, text = await send(hub, b"\r\n".join(outer) + b"\r\n" + done.stdout, PATIENT)
    assert (code, text) == (
        554,
        "5.7.6 Encrypted message refused: the message is encrypted with an algorithm the hub "
        "does not accept (content tripledes_3key, key transport rsaes_pkcs1v15)",
    )
    assert await hub.stored(PATIENT) == []


async def test_encrypted_unsigned_to_a_patient_is_refused_as_unsigned(hub: Hub) -> None:
    """Decrypted, the inner message is judged by the signature table like any other."""
    sealed_for = hub_encryption(hub, PATIENT)
    encrypted = smime.encrypt(message(DOCTOR, PATIENT), load_certs(sealed_for.cert)[:1])
    code, text = await send(hub, encrypted, PATIENT)
    assert (code, text) == (
        554,
        "5.7.1 A message from a professional to a patient must carry a valid "
        "S/MIME signature of its sender",
    )
    assert await hub.stored(PATIENT) == []


async def test_no_key_for_the_recipient_is_refused(
    hub: Hub, dev_pki: DevPki, tmp_path: Path
) -> None:
    elsewhere = peer_encryption(dev_pki, tmp_path, OTHER_DOCTOR)  # the hub holds no key
    raw = signed(hub.pki.issue_smime(DOCTOR), DOCTOR, OTHER_DOCTOR)
    code, text = await send(hub, smime.encrypt(raw, load_certs(elsewhere.cert)[:1]), OTHER_DOCTOR)
    assert (code, text) == (
        554,
        f"5.7.5 Encrypted message refused: the message is encrypted but {OTHER_DOCTOR} has no "
        "encryption certificate at this hub, so it cannot be decrypted; send it signed, not "
        f"encrypted, or ask {OTHER_DOCTOR} for their encryption certificate",
    )
    assert await hub.stored(OTHER_DOCTOR) == []


async def test_encrypted_for_another_recipient_is_refused(hub: Hub) -> None:
    hub_encryption(hub, PATIENT)
    doctors = hub_encryption(hub, OTHER_DOCTOR)
    raw = signed(hub.pki.issue_smime(DOCTOR), DOCTOR, PATIENT)
    code, text = await send(hub, smime.encrypt(raw, load_certs(doctors.cert)[:1]), PATIENT)
    assert (code, text) == (
        554,
        f"5.7.5 Encrypted message refused: the message is not encrypted for {PATIENT}: none of "
        f"its recipients' certificates is the encryption certificate of {PATIENT} at this hub",
    )
    assert await hub.stored(PATIENT) == []


async def test_corrupted_encrypted_content_is_refused(hub: Hub) -> None:
    sealed_for = hub_encryption(hub, PATIENT)
    raw = signed(hub.pki.issue_smime(DOCTOR), DOCTOR, PATIENT)
    encrypted = smime.encrypt(raw, load_certs(sealed_for.cert)[:1])
    head, body = encrypted.split(b"\r\n\r\n", 1)
    der = bytearray(smime.read_form(encrypted).der)
    # the last byte of the next-to-last AES block: CBC turns it into the padding byte XOR 0x5A,
    # never a valid padding (RFC 5652 §6.3); the DER ends with the encrypted content
    der[-17] ^= 0x5A
    broken = head + b"\r\n\r\n" + smime.base64_lines(bytes(der))
    code, text = await send(hub, broken, PATIENT)
    assert code == 554 and text.startswith(
        "5.7.5 Encrypted message refused: the encrypted message cannot be decrypted for "
        f"{PATIENT}: its content is damaged"
    )
    assert await hub.stored(PATIENT) == []


async def test_unreadable_enveloped_data_is_refused(hub: Hub) -> None:
    hub_encryption(hub, PATIENT)
    raw = signed(hub.pki.issue_smime(DOCTOR), DOCTOR, PATIENT)
    encrypted = smime.encrypt(raw, load_certs(hub_encryption(hub, PATIENT).cert)[:1])
    der = smime.read_form(encrypted).der
    head = encrypted.split(b"\r\n\r\n", 1)[0]
    truncated = head + b"\r\n\r\n" + smime.base64_lines(der[: len(der) // 2])
    code, text = await send(hub, truncated, PATIENT)
    assert code == 554 and text.startswith("5.7.")
    assert "cannot be" in text
    assert await hub.stored(PATIENT) == []


async def test_relay_encrypts_to_the_imported_certificate(
    hub: Hub, dev_pki: DevPki, tmp_path: Path
) -> None:
    partner_key = peer_encryption(dev_pki, tmp_path, PARTNER)
    folder = tmp_path / "certificates"
    folder.mkdir()
    (folder / "dr-house.pem").write_bytes(partner_key.cert.read_bytes())
    result = await import_command(hub, tmp_path, folder)
    assert result.exit_code == 0, result.output
    assert "1 added" in result.output
    async with hub.db.read() as session:
        assert list(await encryption_certificates(session, [PARTNER])) == [PARTNER]
    sink, server = await start_partner(hub)
    try:
        doctor = hub.pki.issue_smime(DOCTOR)
        raw = signed(doctor, DOCTOR, PARTNER, subject="Adressage", body="Secret médical\r\n")
        assert await send(hub, raw, PARTNER) == (250, "")
        await hub.runner.drain()
    finally:
        server.close()
    ((_, rcpts, relayed),) = sink.received
    assert rcpts == [PARTNER]
    assert b"smime-type=enveloped-data" in relayed.split(b"\r\n\r\n", 1)[0]
    assert b"Secret" not in relayed and b"Subject: Adressage" in relayed
    # the partner decrypts with the key only it holds and finds the doctor's signature
    cert, key = load_certs(partner_key.cert)[0], load_key(partner_key.key)
    inner = smime.decrypt(relayed, cert, key)
    outer, _ = smime.split_entity(relayed)
    opened = b"\r\n".join([*outer, b"MIME-Version: 1.0"]) + b"\r\n" + inner
    assert "Secret médical".encode() in opened
    assert smime.verify(opened, hub.pki.trust, from_address=DOCTOR).ok


async def test_recipients_with_and_without_a_certificate_get_two_transactions(
    hub: Hub, dev_pki: DevPki, tmp_path: Path
) -> None:
    """``when_known``: encrypted to the one whose certificate is known, in clear (inside TLS) to
    the other, each by its own relay job."""
    from mss.crypto.trust import TrustStore
    from mss.directory.recipient_certificates import import_certificates

    other = f"dr.wilson@{PARTNER_DOMAIN}"
    async with hub.db.write() as session:
        await import_certificates(
            session,
            [peer_encryption(dev_pki, tmp_path, PARTNER).cert],
            TrustStore.from_settings(hub.settings, repo_trust_dir=None),
        )
    sink, server = await start_partner(hub)
    try:
        raw = signed(hub.pki.issue_smime(DOCTOR), DOCTOR, [PARTNER, other], body="Deux\r\n")
        client = await hub.login_client(DOCTOR)
        errors, _ = await client.sendmail(DOCTOR, [PARTNER, other], raw)
        await client.quit()
        assert errors == {}
        await hub.runner.drain()
    finally:
        server.close()
    received = {tuple(rcpts): body for _, rcpts, body in sink.received}
    assert sorted(received) == [(PARTNER,), (other,)]
    assert b"enveloped-data" in received[(PARTNER,)] and b"Deux" not in received[(PARTNER,)]
    assert b"Deux" in received[(other,)] and b"pkcs7-mime" not in received[(other,)]


async def test_required_encryption_without_a_certificate_bounces(hub: Hub) -> None:
    hub.settings.smime.encrypt_outbound = "required"
    sink, server = await start_partner(hub)
    try:
        raw = signed(hub.pki.issue_smime(DOCTOR), DOCTOR, PARTNER, subject="Adressage")
        assert await send(hub, raw, PARTNER) == (250, "")
        await hub.runner.drain()
    finally:
        server.close()
    assert sink.received == []
    dsn = as_email((await hub.stored(DOCTOR))[0].raw)
    text = dsn.get_body(("plain",)).get_content()
    assert PARTNER in text and "5.7.5" in str(dsn)
    assert "knows no encryption certificate for" in text
    assert "aucun certificat de chiffrement" in text


async def test_never_sends_in_clear_even_with_a_certificate(
    hub: Hub, dev_pki: DevPki, tmp_path: Path
) -> None:
    from mss.crypto.trust import TrustStore
    from mss.directory.recipient_certificates import import_certificates

    hub.settings.smime.encrypt_outbound = "never"
    async with hub.db.write() as session:
        await import_certificates(
            session,
            [peer_encryption(dev_pki, tmp_path, PARTNER).cert],
            TrustStore.from_settings(hub.settings, repo_trust_dir=None),
        )
    sink, server = await start_partner(hub)
    try:
        raw = signed(hub.pki.issue_smime(DOCTOR), DOCTOR, PARTNER, body="En clair\r\n")
        assert await send(hub, raw, PARTNER) == (250, "")
        await hub.runner.drain()
    finally:
        server.close()
    ((_, _, relayed),) = sink.received
    assert b"En clair" in relayed and b"pkcs7-mime" not in relayed


@pytest.mark.parametrize("problem", ["untrusted", "signing_only_ec", "no_file"])
async def test_import_refuses_certificates_it_cannot_encrypt_to(
    hub: Hub, untrusted_pki: DevPki, dev_pki: DevPki, tmp_path: Path, problem: str
) -> None:
    if problem == "untrusted":
        path = pki.issue_encryption(untrusted_pki.dir, PARTNER).cert
        expected = "This certificate cannot be used to encrypt mail: it is not trusted"
    elif problem == "signing_only_ec":
        path = dev_pki.issue_smime(PARTNER, key_type="ec").cert_path
        expected = "its key is not RSA"
    else:
        path = tmp_path / "missing.pem"
        expected = "does not exist"
    result = await import_command(hub, tmp_path, path)
    assert result.exit_code == 2
    assert expected in result.output
    async with hub.db.read() as session:
        assert await encryption_certificates(session, [PARTNER]) == {}
