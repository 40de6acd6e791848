#!/usr/bin/env python3
"""Send a hospital's convocations from a CSV file to its patients' secure mailboxes.

What a hospital integrator runs against the hub. Each CSV row becomes one
S/MIME-signed message from the hospital's applicative (APP) mailbox to
``<INS>@patient.<domain>``, with a French text part and an iTIP
``text/calendar; method=REQUEST`` part (or CANCEL), optionally with an IHE
XDM package. The script logs in with the APP mailbox's TLS client
certificate (implicit TLS, port 2465 by default, or STARTTLS on 2587),
shows a progress bar and ends with one line per refused row: its code and
the hub's sentence.

CSV columns (UTF-8, with a header line, separated by ``;`` or by ``,``)::

    ins;nom;prenom;debut;fin;lieu;service;uid[;sequence][;annulation]

``debut``/``fin`` are ISO 8601 (``2026-03-10T09:30``, Paris time unless an
offset is given); ``annulation`` set to ``oui`` sends a CANCEL.

Example::

    python examples/hospital_convocations.py rdv.csv --from convocations@mss.localhost \\
        --cert var/pki/issued/client/convocations@mss.localhost.pem --key var/pki/issued/client/convocations@mss.localhost.key \\
        --smime-cert var/pki/issued/smime/convocations@mss.localhost.pem --smime-key var/pki/issued/smime/convocations@mss.localhost.key \\
        --ca var/pki/root-ca.pem

The functions (``read_rows``, ``build_convocation``, ``submit_all``) are the
code path the tests and ``bench/convocations.py`` reuse.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import datetime as dt
import email.utils
import io
import secrets
import ssl
import sys
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from email.header import Header
from pathlib import Path
from zoneinfo import ZoneInfo

import aiosmtplib
from tqdm import tqdm

from mss.agenda.itip import EventData, build_cancel, build_request
from mss.crypto import smime
from mss.crypto.keys import PrivateKey, load_certs, load_key

PARIS = ZoneInfo("Europe/Paris")
COLUMNS = ("ins", "nom", "prenom", "debut", "fin", "lieu", "service", "uid")
XDM_NAME = "IHE_XDM.ZIP"


@dataclass(frozen=True)
class AppointmentRow:
    """One appointment of the CSV file."""

    ins: str
    family_name: str
    given_names: str
    start: dt.datetime
    end: dt.datetime
    location: str
    service: str
    uid: str
    sequence: int = 0
    cancel: bool = False
    line: int = 0


@dataclass(frozen=True)
class Refusal:
    """A row the hub did not accept: its line, UID, SMTP code and sentence."""

    line: int
    uid: str
    code: int
    sentence: str


@dataclass
class ConvocationSender:
    """The hospital's APP mailbox: where the hub is, how to log in and how to sign."""

    address: str
    host: str
    port: int
    client_cert: Path
    client_key: Path
    smime_cert: Path
    smime_key: Path
    domain: str = "mss.localhost"
    display_name: str = ""
    implicit_tls: bool = True
    ca_file: Path | None = None
    _signer: tuple[list, PrivateKey] | None = field(default=None, repr=False)

    def tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
        context.load_cert_chain(self.client_cert, self.client_key)
        return context

    def signer(self) -> tuple[list, PrivateKey]:
        if self._signer is None:
            self._signer = (load_certs(self.smime_cert), load_key(self.smime_key))
        return self._signer


# -- reading the CSV -------------------------------------------------------------------------

def parse_time(text: str) -> dt.datetime:
    """ISO 8601; a time without offset is Paris time."""
    moment = dt.datetime.fromisoformat(text.strip())
    return moment.replace(tzinfo=PARIS) if moment.tzinfo is None else moment


def read_rows(text: str) -> tuple[list[AppointmentRow], list[Refusal]]:
    """The rows of a CSV file, and a refusal (code 0) for each row that cannot be read."""
    dialect = csv.Sniffer().sniff(text.split("\n", 1)[0], delimiters=";,")
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise ValueError(f"the CSV file lacks the columns {', '.join(missing)} (header: {reader.fieldnames})")
    rows: list[AppointmentRow] = []
    problems: list[Refusal] = []
    for line, record in enumerate(reader, start=2):
        try:
            rows.append(AppointmentRow(
                ins=record["ins"].strip(), family_name=record["nom"].strip(),
                given_names=record["prenom"].strip(), start=parse_time(record["debut"]),
                end=parse_time(record["fin"]), location=record["lieu"].strip(),
                service=record["service"].strip(), uid=record["uid"].strip(),
                sequence=int(record.get("sequence") or 0),
                cancel=(record.get("annulation") or "").strip().lower() in ("oui", "yes", "1"), line=line))
        except (ValueError, TypeError, AttributeError) as exc:
            problems.append(Refusal(line, (record.get("uid") or "").strip(), 0, f"unreadable row: {exc}"))
    return rows, problems


# -- building one convocation ------------------------------------------------------------------

def patient_address(ins: str, domain: str) -> str:
    return f"{ins.strip().upper()}@patient.{domain}".lower()


def _when(row: AppointmentRow) -> str:
    local = row.start.astimezone(PARIS)
    return f"le {local:%d/%m/%Y} à {local:%H:%M}"


def build_convocation(row: AppointmentRow, sender: ConvocationSender, *, xdm: bytes | None = None,
                      now: dt.datetime | None = None) -> tuple[bytes, str]:
    """The signed message (exact bytes) for one row, and its recipient."""
    now = now or dt.datetime.now(dt.UTC)
    recipient = patient_address(row.ins, sender.domain)
    event = EventData(uid=row.uid, sequence=row.sequence, start=row.start, end=row.end,
                      summary=f"Rendez-vous {row.service}".strip(), location=row.location,
                      organizer=sender.address, organizer_name=sender.display_name, attendee=recipient,
                      attendee_name=f"{row.given_names} {row.family_name}".strip())
    calendar = build_cancel(event, now) if row.cancel else build_request(event, now)
    method = "CANCEL" if row.cancel else "REQUEST"
    text = (f"Bonjour {row.given_names} {row.family_name},\n\n"
            + (f"Votre rendez-vous {_when(row)} ({row.service}) est annulé.\n" if row.cancel else
               f"Vous êtes attendu(e) {_when(row)} en {row.service}.\nLieu : {row.location}\n\n"
               "Vous pouvez confirmer ou décliner ce rendez-vous dans votre agenda santé.\n"))
    body = multipart("alternative", [text_part("plain", text), text_part("calendar", calendar, method=method)])
    if xdm is not None:
        body = multipart("mixed", [body, attachment_part(xdm, "application/zip", XDM_NAME)])
    subject = ("Annulation de votre rendez-vous" if row.cancel else "Convocation") + f" : {row.service}"
    return sign_message(sender, recipient, subject, body, now), recipient


# -- the MIME message, written directly ----------------------------------------------------------
# The email package's EmailMessage takes about 3 ms per convocation, twice the
# signature; a hospital sends thousands at once. These few functions write the
# same structure (RFC 2045-2049): UTF-8 text parts in 8bit (base64 when a line is
# too long for SMTP), header fields RFC 2047-encoded when they are not ASCII.

MAX_LINE = 998  # octets, RFC 5322 section 2.1.1


def header_field(name: str, value: str) -> bytes:
    """One header field line, encoded (RFC 2047) when not ASCII and folded at 78 characters."""
    folded = Header(value, "us-ascii" if value.isascii() else "utf-8", header_name=name).encode(linesep="\r\n")
    return f"{name}: {folded}\r\n".encode("ascii")


def _crlf(text: str) -> bytes:
    return "\r\n".join(text.replace("\r\n", "\n").replace("\r", "\n").split("\n")).encode("utf-8")


def text_part(subtype: str, text: str, **params: str) -> bytes:
    """A ``text/<subtype>; charset=utf-8`` entity (headers and body)."""
    extra = "".join(f'; {name}="{value}"' for name, value in params.items())
    body = _crlf(text)
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    if any(len(line) > MAX_LINE for line in body.split(b"\r\n")):
        encoding, body = b"base64", smime.base64_lines(body)
    else:
        encoding = b"7bit" if body.isascii() else b"8bit"
    return (f'Content-Type: text/{subtype}; charset="utf-8"{extra}\r\n'.encode("ascii")
            + b"Content-Transfer-Encoding: " + encoding + b"\r\n\r\n" + body)


def attachment_part(data: bytes, content_type: str, filename: str) -> bytes:
    """A base64 attachment entity."""
    return (f'Content-Type: {content_type}; name="{filename}"\r\nContent-Transfer-Encoding: base64\r\n'
            f'Content-Disposition: attachment; filename="{filename}"\r\n\r\n').encode("ascii") + smime.base64_lines(data)


def multipart(subtype: str, parts: Sequence[bytes]) -> bytes:
    """A ``multipart/<subtype>`` entity around already written parts."""
    boundary = f"=_mss_{secrets.token_hex(12)}".encode()
    # The line break before a delimiter belongs to the delimiter (RFC 2046 section 5.1.1): each part keeps its own.
    body = b"".join(b"--" + boundary + b"\r\n" + part + b"\r\n" for part in parts)
    return (b'Content-Type: multipart/' + subtype.encode("ascii") + b'; boundary="' + boundary + b'"\r\n\r\n'
            + body + b"--" + boundary + b"--\r\n")


def sign_message(sender: ConvocationSender, recipient: str, subject: str, body: bytes,
                 now: dt.datetime) -> bytes:
    """The top-level header fields around ``body`` (a MIME entity), signed with the sender's S/MIME key."""
    message = (header_field("From", email.utils.formataddr((sender.display_name, sender.address), charset="utf-8"))
               + header_field("To", recipient) + header_field("Subject", subject)
               + header_field("Date", email.utils.format_datetime(now))
               + header_field("Message-ID", f"<{uuid.uuid4().hex}@{sender.domain}>")
               + b"MIME-Version: 1.0\r\n" + body)
    certs, key = sender.signer()
    return smime.sign(message, certs[0], key, chain=certs[1:])


# -- submitting ---------------------------------------------------------------------------------

async def _connect(sender: ConvocationSender) -> aiosmtplib.SMTP:
    client = aiosmtplib.SMTP(hostname=sender.host, port=sender.port, use_tls=sender.implicit_tls,
                             start_tls=not sender.implicit_tls, tls_context=sender.tls_context(), timeout=60)
    await client.connect()
    return client


Builder = Callable[..., tuple[bytes, str]]


async def _send_one(client: aiosmtplib.SMTP, sender: ConvocationSender, row: AppointmentRow,
                    xdm: bytes | None, build: Builder) -> Refusal | None:
    raw, recipient = build(row, sender, xdm=xdm)
    try:
        errors, _ = await client.sendmail(sender.address, [recipient], raw)
    except aiosmtplib.SMTPRecipientsRefused as exc:
        first = exc.recipients[0]
        return Refusal(row.line, row.uid, first.code, first.message)
    except aiosmtplib.SMTPResponseException as exc:
        return Refusal(row.line, row.uid, exc.code, exc.message)
    if errors:
        code, sentence = next(iter(errors.values()))
        return Refusal(row.line, row.uid, code, sentence)
    return None


async def submit_all(rows: Sequence[AppointmentRow], sender: ConvocationSender, *, connections: int = 4,
                     xdm: bytes | None = None, progress: bool = True,
                     build: Builder = build_convocation) -> list[Refusal]:
    """Send every row over ``connections`` parallel SMTP sessions; the refusals, in row order.

    ``build`` makes each message (the benchmark passes a plain-message builder for its baseline).
    """
    queue: asyncio.Queue[AppointmentRow] = asyncio.Queue()
    for row in rows:
        queue.put_nowait(row)
    refusals: list[Refusal] = []
    bar = tqdm(total=len(rows), unit="rdv", desc="Convocations", disable=not progress, file=sys.stderr)

    async def worker() -> None:
        client: aiosmtplib.SMTP | None = None
        try:
            while not queue.empty():
                row = queue.get_nowait()
                if client is None or not client.is_connected:
                    client = await _connect(sender)
                try:
                    refusal = await _send_one(client, sender, row, xdm, build)
                except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPConnectError, OSError) as exc:
                    client = None
                    refusal = Refusal(row.line, row.uid, 421, f"connection lost: {exc}")
                if refusal is not None:
                    refusals.append(refusal)
                bar.update(1)
        finally:
            if client is not None and client.is_connected:
                try:
                    await client.quit()
                except aiosmtplib.SMTPException:
                    client.close()

    try:
        await asyncio.gather(*(worker() for _ in range(max(1, min(connections, len(rows) or 1)))))
    finally:
        bar.close()
    return sorted(refusals, key=lambda r: r.line)


def summary(accepted: int, refusals: Iterable[Refusal]) -> str:
    """The closing report: how many were accepted, then one line per refused row."""
    refused = list(refusals)
    lines = [f"{accepted} convocation(s) accepted, {len(refused)} refused"]
    lines += [f"  line {r.line} (uid {r.uid or '?'}): {r.code or '-'} {r.sentence}" for r in refused]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parts = __doc__.split("\n\n")
    columns = next(i for i, part in enumerate(parts) if part.startswith("CSV columns"))
    parser = argparse.ArgumentParser(description=parts[0],
                                     epilog="\n\n".join(parts[columns:columns + 5]).replace("::", ":").replace("``", ""),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("csv", type=Path, help="the appointments (the columns are described below)")
    parser.add_argument("--from", dest="sender", required=True, help="the APP mailbox address")
    parser.add_argument("--cert", type=Path, required=True, help="the APP mailbox's TLS client certificate")
    parser.add_argument("--key", type=Path, required=True, help="its private key")
    parser.add_argument("--smime-cert", type=Path, required=True, help="the S/MIME signing certificate")
    parser.add_argument("--smime-key", type=Path, required=True, help="its private key")
    parser.add_argument("--ca", type=Path, help="CA certificate of the hub (default: the system's)")
    parser.add_argument("--host", default="localhost")
    parser.add_argument("--port", type=int, help="2465 (implicit TLS) or 2587 with --starttls")
    parser.add_argument("--starttls", action="store_true", help="STARTTLS instead of implicit TLS")
    parser.add_argument("--domain", default="mss.localhost", help="the hub's domain (patients: patient.DOMAIN)")
    parser.add_argument("--name", default="", help="display name of the sender")
    parser.add_argument("--xdm", type=Path, help="an IHE XDM zip to attach to every convocation")
    parser.add_argument("--connections", type=int, default=4,
                        help="SMTP connections at once (default 4; bulk senders use 16-32)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        rows, problems = read_rows(args.csv.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError, csv.Error) as exc:
        print(f"cannot read {args.csv}: {exc}", file=sys.stderr)
        return 2
    sender = ConvocationSender(
        address=args.sender, host=args.host, port=args.port or (2587 if args.starttls else 2465),
        implicit_tls=not args.starttls, ca_file=args.ca, client_cert=args.cert, client_key=args.key,
        smime_cert=args.smime_cert, smime_key=args.smime_key, domain=args.domain, display_name=args.name)
    try:
        refusals = asyncio.run(submit_all(rows, sender, connections=args.connections,
                                          xdm=args.xdm.read_bytes() if args.xdm else None,
                                          progress=not args.quiet))
    except (OSError, ssl.SSLError, aiosmtplib.SMTPException) as exc:
        print(f"cannot reach the hub at {args.host}:{sender.port}: {exc}", file=sys.stderr)
        return 3
    print(summary(len(rows) - len(refusals), problems + refusals))
    return 1 if problems or refusals else 0


if __name__ == "__main__":
    sys.exit(main())
