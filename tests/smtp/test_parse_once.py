"""The hot path reads each message once: SMTP DATA, 250, stored, with one parse.

``mss.message.parse_message`` is the one reading of a message; its MIME tree is walked
once (``mss.mailbox.structure``), and every later stage reads that object. Counted here
over the wire: calls to the entry point, MIME walks, and every use of the email
package's parser (``email.message_from_bytes``, ``BytesParser`` and the rest all build
an ``email.feedparser.FeedParser``). The email package may be used only inside the
entry point, for a header block that is not plainly written: a second
``message_from_bytes`` anywhere in the path fails these tests.
"""

from __future__ import annotations

import email.feedparser
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select

import dmp_bridge.filing
import mss.mailbox.structure
import mss.smtp_gateway.stages
from mss.jobs import Job
from tests.dmp.filing_helpers import PATIENT_ADDRESS, add_patient, xdm_message
from tests.smtp.conftest import DOCTOR, PATIENT, Hub, message
from tests.xdm_factory import XdmSpec, make_xdm


@dataclass
class Parses:
    """What reading the messages cost while counting."""

    entry: int = 0  # calls to parse_message
    walks: int = 0  # MIME tree walks
    email_package: int = 0  # FeedParsers built, anywhere
    outside_entry: int = 0  # of those, built outside parse_message
    _inside: int = 0

    def reset(self) -> None:
        self.entry = self.walks = self.email_package = self.outside_entry = 0


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> Iterator[Parses]:
    counted = Parses()

    def counting_entry(real: Any) -> Any:
        def parse_message(raw: bytes) -> Any:
            counted.entry += 1
            counted._inside += 1
            try:
                return real(raw)
            finally:
                counted._inside -= 1

        return parse_message

    for module in (mss.smtp_gateway.stages, dmp_bridge.filing):
        monkeypatch.setattr(module, "parse_message", counting_entry(module.parse_message))
    walker_init = mss.mailbox.structure._Walker.__init__

    def counting_walker(self: Any, raw: bytes) -> None:
        counted.walks += 1
        walker_init(self, raw)

    monkeypatch.setattr(mss.mailbox.structure._Walker, "__init__", counting_walker)
    feed_init = email.feedparser.FeedParser.__init__

    def counting_feed(self: Any, *args: Any, **kwargs: Any) -> None:
        counted.email_package += 1
        counted.outside_entry += counted._inside == 0
        feed_init(self, *args, **kwargs)

    monkeypatch.setattr(email.feedparser.FeedParser, "__init__", counting_feed)
    yield counted


async def _send(hub: Hub, recipient: str, raw: bytes) -> None:
    client = await hub.login_client(DOCTOR)
    try:
        errors, _ = await client.sendmail(DOCTOR, [recipient], raw)  # raises unless 250
    finally:
        await client.quit()
    assert not errors


async def _jobs(hub: Hub, kind: str) -> list[Job]:
    async with hub.db.read() as session:
        return list((await session.scalars(select(Job).where(Job.kind == kind))).all())


async def test_a_signed_message_with_an_xdm_package_is_parsed_once(
    hub: Hub,
    parses: Parses,
) -> None:
    await add_patient(hub)
    raw, message_id = xdm_message(
        make_xdm(XdmSpec()),
        mdn=True,
        subject="Compte rendu",
        name="IHE_XDM.zip",
        content_type="application/zip",
    )
    signed = hub.pki.issue_smime(DOCTOR, id_nat="810000000001").sign(raw)
    parses.reset()
    await _send(hub, PATIENT_ADDRESS, signed)
    assert (parses.entry, parses.walks, parses.email_package) == (1, 1, 0)
    [stored] = await hub.stored(PATIENT_ADDRESS)
    assert stored.signature_status == "valid"
    leaves = list(mss.mailbox.structure.leaves(stored.bodystructure["parts"]))
    assert [leaf.get("name") for leaf in leaves] == [None, "IHE_XDM.zip", "CR.pdf", "smime.p7s"]
    [filing] = await _jobs(hub, "dmp.file")  # the package was found in the one reading

    parses.reset()
    await hub.runner.drain()  # the filing job: built once from the stored bytes
    assert parses.entry == 1 and parses.outside_entry == 0
    async with hub.db.read() as session:
        assert (await session.get(Job, filing.id)).state == "done"  # type: ignore[union-attr]


async def test_an_encoded_word_subject_is_parsed_once(
    hub: Hub,
    parses: Parses,
) -> None:
    raw = message(DOCTOR, PATIENT, subject="=?utf-8?q?R=C3=A9sultats_d=27analyse?=")
    signed = hub.pki.issue_smime(DOCTOR).sign(raw)
    parses.reset()
    await _send(hub, PATIENT, signed)
    # the header block is not plainly written: the email package reads it, inside the entry
    assert (parses.entry, parses.walks, parses.email_package, parses.outside_entry) == (1, 1, 1, 0)
    [stored] = await hub.stored(PATIENT)
    assert stored.subject == "Résultats d'analyse"


async def test_an_opaque_signature_is_opened_once_for_the_attachment_index(
    hub: Hub,
    parses: Parses,
) -> None:
    await add_patient(hub)
    raw, _ = xdm_message(
        make_xdm(XdmSpec()),
        mdn=False,
        subject="Compte rendu",
        name="IHE_XDM.zip",
        content_type="application/zip",
    )
    opaque = hub.pki.issue_smime(DOCTOR, id_nat="810000000001").sign(raw, detached=False)
    parses.reset()
    await _send(hub, PATIENT_ADDRESS, opaque)
    # one walk of the message, one of the entity its signature carries; no email parse
    assert (parses.entry, parses.walks, parses.email_package) == (1, 2, 0)
    assert len(await _jobs(hub, "dmp.file")) == 1


async def test_an_encrypted_message_is_read_twice_its_outside_then_its_decrypted_inside(
    hub: Hub,
    parses: Parses,
) -> None:
    """The encrypted message's header block, then the decrypted message the rest of the path
    reads (its MIME tree walked once, its XDM package found there); the outside is never
    walked and the email package never used."""
    from mss.crypto import pki, smime
    from mss.crypto.keys import load_certs

    await add_patient(hub)
    raw, _ = xdm_message(
        make_xdm(XdmSpec()),
        mdn=False,
        subject="Compte rendu",
        name="IHE_XDM.zip",
        content_type="application/zip",
    )
    signed = hub.pki.issue_smime(DOCTOR, id_nat="810000000001").sign(raw)
    sealed_for = load_certs(pki.issue_encryption(hub.settings.pki_dir, PATIENT_ADDRESS).cert)
    encrypted = smime.encrypt(signed, sealed_for[:1])
    parses.reset()
    await _send(hub, PATIENT_ADDRESS, encrypted)
    assert (parses.entry, parses.walks, parses.email_package) == (2, 1, 0)
    [stored] = await hub.stored(PATIENT_ADDRESS)
    assert stored.signature_status == "valid" and stored.arrived_encrypted
    assert len(await _jobs(hub, "dmp.file")) == 1
