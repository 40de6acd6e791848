"""What the three directory imports share: reading the file, entries, progress, the report.

An import parses the whole file first (refusing it with a line or entry
number), then applies every entry inside the caller's one transaction.
Without ``skip_invalid`` the first bad entry raises and the transaction
rolls back; with it, each entry runs in its own savepoint and a refused
entry is reported and left out.
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession
from tqdm import tqdm

from mss.audit import record
from mss.errors import InvalidInput

T = TypeVar("T")
MAX_IMPORT_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One parsed entry of a file and where it came from (``file:line`` or ``file: entry N``)."""

    where: str
    value: T


@dataclass
class ImportReport:
    """What an import changed, and what it left out and why."""

    source: str
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    disabled: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.disabled)

    def warn(self, sentence: str) -> None:
        """Record a warning once."""
        if sentence not in self.warnings:
            self.warnings.append(sentence)

    def count(self, outcome: str) -> None:
        """Add one to ``added``, ``updated`` or ``unchanged``."""
        setattr(self, outcome, getattr(self, outcome) + 1)

    def summary(self) -> str:
        """One line for the user."""
        if self.changed:
            text = (
                f"{self.source}: {self.added} added, {self.updated} updated, "
                f"{self.unchanged} unchanged"
            )
            text += f", {self.disabled} disabled" if self.disabled else ""
        else:
            entries = "entry is" if self.unchanged == 1 else "entries are"
            text = f"{self.source}: nothing changed, {self.unchanged} {entries} already up to date"
        if self.skipped:
            text += f"; {len(self.skipped)} skipped"
        return text


def operator() -> str:
    """Who runs the command, for audit events."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def record_import(session: AsyncSession, kind: str, report: ImportReport) -> None:
    """One audit event per import, with what it changed."""
    record(
        session,
        "directory.imported",
        actor_kind="operator",
        actor=operator(),
        target=report.source,
        source=f"mss directory import-{kind}",
        added=report.added,
        updated=report.updated,
        unchanged=report.unchanged,
        disabled=report.disabled,
        skipped=len(report.skipped),
    )


def read_input(path: str) -> bytes:
    """The bytes of an import file, or one sentence saying why it cannot be read."""
    file = Path(path)
    try:
        if file.is_dir():
            raise InvalidInput("is a directory, not a file", where=path)
        if file.stat().st_size > MAX_IMPORT_BYTES:
            raise InvalidInput(f"is larger than {MAX_IMPORT_BYTES // 2**20} MiB", where=path)
        return file.read_bytes()
    except FileNotFoundError:
        raise InvalidInput("no such file", where=path) from None
    except PermissionError:
        raise InvalidInput("permission denied", where=path) from None


def decode_text(data: bytes, path: str) -> str:
    """UTF-8 text (a byte-order mark is tolerated), or the line of the first bad byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InvalidInput(
            f"byte 0x{data[exc.start]:02x} is not UTF-8; save the file as UTF-8",
            where=f"{path}:{line}",
        ) from None


def progress(items: list[T], description: str) -> Iterable[T]:
    """A progress bar on stderr when it is a terminal; silent otherwise."""
    return tqdm(items, desc=description, unit="entry", file=sys.stderr, disable=None, leave=False)


async def apply_entries(
    session: AsyncSession,
    entries: list[Entry[T]],
    apply: Callable[[T], Awaitable[str]],
    report: ImportReport,
    *,
    skip_invalid: bool,
    description: str,
) -> None:
    """Apply each entry; ``apply`` returns ``added``, ``updated`` or ``unchanged``."""
    for entry in progress(entries, description):
        try:
            if skip_invalid:
                async with session.begin_nested():
                    outcome = await apply(entry.value)
            else:
                outcome = await apply(entry.value)
        except InvalidInput as exc:
            if not skip_invalid:
                raise InvalidInput(exc.sentence, where=entry.where) from None
            report.skipped.append((entry.where, exc.sentence))
            continue
        report.count(outcome)


def refuse_or_skip(error: InvalidInput, report: ImportReport, skip_invalid: bool) -> None:
    """A parse error of one entry: raised, or recorded as skipped with ``--skip-invalid``."""
    if not skip_invalid:
        raise error
    sentence = error.sentence[len(error.where) + 2 :] if error.where else error.sentence
    report.skipped.append((error.where or report.source, sentence))
