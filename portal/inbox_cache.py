"""The inbox's list of conversations, kept per space in each portal process.

Building the list reads the lines, their conversations and the directory's description of
every correspondent (three statements and an object per row); reading the mailbox's stamp
(``mss.directory.store.patient_mailbox_stamp``: its folders' HIGHESTMODSEQ, their number,
its conversations opened and closed) is one small statement. A list is served again while
the stamp read with the space's mailbox is the one it was built under, and for at most
``MAX_AGE`` seconds, so a change of a correspondent's name in the directory (which moves no
stamp) shows within that time. The per-request parts of the page (CSRF token, navigation,
notice) are rendered around it on each request.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from mss.directory.store import MailboxStamp, patient_mailbox_stamp
from portal.kept import Kept
from portal.messages import ConversationSummary, conversations

MAX_AGE = 10.0  # seconds a list is kept, whatever its stamp
MAX_SPACES = 2048  # lists kept per process, the least recently read dropped first


class InboxCache:
    """Each space's conversations (by patient id) with the stamp they were read under."""

    def __init__(self, max_age: float = MAX_AGE, max_spaces: int = MAX_SPACES) -> None:
        self._kept: Kept[int, list[ConversationSummary]] = Kept(max_age, max_spaces)

    async def conversations(
        self,
        session: AsyncSession,
        patient_id: int,
        read: tuple[int | None, MailboxStamp | None] = (None, None),
    ) -> list[ConversationSummary] | None:
        """The space's conversations, newest first, as ``portal.messages.conversations`` reads
        them; None when the space has no mailbox. The lists returned are shared: read only.

        ``read``: a patient id and the mailbox stamp already read for it in this request (with
        the session); used when it is this space's, else the stamp is read here."""
        # The stamp is read before the lines: a change committed in between makes the next
        # stamp differ, so a list is never kept under a stamp newer than what it shows.
        read_for, read_stamp = read
        found = (
            read_stamp
            if read_for == patient_id
            else await patient_mailbox_stamp(session, patient_id)
        )
        if found is None:
            self._kept.forget(patient_id)
            return None
        stamp = (found.mailbox_id, found.stamp)
        items = self._kept.get(patient_id, stamp)
        if items is None:
            items = await conversations(session, found.mailbox_id)
            self._kept.put(patient_id, items, stamp)
        return items
