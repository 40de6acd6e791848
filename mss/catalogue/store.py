"""The catalogue's store: services, connections to a patient's space, measurements.

The portal, the CLI and the document API call these functions inside their
transaction; every connection, revocation and measurement is an audit event on
the space's history.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mss.audit import record
from mss.catalogue.models import (
    CatalogueService,
    Measurement,
    ServiceConnection,
    ServiceToken,
)
from mss.db import utcnow
from mss.directory.models import Patient
from mss.errors import InvalidInput
from mss.policy.services import ServiceStatus, decide_registered_scopes, decide_service_url

MAX_NAME = 120
MAX_EDITOR = 200
MAX_DESCRIPTION = 2000
SERVICE_SOURCE = "service"  # the audit source of what a connected service does


def token_hash(token: str) -> str:
    """What the tables keep of a code or token: its SHA-256 (the token is 256 random bits)."""
    return hashlib.sha256(token.encode()).hexdigest()


def _check_url(url: str, what: str) -> str:
    decided = decide_service_url(url, what)
    if not decided:
        raise InvalidInput(decided.sentence)
    return url


def _text(value: str, what: str, limit: int, *, required: bool = True) -> str:
    text = value.strip()
    if required and not text:
        raise InvalidInput(f"the service's {what} is required")
    if len(text) > limit:
        raise InvalidInput(f"the service's {what} is longer than {limit} characters")
    if any(ord(c) < 32 and c not in "\n\t" for c in text):
        raise InvalidInput(f"the service's {what} contains control characters")
    return text


def _status(value: str) -> ServiceStatus:
    try:
        return ServiceStatus(value)
    except ValueError:
        known = ", ".join(s.value for s in ServiceStatus)
        raise InvalidInput(f"unknown review status {value!r}: use one of {known}") from None


async def add_service(
    session: AsyncSession,
    *,
    name: str,
    editor: str,
    description: str,
    scopes: list[str],
    redirect_uris: list[str],
    home_url: str,
    status: str,
    client_id: str | None = None,
) -> CatalogueService:
    """Register a service; everything is checked before anything is written."""
    decided = decide_registered_scopes(scopes)
    if not decided:
        raise InvalidInput(decided.sentence)
    if not redirect_uris:
        raise InvalidInput("a service needs at least one redirect URI")
    uris = [_check_url(uri, "redirect URI") for uri in redirect_uris]
    chosen = client_id or "svc-" + secrets.token_hex(8)
    if not chosen.replace("-", "").replace("_", "").isalnum() or len(chosen) > 64:
        raise InvalidInput(f"client id {chosen!r}: letters, digits, - and _ only, 64 at most")
    if await service_by_client_id(session, chosen) is not None:
        raise InvalidInput(f"a service with client id {chosen} is already registered")
    service = CatalogueService(
        client_id=chosen,
        name=_text(name, "name", MAX_NAME),
        editor=_text(editor, "editor", MAX_EDITOR),
        description=_text(description, "description", MAX_DESCRIPTION, required=False),
        scopes=list(scopes),
        redirect_uris=uris,
        home_url=_check_url(home_url, "home URL"),
        status=_status(status).value,
    )
    session.add(service)
    await session.flush()
    record(
        session,
        "catalogue.service_added",
        actor_kind="operator",
        actor="cli",
        target=f"service:{chosen}",
        status=service.status,
    )
    return service


async def service_by_client_id(session: AsyncSession, client_id: str) -> CatalogueService | None:
    found: CatalogueService | None = (
        await session.scalars(
            select(CatalogueService).where(CatalogueService.client_id == client_id)
        )
    ).first()
    return found


async def list_services(
    session: AsyncSession, status: ServiceStatus | None = None
) -> list[CatalogueService]:
    """The registered services by name, of one review status or all."""
    query = select(CatalogueService).order_by(CatalogueService.name, CatalogueService.id)
    if status is not None:
        query = query.where(CatalogueService.status == status.value)
    return list((await session.scalars(query)).all())


async def set_status(session: AsyncSession, client_id: str, status: str) -> CatalogueService:
    """Move a service to another review status (withdrawn: its tokens stop working at once)."""
    service = await service_by_client_id(session, client_id)
    if service is None:
        raise InvalidInput(f"no service with client id {client_id}")
    service.status = _status(status).value
    service.updated_at = utcnow()
    record(
        session,
        "catalogue.service_status",
        actor_kind="operator",
        actor="cli",
        target=f"service:{client_id}",
        status=service.status,
    )
    return service


@dataclass(frozen=True)
class Connected:
    """A service connected to a space, as the portal lists it."""

    connection: ServiceConnection
    service: CatalogueService


async def connect(
    session: AsyncSession,
    service: CatalogueService,
    space: Patient,
    person: Patient,
    scopes: list[str],
    *,
    source: str,
) -> ServiceConnection:
    """The patient (or a guardian, in a child's space) connects ``service`` with ``scopes``.

    An earlier connection of the same service to the same space is replaced (its tokens die).
    """
    now = utcnow()
    earlier = (
        await session.scalars(
            select(ServiceConnection.id).where(
                ServiceConnection.service_id == service.id,
                ServiceConnection.patient_id == space.id,
                ServiceConnection.revoked_at.is_(None),
            )
        )
    ).all()
    for connection_id in earlier:
        await _end(session, connection_id, now)
    connection = ServiceConnection(
        service_id=service.id,
        patient_id=space.id,
        connected_by=person.id,
        scopes=list(scopes),
        created_at=now,
    )
    session.add(connection)
    await session.flush()
    record(
        session,
        "service_connected",
        actor_kind="patient" if person.id == space.id else "guardian",
        actor=person.ins,
        patient_id=space.id,
        target=f"service:{service.client_id}",
        source=source,
        actor_name=person.display_name,
        service=service.name,
        scopes=list(scopes),
    )
    return connection


async def _end(session: AsyncSession, connection_id: int, now: dt.datetime) -> None:
    await session.execute(
        update(ServiceConnection)
        .where(ServiceConnection.id == connection_id, ServiceConnection.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    await session.execute(
        update(ServiceToken)
        .where(ServiceToken.connection_id == connection_id, ServiceToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )


async def end_connection(
    session: AsyncSession, connection: ServiceConnection, service: CatalogueService
) -> None:
    """The service itself gives its connection up (RFC 7009, its refresh token revoked)."""
    if connection.revoked_at is not None:
        return
    await _end(session, connection.id, utcnow())
    record(
        session,
        "service_revoked",
        actor_kind="service",
        actor=service.client_id,
        patient_id=connection.patient_id,
        target=f"service:{service.client_id}",
        source=SERVICE_SOURCE,
        actor_name=service.name,
    )


async def connections_of(session: AsyncSession, patient_id: int) -> list[Connected]:
    """The services connected to a space (not revoked), newest first, in one statement."""
    rows = (
        await session.execute(
            select(ServiceConnection, CatalogueService)
            .join(CatalogueService, CatalogueService.id == ServiceConnection.service_id)
            .where(
                ServiceConnection.patient_id == patient_id,
                ServiceConnection.revoked_at.is_(None),
            )
            .order_by(ServiceConnection.created_at.desc(), ServiceConnection.id.desc())
        )
    ).all()
    return [Connected(connection, service) for connection, service in rows]


async def revoke(
    session: AsyncSession, space: Patient, person: Patient, connection_id: int, *, source: str
) -> bool:
    """End a connection of this space and every token it gave; False when there is none."""
    found = (
        await session.execute(
            select(ServiceConnection, CatalogueService)
            .join(CatalogueService, CatalogueService.id == ServiceConnection.service_id)
            .where(
                ServiceConnection.id == connection_id,
                ServiceConnection.patient_id == space.id,
                ServiceConnection.revoked_at.is_(None),
            )
        )
    ).first()
    if found is None:
        return False
    _connection, service = found
    await _end(session, connection_id, utcnow())
    record(
        session,
        "service_revoked",
        actor_kind="patient" if person.id == space.id else "guardian",
        actor=person.ins,
        patient_id=space.id,
        target=f"service:{service.client_id}",
        source=source,
        actor_name=person.display_name,
        service=service.name,
    )
    return True


async def add_measurement(
    session: AsyncSession,
    patient: Patient,
    service: CatalogueService,
    *,
    code: str,
    value: float,
    unit: str,
    status: str,
    effective_at: dt.datetime,
) -> Measurement:
    """Store a measurement the service wrote, and its audit event."""
    measurement = Measurement(
        patient_id=patient.id,
        service_id=service.id,
        service_name=service.name,
        code=code,
        value=value,
        unit=unit,
        status=status,
        effective_at=effective_at,
    )
    session.add(measurement)
    await session.flush()
    record(
        session,
        "service_measurement_written",
        actor_kind="service",
        actor=service.client_id,
        patient_id=patient.id,
        target=f"measurement:{measurement.id}",
        source=SERVICE_SOURCE,
        actor_name=service.name,
    )
    return measurement


async def measurements_of(
    session: AsyncSession, patient_id: int, limit: int = 50
) -> list[Measurement]:
    """A space's measurements, the latest first."""
    return list(
        (
            await session.scalars(
                select(Measurement)
                .where(Measurement.patient_id == patient_id)
                .order_by(Measurement.effective_at.desc(), Measurement.id.desc())
                .limit(limit)
            )
        ).all()
    )
