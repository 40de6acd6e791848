"""The ``mss`` command: set up, run and administer the hub."""

from __future__ import annotations

import click

from mss import __version__
from mss.command import hub_command, safe_url
from mss.config import Settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="Path of mss.toml (default: $MSS_CONFIG, then ./mss.toml).")
@click.version_option(__version__, prog_name="mss")
@click.pass_context
def main(ctx: click.Context, config_path: str | None) -> None:
    """MSS hub: secure health messaging (SMTP, IMAP, patient portal, DMP)."""
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = config_path


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@hub_command
async def db_upgrade(settings: Settings, revision: str) -> None:
    """Create or migrate the schema (SQLite or PostgreSQL)."""
    from mss.migrate import upgrade_async
    from mss.errors import DatabaseUnavailable

    settings.data_path.mkdir(parents=True, exist_ok=True)
    url = settings.effective_database_url
    try:
        await upgrade_async(url, revision)
    except Exception as exc:  # noqa: BLE001 - one sentence, no traceback
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        raise DatabaseUnavailable(f"cannot migrate the database at {safe_url(url)}: "
                                  f"{reason[0] if reason else type(exc).__name__}") from None
    click.echo(f"database at {safe_url(url)} is at revision {revision}")


def _register_subcommands() -> None:
    from mss.crypto.cli import pki
    from mss.directory.cli import directory, mailbox

    main.add_command(directory)
    main.add_command(mailbox)
    main.add_command(pki)


_register_subcommands()
