"""The hub's answers to a 902 against the ANS IG's two examples, field by field.

IG examples (tests/data/ans/mss/, copied from
ansforge/IG-hl7v2-volet-trans-lps-doc-cda-courriel-mss):
``mdn_ko-integration_902_ig-example.eml`` (struct-msg-mdn, the MDN asked for by
Disposition-Notification-To) and ``standard-email_ko-integration_902_ig-example.eml``
(struct-email-standard, the e-mail sent when no MDN was asked for).

The scenario is the IG's: an XDM package for a patient unknown here (902), subject
``XDM/1.0/DDM+ECHOGRAPHIE ABDOMINOPELVIENNE CORSE FIGATELLIX 12/10/1988``. The
IG's own values (serviceY_auto@chb.mssante.fr, the reporting mailbox;
serviceY@chb.mssante.fr, the sender; the original's Message-ID; the PDF's name)
are replaced by this test's before comparing. 17 fields each; every field not
listed in ``*_BY_DESIGN`` is equal, and each listed one differs exactly as said
there (docs/dmp.md, "MDN and standard e-mail against the IG").
"""

from __future__ import annotations

import email.policy
import email.utils
import re
from email.message import EmailMessage, Message
from email.parser import BytesParser
from pathlib import Path

import pytest

from mss.crypto.smime import verify
from mss.crypto.trust import TrustStore
from tests.dmp.filing_helpers import PATIENT_ADDRESS, FilingHub, add_patient
from tests.dmp.test_filing import _oppose_record, _spec
from tests.smtp.conftest import DOCTOR, Hub, hub  # noqa: F401 - the gateway fixture

IG = Path(__file__).parent.parent / "data" / "ans" / "mss"
MDN_EXAMPLE = IG / "mdn_ko-integration_902_ig-example.eml"
EMAIL_EXAMPLE = IG / "standard-email_ko-integration_902_ig-example.eml"
IG_SUBJECT = "XDM/1.0/DDM+ECHOGRAPHIE ABDOMINOPELVIENNE CORSE FIGATELLIX 12/10/1988"
IG_PDF = "20220531_CR_d_imagerie_medicale_CORSE_FIGATELLIX.pdf"
OUR_PDF = "CR.pdf"  # tests.dmp.filing_helpers.xdm_message
# The IG example's label and table for 902, and the IG's code table's (error-codes page:
# "Identifiant patient inconnu", applicationErrorCondition; HL7 table 0357,
# messageErrorCondition, has no code 902).
IG_ERROR = "902^Identifiant de patient inconnu^messageErrorCondition| E^Error^errorSeverity"
OUR_ERROR = "902^Identifiant patient inconnu^applicationErrorCondition| E^Error^errorSeverity"

MDN_BY_DESIGN = {
    "Message-ID": "the example's <199509200019.12345> has no domain, which RFC 5322 §3.6.4 "
    "requires (the IG's current page writes one); ours has",
    "text, second line": "label and table of the IG's code table, not of its example",
    "Disposition": "label and table of the IG's code table, not of its example",
    "parts 4-5: IHE_XDM.zip, PDF": "RFC 6522 §3: a report has two or three parts; the package "
    "and its PDF are in part 3, the original, byte for byte",
}
EMAIL_BY_DESIGN = {
    "text Content-Transfer-Encoding": "the example says 7bit over accented UTF-8 text, which "
    "7bit cannot carry (RFC 2045 §2.7); ours is quoted-printable",
    "text, error label": "the IG's code table's label, not its example's",
}


@pytest.fixture
async def dmp(hub: Hub) -> FilingHub:  # noqa: F811
    return FilingHub(hub, await add_patient(hub))


def _ours(text: str, original_id: str) -> str:
    """An IG example's value with the IG's scenario values replaced by this test's."""
    for theirs, ours in (
        ("serviceY_auto@chb.mssante.fr", PATIENT_ADDRESS),
        ("serviceY@chb.mssante.fr", DOCTOR),
        ("<199509192301.23456 >", original_id),
        (IG_PDF, OUR_PDF),
    ):
        text = text.replace(theirs, ours)
    return text


def _line(lines: list[str], name: str, nth: int = 0) -> str:
    """The value of the nth ``Name:`` line of the example (its parts are not well-formed MIME)."""
    found = [
        line.split(":", 1)[1].strip()
        for line in lines
        if line.lower().startswith(name.lower() + ":")
    ]
    return found[nth]


def _is_date(value: object) -> bool:
    return email.utils.parsedate_to_datetime(str(value)) is not None


def _msg_id_with_domain(value: object) -> bool:
    return re.fullmatch(r"<[^<>@\s]+@[^<>@\s]+>", str(value).strip()) is not None


def _type(part: Message) -> str:
    params = [
        f"{k}={v.lower() if k == 'charset' else v}"
        for k, v in part.get_params()[1:]
        if k in ("report-type", "charset", "name")
    ]
    return "; ".join([part.get_content_type(), *params])


def _compare(fields: dict[str, tuple[object, object]], by_design: dict[str, str]) -> None:
    assert len(fields) == 17
    equal = {name for name, (theirs, ours) in fields.items() if theirs == ours}
    assert {n: fields[n] for n in fields if n not in equal and n not in by_design} == {}
    assert set(by_design) <= set(fields) and not set(by_design) & equal, by_design


async def _send_902(dmp: FilingHub, *, mdn: bool) -> str:
    await _oppose_record(dmp)  # no record open for this patient: 902 (IG: "patient inconnu")
    return await dmp.send(
        _spec(), mdn=mdn, subject=IG_SUBJECT, rcpt_options=[f"ORCPT=rfc822;{PATIENT_ADDRESS}"]
    )


async def test_902_mdn_field_by_field_against_the_ig_example(dmp: FilingHub) -> None:
    original_id = await _send_902(dmp, mdn=True)
    [mdn] = await dmp.mdns()
    lines = MDN_EXAMPLE.read_text("utf-8").splitlines()
    ig = BytesParser(policy=email.policy.default).parsebytes(
        MDN_EXAMPLE.read_bytes(), headersonly=True
    )
    text_part, report, original = mdn.iter_parts()
    text = text_part.get_content().splitlines()
    notification = report.get_payload()[0]
    ig_text = lines[lines.index("--RAA14128.773615765") + 1 :][:2]
    returned = [p.get_filename() for p in original.get_payload()[0].walk() if p.get_filename()]

    def d(name: str) -> str:
        return _ours(_line(lines, name), original_id)

    fields: dict[str, tuple[object, object]] = {
        "From": (_ours(str(ig["From"]), original_id), str(mdn["From"])),
        "To": (_ours(str(ig["To"]), original_id), str(mdn["To"])),
        "Subject": (str(ig["Subject"]), str(mdn["Subject"])),
        "Date": (_is_date(ig["Date"]), _is_date(mdn["Date"])),
        "Message-ID": (
            _msg_id_with_domain(ig["Message-Id"]),
            _msg_id_with_domain(mdn["Message-ID"]),
        ),
        "MIME-Version": (str(ig["MIME-Version"]), str(mdn["MIME-Version"])),
        "Content-Type": (_type(ig), _type(mdn)),
        # The example's first part has no header: RFC 2046 §5.1 makes it text/plain.
        "text Content-Type": ("text/plain", text_part.get_content_type()),
        "text, first line": (ig_text[0], text[0]),
        "text, second line": (ig_text[1], text[1]),
        "report Content-Type": (_line(lines, "Content-Type", 1), report.get_content_type()),
        "Original-Recipient": (d("Original-Recipient"), notification["Original-Recipient"]),
        "Final-Recipient": (d("Final-Recipient"), notification["Final-Recipient"]),
        "Original-Message-ID": (d("Original-Message-ID"), notification["Original-Message-ID"]),
        "Disposition": (d("Disposition"), notification["Disposition"]),
        "original Content-Type": (_line(lines, "Content-Type", 2), original.get_content_type()),
        "parts 4-5: IHE_XDM.zip, PDF": (
            ["IHE_XDM.zip", "20220531_CR d'imagerie médicale_CORSE_FIGATELLIX.pdf"],
            [],
        ),
    }
    _compare(fields, MDN_BY_DESIGN)
    # Each difference by design, exactly:
    assert fields["Disposition"][1] == str(fields["Disposition"][0]).replace(IG_ERROR, OUR_ERROR)
    assert text[1] == ig_text[1].replace(IG_ERROR, OUR_ERROR)
    assert str(mdn["Message-ID"]).endswith("@localhost>")
    assert returned == ["IHE_XDM.zip", OUR_PDF, "smime.p7s"]  # inside the original, part 3
    assert notification["Error"] is None  # the code is in Disposition only, as the IG has it


async def test_902_standard_email_field_by_field_against_the_ig_example(dmp: FilingHub) -> None:
    original_id = await _send_902(dmp, mdn=False)
    assert await dmp.mdns() == []
    [answer] = await dmp.error_emails()
    ig = BytesParser(policy=email.policy.default).parsebytes(EMAIL_EXAMPLE.read_bytes())
    assert isinstance(ig, EmailMessage)
    ig_parts, parts = list(ig.iter_parts()), list(answer.iter_parts())
    ig_text = [line.rstrip() for line in ig_parts[0].get_content().splitlines()]
    text = [line.rstrip() for line in parts[0].get_content().splitlines()]
    label = next(line for line in ig_text if line.startswith("- Erreur détectée"))
    code = next(line for line in ig_text if line.startswith("- Code d’erreur"))

    def cte(part: Message) -> str:
        return str(part["Content-Transfer-Encoding"]).lower()

    def attached(part: Message) -> tuple[str, str | None]:
        return (part.get_content_disposition() or "", part.get_filename())

    fields: dict[str, tuple[object, object]] = {
        "Date": (_is_date(ig["Date"]), _is_date(answer["Date"])),
        "From": (_ours(str(ig["From"]), original_id), str(answer["From"])),
        "To": (_ours(str(ig["To"]), original_id), str(answer["To"])),
        "Message-ID": (
            _msg_id_with_domain(ig["Message-ID"]),
            _msg_id_with_domain(answer["Message-ID"]),
        ),
        "Subject": (str(ig["Subject"]), str(answer["Subject"])),
        "MIME-Version": (str(ig["MIME-Version"]), str(answer["MIME-Version"])),
        "Content-Type": (_type(ig), _type(answer)),
        "text Content-Type": (_type(ig_parts[0]), _type(parts[0])),
        "text Content-Transfer-Encoding": (cte(ig_parts[0]), cte(parts[0])),
        "text, error label": (label, next(line for line in text if line.startswith(label[:18]))),
        "text, error code": (code, next(line for line in text if line.startswith(code[:15]))),
        "original Content-Type": (_type(ig_parts[1]), _type(parts[1])),
        "original Content-Disposition": (attached(ig_parts[1]), attached(parts[1])),
        "zip Content-Type": (_type(ig_parts[2]), _type(parts[2])),
        "zip Content-Transfer-Encoding, Content-Disposition": (
            (cte(ig_parts[2]), attached(ig_parts[2])),
            (cte(parts[2]), attached(parts[2])),
        ),
        "PDF Content-Type": (_ours(_type(ig_parts[3]), original_id), _type(parts[3])),
        "PDF Content-Transfer-Encoding, Content-Disposition": (
            (cte(ig_parts[3]), (attached(ig_parts[3])[0], OUR_PDF)),
            (cte(parts[3]), attached(parts[3])),
        ),
    }
    _compare(fields, EMAIL_BY_DESIGN)
    assert fields["text, error label"][1] == "- Erreur détectée : Identifiant patient inconnu"
    assert fields["text Content-Transfer-Encoding"][1] == "quoted-printable"
    # The rest of the IG's text is there too, but for its signature ("du service Y").
    missing = [line for line in ig_text if line and line not in text]
    assert missing == [label, "L’équipe technique du service Y"]
    assert "L’équipe technique de localhost" in text
    assert parts[1].get_payload()[0]["Message-ID"] == original_id


async def test_the_original_inside_the_mdn_has_no_raw_utf8_header_and_is_still_signed(
    dmp: FilingHub,
) -> None:
    """A header sent in raw UTF-8 is RFC 2047-encoded in the copy; the signed body is untouched."""
    await _oppose_record(dmp)
    comment = "Compte rendu d’échographie, Dr Lefèvre"
    original_id = await dmp.send(_spec(), raw_header=f"Comments: {comment}\r\n".encode())
    [stored] = [
        m for m in await dmp.hub.stored(DOCTOR) if b"multipart/report" in bytes(m.raw)[:2000]
    ]
    raw = bytes(stored.raw)
    assert raw.isascii()  # no SMTPUTF8 needed to relay it
    mdn = BytesParser(policy=email.policy.default).parsebytes(raw)
    assert isinstance(mdn, EmailMessage)
    original = list(mdn.iter_parts())[2].get_payload()[0]
    assert str(original["Comments"]) == comment and original["Message-ID"] == original_id
    embedded = raw[raw.index(b"Content-Type: message/rfc822\r\n\r\n") + 32 :]
    embedded = embedded[: embedded.rindex(b"\r\n--=_mdn_")] + b"\r\n"
    trust = TrustStore.from_settings(dmp.hub.settings, repo_trust_dir=None)
    assert verify(embedded, trust).status == "valid"
