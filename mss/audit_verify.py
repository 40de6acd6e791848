"""Checking the audit chains (``mss audit verify``, the portal's history page).

A chain is read in seq order and each event checked against its seal
(``mss.audit_chain``). The first event that fails names the chain's break:

- edited: its fields no longer give its hash, or its patient was changed;
- reordered: it verifies at another position than the one it holds, or it
  holds its position but was sealed after another event than the one before it;
- deleted: a gap in the numbers before it, or the chain's head records more
  events than remain.

Events are only ever appended, so the heads are read first and each chain is
read up to its head's seq: an event written during the walk is not taken for
a break, on either engine and without one long transaction.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import click
from sqlalchemy import Select, and_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from mss.audit import AuditChainHead, AuditEvent
from mss.audit_chain import GENESIS, HASHED_FIELDS, chain_of, event_hash
from mss.command import hub_command, open_database
from mss.config import Settings
from mss.db import Database

PAGE = 5000  # events read per statement by the full walk
MOVED_SEARCH = 2000  # positions tried, around its own, for an event whose hash fails

_events = AuditEvent.__table__
_heads = AuditChainHead.__table__
_COLUMNS = [
    _events.c[name]
    for name in ("id", "chain", "seq", "prev_hash", "hash", "patient_id", *HASHED_FIELDS)
]


@dataclass(frozen=True)
class ChainBreak:
    """The first event of a chain that does not verify, and what happened to it."""

    chain: str
    kind: str  # edited, reordered, deleted
    event_id: int | None
    seq: int | None
    at: dt.datetime | None
    sentence: str

    def describe(self) -> str:
        where = (
            f"event {self.event_id} (n°{self.seq}, {self.at:%Y-%m-%d %H:%M:%S} UTC)"
            if self.event_id is not None and self.at is not None
            else "end of the chain"
        )
        return f"{self.chain}: {self.kind}: {where}: {self.sentence}"


@dataclass
class ChainCheck:
    """What reading one chain found."""

    events: int = 0
    broken: ChainBreak | None = None


@dataclass
class VerifyReport:
    chains: int = 0
    events: int = 0
    breaks: list[ChainBreak] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.breaks

    def summary(self) -> str:
        verdict = "every chain is intact" if self.intact else f"{len(self.breaks)} broken"
        return f"checked {self.chains} chains, {self.events} events: {verdict}"


def _sealed_at(row: Any, head_seq: int | None) -> int | None:
    """The other position at which this event's own seal verifies, if any: it was moved from
    there."""
    values = dict(row._mapping)
    top = head_seq if head_seq is not None else row.seq + MOVED_SEARCH
    for distance in range(1, MOVED_SEARCH + 1):
        for seq in (row.seq - distance, row.seq + distance):
            values["seq"] = seq
            if 1 <= seq <= top and event_hash(values) == row.hash:
                return seq
    return None


class ChainChecker:
    """Reads one chain's events in seq order, one at a time; remembers the first that fails."""

    def __init__(
        self, chain: str, head_seq: int | None, after: tuple[int, str] = (0, GENESIS)
    ) -> None:
        """``after``: the seq and hash of the event already verified that the first one fed
        follows."""
        self.chain, self.head_seq = chain, head_seq
        self.check = ChainCheck()
        self.expected, self.previous, self.last = after[0] + 1, after[1], None

    def _broke(self, kind: str, row: Any, sentence: str) -> None:
        self.check.broken = ChainBreak(
            self.chain,
            kind,
            getattr(row, "id", None),
            getattr(row, "seq", None),
            getattr(row, "at", None),
            sentence,
        )

    def feed(self, row: Any) -> None:
        self.check.events += 1
        if self.check.broken is not None:
            return  # counted, no longer checked: the first break is the one to look at
        self.last = row
        if event_hash(row._mapping) != row.hash:
            moved = _sealed_at(row, self.head_seq)
            if moved is not None:
                self._broke(
                    "reordered",
                    row,
                    f"it was sealed as event n°{moved} of its chain and now sits at n°{row.seq}.",
                )
            else:
                self._broke(
                    "edited",
                    row,
                    "its content no longer matches its seal: a field was changed "
                    "after it was written.",
                )
        elif chain_of(row.patient_id, row.actor, row.detail) != self.chain:
            self._broke(
                "edited",
                row,
                f"it now names patient {row.patient_id}, not the one whose chain sealed it.",
            )
        elif row.seq != self.expected:
            missing = (
                f"n°{self.expected}"
                if row.seq == self.expected + 1
                else f"n°{self.expected} to n°{row.seq - 1}"
            )
            self._broke("deleted", row, f"the event(s) {missing} before it were deleted.")
        elif row.prev_hash != self.previous:
            self._broke(
                "reordered",
                row,
                f"it was sealed after another event than n°{self.expected - 1}, "
                "the one now before it.",
            )
        else:
            self.expected, self.previous = row.seq + 1, row.hash

    def end(self, head_seq: int | None, head_hash: str | None) -> ChainCheck:
        """The check, once every event was fed; ``head_seq`` None: the chain's head row is gone."""
        if self.check.broken is not None:
            return self.check
        done = self.expected - 1
        if head_seq is None:
            self._broke(
                "deleted",
                self.last,
                f"the chain's head is missing: events after n°{done} may have been deleted unseen.",
            )
        elif done < head_seq:
            missing = f"n°{head_seq}" if done + 1 == head_seq else f"n°{done + 1} to n°{head_seq}"
            where = "after this one" if self.last is not None else "every event of the chain"
            self._broke(
                "deleted", self.last, f"the chain's last event(s) {missing} ({where}) were deleted."
            )
        elif self.previous != head_hash:
            self._broke("edited", self.last, "it is not the last event the chain's head recorded.")
        return self.check


def check_chain(
    chain: str, head_seq: int | None, head_hash: str | None, rows: Iterable[Any]
) -> ChainCheck:
    """Check one chain's events (in seq order, none past ``head_seq``) against their seals and its
    head."""
    checker = ChainChecker(chain, head_seq)
    for row in rows:
        checker.feed(row)
    return checker.end(head_seq, head_hash)


def _chain_query(chain: str) -> Select[Any]:
    """One statement: the chain's head and its events up to it, in order (no event: one row of
    Nones)."""
    return (
        select(_heads.c.seq.label("head_seq"), _heads.c.hash.label("head_hash"), *_COLUMNS)
        .select_from(_heads)
        .outerjoin(_events, and_(_events.c.chain == _heads.c.chain, _events.c.seq <= _heads.c.seq))
        .where(_heads.c.chain == chain)
        .order_by(_events.c.seq)
    )


async def verify_chain(session: AsyncSession, chain: str) -> ChainCheck:
    """Check one chain, in one statement when it has a head (the portal: a patient's history).

    A chain never written is intact.
    """
    rows = (await session.execute(_chain_query(chain))).all()
    if rows:
        return check_chain(
            chain, rows[0].head_seq, rows[0].head_hash, [r for r in rows if r.id is not None]
        )
    headless = (
        await session.execute(
            select(*_COLUMNS).where(_events.c.chain == chain).order_by(_events.c.seq)
        )
    ).all()
    return check_chain(chain, None, None, headless) if headless else ChainCheck()


def _events_query(chain: str, after_seq: int, head_seq: int) -> Select[Any]:
    return (
        select(*_COLUMNS)
        .where(_events.c.chain == chain, _events.c.seq > after_seq, _events.c.seq <= head_seq)
        .order_by(_events.c.seq)
    )


@dataclass
class _Verified:
    seq: int
    hash: str
    walked_at: dt.datetime


class RecentlyVerified:
    """Chains this process verified lately, so that a long one costs its new events, not its length.

    A chain of up to ``full_walk_events`` events is walked whole every time (a few ms per
    hundred events). A longer one, once walked whole and intact, is walked whole again only
    ``rewalk`` later; in between only the events appended since are read and checked from the
    last one verified. An old event edited in between therefore shows at the next whole walk,
    at most ``rewalk`` later (``mss audit verify`` always walks whole). Two statements while
    intact.
    """

    def __init__(
        self,
        *,
        full_walk_events: int = 1000,
        rewalk: dt.timedelta = dt.timedelta(minutes=10),
        remembered: int = 10000,
    ) -> None:
        self.full_walk_events, self.rewalk, self.remembered = full_walk_events, rewalk, remembered
        self._known: dict[str, _Verified] = {}

    async def check(self, session: AsyncSession, chain: str, now: dt.datetime) -> ChainCheck:
        head = (
            await session.execute(
                select(_heads.c.seq, _heads.c.hash).where(_heads.c.chain == chain)
            )
        ).first()
        if head is None:
            self._known.pop(chain, None)
            return await verify_chain(session, chain)  # never written, or its head deleted
        known = self._known.get(chain)
        if known is not None and now - known.walked_at < self.rewalk and known.seq <= head.seq:
            if (known.seq, known.hash) == (head.seq, head.hash):
                return ChainCheck(events=head.seq)
            checker = ChainChecker(chain, head.seq, after=(known.seq, known.hash))
            for row in (await session.execute(_events_query(chain, known.seq, head.seq))).all():
                checker.feed(row)
            check = checker.end(head.seq, head.hash)
            if check.broken is None:
                known.seq, known.hash = head.seq, head.hash
                return check
            # A break among the new events, or an old one: tell it from a whole walk.
        check = check_chain(
            chain,
            head.seq,
            head.hash,
            (await session.execute(_events_query(chain, 0, head.seq))).all(),
        )
        self._known.pop(chain, None)
        if check.broken is None and check.events > self.full_walk_events:
            if len(self._known) >= self.remembered:
                self._known.pop(next(iter(self._known)))
            self._known[chain] = _Verified(head.seq, head.hash, now)
        return check


async def _every_event(db: Database) -> AsyncIterator[Any]:
    """Every event in (chain, seq) order, a page per statement (no transaction held for the
    walk)."""
    after: tuple[str, int] | None = None
    while True:
        query = select(*_COLUMNS).order_by(_events.c.chain, _events.c.seq).limit(PAGE)
        if after is not None:
            query = query.where(tuple_(_events.c.chain, _events.c.seq) > tuple_(*after))
        async with db.read() as session:
            rows: Sequence[Any] = (await session.execute(query)).all()
        for row in rows:
            yield row
        if len(rows) < PAGE:
            return
        after = (rows[-1].chain, rows[-1].seq)


async def verify_all(db: Database) -> VerifyReport:
    """Walk every chain in seq order; the first break of each broken chain."""
    async with db.read() as session:
        heads: dict[str, tuple[int, str]] = {
            row.chain: (row.seq, row.hash) for row in await session.execute(select(_heads))
        }
    report = VerifyReport()
    checkers: dict[str, ChainChecker] = {}
    unknown: list[ChainChecker] = []  # chains with events but no head when the walk began
    async for row in _every_event(db):
        checker = checkers.get(row.chain)
        if checker is None:
            head = heads.get(row.chain)
            checker = checkers[row.chain] = ChainChecker(row.chain, head[0] if head else None)
            if head is None:
                unknown.append(checker)
        if checker.head_seq is None or row.seq <= checker.head_seq:
            checker.feed(row)  # later events were appended during the walk
    begun: set[str] = set()
    if unknown:
        async with db.read() as session:
            begun = set(
                (
                    await session.scalars(
                        select(_heads.c.chain).where(_heads.c.chain.in_([c.chain for c in unknown]))
                    )
                ).all()
            )
    for chain in sorted(set(heads) | set(checkers)):
        if chain in begun:
            continue  # its first event was written during the walk
        checker = checkers.get(chain) or ChainChecker(chain, heads[chain][0])
        check = checker.end(*heads[chain]) if chain in heads else checker.end(None, None)
        report.chains += 1
        report.events += check.events
        if check.broken is not None:
            report.breaks.append(check.broken)
    return report


@click.group()
def audit() -> None:
    """The access history (audit events)."""


@audit.command("verify")
@hub_command
async def audit_verify(settings: Settings) -> None:
    """Walk every audit chain and report, for each broken one, its first edited, deleted or moved
    event.

    Exit code 0 when every chain is intact, 1 when one is not.
    """
    db = await open_database(settings)
    try:
        report = await verify_all(db)
    finally:
        await db.dispose()
    for broken in report.breaks:
        click.echo(broken.describe())
    click.echo(report.summary())
    if not report.intact:
        sys.exit(1)
