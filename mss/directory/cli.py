"""``mss directory`` and ``mss mailbox``: imports and mailbox administration."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable

import click
from sqlalchemy.ext.asyncio import AsyncSession

from mss.command import hub_command, open_database
from mss.config import Settings
from mss.directory.imports import ImportReport
from mss.errors import InvalidInput

SKIP_HELP = "Import the valid entries and report every refused one, instead of refusing the file."


@click.group()
def directory() -> None:
    """Import professionals, organisations, patients and the trust list."""


@click.group()
def mailbox() -> None:
    """Mailbox administration."""


async def _run_import(
    settings: Settings, body: Callable[[AsyncSession], Awaitable[ImportReport]]
) -> None:
    """Run one import in one transaction and print what it did."""
    db = await open_database(settings)
    try:
        async with db.write() as session:
            report = await body(session)
    finally:
        await db.dispose()
    for where, reason in report.skipped:
        click.echo(f"mss: skipped {where}: {reason}", err=True)
    for warning in report.warnings:
        click.echo(f"mss: warning: {warning}", err=True)
    click.echo(report.summary())


@directory.command("import-fhir")
@click.argument("file")
@click.option("--skip-invalid", is_flag=True, help=SKIP_HELP)
@hub_command
async def import_fhir_command(settings: Settings, file: str, skip_invalid: bool) -> None:
    """Import practitioners, roles and organisations from FHIR JSON.

    FILE holds a Practitioner, PractitionerRole or Organization resource, or a Bundle
    of them; MSSanté mailboxes are read from their telecom.
    """
    from mss.directory.import_fhir import import_fhir

    await _run_import(
        settings, lambda session: import_fhir(session, file, skip_invalid=skip_invalid)
    )


@directory.command("import-whitelist")
@click.argument("file")
@click.option("--skip-invalid", is_flag=True, help=SKIP_HELP)
@hub_command
async def import_whitelist_command(settings: Settings, file: str, skip_invalid: bool) -> None:
    """Replace the trust list with an MSSanté whitelist (listeblanchemssante.xml)."""
    from mss.directory.import_whitelist import import_whitelist

    await _run_import(
        settings, lambda session: import_whitelist(session, file, skip_invalid=skip_invalid)
    )


@directory.command("import-patients")
@click.argument("file")
@click.option("--skip-invalid", is_flag=True, help=SKIP_HELP)
@hub_command
async def import_patients_command(settings: Settings, file: str, skip_invalid: bool) -> None:
    """Import a patient roster (CSV).

    Columns: ins, family_name, given_names, birth_date (YYYY-MM-DD), and optionally
    email, phone, guardian_ins.
    """
    from mss.directory.import_patients import import_patients

    await _run_import(
        settings,
        lambda session: import_patients(session, settings, file, skip_invalid=skip_invalid),
    )


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise InvalidInput("no password on standard input")
        return password
    typed: str = click.prompt("New password", hide_input=True, confirmation_prompt=True, err=True)
    return typed


@mailbox.command("passwd")
@click.argument("address")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of standard input.",
)
@hub_command
async def passwd(settings: Settings, address: str, password_stdin: bool) -> None:
    """Set the password of a mailbox (asked twice, hidden)."""
    from mss.audit import record
    from mss.directory.imports import operator
    from mss.directory.store import find_mailbox, set_mailbox_password

    db = await open_database(settings)
    try:
        async with db.read() as session:
            if await find_mailbox(session, address) is None:
                raise InvalidInput(f"no mailbox {address} in the directory")
        password = _read_password(password_stdin)
        async with db.write() as session:
            mailbox_row = await set_mailbox_password(session, address, password)
            record(
                session,
                "mailbox.password_set",
                actor_kind="operator",
                actor=operator(),
                target=mailbox_row.address,
                source="mss mailbox passwd",
            )
    finally:
        await db.dispose()
    click.echo(f"password of {mailbox_row.address} changed")


@directory.command("import-certificates")
@click.argument("paths", nargs=-1, required=True)
@click.option("--skip-invalid", is_flag=True, help=SKIP_HELP)
@hub_command
async def import_certificates_command(
    settings: Settings, paths: tuple[str, ...], skip_invalid: bool
) -> None:
    """Import recipients' S/MIME encryption certificates (PEM files, or folders of them).

    Mail the hub relays to their addresses is encrypted to them (``[smime]
    encrypt_outbound``). Each must name an address, have an RSA key allowed to encipher
    keys, and chain to a trusted authority.
    """
    from mss.crypto.trust import TrustStore
    from mss.directory.recipient_certificates import import_certificates

    trust = TrustStore.from_settings(settings)
    await _run_import(
        settings,
        lambda session: import_certificates(session, paths, trust, skip_invalid=skip_invalid),
    )
