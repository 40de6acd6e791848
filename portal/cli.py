"""``mss patients``: activation letters and the end of opposition windows, from the command line."""

from __future__ import annotations

from pathlib import Path

import click

from mss.command import hub_command, open_database
from mss.config import Settings
from mss.directory.models import Patient


@click.group()
def patients() -> None:
    """Patient accounts: activation letters, automatic activation."""


@patients.command("letters")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder for the letters (default: <data_dir>/letters).",
)
@hub_command
async def letters(settings: Settings, out_dir: str | None) -> None:
    """Give each new patient an activation code and write their letter (PDF)."""
    from mss.notify import portal_url
    from mss.patients import issue_letters
    from portal.letters import write_letter

    folder = Path(out_dir) if out_dir else settings.data_path / "letters"
    written: list[Path] = []

    async def write(patient: Patient, code: str) -> None:
        written.append(await write_letter(folder, patient, code, portal_url(settings)))

    db = await open_database(settings)
    try:
        issued = await issue_letters(db, settings, write)
    finally:
        await db.dispose()
    if not issued:
        click.echo("no new patient needs an activation letter")
    for patient, path in zip(issued, written, strict=True):
        click.echo(f"{patient.ins}  {patient.display_name}  {path}")


@patients.command("auto-activate")
@hub_command
async def auto_activate(settings: Settings) -> None:
    """Activate now every account whose opposition window has ended (the job does it too)."""
    from mss.patients import auto_activate_due

    db = await open_database(settings)
    try:
        count = await auto_activate_due(db)
    finally:
        await db.dispose()
    click.echo(f"{count} account{'s' if count != 1 else ''} activated")


def _letters_folder(settings: Settings, out_dir: str | None) -> Path:
    return Path(out_dir) if out_dir else settings.data_path / "letters"


async def _change_of_mind(
    settings: Settings, ins: str, change: str, out_dir: str | None
) -> tuple[Patient, Path | None]:
    """Apply ``change`` (withdraw-opposition, reopen) to the patient of ``ins``; when the open
    account has no password, a new code with its letter (and e-mail when one is on file)."""
    from mss.directory.store import find_patient_by_ins
    from mss.errors import HubError
    from mss.notify import portal_url
    from mss.patients import (
        Actor,
        email_activation_code,
        reissue_activation_code,
        reopen_account,
        withdraw_opposition,
    )
    from portal.letters import write_letter

    actor = Actor("operator", "mss-cli", "L'équipe du service", "cli")
    db = await open_database(settings)
    try:
        async with db.write() as session:
            patient = await find_patient_by_ins(session, ins)
            if patient is None:
                raise HubError(f"no patient has the INS {ins!r}")
            if change == "withdraw-opposition":
                withdraw_opposition(session, patient, actor)
            else:
                reopen_account(session, settings, patient, actor)
            letter = None
            if patient.password_hash is None:
                code = await reissue_activation_code(session, patient, change)
                folder = _letters_folder(settings, out_dir)
                letter = await write_letter(folder, patient, code, portal_url(settings))
                await email_activation_code(session, settings, patient, code)
    finally:
        await db.dispose()
    return patient, letter


@patients.command("withdraw-opposition")
@click.argument("ins")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder for the new letter (default: <data_dir>/letters).",
)
@hub_command
async def withdraw_opposition_command(
    settings: Settings, ins: str, yes: bool, out_dir: str | None
) -> None:
    """Activate the account of a patient who opposed it and changed their mind (a new code and
    letter follow: the patient sets a password with them)."""
    if not yes:
        click.confirm(f"Withdraw the opposition of {ins} and activate the account?", abort=True)
    patient, letter = await _change_of_mind(settings, ins, "withdraw-opposition", out_dir)
    click.echo(f"{patient.ins}  {patient.display_name}  opposition withdrawn, account active")
    if letter is not None:
        click.echo(f"new activation letter: {letter}")


@patients.command("reopen")
@click.argument("ins")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder for the new letter, if one is needed (default: <data_dir>/letters).",
)
@hub_command
async def reopen_command(settings: Settings, ins: str, yes: bool, out_dir: str | None) -> None:
    """Reopen a closed account within its retention ([retention] closed_account_days)."""
    if not yes:
        click.confirm(f"Reopen the closed account of {ins}?", abort=True)
    patient, letter = await _change_of_mind(settings, ins, "reopen", out_dir)
    click.echo(f"{patient.ins}  {patient.display_name}  account reopened")
    if letter is not None:
        click.echo(f"new activation letter: {letter}")
