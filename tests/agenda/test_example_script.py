"""examples/hospital_convocations.py against a running hub: CSV in, convocations and refusals
out."""

from __future__ import annotations

import asyncio
import datetime as dt
import email.policy
from email.parser import BytesParser
from pathlib import Path

import pytest

from examples.hospital_convocations import (
    PARIS,
    AppointmentRow,
    build_convocation,
    main,
    read_rows,
    submit_all,
)
from mss.agenda.itip import EventData, build_request
from mss.config import Settings
from mss.crypto import smime
from tests.agenda.conftest import APP, INS, OTHER_INS, AgendaHub, make_sender
from tests.fixtures_pki import DevPki

CSV = """ins;nom;prenom;debut;fin;lieu;service;uid
{ins};Durand;Marie;2030-03-10T09:30;2030-03-10T10:15;CHU, bâtiment B;Cardiologie;rdv-a@chu
{other};Durand;Paul;2030-03-11T14:00;2030-03-11T14:30;CHU, hall 2;Radiologie;rdv-b@chu
199999999999999;Inconnu;Jean;2030-03-12T08:00;2030-03-12T08:30;CHU;Biologie;rdv-c@chu
{ins};Durand;Marie;le 13 mars;2030-03-13T08:30;CHU;Biologie;rdv-d@chu
"""


async def test_the_script_sends_the_csv_and_lists_the_refusals(
    agenda_hub: AgendaHub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sender = agenda_hub.sender
    csv_file = tmp_path / "rdv.csv"
    csv_file.write_text(CSV.format(ins=INS, other=OTHER_INS), encoding="utf-8")
    argv = [
        str(csv_file),
        "--from",
        APP,
        "--cert",
        str(sender.client_cert),
        "--key",
        str(sender.client_key),
        "--smime-cert",
        str(sender.smime_cert),
        "--smime-key",
        str(sender.smime_key),
        "--ca",
        str(sender.ca_file),
        "--port",
        str(agenda_hub.ports["submission_tls"]),
        "--name",
        "CHU de Test",
    ]
    code = await asyncio.to_thread(main, argv)
    out = capsys.readouterr()
    assert code == 1
    assert "2 convocation(s) accepted, 2 refused" in out.out
    assert (
        "line 4 (uid rdv-c@chu): 550 5.1.1 No such mailbox: <199999999999999@patient.mss.localhost>"
        in out.out
    )
    assert "line 5 (uid rdv-d@chu): - unreadable row" in out.out
    assert "Convocations" in out.err  # the progress bar
    await agenda_hub.drain()
    assert [a.uid for a in await agenda_hub.appointments()] == ["rdv-a@chu"]
    assert [a.uid for a in await agenda_hub.appointments(OTHER_INS)] == ["rdv-b@chu"]


async def test_starttls_on_the_submission_port(agenda_hub: AgendaHub) -> None:
    sender = make_sender(
        agenda_hub.settings, agenda_hub.pki, agenda_hub.ports["submission"], implicit_tls=False
    )
    rows, problems = read_rows(CSV.format(ins=INS, other=OTHER_INS))
    assert len(rows) == 3 and len(problems) == 1
    refusals = await submit_all(rows, sender, connections=2, progress=False)
    assert [(r.line, r.code) for r in refusals] == [(4, 550)]
    await agenda_hub.drain()
    [appointment] = await agenda_hub.appointments()
    assert appointment.location == "CHU, bâtiment B"


async def test_missing_columns_are_named(
    agenda_hub: AgendaHub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("ins;nom\n1;2\n", encoding="utf-8")
    sender = agenda_hub.sender
    argv = [
        "--from",
        APP,
        "--cert",
        str(sender.client_cert),
        "--key",
        str(sender.client_key),
        "--smime-cert",
        str(sender.smime_cert),
        "--smime-key",
        str(sender.smime_key),
    ]
    assert await asyncio.to_thread(main, [str(bad), *argv]) == 2
    assert "lacks the columns prenom, debut, fin, lieu, service, uid" in capsys.readouterr().err


def test_the_message_the_script_writes_reads_back_and_verifies(
    dev_pki: DevPki, tmp_path: Path
) -> None:
    """The directly written MIME: structure, encoded headers, exact calendar, long lines in
    base64, signature."""
    settings = Settings()
    sender = make_sender(settings, dev_pki, 1)
    sender.display_name = "Hôpital Saint-Éloi - Convocations"
    start = dt.datetime(2030, 3, 10, 9, 30, tzinfo=PARIS)
    row = AppointmentRow(
        ins=INS,
        family_name="Durand",
        given_names="Zoé",
        start=start,
        end=start + dt.timedelta(minutes=45),
        location="Bâtiment B, " + "couloir " * 150,
        service="Médecine nucléaire",
        uid="rdv-mime@chu",
    )
    now = dt.datetime(2030, 3, 1, 8, 0, tzinfo=dt.UTC)
    raw, recipient = build_convocation(row, sender, xdm=b"PK\x03\x04 not really a zip", now=now)

    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    assert b"\n" not in raw.replace(b"\r\n", b"")  # CRLF only
    message = BytesParser(policy=email.policy.default).parsebytes(raw)
    assert message["Subject"] == "Convocation : Médecine nucléaire"
    assert message["From"].addresses[0].display_name == "Hôpital Saint-Éloi - Convocations"
    assert message["To"] == recipient
    assert message.get_content_type() == "multipart/signed"
    signed, signature = message.get_payload()
    assert signature.get_content_type() == "application/pkcs7-signature"
    alternative, xdm = signed.get_payload()
    assert (
        xdm.get_filename() == "IHE_XDM.ZIP" and xdm.get_content() == b"PK\x03\x04 not really a zip"
    )
    text, calendar = alternative.get_payload()
    assert (
        text["Content-Transfer-Encoding"] == "base64"
    )  # the location line is longer than SMTP allows
    assert "Zoé Durand" in text.get_content() and "couloir " * 150 in text.get_content()
    assert (
        calendar.get_content_type() == "text/calendar" and calendar.get_param("method") == "REQUEST"
    )
    event = EventData(
        uid=row.uid,
        sequence=0,
        start=row.start,
        end=row.end,
        summary="Rendez-vous Médecine nucléaire",
        location=row.location,
        organizer=APP,
        organizer_name=sender.display_name,
        attendee=recipient,
        attendee_name="Zoé Durand",
    )
    assert calendar.get_payload(decode=True) == build_request(event, now).encode("utf-8")
    verified = smime.verify(raw, dev_pki.trust, from_address=APP)
    assert verified.status == "valid", verified.reason


def test_help_names_the_csv_columns_and_an_example() -> None:
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[2] / "examples" / "hospital_convocations.py"
    done = subprocess.run(
        [sys.executable, str(script), "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert "ins;nom;prenom;debut;fin;lieu;service;uid[;sequence][;annulation]" in done.stdout
    assert "the columns are described below" in done.stdout
    assert "--ca var/pki/root-ca.pem" in done.stdout
    assert "see the columns above" not in done.stdout
