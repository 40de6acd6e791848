"""``mss catalogue``: the operator registers, lists and withdraws the services patients connect."""

from __future__ import annotations

import click

from mss.catalogue import store
from mss.catalogue.models import CatalogueService
from mss.command import hub_command, open_database
from mss.config import Settings
from mss.policy.services import ServiceStatus

STATUSES = [s.value for s in ServiceStatus]


@click.group()
def catalogue() -> None:
    """The catalogue of services patients can connect to their space (OAuth 2.0 + PKCE)."""


def _line(service: CatalogueService) -> str:
    return (
        f"{service.client_id}\t{service.status}\t{service.name}\t{service.editor}\t"
        f"{' '.join(service.scopes)}\t{' '.join(service.redirect_uris)}"
    )


@catalogue.command("add")
@click.option("--name", required=True, help="The service's name, as patients see it.")
@click.option("--editor", required=True, help="Who makes it (company, hospital, association).")
@click.option("--description", default="", help="What it does, in plain French.")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    help="A permission it asks for: documents:<LOINC type code> or measurements:write "
    "(repeatable).",
)
@click.option(
    "--redirect-uri",
    "redirect_uris",
    multiple=True,
    required=True,
    help="Where the hub sends the patient back with the code, compared exactly (repeatable).",
)
@click.option("--home-url", required=True, help="Where a patient starts connecting it.")
@click.option(
    "--status",
    type=click.Choice(STATUSES),
    default=ServiceStatus.UNDER_REVIEW.value,
    show_default=True,
    help="Review status: only referenced services are shown and may be connected.",
)
@click.option("--client-id", default=None, help="The OAuth client_id (default: one is drawn).")
@hub_command
async def add(
    settings: Settings,
    name: str,
    editor: str,
    description: str,
    scopes: tuple[str, ...],
    redirect_uris: tuple[str, ...],
    home_url: str,
    status: str,
    client_id: str | None,
) -> None:
    """Register a service; prints its client_id."""
    db = await open_database(settings)
    try:
        async with db.write() as session:
            service = await store.add_service(
                session,
                name=name,
                editor=editor,
                description=description,
                scopes=list(scopes),
                redirect_uris=list(redirect_uris),
                home_url=home_url,
                status=status,
                client_id=client_id,
            )
            line = _line(service)
    finally:
        await db.dispose()
    click.echo(f"registered {line}")


@catalogue.command("list")
@click.option("--status", type=click.Choice(STATUSES), default=None, help="Only this status.")
@hub_command
async def list_command(settings: Settings, status: str | None) -> None:
    """One line per service: client_id, status, name, editor, scopes, redirect URIs."""
    db = await open_database(settings)
    try:
        async with db.read() as session:
            services = await store.list_services(session, ServiceStatus(status) if status else None)
            lines = [_line(s) for s in services]
    finally:
        await db.dispose()
    for line in lines:
        click.echo(line)
    if not lines:
        click.echo("no service registered" + (f" with status {status}" if status else ""))


def _status_command(name: str, status: ServiceStatus, help_text: str) -> None:
    @catalogue.command(name, help=help_text)
    @click.argument("client_id")
    @hub_command
    async def command(settings: Settings, client_id: str) -> None:
        db = await open_database(settings)
        try:
            async with db.write() as session:
                service = await store.set_status(session, client_id, status.value)
                line = _line(service)
        finally:
            await db.dispose()
        click.echo(f"{status.value} {line}")


_status_command(
    "withdraw",
    ServiceStatus.WITHDRAWN,
    "Withdraw CLIENT_ID from the catalogue: its tokens stop working at once.",
)
_status_command(
    "reference", ServiceStatus.REFERENCED, "Mark CLIENT_ID as reviewed: patients may connect it."
)
