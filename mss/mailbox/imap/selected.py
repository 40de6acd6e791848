"""The selected folder as one session sees it: sequence numbers, flags, and catching up.

The view maps sequence numbers to UIDs and caches flags. Before answering
a command (and whenever woken during IDLE) the session asks the store for
what changed above the highest mod-sequence it has seen, and turns it
into untagged EXPUNGE (or VANISHED), EXISTS and FETCH FLAGS responses.
EXPUNGE is held back while a FETCH, STORE or SEARCH runs (RFC 3501 7.4.1).

``recent`` holds the UIDs that are \\Recent in this session: those it claimed
(read-write) or, open read-only, those nobody had claimed when it opened.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from mss.mailbox.entries import changes_since, highest_modseq, load_entries
from mss.mailbox.imap.fetch import render_flags
from mss.mailbox.imap.parser import format_uid_set
from mss.mailbox.store import SYSTEM_FLAGS, parse_flags

_RECENT = frozenset({"\\Recent"})


@dataclass
class SelectedFolder:
    """A session's view of its selected folder."""

    folder_id: int
    mailbox_id: int
    name: str
    uidvalidity: int
    readonly: bool
    uids: list[int] = field(default_factory=list)
    flags: dict[int, frozenset[str]] = field(default_factory=dict)
    modseqs: dict[int, int] = field(default_factory=dict)
    known_modseq: int = 0
    pending_expunge: set[int] = field(default_factory=set)
    recent: set[int] = field(default_factory=set)
    new_since_catch_up: list[int] = field(default_factory=list)
    announced: set[str] = field(default_factory=set)  # the keywords of the last FLAGS response

    async def load(self, session: AsyncSession) -> None:
        self.known_modseq = await highest_modseq(session, self.folder_id)
        rows = await load_entries(session, self.folder_id)
        shared: dict[str, frozenset[str]] = {}  # most messages share a few flag sets
        self.uids = [uid for uid, _f, _m in rows]
        self.flags = {
            uid: shared.get(flags) or shared.setdefault(flags, parse_flags(flags))
            for uid, flags, _m in rows
        }
        self.modseqs = {uid: modseq for uid, _f, modseq in rows}

    @property
    def count(self) -> int:
        return len(self.uids)

    def seq_of(self, uid: int) -> int:
        """1-based sequence number of a UID in the view (0 when absent)."""
        index = bisect.bisect_left(self.uids, uid)
        return index + 1 if index < len(self.uids) and self.uids[index] == uid else 0

    def flags_of(self, uid: int) -> frozenset[str]:
        """The flags as this session shows them: the stored ones, and \\Recent when it is ours."""
        flags = self.flags[uid]
        return flags | _RECENT if uid in self.recent else flags

    def mark_recent(self, first: int, end: int) -> None:
        """The UIDs of the view in [first, end) are recent in this session."""
        start = bisect.bisect_left(self.uids, first)
        stop = bisect.bisect_left(self.uids, end)
        self.recent.update(self.uids[start:stop])

    def keywords(self) -> set[str]:
        seen: set[str] = set()
        for flags in self.flags.values():
            seen.update(f for f in flags if not f.startswith("\\"))
        return seen

    def flags_responses(self) -> bytes:
        """``* FLAGS`` and ``* OK [PERMANENTFLAGS]`` naming every keyword of the folder (RFC 3501
        §7.2.6)."""
        self.announced |= self.keywords()
        flags = " ".join([*SYSTEM_FLAGS, *sorted(self.announced)])
        permanent = (
            "* OK [PERMANENTFLAGS ()] Read-only"
            if self.readonly
            else (f"* OK [PERMANENTFLAGS ({flags} \\*)] Flags permitted")
        )
        return f"* FLAGS ({flags})\r\n{permanent}\r\n".encode()

    def announce_keywords(self, flag_sets: Iterable[frozenset[str]]) -> bytes:
        """FLAGS and PERMANENTFLAGS again when a keyword not yet announced is about to be shown.

        RFC 3501 §7.2.6: a client learns the flags of the folder from FLAGS, and some
        (Dovecot's imaptest among them) refuse a FETCH naming a keyword it never listed.
        """
        if all(f.startswith("\\") or f in self.announced for flags in flag_sets for f in flags):
            return b""
        return self.flags_responses()

    def set_flags(self, uid: int, flags: frozenset[str], modseq: int) -> None:
        if uid in self.flags:
            self.flags[uid] = flags
            self.modseqs[uid] = modseq

    def remove(self, uids: list[int], *, vanished: bool) -> list[bytes]:
        """Drop UIDs from the view: ``* n EXPUNGE`` each (renumbering as it goes), or one
        VANISHED."""
        present = [uid for uid in sorted(uids) if uid in self.flags]
        if not present:
            return []
        out: list[bytes] = []
        if vanished:
            out.append(f"* VANISHED {format_uid_set(present)}\r\n".encode())
        for uid in present:
            index = bisect.bisect_left(self.uids, uid)
            del self.uids[index]
            del self.flags[uid]
            self.modseqs.pop(uid, None)
            self.pending_expunge.discard(uid)
            self.recent.discard(uid)
            if not vanished:
                out.append(b"* %d EXPUNGE\r\n" % (index + 1))
        return out

    async def catch_up(
        self, session: AsyncSession, *, allow_expunge: bool, condstore: bool, qresync: bool
    ) -> list[bytes]:
        """Untagged responses for every change made by others since the last catch-up."""
        changes = await changes_since(session, self.folder_id, self.known_modseq)
        out: list[bytes] = []
        new_uids: list[int] = []
        changed: list[int] = []
        last = self.uids[-1] if self.uids else 0
        for change in changes:
            self.known_modseq = max(self.known_modseq, change.modseq)
            if change.gone:
                if change.uid in self.flags:
                    self.pending_expunge.add(change.uid)
            elif change.uid in self.flags:
                if self.flags[change.uid] != change.flags or (
                    condstore and self.modseqs[change.uid] != change.modseq
                ):
                    changed.append(change.uid)
                self.flags[change.uid] = change.flags
                self.modseqs[change.uid] = change.modseq
            elif change.uid > last:
                new_uids.append(change.uid)
                self.flags[change.uid] = change.flags
                self.modseqs[change.uid] = change.modseq
        if allow_expunge and self.pending_expunge:
            out.extend(self.remove(sorted(self.pending_expunge), vanished=qresync))
        self.new_since_catch_up = sorted(new_uids)
        if new_uids:
            self.uids.extend(sorted(new_uids))
            out.append(b"* %d EXISTS\r\n" % len(self.uids))
        out.append(
            self.announce_keywords(
                self.flags[uid] for uid in [*changed, *new_uids] if uid in self.flags
            )
        )
        for uid in sorted(set(changed)):
            if uid in self.flags:
                modseq = b" MODSEQ (%d)" % self.modseqs[uid] if condstore else b""
                out.append(
                    b"* %d FETCH (UID %d FLAGS %s%s)\r\n"
                    % (self.seq_of(uid), uid, render_flags(self.flags_of(uid)), modseq)
                )
        return out
