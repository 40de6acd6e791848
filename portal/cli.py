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
