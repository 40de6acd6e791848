"""The ``mss`` command: set up, run and administer the hub."""

from __future__ import annotations

import click

from mss import __version__
from mss.command import hub_command, safe_url
from mss.config import Settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Path of mss.toml (default: $MSS_CONFIG, then ./mss.toml).",
)
@click.option(
    "--data-dir",
    "data_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="The data folder (default: data_dir of mss.toml, read from the file's folder; "
    "without a file, ./var).",
)
@click.version_option(__version__, prog_name="mss")
@click.pass_context
def main(ctx: click.Context, config_path: str | None, data_dir: str | None) -> None:
    """MSS hub: secure health messaging (SMTP, IMAP, patient portal, DMP)."""
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = config_path
    ctx.obj["data_dir"] = data_dir


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@hub_command
async def db_upgrade(settings: Settings, revision: str) -> None:
    """Create or migrate the schema (SQLite or PostgreSQL)."""
    from mss.errors import DatabaseUnavailable
    from mss.migrate import upgrade_async

    settings.data_path.mkdir(parents=True, exist_ok=True)
    url = settings.effective_database_url
    try:
        await upgrade_async(url, revision)
    except Exception as exc:  # noqa: BLE001 - one sentence, no traceback
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        raise DatabaseUnavailable(
            f"cannot migrate the database at {safe_url(url)}: "
            f"{reason[0] if reason else type(exc).__name__}"
        ) from None
    click.echo(f"database at {safe_url(url)} is at revision {revision}")


@main.command()
@click.option(
    "--demo", is_flag=True, help="Also create the demo hospital, professionals and patients."
)
@hub_command
async def init(settings: Settings, demo: bool) -> None:
    """Create the data folder, the schema, the development PKI (and demo data)."""
    from mss.setup import initialise

    for line in await initialise(settings, demo=demo):
        click.echo(line)


@main.command()
@click.option(
    "--first-run-demo",
    is_flag=True,
    help="On a fresh data folder, run 'mss init --demo' first and print the demo logins.",
)
@hub_command
async def serve(settings: Settings, first_run_demo: bool) -> None:
    """Run every listener and the job workers until Ctrl-C."""
    from mss.log_format import configure_logging
    from mss.serve import serve_forever
    from mss.setup import describe_listeners, initialise, needs_initialisation

    configure_logging(settings)
    if first_run_demo and await needs_initialisation(settings):
        for line in await initialise(settings, demo=True):
            click.echo(line)
    from mss.command import open_database

    db = await open_database(settings)
    for line in await describe_listeners(settings, db):
        click.echo(line)
    await serve_forever(settings, db)


@main.command()
@hub_command
async def doctor(settings: Settings) -> None:
    """Check the configuration, database, certificates and ports."""
    import sys

    from mss.doctor import run_checks

    checks = await run_checks(settings)
    for check in checks:
        click.echo(str(check))
    if not all(check.ok for check in checks):
        sys.exit(1)


@main.command()
@click.argument("out", type=click.Path(dir_okay=False))
@click.option(
    "--encrypt-to",
    "recipients",
    multiple=True,
    metavar="KEYID",
    help="An OpenPGP key of the gpg keyring to encrypt to (repeatable).",
)
@click.option(
    "--recipient-file",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="A file holding the OpenPGP public key to encrypt to.",
)
@click.option(
    "--gnupg-home",
    type=click.Path(file_okay=False),
    default=None,
    help="The gpg home folder (default: $GNUPGHOME, then ~/.gnupg).",
)
@hub_command
async def backup(
    settings: Settings,
    out: str,
    recipients: tuple[str, ...],
    recipient_file: str | None,
    gnupg_home: str | None,
) -> None:
    """Write an OpenPGP-encrypted snapshot of the database, configuration and PKI to OUT."""
    from pathlib import Path

    from mss.backup import describe, make_backup

    report = await make_backup(
        settings,
        Path(out),
        recipients=list(recipients),
        recipient_file=Path(recipient_file) if recipient_file else None,
        gnupg_home=gnupg_home,
    )
    click.echo(f"wrote {describe(report)}")


@main.command()
@click.argument("archive", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--gnupg-home",
    type=click.Path(file_okay=False),
    default=None,
    help="The gpg home folder holding the secret key (default: $GNUPGHOME, then ~/.gnupg).",
)
@click.option(
    "--passphrase-stdin", is_flag=True, help="Read the secret key's passphrase from standard input."
)
@hub_command
async def restore(
    settings: Settings, archive: str, gnupg_home: str | None, passphrase_stdin: bool
) -> None:
    """Restore ARCHIVE (made by 'mss backup') into this empty data folder and database."""
    import sys
    from pathlib import Path

    from mss.backup import describe, restore_backup

    passphrase = sys.stdin.readline().rstrip("\r\n") if passphrase_stdin else None
    report = await restore_backup(
        settings, Path(archive), gnupg_home=gnupg_home, passphrase=passphrase
    )
    click.echo(f"restored {describe(report)} into {settings.data_path}")


def _register_subcommands() -> None:
    from mss.audit_verify import audit
    from mss.catalogue.cli import catalogue
    from mss.crypto.cli import pki
    from mss.demo import demo
    from mss.directory.cli import directory, mailbox
    from mss.notify import dev
    from portal.cli import patients

    main.add_command(audit)
    main.add_command(catalogue)
    main.add_command(directory)
    main.add_command(mailbox)
    main.add_command(pki)
    main.add_command(demo)
    main.add_command(dev)
    main.add_command(patients)


_register_subcommands()
