"""Send S/MIME-signed messages carrying XDM packages through the real gateway, read the MDNs
back."""

from __future__ import annotations

import email.policy
import email.utils
import uuid
from dataclasses import dataclass
from email.message import EmailMessage, Message
from email.parser import BytesParser

from sqlalchemy import func, select

from dmp_bridge import filing
from dmp_bridge.access import Viewer
from dmp_bridge.consent_store import set_treating_doctor
from dmp_bridge.models import DmpDocument
from mss.db import utcnow
from mss.directory.models import Mailbox, MailboxKind, Patient, PatientState, Professional
from tests.smtp.conftest import DOCTOR, Hub
from tests.xdm_factory import INS, PDF

PATIENT_ADDRESS = f"{INS}@patient.mss.localhost"
DOCTOR_ID_NAT = "810000000001"
SUBJECT = "XDM/1.0/DDM+Compte rendu de consultation NESSI Ruth 14/07/1977"


@dataclass
class FilingHub:
    """The SMTP gateway plus the DMP bridge's jobs and the patient of the XDM factory."""

    hub: Hub
    patient_id: int

    async def patient(self) -> Patient:
        async with self.hub.db.read() as session:
            patient = await session.get(Patient, self.patient_id)
            assert patient is not None
            return patient

    async def documents(self) -> list[DmpDocument]:
        async with self.hub.db.read() as session:
            return list((await session.scalars(select(DmpDocument).order_by(DmpDocument.id))).all())

    async def count(self) -> int:
        async with self.hub.db.read() as session:
            return int((await session.execute(select(func.count(DmpDocument.id)))).scalar_one())

    async def send(
        self,
        package: bytes,
        *,
        mdn: bool = True,
        subject: str = SUBJECT,
        name: str = "IHE_XDM.zip",
        content_type: str = "application/zip",
        rcpt_options: list[str] | None = None,
        raw_header: bytes = b"",
        sender: str = DOCTOR,
    ) -> str:
        """Sign and submit one message to the patient; run every job it caused. Its Message-ID.

        ``raw_header`` is a header line (with its CRLF) put as is above the others; ``sender`` is
        the doctor's personal mailbox unless another is named (an organisation's has no idNat).
        """
        identity = self.hub.pki.issue_smime(
            sender, id_nat=DOCTOR_ID_NAT if sender == DOCTOR else None
        )
        raw, message_id = xdm_message(
            package, mdn=mdn, subject=subject, name=name, content_type=content_type, sender=sender
        )
        raw = raw_header + raw
        client = await self.hub.login_client(sender)
        try:
            await client.sendmail(
                sender, [PATIENT_ADDRESS], identity.sign(raw), rcpt_options=rcpt_options or []
            )
        finally:
            await client.quit()
        await self.hub.runner.drain()
        return message_id

    async def mdns(self, mailbox: str = DOCTOR) -> list[EmailMessage]:
        """The MDNs in the doctor's (or ``mailbox``'s) INBOX, oldest first."""
        parser = BytesParser(policy=email.policy.default)
        found = []
        for stored in await self.hub.stored(mailbox):
            message = parser.parsebytes(bytes(stored.raw))
            if message.get_content_type() == "multipart/report":
                assert isinstance(message, EmailMessage)
                found.append(message)
        return found

    async def error_emails(self) -> list[EmailMessage]:
        """The IG's standard e-mails (filing errors with no MDN asked) in the doctor's INBOX."""
        parser = BytesParser(policy=email.policy.default)
        found = []
        for stored in await self.hub.stored(DOCTOR):
            message = parser.parsebytes(bytes(stored.raw))
            if str(message["Subject"] or "").startswith("[Erreur d’intégration !]"):
                assert isinstance(message, EmailMessage)
                found.append(message)
        return found


def xdm_message(
    package: bytes,
    *,
    mdn: bool,
    subject: str,
    name: str,
    content_type: str,
    sender: str = DOCTOR,
) -> tuple[bytes, str]:
    """A multipart/mixed message: a text, the package and its PDF rendering."""
    message = EmailMessage(policy=email.policy.SMTP)
    message_id = f"<{uuid.uuid4().hex}@test>"
    message["From"] = sender
    message["To"] = PATIENT_ADDRESS
    message["Subject"] = subject
    message["Date"] = email.utils.format_datetime(utcnow())
    message["Message-ID"] = message_id
    if mdn:
        message["Disposition-Notification-To"] = sender
    message.set_content("Bonjour, voici votre compte rendu.\n")
    maintype, subtype = content_type.split("/")
    message.add_attachment(package, maintype=maintype, subtype=subtype, filename=name)
    message.add_attachment(PDF, maintype="application", subtype="pdf", filename="CR.pdf")
    return message.as_bytes(policy=email.policy.SMTP), message_id


async def add_patient(hub: Hub) -> int:
    """The patient of the XDM factory (active), with the sending doctor as médecin traitant."""
    filing.register_jobs(hub.runner)
    async with hub.db.write() as session:
        patient = Patient(
            ins=INS,
            family_name="NESSI",
            given_names="Ruth",
            state=PatientState.ACTIVE,
            email="ruth@example.org",
        )
        session.add(patient)
        await session.flush()
        session.add(Mailbox(address=PATIENT_ADDRESS, kind=MailboxKind.PAT, patient_id=patient.id))
        doctor = (
            await session.scalars(select(Professional).where(Professional.id_nat == DOCTOR_ID_NAT))
        ).one()
        await set_treating_doctor(session, Viewer.for_patient(patient), patient, doctor)
        return patient.id


def notification_fields(mdn: EmailMessage) -> Message:
    """The machine-readable part of an MDN, checked against RFC 8098's shape."""
    assert mdn.get_content_type() == "multipart/report"
    assert mdn.get_param("report-type") == "disposition-notification"
    parts = list(mdn.iter_parts())
    assert [p.get_content_type() for p in parts] == [
        "text/plain",
        "message/disposition-notification",
        "message/rfc822",
    ]
    assert mdn["Auto-Submitted"] == "auto-replied"
    assert str(mdn["From"]) == PATIENT_ADDRESS  # RFC 8098 §2: the recipient it reports for
    payload = parts[1].get_payload()
    fields = payload[0] if isinstance(payload, list) else payload
    assert isinstance(fields, Message)
    assert fields["Final-Recipient"] == f"rfc822; {PATIENT_ADDRESS}"
    assert fields["Reporting-UA"]
    for name, value in fields.items():
        assert str(value).isascii(), (name, value)
    return fields
