"""Sealing audit events into chains, so an edited, deleted or reordered event shows.

Each event belongs to one chain: the patient's it concerns (``patient:<id>``,
the events withheld from their history included), or, with no patient, the
actor's (``actor:<address>``): a chain is the unit one writer appends to, so
writers about different patients or actors never wait for each other. An
event carries its number in the chain (``seq``, from 1), the hash of the one
before (``prev_hash``) and its own ``hash``: SHA-256 over a canonical JSON
encoding of the chain, seq, prev hash and every field of the event but its
row id and patient_id (the chain names the patient; see ``expected_chain``).

The head of each chain (its last seq and hash) is one row of
``audit_chain_heads``, taken and locked by an upsert at the first event a
transaction seals in that chain (``INSERT ... ON CONFLICT DO UPDATE ...
RETURNING``: on PostgreSQL the row stays locked until the commit, so two
transactions never take the same seq; on SQLite the write lock already
serialises writers) and moved on in the same transaction. A batch takes the
heads of all its chains in one statement, in chain order (so two batches
never deadlock), and moves them in one more. The head also tells when a
chain's last events were deleted.

This is evidence against an edit made with SQL, not a signature: someone who
can write to the database and recomputes every later hash and the head is
not caught. ``mss audit verify`` (``mss.audit_verify``) walks the chains.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
from collections.abc import Mapping, MutableMapping, Sequence
from typing import Any

from sqlalchemy import Connection, Integer, String, bindparam
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, mapped_column

from mss.db import Base

SEAL_VERSION = 1
GENESIS = "0" * 64  # the prev_hash of a chain's first event
CHAIN_LENGTH = 340  # "actor:" and an address of up to 320 characters
HASHED_FIELDS = (
    "at",
    "action",
    "actor_kind",
    "actor",
    "on_behalf_of",
    "target",
    "source",
    "detail",
)


class AuditChainHead(Base):
    """The last event of one chain: its seq and hash."""

    __tablename__ = "audit_chain_heads"

    chain: Mapped[str] = mapped_column(String(CHAIN_LENGTH), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, default=0)
    hash: Mapped[str] = mapped_column(String(64), default=GENESIS)


def chain_of(patient_id: int | None, actor: str, detail: Mapping[str, Any] | None) -> str:
    """The chain an event belongs to: its patient's (shown or withheld), else its actor's."""
    withheld = (detail or {}).get("withheld_from_patient")
    if patient_id is not None:
        return f"patient:{patient_id}"
    if isinstance(withheld, int) and not isinstance(withheld, bool):
        return f"patient:{withheld}"
    return f"actor:{actor}"


def patient_chain(patient_id: int) -> str:
    return f"patient:{patient_id}"


def _instant(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).isoformat(timespec="microseconds")


def stored_json(value: Any) -> Any:
    """``value`` as the JSON column gives it back: tuples become lists, keys strings."""
    return json.loads(json.dumps(value if value is not None else {}))


def event_hash(event: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the event's chain, seq, prev hash and fields, canonically encoded.

    ``detail`` must be as the JSON column stores it (``stored_json``: ``seal`` writes it so),
    so the hash computed before the insert is the one a reader recomputes.
    """
    fields = [
        SEAL_VERSION,
        event["chain"],
        event["seq"],
        event["prev_hash"],
        _instant(event["at"]),
        *(event[name] for name in HASHED_FIELDS[1:]),
    ]
    text = json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@functools.lru_cache(maxsize=256)
def _statements(dialect: str, chains: int) -> tuple[Any, Any]:
    """``seal``'s two statements for this many chains, built once per dialect and size
    (building an n-row upsert cost more than running it: 3% of the gateway's CPU)."""
    table = AuditChainHead.__table__
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    numbers = range(chains)
    take = insert(table).values(
        [{"chain": bindparam(f"chain{i}"), "seq": 0, "hash": GENESIS} for i in numbers]
    )
    taking = take.on_conflict_do_update(
        index_elements=[table.c.chain], set_={"chain": take.excluded.chain}
    ).returning(table.c.chain, table.c.seq, table.c.hash)
    move = insert(table).values(
        [
            {
                "chain": bindparam(f"chain{i}"),
                "seq": bindparam(f"seq{i}"),
                "hash": bindparam(f"hash{i}"),
            }
            for i in numbers
        ]
    )
    moving = move.on_conflict_do_update(
        index_elements=[table.c.chain],
        set_={"seq": move.excluded.seq, "hash": move.excluded.hash},
    )
    return taking, moving


def seal(connection: Connection, events: Sequence[MutableMapping[str, Any]]) -> None:
    """Give each event (in order) its chain, seq, prev_hash and hash, and move the chains' heads.

    Two statements whatever the number of events: the heads taken (created at seq 0
    when new, locked until the commit on PostgreSQL), then the heads moved on.
    """
    if not events:
        return
    for event in events:
        event["detail"] = stored_json(event.get("detail"))
        event["chain"] = chain_of(event.get("patient_id"), event["actor"], event["detail"])
    chains = sorted({event["chain"] for event in events})  # one order for everyone: no deadlock
    take, move = _statements(connection.dialect.name, len(chains))
    named = {f"chain{i}": chain for i, chain in enumerate(chains)}
    heads = {row.chain: (row.seq, row.hash) for row in connection.execute(take, named)}
    for event in events:
        seq, previous = heads[event["chain"]]
        event["seq"], event["prev_hash"] = seq + 1, previous
        event["hash"] = event_hash(event)
        heads[event["chain"]] = (event["seq"], event["hash"])
    moved = dict(named)
    for i, chain in enumerate(chains):
        moved[f"seq{i}"], moved[f"hash{i}"] = heads[chain]
    connection.execute(move, moved)
