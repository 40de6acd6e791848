"""What every ``mss`` subcommand shares: settings, the database, and errors as one line.

A subcommand is an async function decorated with ``@hub_command``; it
receives the loaded ``Settings`` as ``settings`` and may ask for the
``Database`` with ``open_database(settings)``. A ``HubError`` becomes one
line on stderr and its exit code; nothing prints a traceback to a user.
"""

from __future__ import annotations

import asyncio
import functools
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import click

from mss.config import Settings, load_settings
from mss.db import Database
from mss.errors import DatabaseUnavailable, HubError

T = TypeVar("T")


def current_settings() -> Settings:
    """The settings of the running command (``--config`` of the top-level group)."""
    ctx = click.get_current_context()
    root = ctx.find_root()
    root.ensure_object(dict)
    if "settings" not in root.obj:
        root.obj["settings"] = load_settings(
            root.obj.get("config_path"), data_dir=root.obj.get("data_dir")
        )
    settings: Settings = root.obj["settings"]
    return settings


def fail(sentence: str, code: int = 2) -> None:
    click.echo(f"mss: {sentence}", err=True)
    sys.exit(code)


def hub_command(func: Callable[..., Coroutine[Any, Any, Any]]) -> Callable[..., Any]:
    """Run an async command body with settings, turning HubErrors into one line and an exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            settings = current_settings()
            return asyncio.run(func(settings, *args, **kwargs))
        except HubError as exc:
            fail(exc.sentence, exc.exit_code)
        except KeyboardInterrupt:
            fail("interrupted", 130)
        return None

    return wrapper


async def open_database(settings: Settings, *, check: bool = True) -> Database:
    """The hub's database; with ``check``, one clear error if it is unreachable or not migrated."""
    db = Database(settings.effective_database_url)
    if check and db.sqlite_path is not None and not db.sqlite_path.is_file():
        await db.dispose()
        raise DatabaseUnavailable(
            f"the database file {db.sqlite_path} does not exist: "
            "run 'mss init' (or 'mss db upgrade')"
        )
    if check:
        from sqlalchemy import text

        try:
            async with db.read() as session:
                await session.execute(text("SELECT 1 FROM alembic_version"))
        except Exception as exc:  # noqa: BLE001 - every cause becomes one sentence
            await db.dispose()
            if "alembic_version" in str(exc):
                raise DatabaseUnavailable(
                    f"the database at {safe_url(db.url)} has no schema yet: "
                    "run 'mss db upgrade' (or 'mss init')"
                ) from None
            reason = exc.sentence if isinstance(exc, HubError) else str(exc).splitlines()[0]
            raise DatabaseUnavailable(
                f"cannot use the database at {safe_url(db.url)}: {reason}"
            ) from None
    return db


def safe_url(url: str) -> str:
    """A database URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a URL we cannot parse is shown as a placeholder
        return "<unparsable database URL>"
