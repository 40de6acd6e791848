"""An IMAP login is what keeps a mailbox from retention's purge: it records the day, once a day."""

from __future__ import annotations

from sqlalchemy import select

from mss.db import Database, utcnow
from mss.directory.models import Mailbox
from tests.imap.conftest import RunningImap, Wire


async def _last_active(db: Database, mailbox_id: int) -> object:
    async with db.read() as session:
        return await session.scalar(select(Mailbox.last_active_on).where(Mailbox.id == mailbox_id))


async def test_a_login_records_the_day_of_activity(
    db: Database, imap: RunningImap, wire: Wire, mailbox_id: int
) -> None:
    assert await _last_active(db, mailbox_id) is None
    await wire.login()
    assert await _last_active(db, mailbox_id) == utcnow().date()
    await wire.check("N1 NOOP", "N1 OK NOOP completed")
