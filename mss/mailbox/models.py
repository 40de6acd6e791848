"""Message store tables.

A message is stored once (its exact raw bytes and what IMAP needs from
it, computed at delivery); each folder holding it has an entry with its
own UID, flags and mod-sequence.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

import mss.conversations  # noqa: F401 - messages.conversation_id refers to its table
from mss.db import Base, UTCDateTime, utcnow


class StoredMessage(Base):
    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(Integer)
    internal_date: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_date: Mapped[dt.date | None] = mapped_column(
        Date
    )  # the Date: header's day, for SEARCH SENT*
    message_id_header: Mapped[str] = mapped_column(String(998), default="", index=True)
    subject: Mapped[str] = mapped_column(Text, default="")
    from_address: Mapped[str] = mapped_column(String(320), default="")
    headers_text: Mapped[str] = mapped_column(Text, default="")
    # RFC 3501 ENVELOPE as nested lists; {"body", "bodystructure", "parts"} (see structure.py)
    envelope: Mapped[list] = mapped_column(JSON, default=list)
    bodystructure: Mapped[dict] = mapped_column(JSON, default=dict)
    signature_status: Mapped[str] = mapped_column(String(32), default="none")
    signer_address: Mapped[str | None] = mapped_column(String(320))
    signer_subject: Mapped[str | None] = mapped_column(Text)
    signer_id_nat: Mapped[str | None] = mapped_column(String(16))
    # S/MIME enveloped-data the gateway decrypted: stored decrypted (docs/standards.md)
    arrived_encrypted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Folder(Base):
    __tablename__ = "folders"
    __table_args__ = (UniqueConstraint("mailbox_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    mailbox_id: Mapped[int] = mapped_column(
        ForeignKey("mailboxes.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(1024))
    special_use: Mapped[str | None] = mapped_column(String(16))
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    uidnext: Mapped[int] = mapped_column(BigInteger, default=1)
    highest_modseq: Mapped[int] = mapped_column(BigInteger, default=1)
    subscribed: Mapped[bool] = mapped_column(Boolean, default=True)
    # \Recent (RFC 3501 2.3.2): UIDs from here up are new to every session; the first
    # read-write session to see them moves this past them and shows them as \Recent.
    first_recent_uid: Mapped[int] = mapped_column(BigInteger, default=1, server_default="1")
    # Counters kept by every writer in the changing transaction (mss/mailbox/counters.py), so
    # SELECT and STATUS read this row instead of counting entries.
    exists_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    unseen_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    recent_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    first_unseen_uid: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # every keyword ever set in the folder, space-separated: the FLAGS response (RFC 3501 §7.2.6)
    keywords: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class LostSubscription(Base):
    """A subscribed name whose folder was deleted: RFC 3501 §6.3.6 keeps it subscribed.

    LSUB shows it as \\Noselect and LIST (SUBSCRIBED) as \\NonExistent until it is
    unsubscribed or a folder of that name is created again (subscribed, as before).
    """

    __tablename__ = "lost_subscriptions"
    __table_args__ = (UniqueConstraint("mailbox_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailboxes.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(1024))


def _flag_index(name: str, condition: str) -> Index:
    """A partial index on (folder, UID) of the entries where ``condition`` holds: SEARCH on a
    system flag reads the matching UIDs only (most folders are mostly seen, rarely deleted)."""
    where = text(condition)
    return Index(name, "folder_id", "uid", sqlite_where=where, postgresql_where=where)


class FolderEntry(Base):
    """A message as it sits in one folder: its UID, flags and mod-sequence there.

    ``flags`` is the whole set; the system flags are repeated as booleans, written with it,
    for the partial indexes SEARCH uses.
    """

    __tablename__ = "folder_entries"
    __table_args__ = (
        UniqueConstraint("folder_id", "uid"),
        Index("ix_folder_entries_folder_modseq", "folder_id", "modseq"),
        _flag_index("ix_folder_entries_unseen", "NOT seen"),
        _flag_index("ix_folder_entries_flagged", "flagged"),
        _flag_index("ix_folder_entries_deleted", "deleted"),
        _flag_index("ix_folder_entries_answered", "answered"),
        _flag_index("ix_folder_entries_draft", "draft"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    folder_id: Mapped[int] = mapped_column(ForeignKey("folders.id", ondelete="CASCADE"))
    uid: Mapped[int] = mapped_column(BigInteger)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True)
    flags: Mapped[str] = mapped_column(Text, default="")
    modseq: Mapped[int] = mapped_column(BigInteger)
    seen: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    answered: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    flagged: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    deleted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    draft: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))


class ExpungedEntry(Base):
    """UIDs removed from a folder, with the mod-sequence of their removal (QRESYNC)."""

    __tablename__ = "expunged_entries"
    __table_args__ = (Index("ix_expunged_entries_folder_modseq", "folder_id", "modseq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    folder_id: Mapped[int] = mapped_column(ForeignKey("folders.id", ondelete="CASCADE"))
    uid: Mapped[int] = mapped_column(BigInteger)
    modseq: Mapped[int] = mapped_column(BigInteger)
