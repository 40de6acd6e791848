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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from dmp_bridge.errors import XdmError
from dmp_bridge.message_documents import (
    documents_by_unique_id,
    documents_from_message,
    filing_outcome,
)
from dmp_bridge.xdm import read_xdm
from mss.conversations import (
    Conversation,
    ConversationState,
    find_patient_conversation,
    patient_conversations,
)
from mss.db import Database
from mss.directory.descriptions import Described, describe_mailboxes
from mss.directory.identifiers import normalise_address, normalise_id_nat, profession_label
from mss.directory.models import Mailbox, MailboxKind, Organisation, Professional
from mss.directory.store import find_patient_entry, find_professional_by_id_nat
from mss.errors import InvalidInput
from mss.mailbox import listing
from mss.mailbox.entries import FlagUpdate, store_flags
from mss.mailbox.folders import folder_status
from mss.mailbox.models import Folder, FolderEntry, StoredMessage
from mss.mailbox.store import INBOX, find_folder, normalise_folder_name, parse_flags
from mss.policy.message_attachments import PackagedDocument, PackageFacts, RecordFlags
from portal.clock import PARIS

SENT = "Sent"
SEEN = "\\Seen"
MDN_SENT = "$MDNSent"  # RFC 3503: a receipt was sent, or declined, for this message
TITLED = frozenset({"10", "21", "40"})  # médecin, pharmacien, chirurgien-dentiste: "Dr"
KIND_LABELS = {
    MailboxKind.ORG: "Service",
    MailboxKind.APP: "Envoi automatique",
    MailboxKind.CAB: "Cabinet",
    MailboxKind.PER: "Professionnel de santé",
}


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
    message_id_header: str = ""  # the Message-ID field, ``<...>`` (delivery statuses)

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
    # Read with the entry by ``locate`` (and kept here, so the session's identity map keeps it too).
    conversation: Conversation | None = None

    @property
    def received(self) -> bool:
        return self.folder.name == INBOX


class Directory:
    """Directory look-ups of one request: each mailbox described once, many in one statement."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._by_id: dict[int, Counterpart] = {}
        self._by_address: dict[str, Counterpart] = {}
        self._professionals: dict[
            str, Professional
        ] = {}  # by idNat, those met describing mailboxes
        # The rows read stay referenced: the session's identity map is weak, and a later
        # session.get(Mailbox, id) (the gateway's look-ups) then reads nothing more.
        self._mailboxes: list[Mailbox] = []

    async def by_id(self, mailbox_id: int) -> Counterpart:
        await self.describe(ids=[mailbox_id])
        return self._by_id[mailbox_id]

    async def by_address(self, address: str) -> Counterpart:
        await self.describe(addresses=[address])
        return self._by_address[address.lower()]

    async def describe(self, *, ids: Iterable[int] = (), addresses: Iterable[str] = ()) -> None:
        """Describe the mailboxes of ``ids`` and ``addresses`` not described yet, in one statement.

        Addresses are matched as ``find_mailbox`` does: normalised, then (for those not found) in
        lower case, which a second statement does only when some were not found.
        """
        wanted_ids = {i for i in ids if i not in self._by_id}
        wanted: dict[str, list[str]] = {}  # normalised address -> the addresses asked (as given)
        for address in addresses:
            if address.lower() in self._by_address:
                continue
            normalised = _normalised(address)
            if normalised is None:
                self._by_address[address.lower()] = _unknown_sender(address)
            else:
                wanted.setdefault(normalised, []).append(address)
        if not wanted_ids and not wanted:
            return
        found = self._keep(
            await describe_mailboxes(self.session, ids=list(wanted_ids), addresses=list(wanted))
        )
        missing = [address for address in wanted if address not in found]
        if missing:  # rows written by hand with capitals
            found.update(
                {
                    mailbox_address.lower(): counterpart
                    for mailbox_address, counterpart in self._keep(
                        await describe_mailboxes(self.session, addresses=missing, lower_case=True)
                    ).items()
                }
            )
        for address, asked in wanted.items():
            for original in asked:
                self._by_address[original.lower()] = found.get(address) or _unknown_sender(original)
        for mailbox_id in wanted_ids - self._by_id.keys():
            self._by_id[mailbox_id] = Counterpart("", "Correspondant inconnu", known=False)

    def _keep(self, rows: list[Described]) -> dict[str, Counterpart]:
        """Describe the directory's rows (cached by id); by their stored address."""
        described = {}
        for mailbox, professional, organisation in rows:
            counterpart = self._by_id[mailbox.id] = describe_mailbox(
                mailbox, professional, organisation
            )
            described[mailbox.address] = counterpart
            self._mailboxes.append(mailbox)
            if professional is not None:
                self._professionals[professional.id_nat] = professional
        return described

    async def professional(self, id_nat: str) -> Professional | None:
        """The professional with this idNat (already met describing a mailbox, or read now)."""
        try:
            known = self._professionals.get(normalise_id_nat(id_nat, check_key=False))
        except InvalidInput:
            return None
        return (
            known if known is not None else await find_professional_by_id_nat(self.session, id_nat)
        )


def _normalised(address: str) -> str | None:
    try:
        return normalise_address(address)
    except InvalidInput:
        return None


def _unknown_sender(address: str) -> Counterpart:
    return Counterpart(address, address or "Expéditeur inconnu", known=False)


def describe_mailbox(
    mailbox: Mailbox, professional: Professional | None, organisation: Organisation | None
) -> Counterpart:
    """A mailbox as the pages name it: the professional (titled), else the mailbox's or
    organisation's name."""
    org_name = organisation.name if organisation is not None else ""
    if professional is not None and mailbox.kind is MailboxKind.PER:
        return Counterpart(
            mailbox.address,
            titled_name(professional),
            profession_of(professional.profession_code),
            org_name,
            professional.id_nat,
        )
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


def _envelope_text(envelope: list[Any], index: int) -> str:
    """A text field of the ENVELOPE (the Message-ID at 9), ``""`` when absent."""
    try:
        found = envelope[index]
    except (IndexError, TypeError):
        return ""
    return found.strip() if isinstance(found, str) else ""


def _addresses(envelope: list[Any], index: int) -> tuple[str, ...]:
    """Addresses of one ENVELOPE field (RFC 3501 address structures: name, adl, mailbox, host)."""
    try:
        found = envelope[index] or []
    except (IndexError, TypeError):
        return ()
    return tuple(
        f"{a[2]}@{a[3]}".lower()
        for a in found
        if isinstance(a, list) and len(a) == 4 and a[2] and a[3]
    )


async def folder_lines(session: AsyncSession, mailbox_id: int, name: str) -> list[MessageLine]:
    """Every message of one folder of the mailbox, newest first."""
    return await mailbox_lines(session, mailbox_id, (name,))


async def mailbox_lines(
    session: AsyncSession, mailbox_id: int, names: Sequence[str]
) -> list[MessageLine]:
    """Every message of the named folders of the mailbox, folder by folder in that order, newest
    first.

    One statement for all the folders, entries and messages.
    """
    folders = [normalise_folder_name(name) for name in names]
    lines = [
        MessageLine(
            listed.entry_id,
            listed.folder,
            listed.uid,
            listed.message_id,
            listed.subject,
            listed.internal_date,
            listed.from_address.lower(),
            _addresses(listed.envelope, 5),
            listed.conversation_id,
            parse_flags(listed.flags),
            listed.top_type,
            _envelope_text(listed.envelope, 9),
        )
        for listed in await listing.list_entries(session, mailbox_id, folders)
    ]
    lines.sort(key=lambda line: (line.when, line.uid), reverse=True)
    lines.sort(key=lambda line: folders.index(line.folder))
    return lines


async def conversations(session: AsyncSession, mailbox_id: int) -> list[ConversationSummary]:
    """The conversations of the mailbox, and received messages outside any, newest first.

    Three statements whatever the number of messages: the lines, their conversations, and
    the directory's description of every professional and sender named.
    """
    lines = await mailbox_lines(session, mailbox_id, (INBOX, SENT))
    rows = await patient_conversations(
        session,
        mailbox_id,
        {line.conversation_id for line in lines if line.conversation_id is not None},
    )
    directory = Directory(session)
    await directory.describe(
        ids=[row.professional_mailbox_id for row in rows.values()],
        addresses=[
            line.from_address
            for line in lines
            if line.conversation_id is None and line.folder == INBOX
        ],
    )
    summaries: dict[int, ConversationSummary] = {}
    loose: list[ConversationSummary] = []
    for line in lines:
        if line.conversation_id is None:
            if line.folder == INBOX:
                loose.append(
                    ConversationSummary(
                        None,
                        await directory.by_address(line.from_address),
                        line,
                        unread=0 if line.seen else 1,
                        count=1,
                        lines=[line],
                    )
                )
            continue
        summary = summaries.get(line.conversation_id)
        if summary is None:
            conversation = rows.get(line.conversation_id)
            if conversation is None:  # gone, or another mailbox's
                continue
            summary = summaries[line.conversation_id] = ConversationSummary(
                conversation.id,
                await directory.by_id(conversation.professional_mailbox_id),
                line,
                closed=conversation.state is ConversationState.CLOSED,
            )
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


async def conversation(
    session: AsyncSession, mailbox_id: int, conversation_id: int
) -> ConversationSummary | None:
    """One conversation of the mailbox with its messages, oldest first; None if not the
    mailbox's."""
    row = await find_patient_conversation(session, mailbox_id, conversation_id)
    if row is None:
        return None
    lines = [
        line
        for line in await mailbox_lines(session, mailbox_id, (INBOX, SENT))
        if line.conversation_id == conversation_id
    ]
    if not lines:
        return None
    lines.sort(key=lambda line: (line.when, line.uid))
    summary = ConversationSummary(
        row.id,
        await Directory(session).by_id(row.professional_mailbox_id),
        lines[-1],
        closed=row.state is ConversationState.CLOSED,
    )
    for line in lines:
        _add(summary, line)
    summary.lines = lines
    return summary


async def find_entry(session: AsyncSession, mailbox_id: int, entry_id: int) -> Located | None:
    """A folder entry with its message, only if it sits in a folder of ``mailbox_id`` (one
    statement)."""
    return (await find_entries(session, mailbox_id, [entry_id])).get(entry_id)


async def find_entries(
    session: AsyncSession, mailbox_id: int, entry_ids: Sequence[int]
) -> dict[int, Located]:
    """``find_entry`` for several entries at once, by entry id (one statement); absent ones are
    left out."""
    found = await listing.find_entries(session, mailbox_id, entry_ids)
    return {
        entry_id: Located(entry, folder, message)
        for entry_id, (entry, folder, message) in found.items()
    }


async def locate(
    session: AsyncSession, patient_id: int, entry_id: int
) -> tuple[Mailbox, Located] | None:
    """A folder entry of the patient's own mailbox, with that mailbox, in one statement.

    The message's conversation comes with it (``Located.conversation``), so a later
    ``find_conversation`` on the same session reads nothing more.
    """
    found = await find_patient_entry(session, patient_id, entry_id)
    if found is None:
        return None
    mailbox, entry, folder, message, conversation = found
    return mailbox, Located(entry, folder, message, conversation)


async def entry_of_message(
    session: AsyncSession, mailbox_id: int, folder_name: str, stored_id: int
) -> int | None:
    """The entry id of a stored message in one folder of the mailbox (after sending: its Sent
    copy)."""
    for line in await folder_lines(session, mailbox_id, folder_name):
        if line.stored_id == stored_id:
            return line.entry_id
    return None


async def add_flags(
    session: AsyncSession, mailbox_id: int, located: Located, flags: Iterable[str]
) -> frozenset[str]:
    """Add flags to the entry (as IMAP STORE +FLAGS does); its flags afterwards."""
    update: FlagUpdate = await store_flags(
        session, mailbox_id, located.folder.id, [located.entry.uid], "add", flags
    )
    return (
        update.current[located.entry.uid][0] if located.entry.uid in update.current else frozenset()
    )


async def remove_flags(
    session: AsyncSession, mailbox_id: int, located: Located, flags: Iterable[str]
) -> None:
    await store_flags(session, mailbox_id, located.folder.id, [located.entry.uid], "remove", flags)


async def unread_count(session: AsyncSession, mailbox_id: int) -> int:
    """Messages of the INBOX not yet read."""
    folder = await find_folder(session, mailbox_id, INBOX)
    return (await folder_status(session, folder)).unseen if folder is not None else 0


async def package_facts(
    db: Database,
    *,
    patient_id: int,
    mailbox_id: int,
    message_id: int,
    packages: Callable[[], list[bytes]],
) -> PackageFacts:
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
        rows = await documents_by_unique_id(session, patient_id, wanted)
    flags = {
        row.unique_id: RecordFlags(row.invisible_to_patient, row.invisible_to_legal_representatives)
        for row in rows
    }
    return PackageFacts(
        tuple(
            PackagedDocument(
                d.confidentiality,
                flags.get(d.unique_id) or flags.get(d.unique_id.lower()),
                d.title,
                d.unique_id,
                d.file_name,
            )
            for d in documents
        ),
        unreadable,
    )


async def _filed_documents(
    session: AsyncSession, patient_id: int, mailbox_id: int, message_id: int
) -> tuple[PackagedDocument, ...] | None:
    """Every document of the message as the record holds it, or None when the record cannot tell."""
    done = await filing_outcome(session, message_id, mailbox_id)
    if done is None or not done.complete:
        return None
    rows = await documents_from_message(session, patient_id, message_id)
    if not rows or len(rows) != done.filed:
        return None
    return tuple(
        PackagedDocument(
            record=RecordFlags(row.invisible_to_patient, row.invisible_to_legal_representatives),
            title=row.title,
            unique_id=row.unique_id,
        )
        for row in rows
    )


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
        documents += [
            PackagedDocument(
                tuple((c.code, c.scheme or "") for c in entry.confidentiality_codes),
                None,
                entry.title or "",
                entry.unique_id or "",
                posixpath.basename(entry.uri or entry.path),
            )
            for entry in package.documents
        ]
    return tuple(documents), unreadable
