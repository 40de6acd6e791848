"""DMP filing throughput: documents filed per second against parsing alone, in the same run.

    .venv/bin/python bench/dmp_filing.py [--messages 300] [--documents 1]
                                          [--database-url sqlite+aiosqlite:///...]

Baseline: ``read_xdm`` + ``read_cda_header`` (and the cross-check) on every
package, nothing else. Then the hub's path: each message (a professional to
a patient, carrying an IHE_XDM.zip and a PDF) goes through the gateway's
durable delivery (``deliver``: store, INBOX, audit, the ``dmp.file`` job
queued in the same transaction), and the job runner files the documents
(consent, version checks, audit, patient notice, the MDN back to the
sender). Prints documents/s for both and the ratio. The default run, on a
temporary SQLite database, takes well under two minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import email.policy
import email.utils
import sys
import tempfile
import time
import uuid
from email.message import EmailMessage
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select

from dmp_bridge.cda import cross_check, read_cda_header
from dmp_bridge.filing import register_jobs
from dmp_bridge.models import DmpDocument
from dmp_bridge.xdm import read_xdm
from mss.config import Settings
from mss.db import Database
from mss.directory.models import (
    Mailbox,
    MailboxKind,
    Patient,
    PatientState,
    Professional,
)
from mss.jobs import JobRunner
from mss.message import parse_message
from mss.migrate import upgrade_async
from mss.policy import MailboxFacts, RecipientFacts
from mss.serve import register_follow_ups
from mss.services import Services
from mss.smtp_gateway.content import SignatureOutcome
from mss.smtp_gateway.delivery import deliver, prepare
from mss.smtp_gateway.envelope import Sender, Transaction
from tests.xdm_factory import INS, PDF, DocSpec, XdmSpec, make_cda, make_xdm

SENDER = "jean.dupont@mss.localhost"
PATIENT = f"{INS}@patient.mss.localhost"


def make_packages(count: int, documents: int) -> list[bytes]:
    """``count`` packages of ``documents`` distinct CDA documents each (not timed)."""
    packages = []
    for n in range(count):
        docs = []
        for d in range(documents):
            ext = f"{n}-{d}"
            docs.append(
                DocSpec(
                    content=make_cda(doc_ext=ext),
                    unique_id=f"1.2.250.1.999.1.1.20240101^{ext}",
                    entry_id=f"urn:uuid:{uuid.uuid4()}",
                    file_name=f"DOC{d:04d}.XML",
                )
            )
        packages.append(make_xdm(XdmSpec(documents=docs)))
    return packages


def parse_only(packages: list[bytes]) -> tuple[int, float]:
    """The baseline: documents read and seconds spent."""
    started = time.perf_counter()
    count = 0
    for data in packages:
        for entry in read_xdm(data).documents:
            header = read_cda_header(entry.data)
            cross_check(entry, header)
            count += 1
    return count, time.perf_counter() - started


def message(package: bytes, n: int) -> bytes:
    mail = EmailMessage(policy=email.policy.SMTP)
    mail["From"], mail["To"] = SENDER, PATIENT
    mail["Subject"] = f"XDM/1.0/DDM+Compte rendu {n} NESSI Ruth 14/07/1977"
    mail["Date"] = email.utils.format_datetime(email.utils.localtime())
    mail["Message-ID"] = f"<{uuid.uuid4().hex}@bench>"
    mail["Disposition-Notification-To"] = SENDER
    mail.set_content("Compte rendu en pièce jointe.\n")
    mail.add_attachment(package, maintype="application", subtype="zip", filename="IHE_XDM.zip")
    mail.add_attachment(PDF, maintype="application", subtype="pdf", filename="CR.pdf")
    return mail.as_bytes(policy=email.policy.SMTP)


async def setup(db: Database) -> tuple[MailboxFacts, MailboxFacts]:
    async with db.write() as session:
        doctor = Professional(id_nat="810000000001", family_name="Dupont", given_names="Jean")
        patient = Patient(
            ins=INS, family_name="NESSI", given_names="Ruth", state=PatientState.ACTIVE
        )
        session.add_all([doctor, patient])
        await session.flush()
        sender = Mailbox(address=SENDER, kind=MailboxKind.PER, professional_id=doctor.id)
        box = Mailbox(address=PATIENT, kind=MailboxKind.PAT, patient_id=patient.id)
        session.add_all([sender, box])
        await session.flush()
        return (
            MailboxFacts(sender.id, SENDER, MailboxKind.PER),
            MailboxFacts(box.id, PATIENT, MailboxKind.PAT, patient_state=PatientState.ACTIVE),
        )


async def through_the_hub(url: str, packages: list[bytes]) -> tuple[int, float]:
    """Deliver every message and run the filing jobs; documents filed and seconds spent."""
    await upgrade_async(url)
    db = Database(url)
    settings = Settings()
    sender, patient = await setup(db)
    runner = JobRunner(db, services=Services(settings), batch=50)
    register_jobs(runner)
    register_follow_ups()  # delivery enqueues the filing job only if the DMP registered it
    raws = [message(p, n) for n, p in enumerate(packages)]
    valid = SignatureOutcome("valid", signer_address=SENDER, signer_id_nat="810000000001")
    started = time.perf_counter()
    for raw in raws:
        txn = Transaction(
            Sender(SENDER, sender, channel="submission"), [RecipientFacts(PATIENT, True, patient)]
        )
        await deliver(db, prepare(settings, txn, parse_message(raw), valid))
    await runner.drain(timeout=600)
    elapsed = time.perf_counter() - started
    async with db.read() as session:
        filed = int((await session.execute(select(func.count(DmpDocument.id)))).scalar_one())
    await db.dispose()
    return filed, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--documents", type=int, default=1, help="documents per package")
    parser.add_argument("--database-url", default="", help="default: a temporary SQLite file")
    args = parser.parse_args()
    packages = make_packages(args.messages, args.documents)
    parsed, parse_seconds = parse_only(packages)
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite+aiosqlite:///{tmp}/bench.sqlite3"
        filed, hub_seconds = asyncio.run(through_the_hub(url, packages))
    expected = args.messages * args.documents
    if filed != expected or parsed != expected:
        raise SystemExit(f"expected {expected} documents, parsed {parsed}, filed {filed}")
    parse_rate, hub_rate = parsed / parse_seconds, filed / hub_seconds
    print(
        f"parsing alone (read_xdm + read_cda_header): {parse_rate:8.1f} documents/s "
        f"({parsed} in {parse_seconds:.2f} s)"
    )
    print(
        f"delivery + filing job (with MDN):           {hub_rate:8.1f} documents/s "
        f"({filed} in {hub_seconds:.2f} s)"
    )
    print(f"ratio filed / parsed: {hub_rate / parse_rate:.3f}")


if __name__ == "__main__":
    main()
