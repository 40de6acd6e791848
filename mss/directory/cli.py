"""``mss directory`` and ``mss mailbox``: imports and mailbox administration."""

from __future__ import annotations

import click


@click.group()
def directory() -> None:
    """Import professionals, organisations, patients and the trust list."""


@click.group()
def mailbox() -> None:
    """Mailbox administration."""
