"""A bearer token presented by a service: what it is bound to, and whether it still stands."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mss.catalogue.models import CatalogueService, ServiceConnection, ServiceToken
from mss.catalogue.store import token_hash
from mss.directory.models import Patient
from mss.policy.decision import Decision
from mss.policy.services import ServiceStatus, TokenFacts, decide_token

# Every access token the catalogue issues starts so: the document API tells a connected
# service's token from a professional's OpenID Connect token without a database read.
SERVICE_TOKEN_PREFIX = "mss_service_"


def is_service_token(token: str) -> bool:
    return token.startswith(SERVICE_TOKEN_PREFIX)


@dataclass(frozen=True)
class Bearer:
    """The service behind a valid token, the space it is bound to and who connected it."""

    service: CatalogueService
    connection: ServiceConnection
    patient: Patient  # the space
    connected_by: Patient  # the patient themselves or a guardian

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset(self.connection.scopes)


async def authenticate_bearer(
    session: AsyncSession, token: str, now: dt.datetime
) -> tuple[Decision, Bearer | None]:
    """The decision on ``token`` (``mss.policy.services.decide_token``) and, if it stands, whom
    it is for (one statement)."""
    found = (
        await session.execute(
            select(ServiceToken, ServiceConnection, CatalogueService)
            .join(ServiceConnection, ServiceConnection.id == ServiceToken.connection_id)
            .join(CatalogueService, CatalogueService.id == ServiceConnection.service_id)
            .where(ServiceToken.access_hash == token_hash(token))
        )
    ).first()
    if found is None:
        return decide_token(TokenFacts(known=False), now), None
    row, connection, service = found
    facts = TokenFacts(
        known=True,
        expires_at=row.access_expires_at,
        revoked=row.revoked_at is not None or connection.revoked_at is not None,
        service_status=ServiceStatus(service.status),
    )
    decision = decide_token(facts, now)
    if not decision:
        return decision, None
    patient = await session.get(Patient, connection.patient_id)
    person = await session.get(Patient, connection.connected_by)
    if patient is None or person is None:
        return decide_token(TokenFacts(known=False), now), None
    return decision, Bearer(service, connection, patient, person)
