"""Demo data: a hospital, professionals, a pharmacy and patients, with logins.

Passwords are drawn at random on each installation and kept, with the
certificate paths, in ``<data_dir>/demo/accounts.json`` (mode 0600), which
``mss demo accounts --json`` prints.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from mss.command import hub_command
from mss.config import Settings


def demo_accounts_file(settings: Settings) -> Path:
    return settings.data_path / "demo" / "accounts.json"


def load_demo_accounts(settings: Settings) -> list[dict[str, Any]]:
    accounts: list[dict[str, Any]] = json.loads(demo_accounts_file(settings).read_text(encoding="utf-8"))
    return accounts


def save_demo_accounts(settings: Settings, accounts: list[dict[str, Any]]) -> None:
    path = demo_accounts_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(accounts, out, ensure_ascii=False, indent=2)


@click.group()
def demo() -> None:
    """Demo data."""


@demo.command("accounts")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (default: a table).")
@hub_command
async def accounts(settings: Settings, as_json: bool) -> None:
    """Every demo account: role, address, password, INS or idNat, certificate paths."""
    from mss.errors import InvalidInput

    if not demo_accounts_file(settings).is_file():
        raise InvalidInput(f"no demo data in {settings.data_path}: run 'mss init --demo' first")
    found = load_demo_accounts(settings)
    if as_json:
        click.echo(json.dumps(found, ensure_ascii=False, indent=2))
        return
    for account in found:
        click.echo(f"{account['role']:<24} {account.get('login') or account['address']:<42} {account['password']}")
