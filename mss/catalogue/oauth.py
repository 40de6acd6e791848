"""OAuth 2.0 authorization code with PKCE for the catalogue's services, on Authlib.

Authlib's ``AuthorizationServer`` and its grant classes (RFC 6749 §4.1, §6) and
``CodeChallenge`` (RFC 7636) do the protocol: parameters, redirect URI checks,
error codes, PKCE. They are synchronous and framework-bound; the hub's store is
async. So each request is done in three steps inside one transaction: what
Authlib will ask for (the client, the code or refresh token presented) is read
first into a ``Work``; Authlib runs on it and writes nothing, only noting what to
write (a code, a token, a code used, a refresh token rotated); then those writes
are made, each spend by a conditional UPDATE, so two requests with one code get
one token.

Services are public clients (``token_endpoint_auth_method=none``): PKCE with
S256 only (RFC 9700 §2.1.1; ``plain`` is refused). Access tokens live
``ACCESS_SECONDS``, refresh tokens ``REFRESH_DAYS`` and are rotated at each use.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from authlib.oauth2.rfc6749 import (
    AuthorizationCodeMixin,
    AuthorizationServer,
    ClientMixin,
    InvalidGrantError,
    InvalidRequestError,
    OAuth2Error,
    OAuth2Payload,
    OAuth2Request,
    TokenMixin,
)
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant, RefreshTokenGrant
from authlib.oauth2.rfc6749.util import scope_to_list
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from multidict import MultiDict, MultiDictProxy
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mss.catalogue.models import CatalogueService, ServiceCode, ServiceConnection, ServiceToken
from mss.catalogue.store import connect, end_connection, service_by_client_id, token_hash
from mss.catalogue.tokens import SERVICE_TOKEN_PREFIX
from mss.db import Database, utcnow
from mss.directory.models import Patient
from mss.policy.services import ServiceStatus, decide_chosen_scopes

ACCESS_SECONDS = 600
REFRESH_DAYS = 30
CODE_SECONDS = 300
Params = MultiDict[str] | MultiDictProxy[str]


class Client(ClientMixin):  # type: ignore[misc]
    """A referenced service as Authlib's client: public, code + refresh grants only."""

    def __init__(self, service: CatalogueService) -> None:
        self.service = service

    def get_client_id(self) -> str:
        return self.service.client_id

    def get_default_redirect_uri(self) -> str | None:
        return None  # the redirect URI is always given, and compared exactly

    def get_allowed_scope(self, scope: str | None) -> str | None:
        if not scope:
            return " ".join(self.service.scopes)
        asked = scope_to_list(scope)
        if not set(asked) <= set(self.service.scopes):
            return None  # invalid_scope
        return " ".join(dict.fromkeys(asked))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.service.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return False

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == "none"

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in ("authorization_code", "refresh_token")


class StoredCode(AuthorizationCodeMixin):  # type: ignore[misc]
    def __init__(self, row: ServiceCode, connection: ServiceConnection) -> None:
        self.row, self.connection = row, connection
        self.code_challenge = row.code_challenge
        self.code_challenge_method = row.code_challenge_method

    def get_redirect_uri(self) -> str:
        return self.row.redirect_uri

    def get_scope(self) -> str:
        return " ".join(self.connection.scopes)


class StoredToken(TokenMixin):  # type: ignore[misc]
    def __init__(self, row: ServiceToken, connection: ServiceConnection, now: dt.datetime) -> None:
        self.row, self.connection, self.now = row, connection, now

    def check_client(self, client: Client) -> bool:
        return self.connection.service_id == client.service.id

    def get_scope(self) -> str:
        return " ".join(self.row.scopes)

    def get_expires_in(self) -> int:
        return int((self.row.access_expires_at - self.row.created_at).total_seconds())

    def is_expired(self) -> bool:
        return self.row.refresh_expires_at <= self.now

    def is_revoked(self) -> bool:
        return self.row.revoked_at is not None or self.connection.revoked_at is not None


@dataclass
class Work:
    """What one request's Authlib run reads (loaded before) and writes (made after)."""

    now: dt.datetime
    client: Client | None = None
    code: StoredCode | None = None
    refresh: StoredToken | None = None
    new_codes: list[tuple[str, OAuth2Request]] = field(default_factory=list)
    issued: list[tuple[dict[str, Any], OAuth2Request]] = field(default_factory=list)
    spent_code: StoredCode | None = None
    rotated: StoredToken | None = None
    replayed: ServiceCode | None = None  # a code presented again: its tokens are revoked
    presented: StoredToken | None = None  # the token a revocation request names
    revoked: StoredToken | None = None


class _Payload(OAuth2Payload):  # type: ignore[misc]
    def __init__(self, params: Params) -> None:
        self._params = params

    @property
    def data(self) -> dict[str, str]:
        return {key: self._params[key] for key in self._params}

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        values: defaultdict[str, list[str]] = defaultdict(list)
        for key, value in self._params.items():
            values[key].append(value)
        return values


class HubRequest(OAuth2Request):  # type: ignore[misc]
    """An aiohttp request's parameters as Authlib reads them (query for the authorization
    endpoint, form for the token endpoint)."""

    def __init__(self, method: str, uri: str, params: Params) -> None:
        # Authlib refuses a non-https URI; the hub's listener speaks TLS only (mss.http), even
        # when the configured public address names the proxy before it as http.
        super().__init__(method, "https://" + uri.split("://", 1)[-1], headers={})
        self._params = params
        self.payload = _Payload(params)

    @property
    def args(self) -> Params:
        return self._params

    @property
    def form(self) -> Params:
        return self._params


class S256Challenge(CodeChallenge):  # type: ignore[misc]
    """RFC 7636 with S256 only, and a challenge required in every authorization request."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("Missing 'code_challenge' (PKCE S256 is required)")
        if data.get("code_challenge_method", "S256") != "S256":
            raise InvalidRequestError("Unsupported 'code_challenge_method': only S256")
        super().validate_code_challenge(grant, redirect_uri)


class CodeGrant(AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["none"]

    @property
    def work(self) -> Work:
        work: Work = self.server.work
        return work

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        self.work.new_codes.append((code, request))

    def query_authorization_code(self, code: str, client: Client) -> StoredCode | None:
        found = self.work.code
        if found is None or found.row.code_hash != token_hash(code):
            return None
        if found.connection.service_id != client.service.id:
            return None
        if found.row.used_at is not None:
            self.work.replayed = found.row
            return None
        if found.row.expires_at <= self.work.now or found.connection.revoked_at is not None:
            return None
        return found

    def delete_authorization_code(self, authorization_code: StoredCode) -> None:
        self.work.spent_code = authorization_code

    def authenticate_user(self, authorization_code: StoredCode) -> ServiceConnection:
        return authorization_code.connection


class RefreshGrant(RefreshTokenGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["none"]
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> StoredToken | None:
        found: StoredToken | None = self.server.work.refresh
        if found is None or found.row.refresh_hash != token_hash(refresh_token):
            return None
        if found.is_expired() or found.is_revoked():
            return None
        return found

    def authenticate_user(self, credential: StoredToken) -> ServiceConnection:
        return credential.connection

    def revoke_old_credential(self, credential: StoredToken) -> None:
        self.server.work.rotated = credential


class Revocation(RevocationEndpoint):  # type: ignore[misc]
    """RFC 7009 for public clients: the client names itself by client_id."""

    CLIENT_AUTH_METHODS = ["none"]

    def query_token(self, token_string: str, token_type_hint: str | None) -> StoredToken | None:
        found: StoredToken | None = self.server.work.presented
        if found is None:
            return None
        hashed = token_hash(token_string)
        return found if hashed in (found.row.access_hash, found.row.refresh_hash) else None

    def revoke_token(self, token: StoredToken, request: OAuth2Request) -> None:
        self.server.work.revoked = token


def _generate_token(
    grant_type: str,
    client: Client,
    user: Any = None,
    scope: str | None = None,
    expires_in: int | None = None,
    include_refresh_token: bool = True,
) -> dict[str, Any]:
    token: dict[str, Any] = {
        "token_type": "Bearer",
        "access_token": SERVICE_TOKEN_PREFIX + secrets.token_urlsafe(32),
        "expires_in": ACCESS_SECONDS,
        "scope": scope or "",
    }
    if include_refresh_token:
        token["refresh_token"] = secrets.token_urlsafe(32)
    return token


class HubAuthorizationServer(AuthorizationServer):  # type: ignore[misc]
    """Authlib's server on one request's ``Work``: it reads only what was loaded."""

    def __init__(self, work: Work) -> None:
        super().__init__()
        self.work = work
        self.register_grant(CodeGrant, [S256Challenge(required=True)])
        self.register_grant(RefreshGrant)
        self.register_endpoint(Revocation)
        self.register_token_generator("default", _generate_token)

    def query_client(self, client_id: str) -> Client | None:
        client = self.work.client
        return client if client is not None and client.get_client_id() == client_id else None

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        self.work.issued.append((token, request))

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None

    def create_oauth2_request(self, request: HubRequest) -> HubRequest:
        return request

    def handle_response(
        self, status: int, body: Any, headers: list[tuple[str, str]]
    ) -> tuple[int, Any, list[tuple[str, str]]]:
        return status, body, headers


Answer = tuple[int, Any, list[tuple[str, str]]]


async def _referenced(session: AsyncSession, client_id: str | None) -> Client | None:
    if not client_id:
        return None
    service = await service_by_client_id(session, client_id)
    if service is None or service.status != ServiceStatus.REFERENCED.value:
        return None  # invalid_client: shown to the patient, never redirected
    return Client(service)


@dataclass(frozen=True)
class AuthorizationAsked:
    """A valid authorization request: the service and the scopes it asks for."""

    service: CatalogueService
    scopes: list[str]


@dataclass(frozen=True)
class AuthorizationRefused:
    """An authorization request refused: to show (``redirect`` None) or to send back."""

    error: str
    description: str
    redirect: str | None = None
    asked: AuthorizationAsked | None = None  # the patient's choice was refused: ask again


@dataclass(frozen=True)
class AuthorizationAnswered:
    """The patient answered: where the browser goes back to the service (code or refusal)."""

    location: str
    asked: AuthorizationAsked


def _refused(error: OAuth2Error) -> AuthorizationRefused:
    status, _body, headers = error()
    location = dict(headers).get("Location") if status == 302 else None
    return AuthorizationRefused(error.error, error.description or "", location)


async def check_authorization(
    session: AsyncSession, params: Params, base_url: str
) -> AuthorizationAsked | AuthorizationRefused:
    """RFC 6749 §4.1.1 + RFC 7636 §4.3: what the consent page shows, or the refusal.

    An unknown client or a redirect URI that is not one of the service's is shown to the
    user (§4.1.2.1: never redirected); any other error goes back to the service.
    """
    work = Work(utcnow(), client=await _referenced(session, params.get("client_id")))
    server = HubAuthorizationServer(work)
    try:
        grant = server.get_consent_grant(HubRequest("GET", base_url, params), end_user=None)
    except OAuth2Error as error:
        return _refused(error)
    assert work.client is not None
    return AuthorizationAsked(work.client.service, scope_to_list(grant.request.scope))


async def answer_authorization(
    session: AsyncSession,
    params: Params,
    base_url: str,
    *,
    space: Patient,
    person: Patient,
    chosen: list[str] | None,
    source: str,
) -> AuthorizationRefused | AuthorizationAnswered:
    """The patient's answer (``chosen`` scopes, or None for a refusal): where to send the browser
    back (the code or ``access_denied``), or a refusal to show."""
    asked = await check_authorization(session, params, base_url)
    if isinstance(asked, AuthorizationRefused):
        return asked
    work = Work(utcnow(), client=Client(asked.service))
    server = HubAuthorizationServer(work)
    request = HubRequest("POST", base_url, params)
    grant = server.get_consent_grant(request, end_user=None)
    connection = None
    if chosen is not None:
        decided = decide_chosen_scopes(frozenset(asked.scopes), frozenset(chosen))
        if not decided:
            return AuthorizationRefused("invalid_scope", decided.sentence_fr, asked=asked)
        connection = await connect(
            session,
            asked.service,
            space,
            person,
            [s for s in asked.scopes if s in chosen],
            source=source,
        )
    status, _body, headers = server.create_authorization_response(
        request, grant_user=connection, grant=grant
    )
    location = dict(headers).get("Location")
    if status != 302 or location is None:
        return AuthorizationRefused("server_error", "La réponse n'a pas pu être préparée.")
    for code, _request in work.new_codes:
        assert connection is not None
        session.add(
            ServiceCode(
                code_hash=token_hash(code),
                connection_id=connection.id,
                redirect_uri=params["redirect_uri"],
                code_challenge=params["code_challenge"],
                code_challenge_method=params.get("code_challenge_method", "S256"),
                expires_at=work.now + dt.timedelta(seconds=CODE_SECONDS),
            )
        )
    return AuthorizationAnswered(location, asked)


class _Lost(Exception):
    """A code or refresh token spent by another request meanwhile: roll back, invalid_grant."""


async def _load_for_token(session: AsyncSession, params: Params, work: Work) -> None:
    work.client = await _referenced(session, params.get("client_id"))
    if params.get("code"):
        found = (
            await session.execute(
                select(ServiceCode, ServiceConnection)
                .join(ServiceConnection, ServiceConnection.id == ServiceCode.connection_id)
                .where(ServiceCode.code_hash == token_hash(params["code"]))
            )
        ).first()
        if found is not None:
            work.code = StoredCode(*found)
    if params.get("refresh_token"):
        found_token = (
            await session.execute(
                select(ServiceToken, ServiceConnection)
                .join(ServiceConnection, ServiceConnection.id == ServiceToken.connection_id)
                .where(ServiceToken.refresh_hash == token_hash(params["refresh_token"]))
            )
        ).first()
        if found_token is not None:
            work.refresh = StoredToken(found_token[0], found_token[1], work.now)


async def _spend(session: AsyncSession, work: Work) -> None:
    if work.spent_code is not None:
        spent = await session.execute(
            update(ServiceCode)
            .where(
                ServiceCode.code_hash == work.spent_code.row.code_hash,
                ServiceCode.used_at.is_(None),
            )
            .values(used_at=work.now)
        )
        if spent.rowcount != 1:  # type: ignore[attr-defined]
            raise _Lost()
    if work.rotated is not None:
        rotated = await session.execute(
            update(ServiceToken)
            .where(ServiceToken.id == work.rotated.row.id, ServiceToken.revoked_at.is_(None))
            .values(revoked_at=work.now)
        )
        if rotated.rowcount != 1:  # type: ignore[attr-defined]
            raise _Lost()
    for token, request in work.issued:
        connection: ServiceConnection = request.user
        session.add(
            ServiceToken(
                connection_id=connection.id,
                access_hash=token_hash(token["access_token"]),
                refresh_hash=token_hash(token["refresh_token"]),
                scopes=scope_to_list(token["scope"]) or [],
                created_at=work.now,
                access_expires_at=work.now + dt.timedelta(seconds=ACCESS_SECONDS),
                refresh_expires_at=work.now + dt.timedelta(days=REFRESH_DAYS),
            )
        )


async def _revoke_replayed(session: AsyncSession, code: ServiceCode, now: dt.datetime) -> None:
    """RFC 6749 §4.1.2: a code used twice revokes the tokens it gave."""
    await session.execute(
        update(ServiceToken)
        .where(
            ServiceToken.connection_id == code.connection_id,
            ServiceToken.revoked_at.is_(None),
            ServiceToken.created_at >= code.expires_at - dt.timedelta(seconds=CODE_SECONDS),
        )
        .values(revoked_at=now)
    )


async def _space_ins(session: AsyncSession, work: Work) -> str:
    """The space's INS, as SMART App Launch's ``patient`` token response parameter: the
    service names it as the subject of what it writes."""
    connection: ServiceConnection = work.issued[0][1].user
    patient = await session.get(Patient, connection.patient_id)
    assert patient is not None
    return patient.ins


async def token_response(db: Database, params: Params, base_url: str) -> Answer:
    """RFC 6749 §4.1.3 and §6: the token endpoint's answer (status, JSON body, headers)."""
    try:
        async with db.write() as session:
            work = Work(utcnow())
            await _load_for_token(session, params, work)
            server = HubAuthorizationServer(work)
            status, body, headers = server.create_token_response(
                HubRequest("POST", base_url, params)
            )
            if status == 200:
                await _spend(session, work)
                body["patient"] = await _space_ins(session, work)
            elif work.replayed is not None:
                await _revoke_replayed(session, work.replayed, work.now)
    except _Lost:
        return InvalidGrantError("The code or refresh token was already used.")()  # type: ignore[no-any-return]
    return status, body, headers


async def revocation_response(db: Database, params: Params, base_url: str) -> Answer:
    """RFC 7009 §2: 200 whether the token was known or not; a refresh token ends the
    connection it belongs to (§2.1: every access token of that grant with it), an access
    token only itself."""
    async with db.write() as session:
        work = Work(utcnow())
        work.client = await _referenced(session, params.get("client_id"))
        token = params.get("token")
        if token:
            hashed = token_hash(token)
            found = (
                await session.execute(
                    select(ServiceToken, ServiceConnection)
                    .join(ServiceConnection, ServiceConnection.id == ServiceToken.connection_id)
                    .where(
                        (ServiceToken.access_hash == hashed) | (ServiceToken.refresh_hash == hashed)
                    )
                )
            ).first()
            if found is not None:
                work.presented = StoredToken(found[0], found[1], work.now)
        server = HubAuthorizationServer(work)
        answer: Answer = server.create_endpoint_response(
            "revocation", HubRequest("POST", base_url, params)
        )
        revoked = work.revoked
        if answer[0] == 200 and revoked is not None and work.client is not None:
            if revoked.row.refresh_hash == token_hash(str(token)):
                await end_connection(session, revoked.connection, work.client.service)
            else:
                # The access token alone: it expires now, its refresh token stays good.
                await session.execute(
                    update(ServiceToken)
                    .where(ServiceToken.id == revoked.row.id)
                    .values(access_expires_at=work.now)
                )
    return answer
