"""Delivery status notifications (RFC 3464): a multipart/report telling the sender what failed.

The human part gives every reason in French and in English; the
machine part has one per-recipient block with its status code.
"""

from __future__ import annotations

import email.policy
import email.utils
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage, Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

from mss.db import utcnow


@dataclass(frozen=True)
class FailedRecipient:
    """One recipient the message could not reach, with the reason in both languages."""

    recipient: str
    code: int
    status: str
    sentence: str
    sentence_fr: str


def build_dsn(
    *,
    hostname: str,
    postmaster: str,
    to: str,
    original_headers: bytes,
    original_message_id: str,
    failures: Sequence[FailedRecipient],
    message_id: str,
) -> bytes:
    """The DSN's exact bytes (CRLF line endings), ready for the store or the relay."""
    report = MIMEMultipart("report", policy=email.policy.SMTP, report_type="delivery-status")
    report["From"] = f"Hub MSS <{postmaster}>"
    report["To"] = to
    report["Subject"] = "Non distribué / Undelivered: " + (original_message_id or "message")
    report["Date"] = email.utils.format_datetime(utcnow())
    report["Message-ID"] = message_id
    report["Auto-Submitted"] = "auto-replied"
    if original_message_id:
        report["In-Reply-To"] = original_message_id
        report["References"] = original_message_id
    lines_fr = [f"  - {f.recipient} : {f.sentence_fr} ({f.status})" for f in failures]
    lines_en = [f"  - {f.recipient}: {f.sentence} ({f.status})" for f in failures]
    human = (
        "Votre message n'a pas pu être distribué aux destinataires suivants :\n"
        + "\n".join(lines_fr)
        + "\n\nYour message could not be delivered to the following recipients:\n"
        + "\n".join(lines_en)
        + "\n"
    )
    report.attach(MIMEText(human, "plain", "utf-8", policy=email.policy.SMTP))
    status = MIMEBase("message", "delivery-status")
    per_message = Message()
    per_message["Reporting-MTA"] = f"dns; {hostname}"
    per_message["Arrival-Date"] = email.utils.format_datetime(utcnow())
    blocks: list[Message | str] = [per_message]
    for failure in failures:
        block = Message()
        block["Final-Recipient"] = f"rfc822; {failure.recipient}"
        block["Action"] = "failed"
        block["Status"] = failure.status
        block["Diagnostic-Code"] = f"smtp; {failure.code} {failure.status} {failure.sentence}"
        blocks.append(block)
    status.set_payload(blocks)
    report.attach(status)
    headers = MIMEBase("text", "rfc822-headers")
    text = original_headers.decode("utf-8", "replace")
    # 8-bit header values (RFC 6532) cannot travel as 7-bit text: encode the part then.
    headers.set_payload(text, charset="utf-8" if not text.isascii() else None)
    report.attach(headers)
    return report.as_bytes(policy=email.policy.SMTP)


def original_header_block(raw: bytes, limit: int = 64 * 1024) -> bytes:
    """The header section of the original message (what text/rfc822-headers carries)."""
    end = raw.find(b"\r\n\r\n")
    return (raw[: end + 2] if end >= 0 else raw)[:limit]


def as_email(raw: bytes) -> EmailMessage:  # for tests and the portal's rendering
    from email.parser import BytesParser
    from email.policy import default

    message = BytesParser(policy=default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    return message
