"""mss.oidc.RelyingParty on its own: discovery, the keys it keeps, the algorithms it takes.

Against the real provider of ``tests/dmp/oidc_world.py`` (oidc-provider-mock in a thread)
where a provider is needed; the algorithm checks sign tokens with keys made here, the
relying party's cache holding them as a provider's JWKS would.
"""

from __future__ import annotations

import base64
import json
import time

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, OctKey, RSAKey

from mss.config import Oidc
from mss.oidc import OidcRefused, ProviderMetadata, RelyingParty
from mss.policy.professional_login import (
    PROVIDER_UNAVAILABLE,
    TOKEN_MALFORMED,
    TOKEN_NONCE,
    TOKEN_NOT_YET_VALID,
    TOKEN_UNKNOWN_KEY,
    TOKEN_WRONG_AUDIENCE,
    TOKEN_WRONG_ISSUER,
)
from tests.dmp.oidc_world import CLIENT_ID, claims_of, free_port, running_provider

ID_NAT = "810000000011"


def party(issuer: str) -> RelyingParty:
    return RelyingParty(Oidc(issuer=issuer, client_id=CLIENT_ID), "https://hub.test")


async def test_discovery_and_keys_are_kept_while_the_provider_is_away() -> None:
    with running_provider() as provider:
        await provider.user("dr", **claims_of(ID_NAT))
        first, second = await provider.tokens("dr"), await provider.tokens("dr")
        rp = party(provider.url)
        verified = await rp.verify_bearer(first["id_token"])
        assert verified.identity.id_nat == ID_NAT and verified.identity.acr == "eidas1"
    # the provider is stopped: the discovery document and the JWKS come from the cache
    again = await rp.verify_bearer(second["id_token"])
    assert again.identity.subject == "dr" and again.kind == "id_token"


async def test_a_key_not_in_the_cached_set_fetches_the_keys_again() -> None:
    """Key rotation: the set kept is older than the token's key; one fetch finds it."""
    with running_provider() as provider:
        await provider.user("dr", **claims_of(ID_NAT))
        token = (await provider.tokens("dr"))["id_token"]
        rp = party(provider.url)
        await rp.metadata()
        stale = KeySet([RSAKey.generate_key(2048, parameters={"kid": "old"})])
        rp._cache.keys, rp._cache.keys_at = stale, time.time() - 60
        assert (await rp.verify_bearer(token)).identity.id_nat == ID_NAT
        assert rp._cache.keys is not stale


async def test_discovery_naming_another_issuer_is_refused() -> None:
    with running_provider() as provider:
        rp = party(provider.url + "/")  # not the issuer the provider states
        with pytest.raises(OidcRefused) as refused:
            await rp.metadata()
    assert refused.value.decision.reason == TOKEN_WRONG_ISSUER
    assert "(discovery)" in refused.value.decision.sentence


async def test_an_unreachable_provider_is_503() -> None:
    rp = party(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(OidcRefused) as refused:
        await rp.verify_bearer("opaque-token")
    decision = refused.value.decision
    assert (decision.reason, decision.status) == (PROVIDER_UNAVAILABLE, 503)


async def test_the_login_nonce_must_be_the_one_sent() -> None:
    with running_provider() as provider:
        await provider.user("dr", **claims_of(ID_NAT))
        token = (await provider.tokens("dr"))["id_token"]
        with pytest.raises(OidcRefused) as refused:
            await party(provider.url).verify_id_token(token, nonce="another login's nonce")
    assert refused.value.decision.reason == TOKEN_NONCE


ISSUER = "https://idp.test"


def _with_keys(keys: KeySet) -> RelyingParty:
    rp = party(ISSUER)
    rp._cache.metadata = ProviderMetadata(ISSUER, f"{ISSUER}/a", f"{ISSUER}/t", f"{ISSUER}/k")
    rp._cache.metadata_at = rp._cache.keys_at = time.time()
    rp._cache.keys = keys
    return rp


def _claims() -> dict[str, object]:
    now = int(time.time())
    return {"iss": ISSUER, "sub": "dr", "aud": CLIENT_ID, "iat": now, "exp": now + 300} | (
        claims_of(ID_NAT)
    )


def _part(value: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


async def test_es256_is_accepted() -> None:
    key = ECKey.generate_key("P-256", parameters={"kid": "ec1"})
    token = jwt.encode({"alg": "ES256", "kid": "ec1"}, _claims(), key)
    verified = await _with_keys(KeySet([key])).verify_bearer(token)
    assert verified.identity.id_nat == ID_NAT


@pytest.mark.parametrize("alg", ["HS256", "none"])
async def test_hmac_and_unsigned_tokens_are_refused(alg: str) -> None:
    secret = OctKey.generate_key(256, parameters={"kid": "k"})
    rp = _with_keys(KeySet([secret]))
    if alg == "HS256":
        token = jwt.encode({"alg": "HS256", "kid": "k"}, _claims(), secret)
    else:
        token = f"{_part({'alg': 'none'})}.{_part(_claims())}."
    with pytest.raises(OidcRefused) as refused:
        await rp.verify_bearer(token)
    assert refused.value.decision.reason == TOKEN_MALFORMED
    assert f"algorithm '{alg}' is not accepted" in refused.value.decision.sentence


async def test_a_kid_the_provider_never_published_is_refused() -> None:
    published = ECKey.generate_key("P-256", parameters={"kid": "published"})
    other = ECKey.generate_key("P-256", parameters={"kid": "never"})
    rp = _with_keys(KeySet([published]))
    token = jwt.encode({"alg": "ES256", "kid": "never"}, _claims(), other)
    rp._cache.keys_at = time.time()  # fetched just now: no second fetch within 10 s
    with pytest.raises(OidcRefused) as refused:
        await rp.verify_bearer(token)
    assert refused.value.decision.reason == TOKEN_UNKNOWN_KEY


async def test_doctor_says_whether_the_provider_answers() -> None:
    from mss.config import Settings
    from mss.doctor import check_oidc

    settings = Settings()
    assert (await check_oidc(settings)).ok  # off
    with running_provider() as provider:
        settings.oidc = Oidc(issuer=provider.url, client_id=CLIENT_ID)
        check = await check_oidc(settings)
    assert check.ok and "discovery and 1 signing key(s)" in check.line
    check = await check_oidc(settings)  # stopped
    assert not check.ok and "cannot be reached" in check.line


def _es256(claims: dict[str, object]) -> tuple[RelyingParty, str]:
    key = ECKey.generate_key("P-256", parameters={"kid": "ec1"})
    return _with_keys(KeySet([key])), jwt.encode({"alg": "ES256", "kid": "ec1"}, claims, key)


async def test_a_jwt_access_token_for_the_resource_with_us_as_azp_is_accepted() -> None:
    """Keycloak (Pro Santé Connect) access tokens: aud names the resource, azp the client."""
    rp, token = _es256(_claims() | {"aud": "account", "azp": CLIENT_ID})
    verified = await rp.verify_bearer(token)
    assert verified.kind == "access_token" and verified.identity.id_nat == ID_NAT
    with pytest.raises(OidcRefused) as refused:  # never as an ID token
        await rp.verify_id_token(token, nonce=None)
    assert refused.value.decision.reason == TOKEN_WRONG_AUDIENCE


@pytest.mark.parametrize(
    "audience",
    [
        {"aud": "account", "azp": "another-service"},
        {"aud": [CLIENT_ID, "another-service"], "azp": "another-service"},
        {"aud": []},
    ],
)
async def test_a_token_for_someone_else_is_refused(audience: dict[str, object]) -> None:
    rp, token = _es256(_claims() | audience)
    with pytest.raises(OidcRefused) as refused:
        await rp.verify_bearer(token)
    assert refused.value.decision.reason == TOKEN_WRONG_AUDIENCE


async def test_a_token_not_valid_yet_is_refused() -> None:
    rp, token = _es256(_claims() | {"nbf": int(time.time()) + 600})
    with pytest.raises(OidcRefused) as refused:
        await rp.verify_bearer(token)
    decision = refused.value.decision
    assert decision.reason == TOKEN_NOT_YET_VALID and "not valid before" in decision.sentence


async def test_a_token_without_exp_is_refused() -> None:
    claims = _claims()
    del claims["exp"]
    rp, token = _es256(claims)
    with pytest.raises(OidcRefused) as refused:
        await rp.verify_bearer(token)
    assert refused.value.decision.sentence.endswith("missing claim exp")
