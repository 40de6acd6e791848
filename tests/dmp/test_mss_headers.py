"""X-MSS-CODECDA and X-MSS-INS on DMP-bound mail, through the gateway and the filing job.

Read on the message the gateway stored (``mss.message``: the header block as read once),
checked against the package (``mss.policy.mss_headers``): a claim the package
contradicts files nothing and is answered with the IG's code, by MDN or, when none was
asked, the IG's standard e-mail; the hub's answers carry both headers computed from the
package. The delivery status the doctor can query moves with the filing
(``mss.delivery_status``): delivered, then filed or failed with the code.
"""

from __future__ import annotations

import email.policy
from email.message import EmailMessage

import pytest

from mss.delivery_status import RecipientStatus, statuses_of
from mss.message import parse_message
from tests.dmp.filing_helpers import PATIENT_ADDRESS, FilingHub, add_patient, notification_fields
from tests.dmp.test_filing import _oppose_record, _spec
from tests.smtp.conftest import DOCTOR, Hub, hub  # noqa: F401 - the gateway fixture
from tests.xdm_factory import make_cda

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
async def dmp(hub: Hub) -> FilingHub:  # noqa: F811
    return FilingHub(hub, await add_patient(hub))


def headers(**values: str) -> bytes:
    names = {"codecda": "X-MSS-CODECDA", "ins": "X-MSS-INS"}
    return b"".join(f"{names[k]}: {v}\r\n".encode() for k, v in values.items())


async def status(dmp: FilingHub, message_id: str) -> list[RecipientStatus]:
    async with dmp.hub.db.read() as session:
        return (await statuses_of(session, DOCTOR, [message_id]))[message_id]


def written(answer: EmailMessage) -> list[tuple[str, str]]:
    return [(n, str(v)) for n, v in answer.items() if n.upper().startswith("X-MSS-")]


def top_fields(answer: EmailMessage) -> bytes:
    return answer.as_bytes(policy=email.policy.SMTP).split(b"\r\n\r\n", 1)[0]


async def test_headers_that_agree_are_read_and_the_mdn_carries_them(dmp: FilingHub) -> None:
    message_id = await dmp.send(_spec(), raw_header=headers(codecda="11488-4", ins="O"))
    assert await dmp.count() == 1
    stored = (await dmp.hub.stored(PATIENT_ADDRESS))[0]
    message = parse_message(bytes(stored.raw))
    assert (message.mss_codecda, message.mss_ins) == ("11488-4", "O")
    [mdn] = await dmp.mdns()
    fields = notification_fields(mdn)
    assert fields["Disposition"] == "automatic-action/MDN-sent-automatically; processed"
    assert written(mdn) == [("X-MSS-CODECDA", "11488-4"), ("X-MSS-INS", "O")]
    block = top_fields(mdn)
    assert b"\r\nX-MSS-CODECDA: 11488-4\r\nX-MSS-INS: O\r\n" in block
    [filed] = await status(dmp, message_id)
    assert (filed.recipient, filed.state, filed.code) == (PATIENT_ADDRESS, "filed", "")
    assert filed.sentence_fr == "Classé dans le dossier médical"


async def test_the_hub_writes_the_headers_even_when_the_sender_did_not(dmp: FilingHub) -> None:
    """Absent headers claim nothing; the answer still says what the package holds."""
    await dmp.send(_spec(content=make_cda(traits=False)), mdn=True)
    [mdn] = await dmp.mdns()
    assert ("X-MSS-INS", "N") in written(mdn)  # an INS without its four traits: not qualified
    assert ("X-MSS-CODECDA", "11488-4") in written(mdn)


@pytest.mark.parametrize(
    ("claimed", "spec", "code", "said"),
    [
        (
            headers(codecda="18748-4"),
            _spec(),
            906,
            "L'en-tête X-MSS-CODECDA annonce 18748-4 mais le paquet XDM contient 11488-4.",
        ),
        (headers(codecda="11488-4;18748-4"), _spec(), 906, "n'est pas une liste de codes"),
        (headers(ins="N"), _spec(), 906, "annonce N (pas d'INS qualifiée)"),
        (headers(ins="oui"), _spec(), 906, "doit valoir O ou N"),
        (
            headers(ins="O"),
            _spec(content=make_cda(traits=False)),
            905,
            "une partie de ses quatre traits d'identité",
        ),
    ],
)
async def test_a_claim_the_package_contradicts_files_nothing(
    dmp: FilingHub, claimed: bytes, spec: bytes, code: int, said: str
) -> None:
    message_id = await dmp.send(spec, raw_header=claimed)
    assert await dmp.count() == 0
    [mdn] = await dmp.mdns()
    fields = notification_fields(mdn)
    assert fields["Disposition"].startswith(
        f"automatic-action/MDN-sent-automatically; processed/Error: {code}^"
    )
    assert str(mdn["Subject"]).startswith(f"[KO Intégration système !][{code}] XDM/1.0/DDM+")
    assert said in mdn.get_body(("plain",)).get_content()
    [failed] = await status(dmp, message_id)
    assert (failed.state, failed.code) == ("failed", str(code))
    assert said.rstrip(".") in failed.sentence_fr
    assert failed.sentence_fr.startswith("Distribué, mais non classé dans le dossier médical : ")
    assert failed.sentence_fr.endswith(f" (code {code})")


async def test_no_mdn_asked_the_standard_email_carries_the_code_and_headers(
    dmp: FilingHub,
) -> None:
    await dmp.send(_spec(), mdn=False, raw_header=headers(codecda="11502-2", ins="O"))
    assert await dmp.count() == 0
    [answer] = await dmp.error_emails()
    assert str(answer["Subject"]).startswith("[Erreur d’intégration !][906] XDM/1.0/DDM+")
    assert written(answer) == [("X-MSS-CODECDA", "11488-4"), ("X-MSS-INS", "O")]
    assert "- Code d’erreur : 906" in answer.get_body(("plain",)).get_content()
    assert [p.get_filename() for p in answer.iter_attachments()][1:] == ["IHE_XDM.zip", "CR.pdf"]


async def test_a_filing_error_fails_the_status_that_was_delivered(dmp: FilingHub) -> None:
    """delivered → failed: the 902 of the IG example (no record for this patient)."""
    await _oppose_record(dmp)
    message_id = await dmp.send(_spec())
    [failed] = await status(dmp, message_id)
    assert (failed.state, failed.code) == ("failed", "902")
    assert failed.detail and failed.detail_fr


@pytest.mark.parametrize(
    "subject",
    [
        b"XDM/1.0/DDM+Compte rendu NESSI Ruth 14/07/1977",  # read directly (plainly written)
        b"=?utf-8?q?XDM/1.0/DDM+Compte_rendu_h=C3=A9pato?=",  # read by the email package
    ],
)
def test_both_readings_of_the_header_block_give_the_same_values(subject: bytes) -> None:
    raw = (
        b"From: <jean.dupont@mss.localhost>\r\nSubject: " + subject + b"\r\n"
        b"Message-ID: <a@b.example>\r\nX-MSS-CODECDA:  34112-3,PRESC-BIO \r\n"
        b"X-MSS-INS: N\r\nX-MSS-INS: O\r\n\r\nTexte.\r\n"
    )
    message = parse_message(raw)
    assert message.mss_codecda == "34112-3,PRESC-BIO"
    assert message.mss_ins == "N"  # the first field, as for every single-valued header
    assert parse_message(b"From: <a@b.example>\r\n\r\nx\r\n").mss_codecda is None


async def test_a_ddm_subject_without_a_package_is_answered_906(dmp: FilingHub) -> None:
    """The subject announces a package (XDM/1.0/DDM+...), the attachment is not one."""
    message_id = await dmp.send(_spec(), name="dossier.zip")
    assert await dmp.count() == 0
    [mdn] = await dmp.mdns()
    assert notification_fields(mdn)["Disposition"].startswith(
        "automatic-action/MDN-sent-automatically; processed/Error: 906^"
    )
    text = mdn.get_body(("plain",)).get_content()
    assert "L'objet annonce un message compatible DMP (XDM/1.0/DDM+…)" in text
    assert written(mdn) == []  # no CDA came: neither X-MSS header (§3.8.1, §3.8.2)
    [failed] = await status(dmp, message_id)
    assert (failed.state, failed.code) == ("failed", "906")
