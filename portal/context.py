"""What the portal keeps on the application and on each request."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import jinja2
from aiohttp import web

from mss.config import Settings
from mss.db import Database
from mss.directory.facts import MailboxFacts
from mss.directory.models import Patient
from mss.directory.store import MailboxStamp
from mss.web import DB, SETTINGS
from portal.clock import Clock
from portal.inbox_cache import InboxCache
from portal.kept import Kept
from portal.messages import Counterpart
from portal.models import PortalSession
from portal.signatures import SignatureLine

CLOCK = web.AppKey("portal_clock", Clock)
JINJA = web.AppKey("portal_jinja", jinja2.Environment)
INBOX_CACHE = web.AppKey("portal_inbox_cache", InboxCache)
CORRESPONDENTS_MAX_AGE = 60.0  # seconds a message's correspondents are kept (the directory's)
CORRESPONDENTS_KEPT = 8192  # messages whose correspondents a process keeps


@dataclass(frozen=True)
class Correspondents:
    """A message's sender, recipients, signature line, conversation's professional and the
    mailbox a reply would go to (received messages only)."""

    sender: Counterpart
    recipients: list[Counterpart]
    signature: SignatureLine | None
    professional: Counterpart
    reply_target: MailboxFacts | None


# By (stored message, conversation's professional mailbox, received): portal.views.message.
CORRESPONDENTS = web.AppKey(
    "portal_correspondents", Kept[tuple[int, int | None, bool], Correspondents]
)


@dataclass
class Visit:
    """The portal's view of one request: its session, and who acts in which space once signed in."""

    row: PortalSession | None = None
    expired: bool = False  # a signed-in session ran out of time on this request
    new_token: str | None = None  # to set as the cookie on the response
    clear_cookie: bool = False
    person: Patient | None = None  # who is signed in
    space: Patient | None = None  # whose space is shown: the person or a minor they hold
    minors: list[Patient] = field(default_factory=list)
    # Read with the session row (one statement); the signed-in guard decides what they become.
    account: Patient | None = None  # the patient the row names
    held: list[Patient] = field(default_factory=list)  # the minors that patient holds
    # The mailbox with its stamp of the space the row names (space_patient_id, else
    # patient_id), read with it: portal.inbox_cache uses it when that is the space shown.
    space_mailbox: MailboxStamp | None = None
    space_mailbox_of: int | None = None  # the patient id it was read for


VISIT = web.RequestKey("portal_visit", Visit)


def visit(request: web.Request) -> Visit:
    found: Visit = request[VISIT]
    return found


def inbox_cache_of(request: web.Request) -> InboxCache:
    return request.app[INBOX_CACHE]


def correspondents_of(
    request: web.Request,
) -> Kept[tuple[int, int | None, bool], Correspondents]:
    return request.app[CORRESPONDENTS]


def settings_of(request: web.Request) -> Settings:
    return request.app[SETTINGS]


def db_of(request: web.Request) -> Database:
    return request.app[DB]


def now_of(request: web.Request) -> dt.datetime:
    return request.app[CLOCK].now()


def idle_limit(request: web.Request) -> dt.timedelta:
    return dt.timedelta(minutes=settings_of(request).portal.session_idle_minutes)


def source_of(request: web.Request) -> str:
    """Where the request came from, for the audit log (the peer address)."""
    return request.remote or ""
