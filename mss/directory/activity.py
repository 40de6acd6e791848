"""A mailbox's last day of use, recorded at login: what retention (``mss.retention``) reads.

One conditional UPDATE the first time a mailbox logs in on a given day, nothing after
that. Called by every login path (SMTP AUTH, IMAP, the portal), so it lives with the
directory row it writes (``Mailbox.last_active_on``).
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import or_, update
from sqlalchemy.ext.asyncio import AsyncSession

from mss.db import Database, utcnow
from mss.directory.models import Mailbox
from mss.errors import DatabaseUnavailable
from mss.policy.retention import activity_needs_recording

log = logging.getLogger("mss.retention")

_noted: dict[
    tuple[str, int], dt.date
] = {}  # (database, mailbox id) -> the day this process recorded it


async def note_activity(
    db: Database,
    mailbox_id: int,
    last_active_on: dt.date | None = None,
    today: dt.date | None = None,
) -> None:
    """A login of ``mailbox_id``: record the day, at most once a day (never a write per command).

    ``last_active_on`` is the value already read with the mailbox, when the caller has it;
    without it, this process remembers the days it recorded. A database error is logged,
    never turned into a refused login.
    """
    today = today or utcnow().date()
    key = (str(db.url), mailbox_id)
    if not activity_needs_recording(last_active_on, today) or _noted.get(key) == today:
        return
    try:
        async with db.write() as session:
            await record_activity(session, today, mailbox_id=mailbox_id)
    except DatabaseUnavailable as exc:
        log.warning("could not record the activity of mailbox %s: %s", mailbox_id, exc)
        return
    if len(_noted) > 100_000:
        _noted.clear()
    _noted[key] = today


async def record_activity(
    session: AsyncSession,
    today: dt.date,
    *,
    mailbox_id: int | None = None,
    patient_id: int | None = None,
) -> None:
    """In the caller's transaction: the mailbox (or the patient's mailbox) was used today."""
    where = Mailbox.id == mailbox_id if mailbox_id is not None else Mailbox.patient_id == patient_id
    await session.execute(
        update(Mailbox)
        .where(where, or_(Mailbox.last_active_on.is_(None), Mailbox.last_active_on < today))
        .values(last_active_on=today)
        .execution_options(synchronize_session=False)
    )
