"""The hub as an OpenID Connect relying party of one provider (Pro Santé Connect style).

- Discovery (OpenID Connect Discovery 1.0 §4): ``<issuer>/.well-known/openid-configuration``,
  whose ``issuer`` must be the configured one exactly (§4.3), kept ``jwks_cache_seconds``.
- Keys: the provider's JWKS, kept as long; a token whose ``kid`` is not in it, or whose
  signature the keys kept do not verify, fetches the set again at once (key rotation, also
  for a provider without kids), at most once every ``KEY_REFRESH_SECONDS``.
- The authorization code flow (OpenID Connect Core 1.0 §3.1) with ``state``, ``nonce``,
  PKCE S256 (RFC 7636) and ``acr_values``; the code is exchanged with client_secret_basic.
- ID tokens (Core §3.1.3.7) and JWT access tokens: the JWS signature (RFC 7515; RS256 or
  ES256 only, never ``none`` or an HMAC) checked with joserfc, then ``iss``, ``aud`` (and
  ``azp`` when there are several audiences), ``exp``, ``nbf``/``iat`` with
  ``leeway_seconds``, and the login's ``nonce``. An opaque access token is asked of the
  provider's userinfo endpoint (Core §5.3): its answer, or its refusal, is the check.

Each failure raises ``OidcRefused`` with the refusal of ``mss.policy.professional_login``
naming what failed (wrong issuer, expired, bad signature...). Who the token names, and
whether they may act as a professional, is for ``decide_oidc_professional``.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hmac
import json
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    DecodeError,
    ExpiredTokenError,
    InvalidClaimError,
    InvalidKeyIdError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import KeySet
from joserfc.jws import extract_compact

from mss.config import Oidc
from mss.policy import Decision
from mss.policy.professional_login import (
    PROVIDER_ERROR,
    PROVIDER_UNAVAILABLE,
    TOKEN_BAD_SIGNATURE,
    TOKEN_EXPIRED,
    TOKEN_INACTIVE,
    TOKEN_MALFORMED,
    TOKEN_NONCE,
    TOKEN_NOT_YET_VALID,
    TOKEN_UNKNOWN_KEY,
    TOKEN_WRONG_AUDIENCE,
    TOKEN_WRONG_ISSUER,
    OidcIdentity,
    token_refused,
)

ALGORITHMS = ("RS256", "ES256")
DISCOVERY_PATH = "/.well-known/openid-configuration"
KEY_REFRESH_SECONDS = 10.0  # an unknown kid fetches the keys again at most this often
MAX_DOCUMENT_BYTES = 256 * 1024  # discovery, keys, token answers: small JSON documents


class OidcRefused(Exception):
    """A token or a provider's answer failed a check; ``decision`` says which and why."""

    def __init__(self, decision: Decision) -> None:
        super().__init__(decision.sentence)
        self.decision = decision


def _refused(reason: str, detail: str = "") -> OidcRefused:
    return OidcRefused(token_refused(reason, detail))


@dataclass(frozen=True)
class ProviderMetadata:
    """What discovery told about the provider."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str = ""


@dataclass(frozen=True)
class LoginStart:
    """A login begun: the browser goes to ``url``; the rest is kept for its return."""

    url: str
    state: str
    nonce: str
    code_verifier: str


@dataclass(frozen=True)
class VerifiedToken:
    """A token every check accepted: its claims, and the identity they name."""

    claims: dict[str, Any]
    identity: OidcIdentity
    kind: str  # id_token, access_token (JWT), userinfo


@dataclass
class _Cached:
    metadata: ProviderMetadata | None = None
    metadata_at: float = 0.0
    keys: KeySet | None = None
    keys_at: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class RelyingParty:
    """One configured provider, its discovery document and keys kept for this process."""

    def __init__(
        self, settings: Oidc, public_url: str, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.settings = settings
        self.issuer = settings.issuer  # compared exactly, as the provider writes it
        self._default_redirect_uri = public_url.rstrip("/") + "/pro/retour"
        self.clock = clock
        self._cache = _Cached()

    @property
    def redirect_uri(self) -> str:
        """Where the provider sends the browser back: ``[oidc] redirect_uri`` or /pro/retour."""
        return self.settings.redirect_uri or self._default_redirect_uri

    # -- provider documents -----------------------------------------------------------

    async def _get_json(
        self,
        url: str,
        *,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        accept_error: bool = False,
    ) -> tuple[int, Any]:
        timeout = aiohttp.ClientTimeout(total=self.settings.timeout_seconds)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as client,
                client.request(
                    "POST" if data is not None else "GET",
                    url,
                    data=data,
                    headers={"Accept": "application/json", **(headers or {})},
                    allow_redirects=False,
                ) as response,
            ):
                body = await response.content.read(MAX_DOCUMENT_BYTES + 1)
                status = response.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise _refused(PROVIDER_UNAVAILABLE, f"{url}: {exc or type(exc).__name__}") from None
        if len(body) > MAX_DOCUMENT_BYTES:
            raise _refused(PROVIDER_UNAVAILABLE, f"{url} answered more than 256 KiB")
        if status >= 400 and not accept_error:
            raise _refused(PROVIDER_UNAVAILABLE, f"{url} answered HTTP {status}")
        try:
            return status, json.loads(body)
        except ValueError:
            if status >= 400:
                return status, {}
            raise _refused(PROVIDER_UNAVAILABLE, f"{url} did not answer JSON") from None

    async def metadata(self) -> ProviderMetadata:
        """The discovery document, fetched again once ``jwks_cache_seconds`` old."""
        cache = self._cache
        if cache.metadata is not None and self._fresh(cache.metadata_at):
            return cache.metadata
        async with cache.lock:
            if cache.metadata is None or not self._fresh(cache.metadata_at):
                _, document = await self._get_json(self.issuer.rstrip("/") + DISCOVERY_PATH)
                cache.metadata = self._read_metadata(document)
                cache.metadata_at = self.clock()
            return cache.metadata

    def _read_metadata(self, document: Any) -> ProviderMetadata:
        if not isinstance(document, dict):
            raise _refused(PROVIDER_UNAVAILABLE, "the discovery document is not a JSON object")
        if document.get("issuer") != self.issuer:
            # Discovery §4.3: the issuer must be exactly the one asked about.
            raise _refused(TOKEN_WRONG_ISSUER, f"{document.get('issuer')!r} (discovery)")
        missing = [
            name
            for name in ("authorization_endpoint", "token_endpoint", "jwks_uri")
            if not isinstance(document.get(name), str)
        ]
        if missing:
            raise _refused(
                PROVIDER_UNAVAILABLE, f"the discovery document has no {', '.join(missing)}"
            )

        def text(name: str) -> str:
            value = document.get(name)
            return value if isinstance(value, str) else ""

        return ProviderMetadata(
            self.issuer,
            text("authorization_endpoint"),
            text("token_endpoint"),
            text("jwks_uri"),
            text("userinfo_endpoint"),
        )

    def _fresh(self, at: float) -> bool:
        return self.clock() - at < self.settings.jwks_cache_seconds

    async def keys(self, *, refresh: bool = False) -> KeySet:
        """The provider's signing keys; ``refresh`` (an unknown kid) fetches them again soon."""
        cache = self._cache
        recent = self.clock() - cache.keys_at < KEY_REFRESH_SECONDS
        if cache.keys is not None and self._fresh(cache.keys_at) and not (refresh and not recent):
            return cache.keys
        metadata = await self.metadata()
        async with cache.lock:
            recent = self.clock() - cache.keys_at < KEY_REFRESH_SECONDS
            if cache.keys is None or not self._fresh(cache.keys_at) or (refresh and not recent):
                _, document = await self._get_json(metadata.jwks_uri)
                try:
                    cache.keys = KeySet.import_key_set(document)
                except (JoseError, ValueError, TypeError, KeyError) as exc:
                    raise _refused(
                        PROVIDER_UNAVAILABLE, f"the provider's JWKS cannot be read: {exc}"
                    ) from None
                cache.keys_at = self.clock()
            return cache.keys

    # -- the authorization code flow ---------------------------------------------------

    async def start_login(self) -> LoginStart:
        """A new login: the authorization request's URL with fresh state, nonce and PKCE."""
        metadata = await self.metadata()
        state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(64)  # 86 characters, RFC 7636 §4.1
        query = {
            "response_type": "code",
            "client_id": self.settings.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": self.settings.scope,
            "state": state,
            "nonce": nonce,
            "code_challenge": create_s256_code_challenge(verifier),
            "code_challenge_method": "S256",
        }
        if self.settings.acr_values:
            query["acr_values"] = " ".join(self.settings.acr_values)
        separator = "&" if "?" in metadata.authorization_endpoint else "?"
        url = metadata.authorization_endpoint + separator + urlencode(query, quote_via=quote)
        return LoginStart(url, state, nonce, verifier)

    def _client_auth(self) -> dict[str, str]:
        """client_secret_basic (RFC 6749 §2.3.1: each part form-encoded first)."""
        pair = f"{quote(self.settings.client_id, safe='')}:"
        pair += quote(self.settings.client_secret, safe="")
        return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}

    async def finish_login(self, code: str, code_verifier: str, nonce: str) -> VerifiedToken:
        """Exchange the code (with its PKCE verifier) and verify the ID token it gives."""
        metadata = await self.metadata()
        status, answer = await self._get_json(
            metadata.token_endpoint,
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self.redirect_uri,
                "code_verifier": code_verifier,
            },
            headers=self._client_auth(),
            accept_error=True,
        )
        if status >= 400 or not isinstance(answer, dict) or "error" in answer:
            error = answer.get("error", f"HTTP {status}") if isinstance(answer, dict) else status
            described = answer.get("error_description") if isinstance(answer, dict) else None
            raise _refused(PROVIDER_ERROR, f"{error}: {described}" if described else str(error))
        id_token = answer.get("id_token")
        if not isinstance(id_token, str):
            raise _refused(PROVIDER_ERROR, "the token endpoint gave no id_token")
        return await self.verify_id_token(id_token, nonce=nonce)

    # -- tokens ----------------------------------------------------------------------

    async def verify_id_token(self, token: str, *, nonce: str | None) -> VerifiedToken:
        """An ID token of this provider for this client (and, in a login, with its nonce)."""
        claims = await self._verify_jwt(token)
        self._check_audience(claims, id_token=True)
        if nonce is not None:
            sent = claims.get("nonce")
            if not isinstance(sent, str) or not hmac.compare_digest(sent, nonce):
                raise _refused(TOKEN_NONCE)
        return VerifiedToken(claims, self.identity(claims), "id_token")

    async def verify_bearer(self, token: str) -> VerifiedToken:
        """A bearer token sent to the document API: a JWT (ID token or access token) is
        verified here; an opaque one is asked of the provider's userinfo endpoint."""
        token = token.strip()
        if token.count(".") == 2:
            claims = await self._verify_jwt(token)
            self._check_audience(claims, id_token=False)
            kind = "id_token" if "nonce" in claims or claims.get("typ") == "ID" else "access_token"
            return VerifiedToken(claims, self.identity(claims), kind)
        if not token or len(token) > 4096 or not token.isascii() or not token.isprintable():
            raise _refused(TOKEN_MALFORMED, "not a token")
        metadata = await self.metadata()
        if not metadata.userinfo_endpoint:
            raise _refused(TOKEN_MALFORMED, "an opaque token, and the provider has no userinfo")
        status, answer = await self._get_json(
            metadata.userinfo_endpoint,
            headers={"Authorization": f"Bearer {token}"},
            accept_error=True,
        )
        if status in (400, 401, 403):
            raise _refused(TOKEN_INACTIVE)
        if status >= 400 or not isinstance(answer, dict) or not isinstance(answer.get("sub"), str):
            raise _refused(PROVIDER_UNAVAILABLE, f"userinfo answered HTTP {status}")
        return VerifiedToken(answer, self.identity(answer), "userinfo")

    async def _verify_jwt(self, token: str) -> dict[str, Any]:
        try:
            header = extract_compact(token.encode("ascii")).headers()
        except (DecodeError, JoseError, ValueError, UnicodeError) as exc:
            raise _refused(TOKEN_MALFORMED, str(exc) or type(exc).__name__) from None
        if header.get("alg") not in ALGORITHMS:
            raise _refused(TOKEN_MALFORMED, f"algorithm {header.get('alg')!r} is not accepted")
        kid = header.get("kid")
        try:
            decoded = self._decode(token, await self.keys(), kid, final=False)
        except (InvalidKeyIdError, BadSignatureError):
            # The keys kept may predate a rotation (a new kid, or a provider without kids):
            # fetch them again, at most once every KEY_REFRESH_SECONDS, and try once more.
            decoded = self._decode(token, await self.keys(refresh=True), kid, final=True)
        claims = decoded.claims
        registry = jwt.JWTClaimsRegistry(
            now=lambda: int(self.clock()),
            leeway=self.settings.leeway_seconds,
            iss={"essential": True, "value": self.issuer},
            sub={"essential": True},
            exp={"essential": True},
        )
        try:
            registry.validate(claims)
        except ExpiredTokenError:
            raise _refused(TOKEN_EXPIRED, _utc(claims.get("exp"))) from None
        except InvalidClaimError as exc:
            if exc.claim == "iss":
                raise _refused(TOKEN_WRONG_ISSUER, str(claims.get("iss"))) from None
            if exc.claim in ("nbf", "iat") and "NumericDate" not in str(exc.description):
                raise _refused(TOKEN_NOT_YET_VALID, _utc(claims.get(exc.claim))) from None
            raise _refused(TOKEN_MALFORMED, f"claim {exc.claim}: {exc.description}") from None
        except MissingClaimError as exc:
            raise _refused(TOKEN_MALFORMED, f"missing claim {exc.claim}") from None
        return claims

    def _decode(self, token: str, keys: KeySet, kid: object, *, final: bool) -> jwt.Token:
        """The JWS checked with ``keys``; a key or signature failure is the refusal if ``final``."""
        try:
            return jwt.decode(token, keys, algorithms=list(ALGORITHMS))
        except InvalidKeyIdError:
            if not final:
                raise
            raise _refused(TOKEN_UNKNOWN_KEY, f"kid {kid!r}") from None
        except BadSignatureError:
            if not final:
                raise
            raise _refused(TOKEN_BAD_SIGNATURE) from None
        except (DecodeError, JoseError, ValueError) as exc:
            raise _refused(TOKEN_MALFORMED, str(exc) or type(exc).__name__) from None

    def _check_audience(self, claims: Mapping[str, Any], *, id_token: bool) -> None:
        """Core §3.1.3.7 (2-5): our client among the audiences; with several, ``azp`` is us.

        A provider's JWT access token may name the resource instead (Keycloak: ``account``)
        with us as ``azp``: that is accepted for access tokens, never for ID tokens.
        """
        client = self.settings.client_id
        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        azp = claims.get("azp")
        if client in audiences:
            if len(audiences) > 1 and azp is not None and azp != client:
                raise _refused(TOKEN_WRONG_AUDIENCE, f"azp {azp}")
            return
        if not id_token and azp == client:
            return
        raise _refused(TOKEN_WRONG_AUDIENCE, ", ".join(map(str, audiences)) or "no aud")

    def identity(self, claims: Mapping[str, Any]) -> OidcIdentity:
        """Who the claims name: the first idNat claim present (``id_nat_claims``), the acr."""
        id_nat = next(
            (
                str(claims[name]).strip()
                for name in self.settings.id_nat_claims
                if isinstance(claims.get(name), str | int) and str(claims[name]).strip()
            ),
            None,
        )
        acr = claims.get("acr")
        return OidcIdentity(
            str(claims.get("iss", self.issuer)),
            str(claims.get("sub", "")),
            id_nat,
            acr if isinstance(acr, str) else None,
        )


def _utc(when: object) -> str:
    """A token's NumericDate as a time of day in UTC."""
    if not isinstance(when, int | float):
        return "?"
    try:
        return dt.datetime.fromtimestamp(when, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return "?"
