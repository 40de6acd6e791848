"""What a command handler sees of its session: the session states, the connection, the rest.

:mod:`mss.mailbox.imap.messages` (the selected folder's commands) is typed against
:class:`CommandContext`, which :class:`~mss.mailbox.imap.session.Session` implements, so the
session imports the handlers and the handlers never import the session back.
"""

from __future__ import annotations

import asyncio
import enum
from typing import Protocol

from mss.db import Database
from mss.mailbox.imap.selected import SelectedFolder
from mss.mailbox.imap.wire import Token
from mss.mailbox.models import Folder


class State(enum.Enum):
    NOT_AUTHENTICATED = "not authenticated"
    AUTHENTICATED = "authenticated"
    SELECTED = "selected"
    LOGOUT = "logout"


class Channel(Protocol):
    """What a session needs from its connection."""

    tls: bool
    starttls_possible: bool
    peer_ip: str

    def write(self, data: bytes) -> None: ...
    async def drain(self) -> None: ...
    async def read_continuation(self) -> bytes: ...
    async def start_tls(self) -> None: ...
    async def idle_wait(self, wake: asyncio.Event, keepalive: float) -> str: ...


class CommandContext(Protocol):
    """The session as the selected folder's command handlers use it."""

    db: Database
    channel: Channel
    state: State
    selected: SelectedFolder | None
    condstore: bool
    qresync: bool

    def send(self, data: bytes) -> None: ...

    async def named_folder(self, token: Token, *, missing_code: str = "NONEXISTENT") -> Folder:
        """The folder a mailbox-name argument names; ImapError (``missing_code``) if none."""
        ...
