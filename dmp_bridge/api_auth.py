"""Who calls the document API: a professional, by TLS client certificate, by mailbox credentials,
or by an OpenID Connect login (Pro Santé Connect style).

A client certificate must chain to the trust anchors for TLS client
authentication (dates, EKU, CRLs: ``verify_peer``) and name an idNat in its
subject (IGC-Santé layout). HTTP Basic takes a PER mailbox's address and
password, by the login every protocol shares (``mss.logins``, in the request's
transaction) and under its throttle (``mss.policy.login``:
while an account is locked from an address, or must wait, even the right
password is 401 with the sentence saying until when); the mailbox's
professional is the caller. ``Authorization: Bearer <token>`` takes an ID token or access
token of the configured provider (``[oidc]``, ``mss.oidc``: signature, issuer, audience,
expiry; an opaque token is asked of the provider), and a GET may come with the
browser session of a ``/pro`` login (``dmp_bridge.pro_login``): the idNat of the token
is the caller, if ``decide_oidc_professional`` lets it act as that professional.
Anything else is 401, a valid identity that is not a known professional is 403.
"""

from __future__ import annotations

import base64
import binascii
import logging
import urllib.parse
from dataclasses import dataclass

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from dmp_bridge import pro_sessions
from dmp_bridge.access import Viewer
from dmp_bridge.fhir_documents import FhirInputError
from dmp_bridge.oidc_auth import professional_of, relying_party
from mss.catalogue.tokens import Bearer, authenticate_bearer, is_service_token
from mss.crypto.certificates import id_nat_from_subject
from mss.crypto.tls import peer_certificate, verify_peer
from mss.crypto.trust import TrustStore
from mss.db import utcnow
from mss.directory.models import MailboxKind, MailboxState, Organisation, Professional
from mss.directory.store import find_professional_by_id_nat, rehash_mailbox_password
from mss.login_throttle import Attempt, LoginThrottle
from mss.logins import Login, log_in
from mss.oidc import OidcRefused, VerifiedToken
from mss.policy import Decision
from mss.policy.professional_login import NOT_CONFIGURED, OidcIdentity
from mss.web import DB, SERVICES, SETTINGS

BREAK_GLASS_HEADER = "X-Break-Glass-Reason"
REALM = 'Basic realm="MSS DMP", charset="UTF-8"'
_BEARER = 'Bearer realm="MSS DMP"'
BEARER_REALM = f'{_BEARER}, error="invalid_token"'  # RFC 6750 §3
INSUFFICIENT_SCOPE = f'{_BEARER}, error="insufficient_scope"'  # RFC 6750 §3.1, with a 403
BEARER = web.RequestKey("oidc_bearer", VerifiedToken)  # the request's verified Bearer token

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Caller:
    """The authenticated professional and how they proved it."""

    professional: Professional
    organisation: Organisation | None
    method: str  # certificate, password, oidc (a bearer token), oidc_session (a /pro login)


class Unauthenticated(FhirInputError):
    """401; ``failed`` is the wrong password to count once the request's transaction is over.

    ``challenge`` is the WWW-Authenticate header the answer carries.
    """

    def __init__(self, text: str, *, failed: Attempt | None = None, challenge: str = REALM) -> None:
        super().__init__(401, "login", text)
        self.failed = failed
        self.challenge = challenge


def oidc_refusal(decision: Decision) -> FhirInputError:
    """An OpenID Connect refusal as the API's answer: 401 with a Bearer challenge, or 403/503."""
    text = f"{decision.sentence} / {decision.sentence_fr}"
    if decision.reason == NOT_CONFIGURED:
        return Unauthenticated(text)
    if decision.status == 401:
        return Unauthenticated(text, challenge=BEARER_REALM)
    code = {403: "forbidden", 503: "transient", 404: "not-supported"}.get(decision.status, "login")
    return FhirInputError(decision.status, code, text)


async def count_failed_login(request: web.Request, refused: Unauthenticated) -> Unauthenticated:
    """Count a wrong Basic password in its own transaction (the request's was rolled back).

    The answer becomes the lock's sentence when this failure set it (``mss.policy.login``).
    """
    if refused.failed is None:
        return refused
    throttle = LoginThrottle(request.app[DB], request.app[SETTINGS], protocol="api")
    after = await throttle.failed(refused.failed, utcnow())
    return Unauthenticated(after.sentence) if after.locked else refused


def _trust(request: web.Request) -> TrustStore:
    services = request.app.get(SERVICES)
    if services is None:
        return TrustStore.from_settings(request.app[SETTINGS])
    return services.trust_store()


async def _by_certificate(request: web.Request, session: AsyncSession) -> Caller | None:
    transport = request.transport
    if transport is None or peer_certificate(transport) is None:
        return None
    check = verify_peer(transport, _trust(request), usage="tls_client")
    cert = peer_certificate(transport)
    assert cert is not None
    if check is None or not check.ok:
        reason = check.reason if check else "none"
        log.warning(
            "document API: client certificate of %s refused from %s: %s",
            cert.subject.rfc4514_string(),
            request.remote,
            reason,
        )
        raise Unauthenticated(f"client certificate refused: {reason}")
    id_nat = id_nat_from_subject(cert.subject)
    if id_nat is None:
        raise FhirInputError(
            403,
            "forbidden",
            "the client certificate names no professional "
            "(no idNat in its subject): the DMP is open to health professionals",
        )
    professional = await find_professional_by_id_nat(session, id_nat)
    if professional is None:
        raise FhirInputError(
            403, "forbidden", f"idNat {id_nat} is not a professional of this hub's directory"
        )
    return Caller(professional, await _organisation(session, professional), "certificate")


async def _by_password(request: web.Request, session: AsyncSession) -> Caller | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        login, sep, password = (
            base64.b64decode(token.strip(), validate=True).decode().partition(":")
        )
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthenticated("the Basic credentials are not valid base64 UTF-8") from None
    throttle = LoginThrottle(request.app[DB], request.app[SETTINGS], protocol="api")
    source = request.remote or "unknown"
    result: Login[None] = await log_in(
        request.app[DB], throttle, login, password, source, session=session
    )
    if result.throttled:
        raise Unauthenticated(result.decision.sentence)  # locked or waiting: no password check
    mailbox = result.mailbox if sep else None
    if mailbox is None or not result.password_ok:
        raise Unauthenticated("wrong mailbox address or password", failed=result.attempt)
    if mailbox.kind is not MailboxKind.PER or mailbox.professional_id is None:
        raise FhirInputError(
            403,
            "forbidden",
            f"{mailbox.address} is not a professional's personal "
            "(PER) mailbox: the DMP is open to health professionals",
        )
    if mailbox.state is not MailboxState.ACTIVE:
        raise FhirInputError(
            403, "forbidden", f"the mailbox {mailbox.address} is {mailbox.state.value}"
        )
    if result.needs_rehash:
        await rehash_mailbox_password(session, mailbox, password)
    professional = await session.get(Professional, mailbox.professional_id)
    assert professional is not None
    return Caller(professional, await _organisation(session, professional), "password")


async def verify_bearer_first(request: web.Request) -> None:
    """Check a Bearer token before the request's transaction opens: the provider may be asked
    (keys, userinfo), and no database transaction waits on the network meanwhile."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or is_service_token(token.strip()) or BEARER in request:
        return  # a connected service's token is ours (``authenticate_service``), not the provider's
    try:
        request[BEARER] = await relying_party(request.app).verify_bearer(token)
    except OidcRefused as refused:
        log.warning(
            "document API: bearer token refused from %s: %s",
            request.remote,
            refused.decision.reason,
        )
        raise oidc_refusal(refused.decision) from None


async def _by_bearer(request: web.Request, session: AsyncSession) -> Caller | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or is_service_token(token.strip()):
        return None
    await verify_bearer_first(request)  # done already by the API's handlers
    try:
        party = relying_party(request.app)
        professional = await professional_of(
            session, request[BEARER].identity, tuple(party.settings.acr_values)
        )
    except OidcRefused as refused:
        log.warning(
            "document API: bearer token of %s refused from %s: %s",
            request[BEARER].identity.id_nat,
            request.remote,
            refused.decision.reason,
        )
        raise oidc_refusal(refused.decision) from None
    return Caller(professional, await _organisation(session, professional), "oidc")


async def _by_pro_session(request: web.Request, session: AsyncSession) -> Caller | None:
    """A GET from a browser signed in at /pro (never a POST: the cookie is SameSite=Lax)."""
    token = request.cookies.get(pro_sessions.COOKIE)
    if not token or request.method not in ("GET", "HEAD"):
        return None
    row = await pro_sessions.signed_in(session, token, utcnow())
    if row is None or row.professional_id is None:
        return None
    professional = await session.get(Professional, row.professional_id)
    if professional is None:
        return None
    try:
        party = relying_party(request.app)
        identity = OidcIdentity(party.issuer, "", professional.id_nat, row.acr or None)
        # judged again at each use: a mailbox closed since the login ends the session's use
        await professional_of(session, identity, tuple(party.settings.acr_values))
    except OidcRefused as refused:
        raise oidc_refusal(refused.decision) from None
    return Caller(professional, await _organisation(session, professional), "oidc_session")


async def _organisation(session: AsyncSession, professional: Professional) -> Organisation | None:
    if professional.organisation_id is None:
        return None
    return await session.get(Organisation, professional.organisation_id)


async def authenticate(request: web.Request, session: AsyncSession) -> Caller:
    """The calling professional (certificate, Basic, Bearer, then a /pro session), or 401/403."""
    caller = (
        await _by_certificate(request, session)
        or await _by_password(request, session)
        or await _by_bearer(request, session)
        or await _by_pro_session(request, session)
    )
    if caller is None:
        raise Unauthenticated(
            "authenticate with a client certificate of the health PKI, with "
            "your MSSanté mailbox address and password (HTTP Basic), or with a token "
            "of the professionals' OpenID Connect login (Bearer)"
        )
    return caller


def viewer_of(request: web.Request, caller: Caller) -> Viewer:
    """The consent engine's viewer, with the break-glass reason of the request if any."""
    reason = request.headers.get(BREAK_GLASS_HEADER)
    try:
        decoded = urllib.parse.unquote(reason, errors="strict") if reason is not None else None
    except UnicodeDecodeError:
        raise FhirInputError(
            422, "invalid", f"{BREAK_GLASS_HEADER} must be percent-encoded UTF-8"
        ) from None
    return Viewer.for_professional(
        caller.professional, caller.organisation, break_glass_reason=decoded, source="api"
    )


class BearerRefused(FhirInputError):
    """401 for a service whose token does not stand (RFC 6750 §3.1 invalid_token)."""

    def __init__(self, text: str) -> None:
        super().__init__(401, "login", text)

    @property
    def challenge(self) -> str:
        return f'{BEARER_REALM}, error_description="{self.text}"'


def presents_bearer(request: web.Request) -> bool:
    """Whether the caller is a connected service: ``Authorization: Bearer`` with a token of the
    catalogue (``mss.catalogue.tokens.SERVICE_TOKEN_PREFIX``); any other Bearer token is a
    professional's, from the OpenID Connect provider."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and is_service_token(token.strip())


async def authenticate_service(request: web.Request, session: AsyncSession) -> Bearer:
    """The connected service behind the bearer token, or raise 401."""
    _scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    decision, bearer = await authenticate_bearer(session, token.strip(), utcnow())
    if bearer is None:
        raise BearerRefused(decision.sentence)
    return bearer
