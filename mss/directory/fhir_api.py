"""Read-only FHIR R4 directory API: Practitioner, PractitionerRole, Organization.

``GET /fhir/<Type>?<params>`` answers a searchset Bundle, ``GET /fhir/<Type>/<id>``
one resource. Mailboxes appear as Annuaire Santé ContactPoints; a red-listed,
closed or suspended mailbox is never published nor findable. An unknown
parameter is refused (400 OperationOutcome) rather than silently ignored,
so a client never mistakes an unfiltered answer for a filtered one.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from mss.config import portal_url
from mss.directory.fhir_resources import (
    organisation_resource,
    practitioner_resource,
    role_resource,
)
from mss.directory.identifiers import (
    FINESS_SYSTEMS,
    IDNPS_SYSTEM,
    IDNST_SYSTEM,
    RPPS_SYSTEMS,
    normalise_address,
    normalise_finess,
    normalise_id_nat,
)
from mss.directory.models import Mailbox, MailboxKind, MailboxState, Organisation, Professional
from mss.errors import DatabaseUnavailable, InvalidInput
from mss.web import DB, SETTINGS

FHIR_JSON = "application/fhir+json"
MAX_RESULTS = 100
PARAMETERS = {
    "Practitioner": ("name", "identifier", "mailbox-mss"),
    "PractitionerRole": ("mailbox-mss",),
    "Organization": ("name", "identifier", "mailbox-mss"),
}
Resource = dict[str, Any]


class SearchError(Exception):
    """A request the API refuses, with its HTTP status and OperationOutcome issue code."""

    def __init__(self, status: int, code: str, text: str) -> None:
        super().__init__(text)
        self.status, self.code, self.text = status, code, text


def fhir_response(body: Resource, status: int = 200) -> web.Response:
    return web.Response(
        status=status,
        text=json.dumps(body, ensure_ascii=False),
        content_type=FHIR_JSON,
        charset="utf-8",
    )


def operation_outcome(status: int, code: str, text: str) -> web.Response:
    return fhir_response(
        {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": code, "diagnostics": text}],
        },
        status,
    )


def published() -> ColumnElement[bool]:
    """Mailboxes the directory may show: active, not red-listed, not a patient's."""
    return and_(
        Mailbox.red_list.is_(False),
        Mailbox.state == MailboxState.ACTIVE,
        Mailbox.kind != MailboxKind.PAT,
    )


async def _mailboxes(session: AsyncSession, condition: ColumnElement[bool]) -> list[Mailbox]:
    query = select(Mailbox).where(published(), condition).order_by(Mailbox.address)
    return list((await session.scalars(query)).all())


def _split_token(value: str) -> tuple[str | None, str]:
    """``system|value`` or a bare value (``|value`` means no system)."""
    if "|" not in value:
        return None, value
    system, _, code = value.partition("|")
    return system or None, code


def _id_nat_of(token: str) -> str | None:
    system, value = _split_token(token)
    if system in RPPS_SYSTEMS:
        value = "8" + value
    elif system not in (None, IDNPS_SYSTEM):
        return None
    try:
        return normalise_id_nat(value, check_key=False)
    except InvalidInput:
        return None


def _finess_of(token: str) -> str | None:
    system, value = _split_token(token)
    if system == IDNST_SYSTEM or (system is None and len(value) == 10 and value.startswith("1")):
        value = value[1:] if value.startswith("1") and len(value) == 10 else ""
    elif system not in FINESS_SYSTEMS and system is not None:
        return None
    try:
        return normalise_finess(value, check_key=False)
    except InvalidInput:
        return None


def _mailbox_address(value: str) -> str:
    try:
        return normalise_address(value)
    except InvalidInput:
        return ""  # matches nothing


def _starts_word(column: Any, text: str) -> ColumnElement[bool]:
    lowered = func.lower(column)
    return or_(
        lowered.startswith(text, autoescape=True),
        lowered.contains(" " + text, autoescape=True),
        lowered.contains("-" + text, autoescape=True),
    )


def _practitioner_query(params: dict[str, str]) -> Select[Professional]:
    query = select(Professional)
    if "name" in params:
        text = params["name"].lower()
        query = query.where(
            or_(
                _starts_word(Professional.family_name, text),
                _starts_word(Professional.given_names, text),
            )
        )
    if "identifier" in params:
        query = query.where(Professional.id_nat == _id_nat_of(params["identifier"]))
    if "mailbox-mss" in params:
        owners = select(Mailbox.professional_id).where(
            published(), func.lower(Mailbox.address) == _mailbox_address(params["mailbox-mss"])
        )
        query = query.where(Professional.id.in_(owners))
    return query.order_by(Professional.family_name, Professional.given_names, Professional.id)


def _organisation_query(params: dict[str, str]) -> Select[Organisation]:
    query = select(Organisation)
    if "name" in params:
        query = query.where(
            func.lower(Organisation.name).contains(params["name"].lower(), autoescape=True)
        )
    if "identifier" in params:
        query = query.where(Organisation.finess == _finess_of(params["identifier"]))
    if "mailbox-mss" in params:
        owners = select(Mailbox.organisation_id).where(
            published(),
            Mailbox.professional_id.is_(None),
            func.lower(Mailbox.address) == _mailbox_address(params["mailbox-mss"]),
        )
        query = query.where(Organisation.id.in_(owners))
    return query.order_by(Organisation.name, Organisation.id)


async def _practitioners(session: AsyncSession, rows: list[Professional]) -> list[Resource]:
    return [
        practitioner_resource(row, await _mailboxes(session, Mailbox.professional_id == row.id))
        for row in rows
    ]


async def _roles(session: AsyncSession, rows: list[Professional]) -> list[Resource]:
    resources = []
    for row in rows:
        organisation = (
            await session.get(Organisation, row.organisation_id) if row.organisation_id else None
        )
        mailboxes = await _mailboxes(session, Mailbox.professional_id == row.id)
        resources.append(role_resource(row, organisation, mailboxes))
    return resources


async def _organisations(session: AsyncSession, rows: list[Organisation]) -> list[Resource]:
    return [
        organisation_resource(
            row,
            await _mailboxes(
                session, and_(Mailbox.organisation_id == row.id, Mailbox.professional_id.is_(None))
            ),
        )
        for row in rows
    ]


Builder = Callable[[AsyncSession, list[Any]], Awaitable[list[Resource]]]
TYPES: dict[
    str, tuple[Callable[[dict[str, str]], Select[Any]], Builder, type[Professional | Organisation]]
] = {
    "Practitioner": (_practitioner_query, _practitioners, Professional),
    "PractitionerRole": (_practitioner_query, _roles, Professional),
    "Organization": (_organisation_query, _organisations, Organisation),
}


def search_parameters(kind: str, request: web.Request) -> dict[str, str]:
    """The request's parameters, each known and given once, or a SearchError."""
    allowed = PARAMETERS[kind]
    params: dict[str, str] = {}
    for name in request.query:
        if name not in allowed:
            raise SearchError(
                400,
                "not-supported",
                f"search parameter {name!r} is not supported for {kind}; use {', '.join(allowed)}",
            )
        values = request.query.getall(name)
        if len(values) > 1 or not values[0].strip():
            raise SearchError(400, "invalid", f"give search parameter {name!r} once, with a value")
        params[name] = values[0].strip()
    if not params:
        raise SearchError(
            400,
            "too-costly",
            f"give at least one search parameter for {kind}: " + ", ".join(allowed),
        )
    return params


def bundle(request: web.Request, kind: str, resources: list[Resource], total: int) -> Resource:
    """A searchset whose links start at the configured public address, never at the Host header."""
    public = portal_url(request.app[SETTINGS])
    base = f"{public}/fhir"
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "type": "searchset",
        "total": total,
        "link": [{"relation": "self", "url": public + str(request.rel_url)}],
        "entry": [
            {"fullUrl": f"{base}/{kind}/{r['id']}", "resource": r, "search": {"mode": "match"}}
            for r in resources
        ],
    }


async def search(request: web.Request) -> web.Response:
    kind = request.match_info["kind"]
    query_of, build, _ = TYPES[kind]
    params = search_parameters(kind, request)
    query = query_of(params)
    async with request.app[DB].read() as session:
        total = (
            await session.execute(select(func.count()).select_from(query.subquery()))
        ).scalar_one()
        rows = list((await session.scalars(query.limit(MAX_RESULTS))).all())
        resources = await build(session, rows)
    return fhir_response(bundle(request, kind, resources, total))


async def read(request: web.Request) -> web.Response:
    kind, ident = request.match_info["kind"], request.match_info["id"]
    _, build, model = TYPES[kind]
    row = None
    if ident.isdigit() and len(ident) < 18:
        async with request.app[DB].read() as session:
            row = await session.get(model, int(ident))
            resources = await build(session, [row]) if row is not None else []
    if row is None:
        raise SearchError(404, "not-found", f"{kind}/{ident} does not exist")
    return fhir_response(resources[0])


def _outcomes(
    handler: Callable[[web.Request], Awaitable[web.Response]],
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Turn refusals and an unreachable database into OperationOutcomes."""

    async def wrapper(request: web.Request) -> web.Response:
        try:
            return await handler(request)
        except SearchError as exc:
            return operation_outcome(exc.status, exc.code, exc.text)
        except DatabaseUnavailable as exc:
            return operation_outcome(503, "transient", exc.sentence)

    return wrapper


async def unsupported(request: web.Request) -> web.Response:
    if request.method not in ("GET", "HEAD"):
        return operation_outcome(405, "not-supported", "this directory is read-only: use GET")
    return operation_outcome(
        404,
        "not-supported",
        f"{request.path} is not served here; the "
        "directory has Practitioner, PractitionerRole and Organization",
    )


def setup(app: web.Application) -> None:
    """Add the FHIR directory routes to the hub's HTTPS application."""
    kinds = "|".join(TYPES)
    app.router.add_get(f"/fhir/{{kind:{kinds}}}", _outcomes(search))
    app.router.add_get(f"/fhir/{{kind:{kinds}}}/{{id}}", _outcomes(read))
    app.router.add_route("*", "/fhir/{tail:.*}", unsupported)
