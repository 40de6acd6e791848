"""What the document API's handlers share: FHIR answers, refusals as OperationOutcome, the
caller's transaction, the patient by INS, the stated break-glass reason."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from dmp_bridge.access import DmpRefused, Viewer
from dmp_bridge.api_auth import (
    INSUFFICIENT_SCOPE,
    REALM,
    BearerRefused,
    Caller,
    Unauthenticated,
    authenticate,
    count_failed_login,
    verify_bearer_first,
    viewer_of,
)
from dmp_bridge.fhir_documents import (
    FHIR_JSON,
    FhirInputError,
    operation_outcome,
    parse_patient_identifier,
)
from mss.directory.models import Patient
from mss.directory.store import find_patient_by_ins
from mss.errors import DatabaseUnavailable
from mss.notify import portal_url
from mss.policy.consent import NO_RECORD, decide_break_glass_reason
from mss.web import DB, SETTINGS

_ISSUE = {400: "invalid", 401: "login", 403: "forbidden", 404: "not-found", 422: "processing"}
T = TypeVar("T")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# Nothing the API answers is a page: no script, no style, no frame, no plugin, even if opened.
SANDBOX = {
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "X-Content-Type-Options": "nosniff",
}


def fhir_response(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(
        status=status,
        text=json.dumps(body, ensure_ascii=False),
        content_type=FHIR_JSON,
        charset="utf-8",
        headers=SANDBOX,
    )


def refusal(status: int, code: str, text: str, challenge: str | None = None) -> web.Response:
    """An OperationOutcome; a 401 always carries a challenge (Basic unless told), another status
    only the one given (a 403 insufficient_scope, RFC 6750 §3.1)."""
    response = fhir_response(operation_outcome(code, text), status)
    if status == 401 or challenge is not None:
        response.headers["WWW-Authenticate"] = challenge or REALM
    return response


def outcomes(handler: Handler) -> Handler:
    """Turn refusals into OperationOutcome responses (a professional's or a connected
    service's: a service's refused token is an RFC 6750 Bearer challenge)."""

    async def wrapper(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except FhirInputError as exc:
            if isinstance(exc, Unauthenticated):
                exc = await count_failed_login(request, exc)
                return refusal(exc.status, exc.code, exc.text, exc.challenge)
            if isinstance(exc, BearerRefused):
                return refusal(exc.status, exc.code, exc.text, exc.challenge)
            return refusal(exc.status, exc.code, exc.text)
        except DmpRefused as exc:
            decision = exc.decision
            scope = decision.reason == "insufficient_scope"
            return refusal(
                decision.status,
                _ISSUE.get(decision.status, "processing"),
                f"{decision.sentence} / {decision.sentence_fr}",
                INSUFFICIENT_SCOPE if scope else None,
            )
        except DatabaseUnavailable as exc:
            return refusal(503, "transient", exc.sentence)

    return wrapper


def base_url(request: web.Request) -> str:
    """The hub's configured public address (the Host header is the client's to forge)."""
    return portal_url(request.app[SETTINGS])


def self_url(request: web.Request) -> str:
    return base_url(request) + str(request.rel_url)


def searched_ins(request: web.Request) -> str:
    """The INS of a search whose one parameter is ``patient.identifier``; 400 otherwise."""
    unknown = set(request.query) - {"patient.identifier"}
    if unknown:
        raise FhirInputError(
            400,
            "not-supported",
            f"unknown search parameter(s) {', '.join(sorted(unknown))}; this server knows "
            "patient.identifier",
        )
    identifier = request.query.get("patient.identifier")
    if not identifier:
        raise FhirInputError(400, "required", "patient.identifier is required")
    return parse_patient_identifier(identifier)[1]


async def patient_by_ins(session: AsyncSession, ins: str) -> Patient:
    patient = await find_patient_by_ins(session, ins)
    if patient is None:
        raise DmpRefused(NO_RECORD)
    return patient


async def in_transaction(
    request: web.Request, work: Callable[[AsyncSession, Caller], Awaitable[T]]
) -> T:
    """Authenticate and run ``work`` in one transaction; a refusal still commits its audit event.

    A Bearer token is verified with the provider first, before the transaction opens, so no
    write lock waits on it."""
    await verify_bearer_first(request)
    async with request.app[DB].write() as session:
        caller = await authenticate(request, session)
        try:
            return await work(session, caller)
        except DmpRefused as refused:
            failure = refused
    raise failure


def viewer_with_stated_reason(request: web.Request, caller: Caller) -> Viewer:
    """The viewer, a stated break-glass reason judged before any record is looked at.

    The consent engine judges it only for a record closed to the caller: by id, that
    answer would tell an existing document from a missing one.
    """
    viewer = viewer_of(request, caller)
    if viewer.break_glass_reason is not None:
        stated = decide_break_glass_reason(viewer.break_glass_reason)
        if not stated:
            raise FhirInputError(
                stated.status, "invalid", f"{stated.sentence} / {stated.sentence_fr}"
            )
    return viewer
