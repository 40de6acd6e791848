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
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from mss.mailbox.entries import Change, changes_since, highest_modseq, load_entries
from mss.mailbox.imap.fetch import render_flags
from mss.mailbox.imap.parser import format_uid_set
from mss.mailbox.store import SYSTEM_FLAGS, parse_flags

_RECENT = frozenset({"\\Recent"})
REFRESH_CHANGES = 1000  # past this many changes (or a tenth of the folder), load afresh
CACHED_MIN = 1000  # folders smaller than this load from the entries every time
# at most this many entries kept, over every cached folder: a view costs about 170 bytes an
# entry (its UID list, flags and mod-sequences: 17 MB for 100,000 messages, tracemalloc), kept
# by every IMAP process until evicted, so a million would be 170 MB a process
CACHED_ENTRIES = 200_000


class ViewCache:
    """This process's last view of each big folder, so the next SELECT copies it and reads
    only the changes since (through the mod-sequence index) instead of every entry.

    The kept view shares its lists with the sessions' views, copy-on-write: a session copies
    them before its first change (``SelectedFolder._own``), so a SELECT that finds no change
    copies nothing and dropping a view frees nothing. The least recently used go first.
    """

    def __init__(self, max_entries: int = CACHED_ENTRIES) -> None:
        self.max_entries = max_entries
        self._views: OrderedDict[tuple[str, int, int], SelectedFolder] = OrderedDict()
        self._entries = 0

    def get(self, key: tuple[str, int, int]) -> SelectedFolder | None:
        view = self._views.get(key)
        if view is not None:
            self._views.move_to_end(key)
        return view

    def put(self, key: tuple[str, int, int], view: SelectedFolder) -> None:
        old = self._views.pop(key, None)
        if old is not None:
            self._entries -= len(old.uids)
        if len(view.uids) < CACHED_MIN or len(view.uids) > self.max_entries:
            return
        kept = SelectedFolder(view.folder_id, view.mailbox_id, view.name, view.uidvalidity, True)
        kept.share(view)
        self._views[key] = kept
        self._entries += len(kept.uids)
        while self._entries > self.max_entries:
            _, evicted = self._views.popitem(last=False)
            self._entries -= len(evicted.uids)


@dataclass(eq=False)
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
    # False while uids, flags and modseqs are shared with the ViewCache (copy before changing)
    owned: bool = True
    # (flag, present) -> the UIDs of the view with or without that system flag, computed once
    # for the lists as they are: shared with the views sharing them, dropped at any change
    memo: dict[tuple[str, bool], list[int]] = field(default_factory=dict)

    def share(self, other: SelectedFolder) -> None:
        """Take ``other``'s lists without copying them: both copy before their next change."""
        self.uids, self.flags, self.modseqs = other.uids, other.flags, other.modseqs
        self.known_modseq, self.memo = other.known_modseq, other.memo
        self.owned = other.owned = False

    def _own(self) -> None:
        """Before any change to the lists: a copy of its own, and the memo dropped."""
        if not self.owned:
            self.uids, self.flags = self.uids.copy(), self.flags.copy()
            self.modseqs = self.modseqs.copy()
            self.owned = True
        self.memo = {}

    def with_flag(self, flag: str, present: bool) -> list[int]:
        """The UIDs of the view that have (``present``) or lack a system flag, by UID."""
        got = self.memo.get((flag, present))
        if got is None:
            flags = self.flags
            got = [uid for uid in self.uids if (flag in flags[uid]) is present]
            self.memo[(flag, present)] = got
        return got

    async def load(
        self, session: AsyncSession, db_key: str = "", known_modseq: int | None = None
    ) -> None:
        """Fill the view: from this process's last view of the folder and the changes since,
        or, the first time, from every entry. ``known_modseq``: the folder row's highest
        mod-sequence when the caller has just read it (else it is read here)."""
        if known_modseq is None:
            known_modseq = await highest_modseq(session, self.folder_id)
        self.known_modseq = known_modseq
        key = (db_key, self.folder_id, self.uidvalidity)
        last = views.get(key)
        if last is not None:
            changes = await changes_since(session, self.folder_id, last.known_modseq)
            if len(changes) <= max(REFRESH_CHANGES, len(last.uids) // 10):
                modseq = self.known_modseq
                self.share(last)
                self.known_modseq = max(modseq, last.known_modseq)
                if changes:
                    self._apply(changes)
                    views.put(key, self)
                return
        rows = await load_entries(session, self.folder_id)
        shared: dict[str, frozenset[str]] = {}  # most messages share a few flag sets
        self.uids = [uid for uid, _f, _m in rows]
        self.flags = {
            uid: shared.get(flags) or shared.setdefault(flags, parse_flags(flags))
            for uid, flags, _m in rows
        }
        self.modseqs = {uid: modseq for uid, _f, modseq in rows}
        views.put(key, self)

    def _apply(self, changes: list[Change]) -> None:
        """Bring a copy of an earlier view to now, silently (the state a new SELECT shows)."""
        self._own()
        last = self.uids[-1] if self.uids else 0
        gone = {c.uid for c in changes if c.gone and c.uid in self.flags}
        new: list[int] = []
        for change in changes:
            self.known_modseq = max(self.known_modseq, change.modseq)
            if change.gone or change.uid in gone:
                continue
            if change.uid not in self.flags:
                if change.uid <= last:
                    continue  # added and expunged again since: not in the folder now
                new.append(change.uid)
            self.flags[change.uid] = change.flags
            self.modseqs[change.uid] = change.modseq
        if gone:
            self.uids = [uid for uid in self.uids if uid not in gone]
            for uid in gone:
                del self.flags[uid]
                del self.modseqs[uid]
        self.uids.extend(sorted(new))

    @property
    def count(self) -> int:
        return len(self.uids)

    def seq_of(self, uid: int) -> int:
        """1-based sequence number of a UID in the view (0 when absent)."""
        index = bisect.bisect_left(self.uids, uid)
        return index + 1 if index < len(self.uids) and self.uids[index] == uid else 0

    def seqs_of(self, uids: list[int]) -> list[int]:
        """The sequence numbers of UIDs of the view given in ascending order."""
        if len(uids) == len(self.uids):  # all of them
            return list(range(1, len(uids) + 1))
        out, at, mine = [], 0, self.uids
        for uid in uids:
            at = bisect.bisect_left(mine, uid, at)
            out.append(at + 1)
        return out

    def flags_of(self, uid: int) -> frozenset[str]:
        """The flags as this session shows them: the stored ones, and \\Recent when it is ours."""
        flags = self.flags[uid]
        return flags | _RECENT if uid in self.recent else flags

    def mark_recent(self, first: int, end: int) -> None:
        """The UIDs of the view in [first, end) are recent in this session."""
        start = bisect.bisect_left(self.uids, first)
        stop = bisect.bisect_left(self.uids, end)
        self.recent.update(self.uids[start:stop])

    def flags_responses(self) -> bytes:
        """``* FLAGS`` and ``* OK [PERMANENTFLAGS]`` naming every keyword announced (RFC 3501
        §7.2.6): at SELECT, the folder's keywords (its row keeps them, mss.mailbox.counters)."""
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
        new = {f for flags in flag_sets for f in flags if not f.startswith("\\")}
        if new <= self.announced:
            return b""
        self.announced |= new
        return self.flags_responses()

    def set_flags(self, uid: int, flags: frozenset[str], modseq: int) -> None:
        if uid in self.flags:
            self._own()
            self.flags[uid] = flags
            self.modseqs[uid] = modseq

    def remove(self, uids: list[int], *, vanished: bool) -> list[bytes]:
        """Drop UIDs from the view: ``* n EXPUNGE`` each (renumbering as it goes), or one
        VANISHED."""
        present = [uid for uid in sorted(uids) if uid in self.flags]
        if not present:
            return []
        self._own()
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
        if changes:
            self._own()
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


views = ViewCache()
