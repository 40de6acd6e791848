"""Encrypted backup and restore: every table comes back, on both engines; a tampered archive is
refused."""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path
from typing import Any

import gnupg
import pytest
from sqlalchemy import func, inspect, select

from mss.audit import record
from mss.audit_verify import verify_all
from mss.backup import BackupRefused, make_backup, restore_backup
from mss.config import Settings
from mss.db import Base, Database
from mss.directory.models import Professional
from mss.jobs import enqueue
from mss.setup import initialise
from tests.conftest import _Templates


@pytest.fixture(scope="module")
def gpg_home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A gpg home with one key made now (ed25519 to sign, cv25519 to encrypt), no passphrase."""
    home = tmp_path_factory.mktemp("gnupg")
    home.chmod(0o700)
    gpg = gnupg.GPG(gnupghome=str(home))
    key = gpg.gen_key(
        gpg.gen_key_input(
            key_type="EDDSA",
            key_curve="ed25519",
            subkey_type="ECDH",
            subkey_curve="cv25519",
            name_email="backups@hopital.example",
            name_real="Hub backups",
            no_protection=True,
        )
    )
    assert key.fingerprint, key.stderr
    return home, str(key.fingerprint)


def _target_settings(settings: Settings, tmp_path: Path, url: str) -> Settings:
    target = copy.deepcopy(settings)
    target.data_dir = str(tmp_path / "restored")
    target.database_url = url
    target.source = "defaults"
    return target


async def _rows(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    import mss.schema  # noqa: F401 - every table

    out = {}
    async with db.read() as session:
        for table in Base.metadata.sorted_tables:
            result = await session.execute(select(table).order_by(*table.primary_key.columns))
            out[table.name] = [tuple(row) for row in result]
    return out


@pytest.fixture
def empty_url(database_url: str, db_templates: _Templates, tmp_path: Path) -> str:
    """A second database of the same engine with no table at all."""
    if database_url.startswith("sqlite"):
        return f"sqlite+aiosqlite:///{tmp_path / 'restored.sqlite3'}"
    from tests.conftest import _pg_admin, _pg_url

    name = f"{database_url.rsplit('/', 1)[1]}_restored"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    return _pg_url(name).replace("postgresql://", "postgresql+asyncpg://")


async def test_backup_then_restore_gives_every_table_back(
    settings: Settings, tmp_path: Path, gpg_home: tuple[Path, str], empty_url: str
) -> None:
    home, fingerprint = gpg_home
    await initialise(settings, demo=True)
    source = Database(settings.effective_database_url)
    async with source.write() as session:
        enqueue(session, "backup.test", {"nested": {"list": [1, "é"]}})
        for n in range(3):  # sealed audit events: their chain must verify in the copy
            record(
                session,
                "directory.imported",
                actor_kind="operator",
                actor="ops",
                when=f"n°{n}",
                values=(1.5, "é"),
            )
    archive = tmp_path / "hub.backup.gpg"
    report = await make_backup(settings, archive, recipients=[fingerprint], gnupg_home=home)
    assert report.rows > 20 and archive.stat().st_mode & 0o777 == 0o600
    assert b"jean.dupont" not in archive.read_bytes()  # encrypted, not merely packed

    target = _target_settings(settings, tmp_path, empty_url)
    restored = await restore_backup(target, archive, gnupg_home=home)
    assert restored.rows == report.rows
    copy_db = Database(empty_url)
    try:
        before, after = await _rows(source), await _rows(copy_db)
        assert after == before
        chains = await verify_all(copy_db)
        # every event of the source (the three above and the demo's), each sealed and verified
        assert len(before["audit_events"]) >= 3
        assert chains.intact and chains.events == len(before["audit_events"]), chains.breaks
        assert sum(map(len, after.values())) == report.rows
        assert (Path(target.pki_dir) / "root-ca.pem").read_bytes() == (
            settings.pki_dir / "root-ca.pem"
        ).read_bytes()
        async with (
            copy_db.write() as session
        ):  # ids go on after the restored ones (PostgreSQL sequences)
            session.add(Professional(id_nat="810009999999", family_name="Nouveau"))
        async with copy_db.read() as session:
            assert (
                await session.scalar(select(func.count()).select_from(Professional))
                == len(before["professionals"]) + 1
            )
    finally:
        await copy_db.dispose()
        await source.dispose()


async def test_a_tampered_or_foreign_archive_is_refused_and_nothing_written(
    settings: Settings, tmp_path: Path, gpg_home: tuple[Path, str], empty_url: str
) -> None:
    home, fingerprint = gpg_home
    await initialise(settings, demo=False)
    archive = tmp_path / "hub.backup.gpg"
    await make_backup(settings, archive, recipients=[fingerprint], gnupg_home=home)
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0x40
    tampered = tmp_path / "tampered.gpg"
    tampered.write_bytes(bytes(data))
    target = _target_settings(settings, tmp_path, empty_url)
    with pytest.raises(BackupRefused, match="cannot be decrypted and authenticated"):
        await restore_backup(target, tampered, gnupg_home=home)
    other_home = tmp_path / "other-gnupg"
    other_home.mkdir(mode=0o700)
    with pytest.raises(BackupRefused, match="not for our key"):
        await restore_backup(target, archive, gnupg_home=other_home)
    copy_db = Database(empty_url)
    try:
        async with copy_db.engine.connect() as conn:
            assert await conn.run_sync(lambda sync: inspect(sync).get_table_names()) == []
    finally:
        await copy_db.dispose()
    assert not Path(target.pki_dir).exists()

    # A target that already holds a hub is never overwritten.
    with pytest.raises(BackupRefused, match="restore into a new data folder"):
        await restore_backup(settings, archive, gnupg_home=home)
    with pytest.raises(BackupRefused, match="already exists"):
        await make_backup(settings, archive, recipients=[fingerprint], gnupg_home=home)


def test_the_commands_as_an_operator_types_them(tmp_path: Path, gpg_home: tuple[Path, str]) -> None:
    """mss init, mss backup --recipient-file (a public key file), mss restore in a new data
    folder."""
    from click.testing import CliRunner

    from mss.cli import main

    home, fingerprint = gpg_home
    public = tmp_path / "ops.asc"
    public.write_text(gnupg.GPG(gnupghome=str(home)).export_keys(fingerprint), encoding="utf-8")
    runner = CliRunner()
    old = {"MSS_DATA_DIR": str(tmp_path / "old")}
    assert runner.invoke(main, ["init"], env=old).exit_code == 0
    keyring = tmp_path / "operator-keyring"  # encrypting needs only the public key, imported here
    keyring.mkdir(mode=0o700)
    done = runner.invoke(
        main,
        [
            "backup",
            str(tmp_path / "b.gpg"),
            "--recipient-file",
            str(public),
            "--gnupg-home",
            str(keyring),
        ],
        env=old,
    )
    assert done.exit_code == 0, done.output
    assert "tables" in done.output and "rows" in done.output
    refused = runner.invoke(main, ["backup", str(tmp_path / "c.gpg")], env=old)
    assert (
        refused.exit_code == 2 and "--encrypt-to KEYID or --recipient-file FILE" in refused.output
    )
    new = {"MSS_DATA_DIR": str(tmp_path / "new")}
    back = runner.invoke(
        main, ["restore", str(tmp_path / "b.gpg"), "--gnupg-home", str(home)], env=new
    )
    assert back.exit_code == 0, back.output
    assert (tmp_path / "new" / "mss.sqlite3").is_file() and (
        tmp_path / "new" / "pki" / "root-ca.pem"
    ).is_file()
    again = runner.invoke(
        main, ["restore", str(tmp_path / "b.gpg"), "--gnupg-home", str(home)], env=new
    )
    assert again.exit_code == 2 and "not empty" in again.output
