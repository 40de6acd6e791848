"""Open S/MIME encrypted mail (RFC 8551 §2.4.2, CMS EnvelopedData RFC 5652 §6) for hub mailboxes.

Each hub mailbox that receives encrypted mail has an encryption certificate and key under
``<pki_dir>/issued/encryption/<address>.pem|.key`` (``mss pki issue --encryption``). The
gateway reads the CMS RecipientInfos (asn1crypto) to see whose certificates the message is
encrypted to and with which algorithms, then decrypts with one local recipient's key:
AES-CBC with RSA PKCS#1 v1.5 key transport with ``cryptography`` (``pkcs7_decrypt_der``);
AuthEnvelopedData (RFC 5083, AES-GCM) and RSAES-OAEP key transport with the ``openssl cms``
command, which ``cryptography`` does not cover. No cryptography is written
here. The outcome's ``status`` is a key of ``mss.policy.encryption.DECRYPTION_VERDICTS``.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from asn1crypto import cms as asn1_cms
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import pkcs7

from mss.crypto.keys import PrivateKey, load_certs, load_key
from mss.crypto.pki import encryption_target
from mss.crypto.smime import SmimeForm, canonical, split_entity


@dataclass(frozen=True)
class EncryptionKey:
    """A hub mailbox's encryption certificate, with its key and the key's file (for openssl)."""

    address: str
    cert: x509.Certificate
    key: PrivateKey = field(repr=False)
    key_path: Path
    cert_path: Path


class EncryptionKeys:
    """The hub mailboxes' encryption keys, read from the PKI folder on first use and again when
    a file is issued or replaced there (the folder's modification time changes)."""

    def __init__(self, pki_dir: Path) -> None:
        self.pki_dir = Path(pki_dir)
        self._lock = threading.Lock()
        self._loaded: dict[str, EncryptionKey | None] = {}
        self._stamp: float | None = None

    def _folder_stamp(self) -> float | None:
        folder = encryption_target(self.pki_dir, "x@localhost").cert.parent
        try:
            return folder.stat().st_mtime
        except OSError:
            return None

    def for_address(self, address: str) -> EncryptionKey | None:
        """The encryption key of ``address``, or None when the hub holds none."""
        address = address.strip().lower()
        stamp = self._folder_stamp()
        with self._lock:
            if stamp != self._stamp:
                self._loaded.clear()
                self._stamp = stamp
            if address not in self._loaded:
                self._loaded[address] = self._read(address)
            return self._loaded[address]

    def _read(self, address: str) -> EncryptionKey | None:
        target = encryption_target(self.pki_dir, address)
        if not target.cert.is_file() or not target.key.is_file():
            return None
        return EncryptionKey(
            address, load_certs(target.cert)[0], load_key(target.key), target.key, target.cert
        )


@dataclass(frozen=True)
class Decrypted:
    """What decryption found: ``status`` (``decrypted`` or a refusal's), for whom, and the
    message rebuilt with the decrypted entity in place of the encrypted body."""

    status: str
    recipient: str = ""
    reason: str = ""
    raw: bytes = field(default=b"", repr=False)


class _Unreadable(Exception):
    pass


# RFC 8551 §2.7: AES-CBC (EnvelopedData) and AES-GCM (AuthEnvelopedData); 3DES, RC2 and the
# rest are refused 5.7.6 rather than opened with a deprecated cipher.
_CONTENT_CIPHERS = frozenset(
    {"aes128_cbc", "aes256_cbc", "aes128_gcm", "aes192_gcm", "aes256_gcm", "aes192_cbc"}
)
# what ``cryptography``'s pkcs7_decrypt_der opens; the rest goes to ``openssl cms``
_LIBRARY_CIPHERS = frozenset({"aes128_cbc", "aes256_cbc"})
_KEY_TRANSPORT = frozenset({"rsaes_pkcs1v15", "rsaes_oaep", "rsa"})


@dataclass(frozen=True)
class _Envelope:
    """What an EnvelopedData (or AuthEnvelopedData) says of itself, before decrypting."""

    recipients: tuple[tuple[str, object, str], ...]  # (id kind, id, key transport algorithm)
    cipher: str  # the content-encryption algorithm, by its asn1crypto name


def _envelope(der: bytes, kind: str) -> _Envelope:
    """Whom the message is encrypted to: ("issuer_serial", (issuer DER, serial)) or
    ("ski", key identifier) per key-transport RecipientInfo (RFC 5652 §6.2.1), and with what."""
    try:
        content = asn1_cms.ContentInfo.load(der, strict=False)["content"]
        field_name = (
            "auth_encrypted_content_info"
            if kind == "AuthEnvelopedData"
            else "encrypted_content_info"
        )
        cipher = str(content[field_name]["content_encryption_algorithm"]["algorithm"].native)
        found: list[tuple[str, object, str]] = []
        for recipient in content["recipient_infos"]:
            if recipient.name != "ktri":
                continue
            rid = recipient.chosen["rid"]
            transport = str(recipient.chosen["key_encryption_algorithm"]["algorithm"].native)
            if rid.name == "issuer_and_serial_number":
                issuer_serial = (rid.chosen["issuer"].dump(), rid.chosen["serial_number"].native)
                found.append(("issuer_serial", issuer_serial, transport))
            else:
                found.append(("ski", rid.chosen.native, transport))
        return _Envelope(tuple(found), cipher)
    except Exception as exc:  # noqa: BLE001 - any parse error of hostile input is "corrupted"
        raise _Unreadable(f"its CMS {kind} cannot be read ({type(exc).__name__})") from None


def _transport_for(cert: x509.Certificate, envelope: _Envelope) -> str | None:
    """The key transport algorithm of the RecipientInfo that names ``cert``; None if none does."""
    issuer_serial = (cert.issuer.public_bytes(), cert.serial_number)
    try:
        ski: bytes | None = cert.extensions.get_extension_for_class(
            x509.SubjectKeyIdentifier
        ).value.digest
    except x509.ExtensionNotFound:
        ski = None
    for kind, value, transport in envelope.recipients:
        if kind == "issuer_serial" and value == issuer_serial:
            return transport
        if kind == "ski" and ski is not None and value == ski:
            return transport
    return None


def decrypt_message(
    raw: bytes, form: SmimeForm, recipients: Sequence[str], keys: EncryptionKeys
) -> Decrypted:
    """Decrypt ``raw`` (an enveloped or authEnveloped form) for the local ``recipients``.

    Every local recipient needs its own key among the RecipientInfos: a message encrypted for
    one of them is not opened for another. The rebuilt message keeps the outer header fields
    (From, To, Subject, Date...) and puts the decrypted MIME entity in place of the encrypted
    body, byte for byte (canonical CRLF, RFC 8551 §3.1.1), so its inner signature is verified
    over the bytes the sender signed. ``cryptography`` opens AES-CBC with RSA PKCS#1 v1.5 key
    transport; ``openssl cms`` opens AES-GCM (RFC 5083) and RSAES-OAEP (RFC 8551 §2.3).
    """
    kind = "AuthEnvelopedData" if form.kind == "auth_enveloped" else "EnvelopedData"
    first = recipients[0] if recipients else ""
    try:
        envelope = _envelope(form.der, kind)
    except _Unreadable as exc:
        return Decrypted("corrupted", first, str(exc))
    chosen: tuple[EncryptionKey, str] | None = None
    for address in recipients:
        key = keys.for_address(address)
        if key is None:
            return Decrypted("no_key", address)
        transport = _transport_for(key.cert, envelope)
        if transport is None:
            return Decrypted("not_for_recipient", address)
        chosen = chosen or (key, transport)
    if chosen is None:
        return Decrypted("no_key", first)
    key, transport = chosen
    if envelope.cipher not in _CONTENT_CIPHERS or transport not in _KEY_TRANSPORT:
        return Decrypted(
            "unsupported", key.address, f"content {envelope.cipher}, key transport {transport}"
        )
    try:
        if envelope.cipher in _LIBRARY_CIPHERS and transport != "rsaes_oaep":
            inner = pkcs7.pkcs7_decrypt_der(
                form.der,
                key.cert,
                key.key,  # type: ignore[arg-type]
                [],
            )
        else:
            inner = _openssl_decrypt(form.der, key)
    except UnsupportedAlgorithm as exc:
        return Decrypted("unsupported", key.address, str(exc))
    except _Unreadable as exc:
        return Decrypted("corrupted", key.address, str(exc))
    except Exception as exc:  # noqa: BLE001 - hostile CMS: what the library raises is "corrupted"
        return Decrypted("corrupted", key.address, str(exc) or type(exc).__name__)
    outer, _ = split_entity(raw)
    rebuilt = b"\r\n".join([*outer, b"MIME-Version: 1.0"]) + b"\r\n" + canonical(inner)
    return Decrypted("decrypted", key.address, raw=rebuilt)


def _openssl_decrypt(der: bytes, key: EncryptionKey) -> bytes:
    """AuthEnvelopedData (AES-GCM) with ``openssl cms -decrypt``: cryptography reads only
    EnvelopedData."""
    with tempfile.TemporaryDirectory(prefix="mss-cms-") as folder:
        source = Path(folder) / "in.der"
        source.write_bytes(der)
        done = subprocess.run(
            [
                "openssl",
                "cms",
                "-decrypt",
                "-binary",
                "-inform",
                "DER",
                "-in",
                str(source),
                "-recip",
                str(key.cert_path),
                "-inkey",
                str(key.key_path),
            ],
            capture_output=True,
            timeout=30,
            env={**os.environ, "OPENSSL_CONF": os.devnull},
            check=False,
        )
    if done.returncode != 0:
        first = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise _Unreadable(f"openssl cms: {first[0] if first else 'decryption failed'}")
    return done.stdout
