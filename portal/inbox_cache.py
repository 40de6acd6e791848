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

import time
from collections import OrderedDict
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from mss.directory.store import patient_mailbox_stamp
from portal.messages import ConversationSummary, conversations

MAX_AGE = 10.0  # seconds a list is kept, whatever its stamp
MAX_SPACES = 2048  # lists kept per process, the least recently read dropped first


@dataclass(frozen=True)
class _Kept:
    mailbox_id: int
    stamp: tuple[int, ...]
    built_at: float
    items: list[ConversationSummary]


@dataclass
class InboxCache:
    """Each space's conversations (by patient id) with the stamp they were read under."""

    max_age: float = MAX_AGE
    max_spaces: int = MAX_SPACES

    def __post_init__(self) -> None:
        self._kept: OrderedDict[int, _Kept] = OrderedDict()

    async def conversations(
        self, session: AsyncSession, patient_id: int
    ) -> list[ConversationSummary] | None:
        """The space's conversations, newest first, as ``portal.messages.conversations`` reads
        them; None when the space has no mailbox. The lists returned are shared: read only."""
        stamp = await patient_mailbox_stamp(session, patient_id)  # before the lines: a change
        if stamp is None:  # committed after it makes the next stamp differ
            self._kept.pop(patient_id, None)
            return None
        now = time.monotonic()
        kept = self._kept.get(patient_id)
        if (
            kept is not None
            and kept.mailbox_id == stamp.mailbox_id
            and kept.stamp == stamp.stamp
            and now - kept.built_at < self.max_age
        ):
            self._kept.move_to_end(patient_id)
            return kept.items
        items = await conversations(session, stamp.mailbox_id)
        self._kept[patient_id] = _Kept(stamp.mailbox_id, stamp.stamp, now, items)
        self._kept.move_to_end(patient_id)
        while len(self._kept) > self.max_spaces:
            self._kept.popitem(last=False)
        return items
