"""Tokens of a connected service for the DMP world, by the hub's own OAuth code (no HTTP)."""

from __future__ import annotations

import secrets
import urllib.parse
from typing import Any

from multidict import MultiDict

from examples.weight_log import s256
from mss.catalogue.oauth import AuthorizationAnswered, answer_authorization, token_response
from mss.catalogue.store import add_service
from mss.db import Database
from mss.directory.models import Patient

BASE = "https://hub.test"
REDIRECT = "https://service.test/retour"


async def issue_tokens(
    db: Database, client_id: str, space: Patient, person: Patient, scopes: tuple[str, ...]
) -> dict[str, Any]:
    """Register ``client_id`` (referenced) with ``scopes``, connect it to ``space`` as
    ``person`` through the authorization code + PKCE flow, and return the token response."""
    async with db.write() as session:
        await add_service(
            session,
            name=f"Service {client_id}",
            editor="Éditeur",
            description="",
            scopes=list(scopes),
            redirect_uris=[REDIRECT],
            home_url="https://service.test/",
            status="referenced",
            client_id=client_id,
        )
    verifier = secrets.token_urlsafe(48)
    params = MultiDict(
        response_type="code",
        client_id=client_id,
        redirect_uri=REDIRECT,
        scope=" ".join(scopes),
        state="etat",
        code_challenge=s256(verifier),
        code_challenge_method="S256",
    )
    async with db.write() as session:
        answered = await answer_authorization(
            session,
            params,
            BASE + "/oauth/autoriser",
            space=space,
            person=person,
            chosen=list(scopes),
            source="test",
        )
    assert isinstance(answered, AuthorizationAnswered), answered
    code = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(answered.location).query))["code"]
    status, body, _headers = await token_response(
        db,
        MultiDict(
            grant_type="authorization_code",
            code=code,
            redirect_uri=REDIRECT,
            client_id=client_id,
            code_verifier=verifier,
        ),
        BASE + "/oauth/token",
    )
    assert status == 200, body
    return dict(body)
