"""Filing end to end: a signed message with an XDM package submitted over SMTP, the job, the MDN,
the API.

Also replacement (action C), deletion (action D), every error 900-906 with
its error MDN, idempotency, and the message delivered to the patient either way.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from aiosmtplib import SMTPResponseException
from sqlalchemy import select, update

from dmp_bridge.access import Viewer
from dmp_bridge.consent_store import set_block, set_dmp_opposition
from dmp_bridge.intake import FILE_JOB
from dmp_bridge.xdm import read_xdm
from mss.jobs import Job
from tests.dmp.conftest import start_api
from tests.dmp.filing_helpers import (
    DOCTOR_ID_NAT,
    PATIENT_ADDRESS,
    SUBJECT,
    FilingHub,
    add_patient,
    notification_fields,
)
from tests.smtp.conftest import DOCTOR, PASSWORD, Hub, hub  # noqa: F401 - the gateway fixture
from tests.xdm_factory import (
    IDNAT,
    INS,
    INS_TEST_OID,
    INS_WRONG_KEY,
    TRE_A07,
    DocSpec,
    XdmSpec,
    make_cda,
    make_xdm,
    package_entries,
    zip_bytes,
)

V1 = "1.2.250.1.999.1.1.5"
V2 = "1.2.250.1.999.1.1.6"


@pytest.fixture
async def dmp(hub: Hub) -> FilingHub:  # noqa: F811
    return FilingHub(hub, await add_patient(hub))


def version(
    unique: str, *, replaces: str | None = None, action: str | None = None, **cda: object
) -> bytes:
    content = make_cda(
        doc_root=unique, doc_ext=None, rplc_parent=replaces, version=2 if replaces else 1, **cda
    )  # type: ignore[arg-type]
    return make_xdm(XdmSpec(documents=[DocSpec(content=content, unique_id=unique, action=action)]))


async def test_signed_message_files_the_document_answers_processed_and_shows_in_the_api(
    dmp: FilingHub,
) -> None:
    message_id = await dmp.send(make_xdm(XdmSpec(signature=True)))
    [document] = await dmp.documents()
    assert (document.unique_id, document.type_code, document.author_id_nat, document.status) == (
        "1.2.250.1.999.1.1.20240101^42",
        "11488-4",
        IDNAT,
        "current",
    )
    assert document.has_pdf and document.source_message_id == message_id
    assert document.title == "Compte rendu de consultation"
    [mdn] = await dmp.mdns()
    fields = notification_fields(mdn)
    assert fields["Disposition"] == "automatic-action/MDN-sent-automatically; processed"
    assert fields["Original-Message-ID"] == message_id and fields["Error"] is None
    assert fields["Original-Recipient"] == f"rfc822;{PATIENT_ADDRESS}"
    assert mdn["Subject"] == SUBJECT and mdn["In-Reply-To"] == message_id
    assert len(await dmp.hub.stored(PATIENT_ADDRESS)) == 1  # the message itself, delivered
    async with dmp.hub.db.read() as session:
        jobs = (await session.scalars(select(Job.kind))).all()
    assert "notify.patient" in jobs  # "new_document"
    async with start_api(dmp.hub.db, dmp.hub.settings, dmp.hub.pki) as api:
        search = f"/fhir/DocumentReference?patient.identifier=urn:oid:{INS_TEST_OID}|{INS}"
        status, body, _ = await api.call("GET", search, basic=f"{DOCTOR}:{PASSWORD}")
        assert status == 200
        [entry] = json.loads(body)["entry"]
        assert entry["resource"]["masterIdentifier"]["value"] == document.unique_id
        status, body, _ = await api.call(
            "GET", f"/fhir/Binary/{document.id}", basic=f"{DOCTOR}:{PASSWORD}"
        )
        assert status == 200 and b"ClinicalDocument" in body


async def test_replacement_then_deletion(dmp: FilingHub) -> None:
    await dmp.send(version(V1))
    await dmp.send(version(V2, replaces=V1, action="C"))
    old, new = await dmp.documents()
    assert (old.status, new.status, new.version, new.replaces_id) == (
        "replaced",
        "current",
        2,
        old.id,
    )
    await dmp.send(version(V2, replaces=V1, action="D"))
    assert [d.status for d in await dmp.documents()] == ["replaced", "deleted"]
    assert [notification_fields(m)["Error"] for m in await dmp.mdns()] == [None, None, None]


async def _block_author(dmp: FilingHub) -> None:
    async with dmp.hub.db.write() as session:
        patient = await session.merge(await dmp.patient())
        await set_block(session, Viewer.for_patient(patient), patient, IDNAT)


async def _oppose_record(dmp: FilingHub) -> None:
    async with dmp.hub.db.write() as session:
        patient = await session.merge(await dmp.patient())
        await set_dmp_opposition(session, Viewer.for_patient(patient), patient, True)


def _spec(**doc: object) -> bytes:
    return make_xdm(XdmSpec(documents=[DocSpec(**doc)]))  # type: ignore[arg-type]


OTHER_CX = f"{INS_WRONG_KEY}^^^&{INS_TEST_OID}&ISO^NH"
ERRORS = {
    901: (_block_author, _spec()),
    902: (_oppose_record, _spec()),
    903: (None, _spec(patient_cx="", content=make_cda(ins=None))),
    904: (
        None,
        make_xdm(
            XdmSpec(
                documents=[DocSpec(patient_cx=OTHER_CX, content=make_cda(ins=INS_WRONG_KEY))],
                submission_patient_cx=OTHER_CX,
            )
        ),
    ),
    905: (None, _spec(content=make_cda(traits=False))),
    906: (None, b"PK\x03\x04 this is no zip"),
}


@pytest.mark.parametrize("code", sorted(ERRORS))
async def test_error_paths_answer_an_error_mdn(dmp: FilingHub, code: int) -> None:
    prepare, package = ERRORS[code]
    if prepare is not None:
        await prepare(dmp)
    message_id = await dmp.send(package)
    assert await dmp.count() == 0
    await _assert_error_mdn(dmp, code, message_id)


@pytest.mark.parametrize("mime_type", ["text/html", "image/svg+xml"])
async def test_a_type_the_dmp_does_not_hold_is_error_906(dmp: FilingHub, mime_type: str) -> None:
    page = b"<html><script>fetch('/fhir/Binary/script-ran')</script></html>"
    message_id = await dmp.send(_spec(content=page, mime_type=mime_type))
    assert await dmp.count() == 0
    await _assert_error_mdn(dmp, 906, message_id)
    text = (await dmp.mdns())[-1].get_body(("plain",))
    assert text is not None and f"type '{mime_type}'" in text.get_content()
    assert "application/pdf, image/jpeg" in text.get_content()


async def test_error_900_replacing_an_old_version(dmp: FilingHub) -> None:
    await dmp.send(version(V1))
    await dmp.send(version(V2, replaces=V1, action="C"))
    message_id = await dmp.send(version("1.2.250.1.999.1.1.7", replaces=V1, action="C"))
    assert await dmp.count() == 2
    await _assert_error_mdn(dmp, 900, message_id)
    message_id = await dmp.send(version("1.2.250.1.999.1.1.8", action="D"))  # nothing to delete
    await _assert_error_mdn(dmp, 900, message_id)


async def test_error_901_replacing_another_authors_document(dmp: FilingHub) -> None:
    await dmp.send(version(V1))
    stranger = "810000000098"
    content = make_cda(doc_root=V2, doc_ext=None, rplc_parent=V1, version=2, author_idnat=stranger)
    spec = XdmSpec(
        documents=[
            DocSpec(
                content=content,
                unique_id=V2,
                action="C",
                author_person=f"{stranger}^AUTRE^Paul^^^Dr^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS",
            )
        ]
    )
    # A professional of the author's institution may replace (the IG's rule): another one here.
    entries = {
        name: data.replace(b"31750803447", b"31750800000")
        for name, data in package_entries(spec).items()
    }
    package = zip_bytes(entries)
    message_id = await dmp.send(package)
    await _assert_error_mdn(dmp, 901, message_id)


async def _assert_error_mdn(dmp: FilingHub, code: int, message_id: str) -> None:
    mdn = (await dmp.mdns())[-1]
    fields = notification_fields(mdn)
    assert fields["Original-Message-ID"] == message_id
    disposition = str(fields["Disposition"])
    assert disposition.startswith(
        f"automatic-action/MDN-sent-automatically; processed/Error: {code}^"
    )  # the IG's form
    assert disposition.endswith("^applicationErrorCondition| E^Error^errorSeverity")
    assert fields["Error"] is None
    assert fields["Original-Recipient"] == f"rfc822;{PATIENT_ADDRESS}"  # no ORCPT: the RCPT TO
    assert mdn["Subject"] == f"[KO Intégration système !][{code}] {SUBJECT}"
    text = mdn.get_body(("plain",))
    assert text is not None and f"erreur {code}" in text.get_content()
    original = list(mdn.iter_parts())[2].get_payload()[0]
    assert original["Message-ID"] == message_id
    # The patient receives the message whatever the filing did.
    delivered = [m.message_id_header for m in await dmp.hub.stored(PATIENT_ADDRESS)]
    assert message_id in delivered


async def test_no_mdn_unless_asked_and_no_notification_for_invisible_documents(
    dmp: FilingHub,
) -> None:
    hidden = _spec(
        confidentiality=(("N", "2.16.840.1.113883.5.25"), ("INVISIBLE_PATIENT", TRE_A07))
    )
    await dmp.send(hidden, mdn=False)
    [document] = await dmp.documents()
    assert document.invisible_to_patient
    assert await dmp.mdns() == []
    async with dmp.hub.db.read() as session:
        notices = [
            job.payload["kind"]
            for job in await session.scalars(select(Job).where(Job.kind == "notify.patient"))
        ]
    assert (
        "new_document" not in notices
    )  # the message itself is in the inbox: "new_message" at most


@pytest.mark.parametrize(
    ("name", "content_type"),
    [("ihe_xdm.ZIP", "application/octet-stream"), ("IHE_XDM.ZIP", "application/zip")],
)
async def test_attachment_name_any_case(dmp: FilingHub, name: str, content_type: str) -> None:
    await dmp.send(make_xdm(), name=name, content_type=content_type)
    assert await dmp.count() == 1


async def test_other_attachments_are_not_filed(dmp: FilingHub) -> None:
    # not announced as DMP-compatible either (tests/dmp/test_mss_headers.py: a DDM subject)
    await dmp.send(make_xdm(), name="dossier.zip", subject="Compte rendu")
    await dmp.send(make_xdm(), name="IHE_XDM.zip", content_type="text/plain", subject="CR")
    assert await dmp.count() == 0
    async with dmp.hub.db.read() as session:
        assert FILE_JOB not in (await session.scalars(select(Job.kind))).all()


async def test_running_the_job_twice_files_nothing_twice(dmp: FilingHub) -> None:
    await dmp.send(make_xdm())
    async with dmp.hub.db.write() as session:
        await session.execute(
            update(Job)
            .where(Job.kind == FILE_JOB)
            .values(
                state="pending", attempts=0, run_after=dt.datetime.now(dt.UTC), locked_until=None
            )
        )
    await dmp.hub.runner.drain()
    assert await dmp.count() == 1
    assert len(await dmp.mdns()) == 1
    await dmp.send(make_xdm())  # the same document sent again: success, not a second copy
    assert await dmp.count() == 1
    assert [notification_fields(m)["Error"] for m in await dmp.mdns()] == [None, None]


async def test_the_patient_history_shows_the_filing(dmp: FilingHub) -> None:
    from portal.history import read_history

    await dmp.send(make_xdm())
    async with dmp.hub.db.read() as session:
        history = await read_history(session, dmp.patient_id)
    assert "Document ajouté au dossier" in [line.what for line in history]
    assert DOCTOR_ID_NAT  # the sender is a professional of the directory


async def test_creation_time_copied_from_the_cda_without_offset_is_filed_at_the_cda_instant(
    dmp: FilingHub,
) -> None:
    """The ANS CDA-to-XDM transform writes the CDA's 10:30 (Paris) as creationTime 10:30."""
    await dmp.send(
        _spec(
            content=make_cda(effective_time="20240715103000+0200"), creation_time="20240715103000"
        )
    )
    [document] = await dmp.documents()
    assert document.creation_time == dt.datetime(2024, 7, 15, 8, 30, tzinfo=dt.UTC)
    [mdn] = await dmp.mdns()
    assert notification_fields(mdn)["Disposition"] == (
        "automatic-action/MDN-sent-automatically; processed"
    )


async def test_creation_time_an_hour_off_is_still_error_906(dmp: FilingHub) -> None:
    message_id = await dmp.send(
        _spec(
            content=make_cda(effective_time="20240715103000+0200"), creation_time="20240715113000"
        )
    )
    assert await dmp.count() == 0
    await _assert_error_mdn(dmp, 906, message_id)


async def test_uris_relative_to_ihe_xdm_are_filed(dmp: FilingHub) -> None:
    """DRIMbox writes SS000001/DOC0001.XML, relative to IHE_XDM/ rather than to the subset."""
    await dmp.send(make_xdm(XdmSpec(subset="SS000001", uri_base="ihe_xdm", signature=True)))
    [document] = await dmp.documents()
    assert document.unique_id == "1.2.250.1.999.1.1.20240101^42"


async def test_orcpt_of_the_envelope_is_the_mdns_original_recipient(dmp: FilingHub) -> None:
    """RFC 3461 ORCPT (xtext, case kept) -> RFC 8098 Original-Recipient of the MDN."""
    await dmp.send(make_xdm(), rcpt_options=["ORCPT=rfc822;Ruth.Nessi+2Bdmp@Example.org"])
    [mdn] = await dmp.mdns()
    assert notification_fields(mdn)["Original-Recipient"] == "rfc822;Ruth.Nessi+dmp@Example.org"


async def test_malformed_dsn_parameters_are_refused_with_501(dmp: FilingHub) -> None:
    client = await dmp.hub.login_client(DOCTOR)
    try:
        assert client.supports_extension("DSN")
        await client.mail(DOCTOR, options=["RET=HDRS", "ENVID=QQ+2B1"])
        for bad in ("NOTIFY=SOMETIMES", "ORCPT=nosemicolon", "ORCPT=rfc822;a=b"):
            with pytest.raises(SMTPResponseException) as caught:
                await client.rcpt(PATIENT_ADDRESS, options=[bad])
            assert caught.value.code == 501
        accepted = await client.rcpt(PATIENT_ADDRESS, options=["NOTIFY=FAILURE,DELAY"])
        assert accepted[0] == 250
    finally:
        await client.quit()


async def test_an_error_without_mdn_asked_answers_the_igs_standard_email(dmp: FilingHub) -> None:
    await _oppose_record(dmp)
    message_id = await dmp.send(_spec(), mdn=False)
    assert await dmp.mdns() == []
    [answer] = await dmp.error_emails()
    assert answer["Subject"] == f"[Erreur d’intégration !][902] {SUBJECT}"
    assert answer["In-Reply-To"] == message_id and answer["Auto-Submitted"] == "auto-replied"
    parts = list(answer.iter_parts())
    assert [p.get_content_type() for p in parts] == [
        "text/plain",
        "message/rfc822",
        "application/zip",
        "application/pdf",
    ]
    text = parts[0].get_content().replace("\r\n", "\n")
    assert "- Erreur détectée : Identifiant patient inconnu\n- Code d’erreur : 902\n" in text
    assert parts[1].get_filename() == "message_original.eml"
    assert parts[1].get_payload()[0]["Message-ID"] == message_id
    assert parts[2].get_filename() == "IHE_XDM.zip"
    assert read_xdm(parts[2].get_content()).documents[0].unique_id == (
        "1.2.250.1.999.1.1.20240101^42"
    )  # the package given back, decoded from base64
    assert parts[3].get_filename() == "CR.pdf"


async def test_no_answer_at_all_for_a_success_nobody_asked_about(dmp: FilingHub) -> None:
    await dmp.send(make_xdm(), mdn=False)
    assert await dmp.count() == 1
    assert await dmp.mdns() == [] and await dmp.error_emails() == []
