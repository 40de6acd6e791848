"""Encrypted backups: a consistent snapshot of the database, the configuration and the PKI, for
OpenPGP.

``mss backup`` writes one file: an OpenPGP message (``gpg`` through
python-gnupg, encrypted to the operator's key, integrity-protected) holding
a tar archive::

    manifest.json        format, schema revision, time, every file's SHA-256 and row count
    db/<table>.jsonl     every row of every table, one JSON object a line
    config/mss.toml      the configuration file the hub ran with, when there is one
    pki/...              the development PKI (keys included: the archive is encrypted)

The snapshot is consistent: on SQLite it is taken with SQLite's online
backup API (a copy of one moment, writers go on) and read from that copy;
on PostgreSQL it is read in one REPEATABLE READ, READ ONLY transaction.
Rows are written engine-neutrally (dates in ISO 8601, bytes in base64,
enumerations by name), so an archive made on SQLite restores on
PostgreSQL and the other way round.

``mss restore`` decrypts with the operator's secret key, refuses an archive
that gpg cannot authenticate or whose files do not match the manifest,
refuses a target that is not empty, then migrates the target to the
archive's schema revision and inserts the rows table by table in
dependency order, in one transaction.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import decimal
import enum
import hashlib
import json
import shutil
import sqlite3
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Date, DateTime, Enum, Integer, LargeBinary, Table, inspect, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from mss.config import Settings
from mss.db import Database
from mss.errors import HubError, InvalidInput

FORMAT = "mss-backup/1"
BATCH = 500


class BackupRefused(HubError):
    """A backup or restore that cannot be done as asked; the sentence says why."""

    exit_code = 2


@dataclass(frozen=True)
class BackupReport:
    path: Path
    tables: int
    rows: int
    revision: str


def _gpg(home: str | Path | None) -> Any:
    import gnupg

    try:
        return gnupg.GPG(gnupghome=str(home) if home else None)
    except (OSError, ValueError) as exc:
        raise BackupRefused(f"gpg cannot be used ({exc}): install Debian's gnupg") from None


def _tables() -> list[Table]:
    import mss.schema  # noqa: F401 - every model registered
    from mss.db import Base

    return list(Base.metadata.sorted_tables)


def _plain(value: Any) -> Any:
    """A column value as JSON: the column's type says how to read it back."""
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, decimal.Decimal):
        return str(value)
    return value


def _typed(table: Table, row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in row.items():
        if name not in table.c:
            raise BackupRefused(
                f"the archive has a column {table.name}.{name} this version does not know"
            )
        kind = table.c[name].type
        impl = getattr(kind, "impl", kind)
        if value is None:
            out[name] = None
        elif isinstance(kind, Enum) and kind.enum_class is not None:
            out[name] = kind.enum_class[value]
        elif isinstance(impl, DateTime) or isinstance(kind, DateTime):
            out[name] = dt.datetime.fromisoformat(value)
        elif isinstance(impl, Date) or isinstance(kind, Date):
            out[name] = dt.date.fromisoformat(value)
        elif isinstance(impl, LargeBinary) or isinstance(kind, LargeBinary):
            out[name] = base64.b64decode(value)
        else:
            out[name] = value
    return out


async def _revision(conn: AsyncConnection) -> str:
    return str((await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar_one())


async def _dump_tables(db: Database, folder: Path, *, snapshot: bool) -> tuple[str, dict[str, int]]:
    counts: dict[str, int] = {}
    async with db.engine.connect() as conn:
        if snapshot:
            await conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))
        revision = await _revision(conn)
        for table in _tables():
            count = 0
            with (folder / f"{table.name}.jsonl").open("w", encoding="utf-8") as out:
                result = await conn.stream(select(table).order_by(*table.primary_key.columns))
                async for row in result.mappings():
                    out.write(
                        json.dumps(
                            {k: _plain(v) for k, v in row.items()},
                            ensure_ascii=False,
                            separators=(",", ":"),
                        )
                        + "\n"
                    )
                    count += 1
            counts[table.name] = count
        await conn.rollback()
    return revision, counts


def _sqlite_snapshot(source: Path, target: Path) -> None:
    """A consistent copy of a live SQLite database (the online backup API)."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _files(root: Path) -> Iterator[Path]:
    return (p for p in sorted(root.rglob("*")) if p.is_file())


def _seal(
    gpg: Any, staging: Path, archive: Path, out: Path, keys: list[str], recipient_file: Path | None
) -> None:
    """Tar the staged files (manifest first) and encrypt the tar to ``keys`` into ``out``."""
    with tarfile.open(archive, "w") as tar:
        tar.add(staging / "manifest.json", "manifest.json")
        for path in _files(staging):
            if path != staging / "manifest.json":
                tar.add(path, str(path.relative_to(staging)))
    if recipient_file is not None:
        imported = gpg.import_keys(Path(recipient_file).read_bytes())
        if not imported.fingerprints:
            raise BackupRefused(f"{recipient_file} holds no OpenPGP public key")
        keys = keys + list(imported.fingerprints)
    with archive.open("rb") as plain:
        result = gpg.encrypt_file(plain, keys, output=str(out), armor=False, always_trust=True)
    if not result.ok:
        out.unlink(missing_ok=True)
        raise BackupRefused(f"gpg could not encrypt to {', '.join(keys)}: {result.status}")


async def make_backup(
    settings: Settings,
    out: Path,
    *,
    recipients: list[str] | None = None,
    recipient_file: Path | None = None,
    gnupg_home: str | Path | None = None,
) -> BackupReport:
    """Write an encrypted snapshot of the hub to ``out``."""
    if not recipients and recipient_file is None:
        raise InvalidInput(
            "say whom the backup is encrypted to: --encrypt-to KEYID or --recipient-file FILE"
        )
    if out.exists():
        raise BackupRefused(f"{out} already exists: choose a new file name")
    with tempfile.TemporaryDirectory(prefix="mss-backup-") as tmp:
        work = Path(tmp)
        staging = work / "archive"
        (staging / "db").mkdir(parents=True)
        db = Database(settings.effective_database_url)
        try:
            if db.sqlite_path is not None:
                if not db.sqlite_path.is_file():
                    raise BackupRefused(
                        f"there is no database at {db.sqlite_path}: nothing to back up"
                    )
                copy = work / "snapshot.sqlite3"
                _sqlite_snapshot(db.sqlite_path, copy)
                snap = Database(f"sqlite+aiosqlite:///{copy}")
                try:
                    revision, counts = await _dump_tables(snap, staging / "db", snapshot=False)
                finally:
                    await snap.dispose()
            else:
                revision, counts = await _dump_tables(db, staging / "db", snapshot=True)
        finally:
            await db.dispose()
        if settings.source not in ("defaults", "") and Path(settings.source).is_file():
            (staging / "config").mkdir()
            shutil.copy2(settings.source, staging / "config" / "mss.toml")
        if settings.pki_dir.is_dir():
            shutil.copytree(settings.pki_dir, staging / "pki")
        manifest = {
            "format": FORMAT,
            "revision": revision,
            "created_at": dt.datetime.now(dt.UTC).isoformat(),
            "rows": counts,
            "files": {str(p.relative_to(staging)): _sha256(p) for p in _files(staging)},
        }
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        await asyncio.to_thread(
            _seal,
            _gpg(gnupg_home),
            staging,
            work / "archive.tar",
            out,
            list(recipients or []),
            recipient_file,
        )
    out.chmod(0o600)
    return BackupReport(out, len(counts), sum(counts.values()), revision)


def _safe_members(tar: tarfile.TarFile) -> list[tarfile.TarInfo]:
    members = tar.getmembers()
    for member in members:
        name = Path(member.name)
        if name.is_absolute() or ".." in name.parts or not member.isfile():
            raise BackupRefused(f"the archive holds an unexpected entry {member.name!r}: refused")
    return members


async def _is_empty(db: Database) -> bool:
    async with db.engine.connect() as conn:
        names = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
    return not names


def _unseal(
    gpg: Any, archive_path: Path, work: Path, passphrase: str | None
) -> tuple[Path, dict[str, Any]]:
    """Decrypt and authenticate the archive, unpack it, check every file against the manifest."""
    plain = work / "archive.tar"
    with archive_path.open("rb") as sealed:
        result = gpg.decrypt_file(sealed, output=str(plain), passphrase=passphrase)
    if not result.ok:
        raise BackupRefused(
            f"{archive_path} cannot be decrypted and authenticated "
            f"(damaged, changed, or not for our key): gpg says {result.status or 'no'}"
        )
    staging = work / "archive"
    try:
        with tarfile.open(plain) as tar:
            tar.extractall(staging, members=_safe_members(tar), filter="data")
    except tarfile.TarError as exc:
        raise BackupRefused(f"{archive_path} does not hold an mss backup: {exc}") from None
    try:
        manifest: dict[str, Any] = json.loads(
            (staging / "manifest.json").read_text(encoding="utf-8")
        )
    except (OSError, ValueError):
        raise BackupRefused(f"{archive_path} has no readable manifest: not an mss backup") from None
    if manifest.get("format") != FORMAT:
        raise BackupRefused(f"{archive_path} is in format {manifest.get('format')!r}, not {FORMAT}")
    present = {str(p.relative_to(staging)) for p in _files(staging)} - {"manifest.json"}
    if present != set(manifest["files"]):
        raise BackupRefused(f"{archive_path}: its files do not match its manifest")
    for name, digest in manifest["files"].items():
        if _sha256(staging / name) != digest:
            raise BackupRefused(f"{archive_path}: {name} does not match its manifest")
    return staging, manifest


async def restore_backup(
    settings: Settings,
    archive_path: Path,
    *,
    gnupg_home: str | Path | None = None,
    passphrase: str | None = None,
) -> BackupReport:
    """Bring an archive of ``make_backup`` back into an empty data folder and database."""
    from mss.migrate import upgrade_async

    gpg = _gpg(gnupg_home)
    with tempfile.TemporaryDirectory(prefix="mss-restore-") as tmp:
        staging, manifest = await asyncio.to_thread(
            _unseal, gpg, Path(archive_path), Path(tmp), passphrase
        )
        if settings.pki_dir.exists() and any(settings.pki_dir.iterdir()):
            raise BackupRefused(f"{settings.pki_dir} is not empty: restore into a new data folder")
        db = Database(settings.effective_database_url)
        try:
            if db.sqlite_path is not None:
                db.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
            if not await _is_empty(db):
                raise BackupRefused(
                    "the target database already holds tables: restore into an empty one"
                )
            await upgrade_async(settings.effective_database_url, manifest["revision"])
            tables = {table.name: table for table in _tables()}
            total = 0
            async with db.write() as session:
                for table in tables.values():
                    rows: list[dict[str, Any]] = []
                    source = staging / "db" / f"{table.name}.jsonl"
                    if not source.is_file():
                        continue
                    with source.open(encoding="utf-8") as lines:
                        for line in lines:
                            rows.append(_typed(table, json.loads(line)))
                            if len(rows) >= BATCH:
                                await session.execute(table.insert(), rows)
                                total, rows = total + len(rows), []
                    if rows:
                        await session.execute(table.insert(), rows)
                        total += len(rows)
                if not db.is_sqlite:
                    await _reset_sequences(session, tables.values())
        finally:
            await db.dispose()
        if (staging / "pki").is_dir():
            shutil.copytree(staging / "pki", settings.pki_dir, dirs_exist_ok=True)
            for key in settings.pki_dir.rglob("*.key"):
                key.chmod(0o600)
        if (staging / "config" / "mss.toml").is_file():
            settings.data_path.mkdir(parents=True, exist_ok=True)
            shutil.copy2(staging / "config" / "mss.toml", settings.data_path / "mss.toml.restored")
    return BackupReport(Path(archive_path), len(manifest["rows"]), total, manifest["revision"])


async def _reset_sequences(session: Any, tables: Any) -> None:
    """PostgreSQL: each serial column's sequence continues after the restored ids."""
    for table in tables:
        for column in table.primary_key.columns:
            if isinstance(column.type, Integer):
                await session.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table.name}', '{column.name}'), "
                        f"COALESCE((SELECT MAX({column.name}) FROM {table.name}), 0) + 1, false) "
                        f"WHERE pg_get_serial_sequence('{table.name}', '{column.name}') IS NOT NULL"
                    )
                )


def describe(report: BackupReport) -> str:
    return f"{report.path}: {report.tables} tables, {report.rows} rows, schema {report.revision}"
