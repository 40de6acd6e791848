"""Fixtures for the mailbox store and IMAP tests: mailboxes with known passwords."""

from __future__ import annotations

import argon2
import pytest

from mss.db import Database
from mss.directory.models import Mailbox, MailboxKind
from mss.mailbox.store import ensure_folders

PASSWORD = "correct horse battery"
_HASHER = argon2.PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
_HASH = _HASHER.hash(PASSWORD)


async def make_mailbox(db: Database, address: str, kind: MailboxKind = MailboxKind.PER,
                       password: str | None = PASSWORD) -> int:
    """A mailbox with its standard folders; returns its id."""
    async with db.write() as session:
        mailbox = Mailbox(address=address, kind=kind, display_name=address.split("@")[0],
                          password_hash=_HASH if password == PASSWORD else
                          (_HASHER.hash(password) if password else None))
        session.add(mailbox)
        await session.flush()
        await ensure_folders(session, mailbox.id)
        return mailbox.id


@pytest.fixture
async def mailbox_id(db: Database) -> int:
    return await make_mailbox(db, "jean.dupont@mss.localhost")
