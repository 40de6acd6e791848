"""The hub's S/MIME signature on a message it writes for a patient's space: the profile summary.

Why this design. A patient holds no key: the portal's strong login (password and one-time code)
is how a patient proves who they are. The profile summary (``portal.views.profile_send``) is
written wholly by the hub (a fixed sentence and the PDF ``mss.profile.pdf`` makes) and sent
From the patient's own mailbox address, because that is the address the professional answers
and the one the professional-initiates rule knows. Every S/MIME verifier on the way (the hub's
gateway at its content stage, ``mss.policy.signature``, and the professional's client,
Thunderbird or another) requires the signer's certificate address to equal From (RFC 8550
§3). So a signature by a hub-wide address (a "service" sender) would fail that check, and a
message From such an address, naming the patient in its text, would not be answerable to the
patient nor be from them.

So the hub holds one signing certificate per patient mailbox address, issued by the hub's PKI
(the development PKI in dev, ``mss.crypto.pki.issue_patient_signing``) on first use: the key is
generated at run time on the hub, written 0600 under ``issued/patient/<address>.key``, never
committed and never handed to anyone. Its subject says what vouches:
``CN=<patient's name>,OU=Espace patient, signature du service,O=<hub>,C=FR`` with SAN
rfc822Name = the patient's address and EKU emailProtection. The portal signs only after its
strong login (the session is the authentication) and only the messages the hub wrote whole.
The professional's client shows a valid signature from the patient's address, by a certificate
that says the hub's patient space signed it; the hub's own gateway verifies it like any signed
mail (``smime=pass``, stored status ``valid``). A certificate that is expired, about to expire,
revoked in the PKI's index, or whose name no longer matches the space is issued again.

Issuance is serialised by a lock file (``issued/patient/.lock``, ``fcntl.flock``) so that the
portal's processes never issue twice at once nor read a key beside another process's
certificate.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import threading
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

from mss.crypto import smime
from mss.crypto.certificates import utcnow
from mss.crypto.keys import PrivateKey, load_certs, load_key
from mss.crypto.pki import issue_patient_signing, list_certificates, patient_signing_target

# A certificate this close to its end is replaced before it signs.
RENEW_BEFORE = dt.timedelta(days=30)


@dataclass(frozen=True)
class SpaceIdentity:
    """The hub's signing certificate for one patient mailbox, its chain and its key."""

    address: str
    cert: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    key: PrivateKey = field(repr=False)


def _common_name(cert: x509.Certificate) -> str:
    found = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(found[0].value) if found else ""


class SpaceSigners:
    """The patient mailboxes' signing identities under ``pki_dir``, issued on first use."""

    def __init__(self, pki_dir: Path) -> None:
        self.pki_dir = Path(pki_dir)
        self._lock = threading.Lock()
        self._loaded: dict[str, SpaceIdentity] = {}

    def _usable(self, found: SpaceIdentity, name: str, now: dt.datetime) -> bool:
        cert = found.cert
        return (
            cert.not_valid_before_utc <= now
            and cert.not_valid_after_utc - RENEW_BEFORE > now
            and _common_name(cert) == name
        )

    def _revoked(self, identity: SpaceIdentity) -> bool:
        serial = format(identity.cert.serial_number, "X")
        return any(
            e.serial == serial and e.revoked_at is not None
            for e in list_certificates(self.pki_dir)
            if e.kind == "patient"
        )

    def _read(self, address: str) -> SpaceIdentity | None:
        target = patient_signing_target(self.pki_dir, address)
        if not target.cert.is_file() or not target.key.is_file():
            return None
        certs = load_certs(target.cert)
        return SpaceIdentity(address, certs[0], tuple(certs[1:]), load_key(target.key))

    def identity(self, address: str, name: str) -> SpaceIdentity:
        """The signing identity of ``address`` for a space named ``name``, issued when the hub
        holds none that is usable. Raises ``mss.errors.InvalidInput`` without a PKI."""
        address = address.strip().lower()
        now = utcnow()
        with self._lock:
            cached = self._loaded.get(address)
            if cached is not None and self._usable(cached, name, now) and not self._revoked(cached):
                return cached
            target = patient_signing_target(self.pki_dir, address)
            target.cert.parent.mkdir(parents=True, exist_ok=True)
            with open(target.cert.parent / ".lock", "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                found = self._read(address)
                if found is None or not self._usable(found, name, now) or self._revoked(found):
                    issue_patient_signing(self.pki_dir, address, common_name=name)
                    found = self._read(address)
                    assert found is not None
            self._loaded[address] = found
            return found

    def sign(self, raw: bytes, address: str, name: str) -> bytes:
        """``raw`` (a whole message From ``address``) signed detached (multipart/signed) with the
        hub's certificate for that mailbox, the intermediate included for the verifier."""
        found = self.identity(address, name)
        return smime.sign(raw, found.cert, found.key, chain=found.chain)
