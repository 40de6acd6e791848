"""The patient's messages, read through the store and directory APIs.

Everything is scoped by the mailbox of the space shown (the patient's own
or a held minor's): a folder entry, a conversation or an attachment of
another mailbox is simply not found, whatever id a URL carries.

``package_facts`` tells what a message's XDM packages hold as the patient's
record (DMP) now sees it, for ``mss.policy.message_attachments`` to decide
which attachments the page withholds.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import posixpath
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dmp_bridge.errors import XdmError
from dmp_bridge.filing import marker
from dmp_bridge.models import DmpDocument
from dmp_bridge.xdm import read_xdm
from mss.audit import AuditEvent
from mss.conversations import Conversation, ConversationState
from mss.db import Database
from mss.directory.identifiers import profession_label
from mss.directory.models import Mailbox, MailboxKind, Organisation, Professional
from mss.directory.store import find_mailbox
from mss.mailbox.entries import FlagUpdate, load_entries, rows_for_uids, store_flags
from mss.mailbox.folders import folder_status
from mss.mailbox.models import Folder, FolderEntry, StoredMessage
from mss.mailbox.store import INBOX, find_folder, parse_flags
from mss.policy.message_attachments import PackagedDocument, PackageFacts, RecordFlags
from portal.throttle import PARIS

SENT = "Sent"
SEEN = "\\Seen"
MDN_SENT = "$MDNSent"  # RFC 3503: a receipt was sent, or declined, for this message
TITLED = frozenset({"10", "21", "40"})  # médecin, pharmacien, chirurgien-dentiste: "Dr"
KIND_LABELS = {MailboxKind.ORG: "Service", MailboxKind.APP: "Envoi automatique",
               MailboxKind.CAB: "Cabinet", MailboxKind.PER: "Professionnel de santé"}


@dataclass(frozen=True)
class Counterpart:
    """The professional side of a conversation, as the directory describes it."""

    address: str
    name: str
    profession: str = ""
    organisation: str = ""
    id_nat: str | None = None
    known: bool = True

    @property
    def rpps(self) -> str:
        """``RPPS 10003456789`` (or ``ADELI ...``) from the idNat, or an empty string."""
        if not self.id_nat:
            return ""
        if self.id_nat.startswith("8"):
            return f"RPPS {self.id_nat[1:]}"
        if self.id_nat.startswith("0"):
            return f"ADELI {self.id_nat[1:]}"
        return ""


@dataclass(frozen=True)
class MessageLine:
    """One message in one folder of the space's mailbox, as lists show it."""

    entry_id: int
    folder: str
    uid: int
    stored_id: int
    subject: str
    when: dt.datetime
    from_address: str
    to_addresses: tuple[str, ...]
    conversation_id: int | None
    flags: frozenset[str]
    top_type: str

    @property
    def seen(self) -> bool:
        return SEEN in self.flags

    @property
    def when_text(self) -> str:
        return local_time(self.when)

    @property
    def is_receipt(self) -> bool:
        """A disposition notification (read receipt), not a message someone wrote."""
        return self.top_type == "multipart/report"


@dataclass
class ConversationSummary:
    """A conversation (or a message outside any conversation) in the list, newest first."""

    conversation_id: int | None
    counterpart: Counterpart
    latest: MessageLine
    closed: bool = False
    unread: int = 0
    count: int = 0
    lines: list[MessageLine] = field(default_factory=list)


@dataclass(frozen=True)
class Located:
    """A folder entry of the space's mailbox with its stored message."""

    entry: FolderEntry
    folder: Folder
    message: StoredMessage

    @property
    def received(self) -> bool:
        return self.folder.name == INBOX


class Directory:
    """Directory look-ups of one request, each mailbox described once."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._by_id: dict[int, Counterpart] = {}
        self._by_address: dict[str, Counterpart] = {}

    async def by_id(self, mailbox_id: int) -> Counterpart:
        if mailbox_id not in self._by_id:
            mailbox = await self.session.get(Mailbox, mailbox_id)
            self._by_id[mailbox_id] = (await self._describe(mailbox) if mailbox is not None
                                       else Counterpart("", "Correspondant inconnu", known=False))
        return self._by_id[mailbox_id]

    async def by_address(self, address: str) -> Counterpart:
        key = address.lower()
        if key not in self._by_address:
            mailbox = await find_mailbox(self.session, address) if address else None
            self._by_address[key] = (await self._describe(mailbox) if mailbox is not None
                                     else Counterpart(address, address or "Expéditeur inconnu",
                                                      known=False))
        return self._by_address[key]

    async def professional(self, id_nat: str) -> Professional | None:
        from mss.directory.store import find_professional_by_id_nat

        return await find_professional_by_id_nat(self.session, id_nat)

    async def _describe(self, mailbox: Mailbox) -> Counterpart:
        session = self.session
        professional = (await session.get(Professional, mailbox.professional_id)
                        if mailbox.professional_id else None)
        organisation_id = mailbox.organisation_id or (professional.organisation_id if professional else None)
        organisation = await session.get(Organisation, organisation_id) if organisation_id else None
        org_name = organisation.name if organisation is not None else ""
        if professional is not None and mailbox.kind is MailboxKind.PER:
            return Counterpart(mailbox.address, titled_name(professional),
                               profession_of(professional.profession_code), org_name, professional.id_nat)
        name = mailbox.display_name or org_name or mailbox.address
        kind = "Pharmacie" if mailbox.pharmacy else KIND_LABELS.get(mailbox.kind, "")
        return Counterpart(mailbox.address, name, kind, org_name if org_name != name else "")


def local_time(when: dt.datetime) -> str:
    """``12/03/2026 à 14 h 05``, Paris time."""
    return when.astimezone(PARIS).strftime("%d/%m/%Y à %H h %M")


def profession_of(code: str) -> str:
    """The TRE_G15 label of a profession code, or an empty string when unknown."""
    try:
        return profession_label(code) if code else ""
    except (KeyError, ValueError):
        return ""


def titled_name(professional: Professional) -> str:
    """``Dr Jean Dupont`` for doctors, pharmacists and dentists, the plain name otherwise."""
    prefix = "Dr " if professional.profession_code in TITLED else ""
    return prefix + professional.display_name


def _addresses(envelope: list[Any], index: int) -> tuple[str, ...]:
    """Addresses of one ENVELOPE field (RFC 3501 address structures: name, adl, mailbox, host)."""
    try:
        found = envelope[index] or []
    except (IndexError, TypeError):
        return ()
    return tuple(f"{a[2]}@{a[3]}".lower() for a in found if isinstance(a, list) and len(a) == 4
                 and a[2] and a[3])


async def folder_lines(session: AsyncSession, mailbox_id: int, name: str) -> list[MessageLine]:
    """Every message of one folder of the mailbox, newest first."""
    folder = await find_folder(session, mailbox_id, name)
    if folder is None:
        return []
    uids = [uid for uid, _flags, _modseq in await load_entries(session, folder.id)]
    columns = [FolderEntry.id, FolderEntry.flags, StoredMessage.id, StoredMessage.subject,
               StoredMessage.internal_date, StoredMessage.from_address, StoredMessage.envelope,
               StoredMessage.conversation_id, StoredMessage.bodystructure]
    lines = []
    async for row in rows_for_uids(session, folder.id, uids, columns):
        uid, entry_id, flags, stored_id, subject, when, sender, envelope, conversation_id, structure = row
        top = ((structure or {}).get("parts") or {}).get("type", "text/plain")
        lines.append(MessageLine(entry_id, folder.name, uid, stored_id, subject or "", when,
                                 (sender or "").lower(), _addresses(envelope, 5), conversation_id,
                                 parse_flags(flags), top))
    lines.sort(key=lambda line: (line.when, line.uid), reverse=True)
    return lines


async def conversations(session: AsyncSession, mailbox_id: int) -> list[ConversationSummary]:
    """The conversations of the mailbox, and received messages outside any, newest first."""
    directory = Directory(session)
    summaries: dict[int, ConversationSummary] = {}
    loose: list[ConversationSummary] = []
    for line in [*await folder_lines(session, mailbox_id, INBOX), *await folder_lines(session, mailbox_id, SENT)]:
        if line.conversation_id is None:
            if line.folder == INBOX:
                loose.append(ConversationSummary(None, await directory.by_address(line.from_address), line,
                                                 unread=0 if line.seen else 1, count=1, lines=[line]))
            continue
        summary = summaries.get(line.conversation_id)
        if summary is None:
            conversation = await session.get(Conversation, line.conversation_id)
            if conversation is None or conversation.patient_mailbox_id != mailbox_id:
                continue
            summary = summaries[line.conversation_id] = ConversationSummary(
                conversation.id, await directory.by_id(conversation.professional_mailbox_id), line,
                closed=conversation.state is ConversationState.CLOSED)
        _add(summary, line)
    found = [*summaries.values(), *loose]
    found.sort(key=lambda s: (s.latest.when, s.latest.uid), reverse=True)
    return found


def _add(summary: ConversationSummary, line: MessageLine) -> None:
    summary.lines.append(line)
    summary.count += 1
    if line.folder == INBOX and not line.seen:
        summary.unread += 1
    if (line.when, line.uid) > (summary.latest.when, summary.latest.uid):
        summary.latest = line


async def conversation(session: AsyncSession, mailbox_id: int, conversation_id: int
                       ) -> ConversationSummary | None:
    """One conversation of the mailbox with its messages, oldest first; None if not the mailbox's."""
    row = await session.get(Conversation, conversation_id)
    if row is None or row.patient_mailbox_id != mailbox_id:
        return None
    lines = [line for name in (INBOX, SENT) for line in await folder_lines(session, mailbox_id, name)
             if line.conversation_id == conversation_id]
    if not lines:
        return None
    lines.sort(key=lambda line: (line.when, line.uid))
    summary = ConversationSummary(row.id, await Directory(session).by_id(row.professional_mailbox_id),
                                  lines[-1], closed=row.state is ConversationState.CLOSED)
    for line in lines:
        _add(summary, line)
    summary.lines = lines
    return summary


async def find_entry(session: AsyncSession, mailbox_id: int, entry_id: int) -> Located | None:
    """A folder entry with its message, only if it sits in a folder of ``mailbox_id``."""
    entry = await session.get(FolderEntry, entry_id)
    if entry is None:
        return None
    folder = await session.get(Folder, entry.folder_id)
    if folder is None or folder.mailbox_id != mailbox_id:
        return None
    message = await session.get(StoredMessage, entry.message_id)
    return Located(entry, folder, message) if message is not None else None


async def entry_of_message(session: AsyncSession, mailbox_id: int, folder_name: str,
                           stored_id: int) -> int | None:
    """The entry id of a stored message in one folder of the mailbox (after sending: its Sent copy)."""
    for line in await folder_lines(session, mailbox_id, folder_name):
        if line.stored_id == stored_id:
            return line.entry_id
    return None


async def add_flags(session: AsyncSession, mailbox_id: int, located: Located,
                    flags: Iterable[str]) -> frozenset[str]:
    """Add flags to the entry (as IMAP STORE +FLAGS does); its flags afterwards."""
    update: FlagUpdate = await store_flags(session, mailbox_id, located.folder.id, [located.entry.uid],
                                           "add", flags)
    return update.current[located.entry.uid][0] if located.entry.uid in update.current else frozenset()


async def remove_flags(session: AsyncSession, mailbox_id: int, located: Located, flags: Iterable[str]) -> None:
    await store_flags(session, mailbox_id, located.folder.id, [located.entry.uid], "remove", flags)


async def unread_count(session: AsyncSession, mailbox_id: int) -> int:
    """Messages of the INBOX not yet read."""
    folder = await find_folder(session, mailbox_id, INBOX)
    return (await folder_status(session, folder)).unseen if folder is not None else 0


async def package_facts(db: Database, *, patient_id: int, mailbox_id: int, message_id: int,
                        packages: Callable[[], list[bytes]]) -> PackageFacts:
    """The documents of a message's XDM packages, each with its flags in the patient's record now.

    When the ``dmp.file`` job filed every document of the message (its marker says so and the record
    holds as many documents from this message), the record alone answers. Otherwise (the job has not
    run yet, refused a document, found one already filed from another message, deleted one) the
    packages are read, once, off the event loop, and each document found in the record takes the
    record's flags; the others keep the package's.
    """
    async with db.read() as session:
        filed = await _filed_documents(session, patient_id, mailbox_id, message_id)
    if filed is not None:
        return PackageFacts(filed)
    documents, unreadable = await asyncio.to_thread(lambda: _read_packages(packages()))
    async with db.read() as session:
        wanted = {u for d in documents if d.unique_id for u in (d.unique_id, d.unique_id.lower())}
        rows = (await session.execute(select(
            DmpDocument.unique_id, DmpDocument.invisible_to_patient,
            DmpDocument.invisible_to_legal_representatives).where(
            DmpDocument.patient_id == patient_id, DmpDocument.unique_id.in_(wanted)))).all() if wanted else []
    flags = {uid: RecordFlags(patient, guardians) for uid, patient, guardians in rows}
    return PackageFacts(tuple(
        PackagedDocument(d.confidentiality, flags.get(d.unique_id) or flags.get(d.unique_id.lower()),
                         d.title, d.unique_id, d.file_name) for d in documents), unreadable)


async def _filed_documents(session: AsyncSession, patient_id: int, mailbox_id: int,
                           message_id: int) -> tuple[PackagedDocument, ...] | None:
    """Every document of the message as the record holds it, or None when the record cannot tell."""
    done = (await session.scalars(select(AuditEvent.detail).where(
        AuditEvent.action == "dmp_filing", AuditEvent.target == marker(message_id, mailbox_id)))).first()
    if not isinstance(done, dict) or done.get("error") is not None:
        return None
    rows = (await session.execute(select(
        DmpDocument.title, DmpDocument.unique_id, DmpDocument.invisible_to_patient,
        DmpDocument.invisible_to_legal_representatives).where(
        DmpDocument.patient_id == patient_id, DmpDocument.stored_message_id == message_id,
        DmpDocument.source == "mss"))).all()
    if not rows or len(rows) != done.get("filed"):
        return None
    return tuple(PackagedDocument(record=RecordFlags(patient, guardians), title=title, unique_id=uid)
                 for title, uid, patient, guardians in rows)


def _read_packages(packages: list[bytes]) -> tuple[tuple[PackagedDocument, ...], bool]:
    """The documents of the packages (no record flags yet), and whether one could not be read."""
    documents: list[PackagedDocument] = []
    unreadable = False
    for data in packages:
        try:
            package = read_xdm(data)
        except XdmError:
            unreadable = True
            continue
        documents += [PackagedDocument(tuple((c.code, c.scheme or "") for c in entry.confidentiality_codes),
                                       None, entry.title or "", entry.unique_id or "",
                                       posixpath.basename(entry.uri or entry.path))
                      for entry in package.documents]
    return tuple(documents), unreadable
