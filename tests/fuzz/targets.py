"""Every parser that reads outside input, as one fuzz target each, with the property it must hold.

The property: given any bytes, the parser returns a value or raises the
project's own error for that input, carrying a non-empty sentence; never
another exception. The Hypothesis tests (tests/fuzz/test_fuzz_*.py), the
regression replay (tests/fuzz/test_regressions.py) and the long atheris run
(bench/fuzz.py) all call ``check(name, data)``.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import functools
import json
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.fuzz.near_valid import Nesting

ROOT = Path(__file__).resolve().parents[2]
GOLDEN_MESSAGES = ROOT / "tests" / "golden" / "imap" / "messages"
ANS_DATA = ROOT / "tests" / "data" / "ans"
REGRESSIONS = Path(__file__).resolve().parent / "regressions"


class PropertyBroken(AssertionError):
    """The parser refused with its own error but gave no sentence, or returned a wrong value."""


@dataclass(frozen=True)
class Target:
    """One parser: how to call it on bytes, what it may raise, and valid samples to start from."""

    name: str
    parse: Callable[[bytes], object]
    refusals: tuple[type[BaseException], ...]
    seeds: Callable[[], list[bytes]]
    tokens: tuple[bytes, ...] = ()
    nesting: tuple[Nesting, ...] = field(default=())


def sentence_of(error: BaseException) -> str:
    """The sentence a user is shown for one of the project's errors."""
    for attribute in ("sentence", "reason", "text"):
        value = getattr(error, attribute, None)
        if isinstance(value, str):
            return value
    return str(error)


TIME_BOUND = 5.0  # seconds for one input: past it the parser hangs (a quadratic loop, a ReDoS)


@contextlib.contextmanager
def time_bound(seconds: float) -> Iterator[None]:
    """Interrupt the block after ``seconds`` (SIGALRM, main thread only; elsewhere unbounded)."""
    if threading.current_thread() is not threading.main_thread() or seconds <= 0:
        yield
        return

    def expired(_signal: int, _frame: object) -> None:
        raise PropertyBroken(f"the parser did not answer within {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def check(name: str, data: bytes, *, seconds: float = TIME_BOUND) -> None:
    """Run target ``name`` on ``data``; raise when the property does not hold."""
    target = TARGETS[name]
    with time_bound(seconds):
        try:
            target.parse(data)
        except target.refusals as refused:
            if not sentence_of(refused).strip():
                raise PropertyBroken(f"{type(refused).__name__} without a sentence") from refused


# --- SMTP -----------------------------------------------------------------------------------


def _smtp_stub():  # type: ignore[no-untyped-def]
    from mss.smtp_gateway.protocol import HubSMTP

    stub = object.__new__(HubSMTP)  # _getaddr and _getparams read only local_part_limit
    stub.local_part_limit = 64
    return stub


_SMTP = functools.cache(_smtp_stub)


class SmtpSyntax(Exception):
    """What aiosmtpd answers with a 5xx before any of our code runs (not ASCII/UTF-8...)."""

    def __init__(self, sentence: str) -> None:
        super().__init__(sentence)
        self.sentence = sentence


def smtp_command(data: bytes) -> object:
    """A MAIL FROM / RCPT TO / AUTH line as the session reads it: path, parameters, AUTH blob."""
    import binascii

    from mss.smtp_gateway.protocol import HubSMTP

    try:
        line = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SmtpSyntax("500 Error: strict ASCII mode") from None
    verb, _, arg = line.partition(" ")
    stub = _SMTP()
    verb = verb.upper()
    if verb in ("MAIL", "RCPT"):
        keyword = "FROM:" if verb == "MAIL" else "TO:"
        rest = stub._strip_command_keyword(keyword, arg)
        if rest is None:
            return None
        address, params = HubSMTP._getaddr(stub, rest)
        if address is not None and any(c in address for c in "\r\n\0"):
            raise PropertyBroken(f"the path {address!r} keeps a line break")
        if params is not None:
            return address, stub._getparams(params.upper().split())
        return address, None
    if verb == "AUTH":
        words = arg.split()
        for word in words[1:2]:
            try:
                blob = base64.b64decode(word.encode(), validate=True)
            except binascii.Error:
                return None
            return blob.split(b"\0")
    return None


def smtp_data(data: bytes) -> object:
    """DATA as the content stage reads it: line endings, one parse, the structure, the XDM check."""
    from mss.mailbox.structure import MAX_DEPTH
    from mss.message import parse_message
    from mss.policy import decide_mime_depth
    from mss.smtp_gateway.content import has_bare_line_ending

    if has_bare_line_ending(data):
        return None  # refused by decide_line_endings before any parse
    parsed = parse_message(data)
    if not decide_mime_depth(parsed.structure.too_deep, max_depth=MAX_DEPTH).allowed:
        return None  # refused in delivery.prepare
    return parsed, parsed.carries_xdm, parsed.attachments


def header_block(data: bytes) -> object:
    """The direct header reader and the Content-Type reader on one header block."""
    from mss.email_policy import header_fields, plain_content_type

    fields = header_fields(data)
    return plain_content_type(fields) if fields is not None else None


def _messages() -> list[bytes]:
    return [path.read_bytes() for path in sorted(GOLDEN_MESSAGES.glob("*.eml"))]


# --- MIME, S/MIME, CMS ---------------------------------------------------------------------


@functools.cache
def _signer():  # type: ignore[no-untyped-def]
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fuzz@mss.localhost")])
    start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=3650))
        .add_extension(
            x509.SubjectAlternativeName([x509.RFC822Name("fuzz@mss.localhost")]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    return cert, key


_INNER = b"Content-Type: text/plain; charset=utf-8\r\n\r\nOrdonnance jointe.\r\n"


@functools.cache
def _signed_messages() -> tuple[bytes, ...]:
    from mss.crypto.smime import sign

    cert, key = _signer()
    head = b"From: fuzz@mss.localhost\r\nTo: a@mss.localhost\r\nSubject: s\r\nMIME-Version: 1.0\r\n"
    return (
        sign(head + _INNER, cert, key, detached=True),
        sign(head + _INNER, cert, key, detached=False),
    )


@functools.cache
def _trust():  # type: ignore[no-untyped-def]
    from mss.crypto.trust import TrustStore

    return TrustStore()


def smime(data: bytes) -> object:
    """The S/MIME verify entry the content stage calls: never raises on bad input."""
    from mss.crypto.smime import verify

    result = verify(
        data, _trust(), from_address="fuzz@mss.localhost", at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    )
    if not result.reason:
        raise PropertyBroken(f"verify answered {result.status} without a reason")
    return result


def cms(data: bytes) -> object:
    """The CMS SignedData reader over the detached content of the sample."""
    from mss.crypto.cms import check_signed_data

    return check_signed_data(data, _INNER)


def _cms_seeds() -> list[bytes]:
    from mss.crypto.smime import extract_signed

    found = [extract_signed(raw) for raw in _signed_messages()]
    return [der for der, _ in (f for f in found if f is not None)]


@functools.cache
def _encryption_keys():  # type: ignore[no-untyped-def]
    """A hub PKI folder holding one mailbox's encryption key, made once per process."""
    import tempfile

    from mss.crypto import pki
    from mss.crypto.decryption import EncryptionKeys

    folder = Path(tempfile.mkdtemp(prefix="mss-fuzz-pki-")) / "pki"
    pki.make_ca(folder, "Fuzz", key_type="rsa")
    pki.issue_encryption(folder, "fuzz@mss.localhost")
    return EncryptionKeys(folder)


def decryption(data: bytes) -> object:
    """The gateway's decryption of an EnvelopedData for a hub mailbox: always an outcome of the
    policy's table, never an exception."""
    from mss.crypto.decryption import decrypt_message
    from mss.crypto.smime import SmimeForm
    from mss.policy.encryption import DECRYPTION_VERDICTS

    outcome = decrypt_message(
        b"From: a@b.example\r\n\r\n",
        SmimeForm("enveloped", data),
        ["fuzz@mss.localhost"],
        _encryption_keys(),
    )
    if outcome.status != "decrypted" and outcome.status not in DECRYPTION_VERDICTS:
        raise PropertyBroken(f"decryption answered {outcome.status!r}")
    return outcome


def _enveloped_seeds() -> list[bytes]:
    from mss.crypto.smime import encrypt, read_form

    cert = _encryption_keys().for_address("fuzz@mss.localhost").cert
    head = b"From: a@b.example\r\nTo: fuzz@mss.localhost\r\nMIME-Version: 1.0\r\n"
    return [read_form(encrypt(head + _INNER, [cert])).der]


def structure(data: bytes) -> object:
    """BODY, BODYSTRUCTURE, ENVELOPE and the part tree IMAP serves (describe never refuses)."""
    from mss.mailbox.structure import describe

    return describe(data)


MIME_NESTING = (
    Nesting(b'Content-Type: multipart/mixed; boundary="n"\r\n\r\n--n\r\n'),
    Nesting(b"Content-Type: message/rfc822\r\n\r\n"),
    Nesting(b"Content-Type: application/pkcs7-mime; smime-type=signed-data\r\n\r\n"),
)
MIME_TOKENS = (
    b"\r\n\r\n",
    b"--",
    b"\r\n--b\r\n",
    b"\r\n\t",
    b"Content-Type: multipart/mixed; boundary=",
    b"Content-Type: message/rfc822\r\n",
    b"Content-Transfer-Encoding: base64\r\n",
    b"=?utf-8?q?=C3=A9?=",
    b"=?utf-8?b?w6k=?=",
    b"; filename*=utf-8''%C3%A9",
    b"From: ",
    b'boundary=""',
    b"(comment",
    b'"quoted',
    b"<",
    b">",
    b":",
    b";",
    b'name="IHE_XDM.zip"',
)


# --- XDM, CDA ----------------------------------------------------------------------------


def xdm(data: bytes) -> object:
    from dmp_bridge.xdm import read_xdm

    return read_xdm(data)


def xdm_metadata(data: bytes) -> object:
    """METADATA.XML alone: ebRIM objects, slots and classifications."""
    from dmp_bridge.ebrim import load_metadata, read_objects

    root, _ = load_metadata(data, "METADATA.XML")
    return read_objects(root)


def _xdm_seeds() -> list[bytes]:
    from tests.xdm_factory import DocSpec, XdmSpec, make_xdm

    return [
        make_xdm(),
        make_xdm(XdmSpec(flat=True)),
        make_xdm(
            XdmSpec(
                documents=[
                    DocSpec(),
                    DocSpec(
                        file_name="DOC0002.XML",
                        entry_id="urn:uuid:9a0b1c2d-0002-4000-8000-000000000002",
                        unique_id="1.2.250.1.999.1.1.20240101^43",
                    ),
                ]
            )
        ),
        *(path.read_bytes() for path in sorted((ANS_DATA / "xdm").glob("*.zip"))),
    ]


def _metadata_seeds() -> list[bytes]:
    from tests.xdm_factory import XdmSpec, make_metadata

    return [make_metadata(XdmSpec())]


def cda(data: bytes) -> object:
    from dmp_bridge.cda import read_cda_header

    return read_cda_header(data)


def _cda_seeds() -> list[bytes]:
    from tests.xdm_factory import make_cda

    return [
        make_cda(),
        make_cda(xsl_root=True, bom=True),
        make_cda(rplc_parent="1.2.3.4", version=2),
        *(path.read_bytes() for path in sorted((ANS_DATA / "cda").glob("*.xml"))),
    ]


def dispensation(data: bytes) -> object:
    """The dispensed items of an eDISP-MED CDA (``dmp_bridge.dispensation``)."""
    from dmp_bridge.dispensation import read_dispensation

    return read_dispensation(data)


def _dispensation_seeds() -> list[bytes]:
    import datetime as dt

    from dmp_bridge.dispensation_cda import DispensationParty, DispenseLine, build_dispensation
    from tests.xdm_factory import INS

    when = dt.datetime(2024, 1, 15, 10, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    party = DispensationParty(
        INS,
        "NESSI",
        "Ruth",
        dt.date(1977, 7, 14),
        "F",
        "810000000013",
        "BERNARD",
        "Paul",
        "Pharmacie du Centre",
        "750001232",
    )
    lines = [
        DispenseLine("DOLIPRANE 1000 mg", "3400935955838", 2, "boîtes", "1 comprimé", when),
        DispenseLine("LÉVOTHYROX 75 µg", "3400936595996", 1, "boîte", "le matin", when),
    ]
    return [
        build_dispensation(
            party, lines, document_root="1.2.3", document_extension="1", effective_time=when
        )
    ]


XML_NESTING = (Nesting(b"<a>", b"</a>"), Nesting(b'<x:b xmlns:x="urn:x">', b"</x:b>"))
XML_TOKENS = (
    b"<",
    b">",
    b"</",
    b"/>",
    b"&amp;",
    b"&#0;",
    b"&#x110000;",
    b"&undefined;",
    b"<![CDATA[",
    b"]]>",
    b"<!--",
    b"-->",
    b'<!DOCTYPE a [<!ENTITY e "x">]>',
    b'<?xml version="1.0" encoding="ISO-8859-1"?>',
    b'xmlns=""',
    b'xmlns:p="urn:p"',
    b'="',
    b"'",
)


# --- iCalendar / iTIP ---------------------------------------------------------------------


def ical(data: bytes) -> object:
    from mss.agenda.ical import parse_calendar

    return parse_calendar(data)


def itip(data: bytes) -> object:
    from mss.agenda.itip import read_invitation

    return read_invitation(data)


def _ical_seeds() -> list[bytes]:
    from mss.agenda.itip import EventData, build_cancel, build_request

    start = dt.datetime(2026, 3, 10, 8, 30, tzinfo=dt.UTC)
    event = EventData(
        uid="rdv-42@chu.example",
        sequence=0,
        start=start,
        end=start + dt.timedelta(minutes=45),
        summary="Consultation; bâtiment B",
        location="CHU, Hall 3\nPorte 12",
        organizer="convocations@mss.localhost",
        organizer_name="CHU Convocations",
        attendee="180017512345678@patient.mss.localhost",
        attendee_name="Marie Durand",
    )
    stamp = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)
    return [build_request(event, stamp).encode(), build_cancel(event, stamp).encode()]


ICAL_NESTING = (Nesting(b"BEGIN:VEVENT\r\n", b"END:VEVENT\r\n"),)
ICAL_TOKENS = (
    b"\r\n ",
    b"\r\n\t",
    b":",
    b";",
    b"=",
    b'"',
    b",",
    b"\\n",
    b"TZID=Europe/Paris",
    b"TZID=Nowhere/City",
    b"DTSTART:99991231T235959Z\r\n",
    b"DURATION:P99999999W\r\n",
    b"SEQUENCE:99999999999999999999\r\n",
    b"RRULE:FREQ=DAILY\r\n",
    b"END:VCALENDAR\r\n",
    b"BEGIN:VALARM\r\n",
    b"METHOD:PUBLISH\r\n",
    b"20260230T250000",
)


# --- FHIR JSON -----------------------------------------------------------------------------


def _json_body(data: bytes) -> object:
    """The body as the API reads it: with its nesting bounded (``mss.bounded_json``)."""
    from mss.bounded_json import loads_bounded

    return loads_bounded(data)


def fhir_documents(data: bytes) -> object:
    """An ITI-65 provide Bundle: DocumentReference + Binary, read before any database work."""
    from dmp_bridge.fhir_documents import parse_provide_bundle

    return parse_provide_bundle(_json_body(data))


def fhir_observation(data: bytes) -> object:
    """A connected service's Observation (weight, blood sugar), read before any database work."""
    from mss.catalogue.observations import parse_observation

    return parse_observation(_json_body(data), dt.datetime(2026, 12, 4, tzinfo=dt.UTC))


def _observation_seeds() -> list[bytes]:
    from examples.weight_log import weight_observation

    when = dt.datetime(2026, 3, 1, 8, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    weight = weight_observation("285037505612306", 72.5, when)
    glucose = weight_observation("285037505612306", 5.4, when)
    glucose["code"]["coding"][0]["code"] = "15074-8"
    glucose["valueQuantity"].update(unit="mmol/L", code="mmol/L")
    return [json.dumps(o).encode() for o in (weight, glucose)]


def _provide_seeds() -> list[bytes]:
    from tests.xdm_factory import INS, INS_TEST_OID, make_cda

    reference = {
        "resourceType": "DocumentReference",
        "status": "current",
        "masterIdentifier": {"value": "1.2.250.1.999.1.1.20240101^Note"},
        "subject": {"identifier": {"system": f"urn:oid:{INS_TEST_OID}", "value": INS}},
        "type": {"coding": [{"system": "http://loinc.org", "code": "11488-4", "display": "CR"}]},
        "description": "Note",
        "securityLabel": [
            {"coding": [{"system": "urn:oid:1.2.250.1.213.1.1.4.13", "code": "MASQUE_PS"}]}
        ],
        "relatesTo": [{"code": "replaces", "target": {"reference": "DocumentReference/7"}}],
        "content": [{"attachment": {"contentType": "text/xml", "url": "urn:uuid:binary-1"}}],
    }
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": "urn:uuid:docref-1", "resource": reference},
            {
                "fullUrl": "urn:uuid:binary-1",
                "resource": {
                    "resourceType": "Binary",
                    "contentType": "text/xml",
                    "data": base64.b64encode(make_cda()).decode(),
                },
            },
        ],
    }
    return [json.dumps(bundle).encode()]


def fhir_profile(data: bytes) -> object:
    """An AllergyIntolerance or MedicationStatement sent for creation, read before any database
    work."""
    from dmp_bridge.fhir_clinical import parse_profile_entry

    body = _json_body(data)
    kind = body.get("resourceType") if isinstance(body, dict) else None
    return parse_profile_entry(
        body, kind if kind == "MedicationStatement" else "AllergyIntolerance"
    )


def _profile_seeds() -> list[bytes]:
    from tests.xdm_factory import INS

    subject = {"identifier": {"system": "urn:oid:1.2.250.1.213.1.4.8", "value": INS}}
    allergy = {
        "resourceType": "AllergyIntolerance",
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                    "code": "active",
                }
            ]
        },
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "91936005"}], "text": "P"},
        "patient": subject,
        "onsetString": "2019",
        "note": [{"text": "Urticaire"}],
    }
    statement = {
        "resourceType": "MedicationStatement",
        "status": "active",
        "medicationCodeableConcept": {"text": "Lévothyrox"},
        "subject": subject,
        "dosage": [{"text": "1 le matin"}],
    }
    return [json.dumps(allergy).encode(), json.dumps(statement).encode()]


def fhir_appointment(data: bytes) -> object:
    """A professional's new Appointment for a shared agenda, read before any database work."""
    from dmp_bridge.fhir_appointment_resources import parse_new_appointment

    return parse_new_appointment(_json_body(data))


def _appointment_seeds() -> list[bytes]:
    from tests.dmp.agenda_world import new_appointment

    return [json.dumps(new_appointment()).encode()]


def fhir_directory(data: bytes) -> object:
    """A directory import file (Practitioner, PractitionerRole, Organization or a Bundle)."""
    from mss.directory.import_fhir import parse_fhir
    from mss.directory.imports import ImportReport

    return parse_fhir(data, "fuzz.json", ImportReport(source="fuzz.json"), skip_invalid=True)


def _directory_seeds() -> list[bytes]:
    from tests.fhir_directory_samples import hospital_bundle

    return [
        json.dumps(hospital_bundle()).encode(),
        *(path.read_bytes() for path in sorted((ANS_DATA / "fhir").glob("*.json"))),
    ]


JSON_NESTING = (Nesting(b"[", b"]"), Nesting(b'{"a":', b"}"))
JSON_TOKENS = (
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"null",
    b"true",
    b"1e999",
    b"-0",
    b'"\\ud800"',
    b'"resourceType"',
    b'"entry"',
    b'"identifier"',
    b'"coding"',
    b'"reference"',
    b'"data"',
    b"9" * 5000,
    b'""',
    b"NaN",
)


# --- directory imports -----------------------------------------------------------------


def whitelist(data: bytes) -> object:
    from mss.directory.import_whitelist import parse_whitelist
    from mss.directory.imports import ImportReport

    return parse_whitelist(data, "fuzz.xml", ImportReport(source="fuzz.xml"), skip_invalid=True)


def _whitelist_seeds() -> list[bytes]:
    return [(ANS_DATA / "whitelist" / "SYNTHETIC_listeblanchemssante_structure.xml").read_bytes()]


WHITELIST_TOKENS = (
    *XML_TOKENS,
    b"<Domaine>",
    b"</Domaine>",
    b"<Nom>",
    b"</Nom>",
    b"<Nom>.</Nom>",
    b"<DNCertificatOperateur>CN=x</DNCertificatOperateur>",
    b"CN=a,,O=b",
    b'<Signature xmlns="http://www.w3.org/2000/09/xmldsig#">',
)


def patients_csv(data: bytes) -> object:
    from mss.directory.import_patients import parse_patients
    from mss.directory.imports import ImportReport, decode_text

    text = decode_text(data, "fuzz.csv")
    return parse_patients(
        text,
        "fuzz.csv",
        ImportReport(source="fuzz.csv"),
        skip_invalid=True,
        today=dt.date(2026, 3, 2),
    )


PATIENTS_HEADER = b"ins,family_name,given_names,birth_date,email,phone,guardian_ins\r\n"


def _patients_seeds() -> list[bytes]:
    from mss.directory.identifiers import ins_key

    child, corsican = (
        f"{first}{ins_key(first):02d}".encode() for first in ("2150775123456", "185052A123456")
    )
    return [
        PATIENTS_HEADER
        + b"277076322082910,NESSI,Marie Anne,1977-07-15,Marie.Nessi@Example.org,06 12 34 56 78,\r\n"
        + child
        + b",NESSI,L\xc3\xa9a,2015-07-01,,,277076322082910\r\n",
        PATIENTS_HEADER.replace(b",", b";") + corsican + b";CASANOVA;Ange;1985-05-20;;;\r\n",
    ]


CSV_TOKENS = (
    b",",
    b";",
    b'"',
    b'""',
    b"\r\n",
    b"\n",
    b"2A",
    b"2B",
    b"0000-00-00",
    b"31/02/2020",
    b"+33",
    b"@",
    b"\xef\xbb\xbf",
    b"ins",
    b"guardian_ins",
)


# --- IMAP (the parser is another engineer's; the long run calls its entry point) ----------------


def imap(data: bytes) -> object:
    from mss.mailbox.imap.parser import parse_command

    return parse_command(data)


def _imap_seeds() -> list[bytes]:
    return [
        b"a1 LOGIN jean {4}\r\npass\r\n",
        b"a2 UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (FROM)])\r\n",
        b'a3 SEARCH CHARSET UTF-8 OR (FROM "x" SUBJECT {3+}\r\n\xc3\xa9a) NOT SEEN SINCE '
        b"1-Jan-2026\r\n",
        b'a4 APPEND INBOX (\\Seen) "07-Mar-2026 11:00:00 +0100" {5}\r\nhello\r\n',
    ]


IMAP_NESTING = (Nesting(b"(", b")"), Nesting(b"NOT ("))


def _refusals() -> dict[str, tuple[type[BaseException], ...]]:
    from dmp_bridge.errors import XdmError
    from dmp_bridge.fhir_documents import FhirInputError
    from mss.agenda.ical import CalendarError
    from mss.bounded_json import JsonRefused
    from mss.catalogue.observations import ObservationRefused
    from mss.crypto.cms import CmsFailure
    from mss.errors import HubError
    from mss.mailbox.imap.wire import ImapError

    return {
        "xdm": (XdmError,),
        "cal": (CalendarError,),
        "cms": (CmsFailure,),
        "hub": (HubError,),
        "fhir": (FhirInputError, JsonRefused, HubError),
        "imap": (ImapError,),
        "smtp": (SmtpSyntax,),
        "observation": (ObservationRefused, JsonRefused),
        "none": (),
    }


def _targets() -> dict[str, Target]:
    refused = _refusals()

    def signed() -> list[bytes]:
        return [*_messages(), *_signed_messages()]

    def heads() -> list[bytes]:
        return [m.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n" for m in _messages()]

    def commands() -> list[bytes]:
        return [
            b"MAIL FROM:<jean.dupont@mss.localhost> SIZE=1000 BODY=8BITMIME",
            b'RCPT TO:<"quoted local"@mss.localhost> NOTIFY=SUCCESS',
            b"MAIL FROM:<@relay.example:a@b.example>",
            b"RCPT TO:<postmaster>",
            b"MAIL FROM:<>",
            b"AUTH PLAIN " + base64.b64encode(b"\0jean\0secret"),
            b"RCPT TO:<a@[127.0.0.1]> (comment)",
        ]

    found = [
        Target(
            "smtp_command",
            smtp_command,
            refused["smtp"],
            commands,
            (b"<", b">", b"@", b'"', b"\\", b"(", b")", b":", b",", b"=", b" ", b"[", b"]"),
        ),
        Target("smtp_data", smtp_data, refused["hub"], _messages, MIME_TOKENS, MIME_NESTING),
        Target("header_block", header_block, refused["none"], heads, MIME_TOKENS),
        Target("mime_structure", structure, refused["none"], _messages, MIME_TOKENS, MIME_NESTING),
        Target("smime", smime, refused["none"], signed, MIME_TOKENS, MIME_NESTING),
        Target(
            "cms",
            cms,
            refused["cms"],
            _cms_seeds,
            (
                b"\x30\x80",
                b"\x00\x00",
                b"\x06\x09",
                b"\xa0\x80",
                b"\x30\x84\xff\xff\xff\xff",
                b"\x02\x01\x00",
            ),
        ),
        Target(
            "decryption",
            decryption,
            refused["none"],
            _enveloped_seeds,
            (b"\x30\x80", b"\x00\x00", b"\x06\x09", b"\xa0\x80", b"\x02\x01\x00"),
        ),
        Target(
            "xdm",
            xdm,
            refused["xdm"],
            _xdm_seeds,
            (b"PK\x03\x04", b"PK\x01\x02", b"PK\x05\x06", b"../", b"IHE_XDM/", b"METADATA.XML"),
        ),
        Target(
            "xdm_metadata", xdm_metadata, refused["xdm"], _metadata_seeds, XML_TOKENS, XML_NESTING
        ),
        Target("cda", cda, refused["xdm"], _cda_seeds, XML_TOKENS, XML_NESTING),
        Target(
            "dispensation",
            dispensation,
            refused["xdm"],
            _dispensation_seeds,
            XML_TOKENS,
            XML_NESTING,
        ),
        Target("ical", ical, refused["cal"], _ical_seeds, ICAL_TOKENS, ICAL_NESTING),
        Target("itip", itip, refused["cal"], _ical_seeds, ICAL_TOKENS, ICAL_NESTING),
        Target(
            "fhir_documents",
            fhir_documents,
            refused["fhir"],
            _provide_seeds,
            JSON_TOKENS,
            JSON_NESTING,
        ),
        Target(
            "fhir_profile", fhir_profile, refused["fhir"], _profile_seeds, JSON_TOKENS, JSON_NESTING
        ),
        Target(
            "fhir_appointment",
            fhir_appointment,
            refused["fhir"],
            _appointment_seeds,
            JSON_TOKENS,
            JSON_NESTING,
        ),
        Target(
            "fhir_directory",
            fhir_directory,
            refused["hub"],
            _directory_seeds,
            JSON_TOKENS,
            JSON_NESTING,
        ),
        Target(
            "fhir_observation",
            fhir_observation,
            refused["observation"],
            _observation_seeds,
            JSON_TOKENS,
            JSON_NESTING,
        ),
        Target(
            "whitelist", whitelist, refused["hub"], _whitelist_seeds, WHITELIST_TOKENS, XML_NESTING
        ),
        Target("patients_csv", patients_csv, refused["hub"], _patients_seeds, CSV_TOKENS),
        Target(
            "imap",
            imap,
            refused["imap"],
            _imap_seeds,
            (
                b"{",
                b"}",
                b"{5}\r\n",
                b"{99999999999}\r\n",
                b'"',
                b"\\",
                b"[",
                b"]",
                b"<",
                b">",
                b"*",
                b":",
                b",",
            ),
            IMAP_NESTING,
        ),
    ]
    return {t.name: t for t in found}


TARGETS: dict[str, Target] = _targets()


def seeds(name: str) -> list[bytes]:
    """The valid samples of a target (computed once)."""
    return _seed_cache(name)


@functools.cache
def _seed_cache(name: str) -> list[bytes]:
    return TARGETS[name].seeds()


def regressions(name: str) -> list[bytes]:
    """Every input that once broke target ``name`` (kept in tests/fuzz/regressions/<name>/)."""
    folder = REGRESSIONS / name
    return (
        [path.read_bytes() for path in sorted(folder.iterdir()) if path.is_file()]
        if folder.is_dir()
        else []
    )


def names(only: Sequence[str] = ()) -> list[str]:
    return [n for n in TARGETS if not only or n in only]


def inputs(name: str, max_edits: int = 4):  # type: ignore[no-untyped-def]
    """The Hypothesis strategy of near-valid inputs for target ``name``."""
    from tests.fuzz.near_valid import near_valid

    target = TARGETS[name]
    return near_valid(seeds(name), target.tokens, target.nesting, max_edits)
