"""The professional an OpenID Connect identity names, for the document API and the /pro pages.

The application holds one ``RelyingParty`` (``mss.oidc``) when ``[oidc] issuer`` is set. A
verified identity is judged by ``mss.policy.professional_login.decide_oidc_professional``
on the directory's facts: the professional of its idNat and the states of their PER
mailboxes.
"""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from mss.config import Settings
from mss.directory.models import Professional
from mss.directory.store import find_professional_by_id_nat, personal_mailboxes
from mss.oidc import OidcRefused, RelyingParty
from mss.policy.professional_login import (
    NOT_CONFIGURED,
    OidcIdentity,
    ProfessionalAccount,
    decide_oidc_professional,
    token_refused,
)

RELYING_PARTY = web.AppKey("oidc_relying_party", RelyingParty)


def install_relying_party(app: web.Application, settings: Settings, public_url: str) -> None:
    """Give the application its relying party when ``[oidc]`` names a provider."""
    if settings.oidc.enabled and RELYING_PARTY not in app:
        app[RELYING_PARTY] = RelyingParty(settings.oidc, public_url)


def relying_party(app: web.Application) -> RelyingParty:
    """The application's relying party, or ``OidcRefused`` (not configured)."""
    found = app.get(RELYING_PARTY)
    if found is None:
        raise OidcRefused(token_refused(NOT_CONFIGURED))
    return found


async def professional_of(
    session: AsyncSession, identity: OidcIdentity, accepted_acr: tuple[str, ...]
) -> Professional:
    """The directory's professional this identity may act as, or ``OidcRefused`` saying why."""
    professional = (
        await find_professional_by_id_nat(session, identity.id_nat) if identity.id_nat else None
    )
    account = None
    if professional is not None:
        mailboxes = await personal_mailboxes(session, professional.id)
        account = ProfessionalAccount(
            professional.id_nat,
            professional.display_name,
            tuple((m.address, m.state) for m in mailboxes),
        )
    decision = decide_oidc_professional(identity, accepted_acr, account)
    if not decision:
        raise OidcRefused(decision)
    assert professional is not None
    return professional
