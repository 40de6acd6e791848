"""One IMAP session: its state and a method per command outside the selected folder.

Commands on the selected folder's messages live in
:mod:`mss.mailbox.imap.messages`. The session never reads the socket
itself: :class:`Channel` (implemented by the server's connection) gives
it the few I/O operations a command needs (continuations for
AUTHENTICATE and IDLE, STARTTLS).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
import time
from typing import Any, Protocol

from sqlalchemy import bindparam, select

from mss import __version__
from mss.db import Database
from mss.login_throttle import LoginThrottle
from mss.mailbox import notify
from mss.mailbox.folders import (
    DELIMITER,
    FolderError,
    claim_recent,
    create_folder,
    delete_folder,
    folder_status,
    list_folders,
    lost_subscriptions,
    rename_folder,
    set_subscribed,
)
from mss.mailbox.imap import messages, utf7
from mss.mailbox.imap.auth import ConnectionCounter, LoggedIn, authenticate
from mss.mailbox.imap.context import Channel, State
from mss.mailbox.imap.fetch import render_flags
from mss.mailbox.imap.listing import STATUS_ITEMS, list_lines, parse_list
from mss.mailbox.imap.parser import Command, format_uid_set, parse_date_time, parse_flag_list
from mss.mailbox.imap.selected import SelectedFolder
from mss.mailbox.imap.wire import Atom, BadCommand, ImapError, Token, as_number, as_text, render
from mss.mailbox.models import Folder
from mss.mailbox.store import (
    DEFAULT_FOLDERS,
    INBOX,
    ensure_folders,
    find_folder,
    normalise_folder_name,
    store_message,
)
from mss.mailbox.store import append as store_append

# Before login literals are small (server.PRE_AUTH_MAX_LITERAL): LITERAL-, which RFC 7888 §5
# forbids advertising together with LITERAL+; after login LITERAL+ and the big literal limit.
PRE_AUTH_CAPS = "IMAP4rev1 SASL-IR LITERAL- ID ENABLE IDLE NAMESPACE"
POST_AUTH_CAPS = (
    "IMAP4rev1 SASL-IR LITERAL+ ID ENABLE IDLE NAMESPACE UIDPLUS MOVE SPECIAL-USE UNSELECT "
    "CHILDREN CONDSTORE QRESYNC MULTIAPPEND LIST-EXTENDED LIST-STATUS STATUS=SIZE"
)
CATCH_UP_EVERY = 30.0  # seconds: catch up even without a wake-up (writers in another process)


class Limits(Protocol):
    imap_idle_timeout: float
    imap_max_literal: int


class Session:
    """The state of one connection and its command handlers."""

    def __init__(
        self,
        db: Database,
        channel: Channel,
        throttle: LoginThrottle,
        per_user: ConnectionCounter,
        *,
        idle_timeout: float,
        keepalive: float = 120.0,
    ) -> None:
        self.db = db
        self.db_key = notify.database_key(db.engine.url)
        self.channel = channel
        self.throttle = throttle
        self.per_user = per_user
        self.idle_timeout = idle_timeout
        self.keepalive = keepalive
        self.state = State.NOT_AUTHENTICATED
        self.user: LoggedIn | None = None
        self.selected: SelectedFolder | None = None
        self.condstore = False
        self.qresync = False
        self.wake: asyncio.Event | None = None
        self.last_catch_up = 0.0

    # --- plumbing ---

    def send(self, data: bytes) -> None:
        self.channel.write(data)

    def capabilities(self) -> str:
        if self.state in (State.AUTHENTICATED, State.SELECTED):
            return POST_AUTH_CAPS
        if not self.channel.tls:
            return f"{PRE_AUTH_CAPS} STARTTLS LOGINDISABLED"
        return f"{PRE_AUTH_CAPS} AUTH=PLAIN"

    def greeting(self) -> bytes:
        return f"* OK [CAPABILITY {self.capabilities()}] MSS hub IMAP ready\r\n".encode()

    async def close(self) -> None:
        if self.user is not None:
            self.per_user.release(self.user.mailbox_id)
            if self.wake is not None:
                notify.waiters.unregister(self.db_key, self.user.mailbox_id, self.wake)
            self.user = None
        self.state = State.LOGOUT

    async def run(self, command: Command) -> bytes:
        """Execute one command; returns the tagged response (untagged ones are already sent)."""
        handler, states = _HANDLERS.get(command.name, (None, ()))
        if handler is None:
            raise BadCommand(f"unknown command {command.name}")
        if self.state not in states:
            raise BadCommand(f"{command.name} is not allowed in the {self.state.value} state")
        if self.selected is not None and self._should_catch_up():
            await self.catch_up(allow_expunge=False)
        try:
            result = await handler(self, command)
        finally:
            if self.selected is not None and self.state == State.SELECTED:
                blocks_expunge = command.name in ("FETCH", "STORE", "SEARCH")
                if self._should_catch_up() or command.name in ("NOOP", "CHECK"):
                    await self.catch_up(allow_expunge=not blocks_expunge)
                elif not blocks_expunge and self.selected.pending_expunge:
                    self.send(
                        b"".join(
                            self.selected.remove(
                                sorted(self.selected.pending_expunge), vanished=self.qresync
                            )
                        )
                    )
        return f"{command.tag} OK {result}\r\n".encode()

    def _should_catch_up(self) -> bool:
        return bool(self.wake is not None and self.wake.is_set()) or (
            time.monotonic() - self.last_catch_up > CATCH_UP_EVERY
        )

    async def catch_up(self, *, allow_expunge: bool) -> None:
        assert self.selected is not None
        if self.wake is not None:
            self.wake.clear()
        self.last_catch_up = time.monotonic()
        view = self.selected
        claim = False
        async with self.db.read() as session:
            out = await view.catch_up(
                session, allow_expunge=allow_expunge, condstore=self.condstore, qresync=self.qresync
            )
            if out:  # EXISTS goes out now: an IDLE client need not wait for the claim below
                self.send(b"".join(out))
            key = (self.db_key, view.folder_id)
            if (
                view.new_since_catch_up
                and not view.readonly
                and _claimed.get(key, 0) <= view.new_since_catch_up[-1]
            ):
                # A write (the folder row locked) only when the new UIDs are not claimed yet:
                # of the sessions woken by one delivery, the first claims, the others read,
                # or, in this process once one of them knows, not even that (_claimed).
                first_recent = (
                    await session.execute(_FIRST_RECENT, {"folder_id": view.folder_id})
                ).scalar_one()
                claim = first_recent <= view.new_since_catch_up[-1]
                if not claim:
                    _remember_claimed(key, first_recent)
        if claim:
            new_uids = view.new_since_catch_up
            async with self.db.write() as session:
                first, end = await claim_recent(
                    session, view.folder_id, new_uids[-1] + 1, wait=False
                )
            if end > first:
                _remember_claimed(key, end)
            before = len(view.recent)
            view.mark_recent(first, end)
            if len(view.recent) != before:
                self.send(b"* %d RECENT\r\n" % len(view.recent))

    # --- any state ---

    async def cmd_capability(self, command: Command) -> str:
        self.send(f"* CAPABILITY {self.capabilities()}\r\n".encode())
        return "CAPABILITY completed"

    async def cmd_noop(self, command: Command) -> str:
        return f"{command.name} completed"

    async def cmd_logout(self, command: Command) -> str:
        self.send(b"* BYE MSS hub IMAP signing off\r\n")
        await self.close()
        return "LOGOUT completed"

    async def cmd_id(self, command: Command) -> str:
        self.send(
            b'* ID ("name" "MSS hub" "version" ' + render(__version__) + b' "vendor" "MSS")\r\n'
        )
        return "ID completed"

    # --- not authenticated ---

    async def cmd_starttls(self, command: Command) -> str:
        if self.channel.tls or not self.channel.starttls_possible:
            raise BadCommand("TLS is already active")
        if command.args:
            raise BadCommand("STARTTLS takes no arguments")
        self.send(f"{command.tag} OK Begin TLS negotiation now\r\n".encode())
        await self.channel.drain()
        await self.channel.start_tls()
        raise _AlreadyAnswered()

    def _require_tls(self) -> None:
        if not self.channel.tls:
            raise ImapError(
                "log in only after STARTTLS: passwords never travel in clear text",
                "PRIVACYREQUIRED",
            )

    async def cmd_login(self, command: Command) -> str:
        if len(command.args) != 2:
            raise BadCommand("LOGIN needs a user name and a password")
        self._require_tls()
        await self._log_in(
            as_text(command.args[0], "a user name"), as_text(command.args[1], "a password")
        )
        return "Logged in"

    async def cmd_authenticate(self, command: Command) -> str:
        if not command.args or len(command.args) > 2:
            raise BadCommand("AUTHENTICATE needs a mechanism")
        self._require_tls()
        if str(command.args[0]).upper() != "PLAIN":
            raise ImapError("only the PLAIN mechanism is offered", "CANNOT")
        if len(command.args) == 2:
            response = as_text(command.args[1], "an initial response").encode()
            response = b"" if response == b"=" else response
        else:
            self.send(b"+ \r\n")
            await self.channel.drain()
            response = (await self.channel.read_continuation()).strip()
            if response == b"*":
                raise BadCommand("authentication cancelled")
        try:
            decoded = base64.b64decode(response, validate=True)
        except (binascii.Error, ValueError):
            raise BadCommand("the PLAIN response is not base64") from None
        pieces = decoded.split(b"\x00")
        if len(pieces) != 3:
            raise BadCommand("the PLAIN response is authzid NUL authcid NUL password")
        authz, authc, password = (p.decode("utf-8", "replace") for p in pieces)
        if authz and authz.lower() != authc.lower():
            raise ImapError("logging in as another user is not allowed", "AUTHORIZATIONFAILED")
        await self._log_in(authc, password)
        return "Logged in"

    async def _log_in(self, address: str, password: str) -> None:
        user = await authenticate(self.db, self.throttle, self.channel.peer_ip, address, password)
        if not self.per_user.acquire(user.mailbox_id):
            raise ImapError(
                "too many connections to this mailbox; close another mail client first", "LIMIT"
            )
        if not set(DEFAULT_FOLDERS) <= user.folders:  # read with the mailbox at login
            async with self.db.write() as session:
                await ensure_folders(session, user.mailbox_id)
        self.user = user
        self.state = State.AUTHENTICATED
        self.wake = notify.waiters.register(self.db_key, user.mailbox_id)
        self.send(f"* CAPABILITY {self.capabilities()}\r\n".encode())

    # --- authenticated ---

    def _folder_name(self, token: Token) -> str:
        return folder_name(token)

    async def named_folder(self, token: Token, *, missing_code: str = "NONEXISTENT") -> Folder:
        name = self._folder_name(token)
        assert self.user is not None
        async with self.db.read() as session:
            folder = await find_folder(session, self.user.mailbox_id, name)
        return _found(folder, name, missing_code)

    async def cmd_enable(self, command: Command) -> str:
        enabled = []
        for token in command.args:
            name = str(token).upper()
            if name in ("CONDSTORE", "QRESYNC") and not (name == "CONDSTORE" and self.condstore):
                self.condstore = True
                if name == "QRESYNC":
                    self.qresync = True
                enabled.append(name)
        self.send(("* ENABLED " + " ".join(enabled)).rstrip().encode() + b"\r\n")
        return "ENABLE completed"

    async def cmd_namespace(self, command: Command) -> str:
        self.send(b'* NAMESPACE (("" "/")) NIL NIL\r\n')
        return "NAMESPACE completed"

    async def cmd_select(self, command: Command) -> str:
        if not command.args:
            raise BadCommand(f"{command.name} needs a mailbox name")
        readonly = command.name == "EXAMINE"
        qresync_args = self._select_params(command.args[1:])
        if self.selected is not None:
            self.selected = None
            self.state = State.AUTHENTICATED
            if self.qresync:
                self.send(b"* OK [CLOSED] Previous mailbox closed\r\n")
        name = self._folder_name(command.args[0])
        assert self.user is not None
        if self.wake is not None:
            self.wake.clear()
        async with self.db.read() as session:
            # Two statements: the folder's row, which holds its counters (kept at write time:
            # mss.mailbox.counters), and the changes since this process's last view of it.
            folder = _found(await find_folder(session, self.user.mailbox_id, name), name)
            view = SelectedFolder(
                folder.id, self.user.mailbox_id, folder.name, folder.uidvalidity, readonly
            )
            await view.load(session, self.db_key, folder.highest_modseq)
        view.announced = set(folder.keywords.split())
        if readonly:
            view.mark_recent(folder.first_recent_uid, folder.uidnext)
        elif view.uids and view.uids[-1] >= folder.first_recent_uid:
            async with self.db.write() as session:
                first, end = await claim_recent(session, folder.id, view.uids[-1] + 1)
            view.mark_recent(first, end)
        self.last_catch_up = time.monotonic()
        lines = [f"* {view.count} EXISTS", f"* {len(view.recent)} RECENT"]
        first_unseen = view.seq_of(folder.first_unseen_uid) if folder.first_unseen_uid else 0
        if folder.first_unseen_uid and not first_unseen:  # the view is a moment ahead of the row
            first_unseen = next(
                (i + 1 for i, uid in enumerate(view.uids) if "\\Seen" not in view.flags[uid]), 0
            )
        if first_unseen:
            lines.append(f"* OK [UNSEEN {first_unseen}] First unseen")
        lines += [
            f"* OK [UIDVALIDITY {folder.uidvalidity}] UIDs valid",
            # never at or below a UID shown, should the row be read a moment before the entries
            f"* OK [UIDNEXT {max(folder.uidnext, view.uids[-1] + 1 if view.uids else 1)}] "
            "Predicted next UID",
            f"* OK [HIGHESTMODSEQ {view.known_modseq}] Highest",
        ]
        self.send(view.flags_responses() + ("\r\n".join(lines) + "\r\n").encode())
        self.selected = view
        self.state = State.SELECTED
        if qresync_args is not None:
            await messages.qresync_select(self, *qresync_args)
        return f"[{'READ-ONLY' if readonly else 'READ-WRITE'}] {command.name} completed"

    def _select_params(self, args: list[Token]) -> tuple[int, int, str | None] | None:
        if not args:
            return None
        if len(args) != 1 or not isinstance(args[0], list):
            raise BadCommand("SELECT parameters go in one parenthesised list")
        params = args[0]
        result = None
        i = 0
        while i < len(params):
            name = str(params[i]).upper()
            if name == "CONDSTORE":
                self.condstore = True
                i += 1
            elif name == "QRESYNC" and i + 1 < len(params) and isinstance(params[i + 1], list):
                if not self.qresync:
                    raise BadCommand("ENABLE QRESYNC first")
                inner = params[i + 1]
                if len(inner) < 2:
                    raise BadCommand("QRESYNC needs a UIDVALIDITY and a mod-sequence")
                known = str(inner[2]) if len(inner) > 2 and isinstance(inner[2], Atom) else None
                result = (
                    as_number(inner[0], "UIDVALIDITY"),
                    as_number(inner[1], "mod-sequence"),
                    known,
                )
                i += 2
            else:
                raise BadCommand(f"unknown SELECT parameter {name}")
        return result

    async def cmd_create(self, command: Command) -> str:
        if len(command.args) != 1:
            raise BadCommand("CREATE needs one mailbox name")
        name = self._folder_name(command.args[0]).rstrip(DELIMITER)
        assert self.user is not None
        if name.upper() == INBOX:
            raise ImapError("INBOX already exists", "ALREADYEXISTS")
        async with self.db.write() as session:
            await _folder_op(create_folder(session, self.user.mailbox_id, name))
        return "CREATE completed"

    async def cmd_delete(self, command: Command) -> str:
        if len(command.args) != 1:
            raise BadCommand("DELETE needs one mailbox name")
        name = self._folder_name(command.args[0])
        assert self.user is not None
        if self.selected is not None and self.selected.name == name:
            raise ImapError("close the folder before deleting it", "INUSE")
        async with self.db.write() as session:
            await _folder_op(delete_folder(session, self.user.mailbox_id, name))
        return "DELETE completed"

    async def cmd_rename(self, command: Command) -> str:
        if len(command.args) != 2:
            raise BadCommand("RENAME needs the old and the new name")
        old, new = self._folder_name(command.args[0]), self._folder_name(command.args[1])
        assert self.user is not None
        async with self.db.write() as session:
            await _folder_op(rename_folder(session, self.user.mailbox_id, old, new))
        if self.selected is not None and self.selected.name == old and old != INBOX:
            self.selected.name = new
        return "RENAME completed"

    async def cmd_subscribe(self, command: Command) -> str:
        if len(command.args) != 1:
            raise BadCommand(f"{command.name} needs one mailbox name")
        assert self.user is not None
        async with self.db.write() as session:
            await _folder_op(
                set_subscribed(
                    session,
                    self.user.mailbox_id,
                    self._folder_name(command.args[0]),
                    command.name == "SUBSCRIBE",
                )
            )
        return f"{command.name} completed"

    async def cmd_list(self, command: Command) -> str:
        request = parse_list(command.name, command.args, self._folder_name)
        assert self.user is not None
        async with self.db.read() as session:
            folders = await list_folders(session, self.user.mailbox_id)
            lost = await lost_subscriptions(session, self.user.mailbox_id)
        for folder, line in list_lines(request, folders, lost):
            self.send(line)
            # LIST-STATUS (RFC 5819 §2): never for a \NonExistent or \Noselect name.
            if folder is not None and "STATUS" in request.returns:
                self.send(await self._status_line(folder, request.status_items))
        return f"{command.name} completed"

    async def cmd_status(self, command: Command) -> str:
        if len(command.args) != 2 or not isinstance(command.args[1], list):
            raise BadCommand("STATUS needs a mailbox name and a list of items")
        items = [str(t).upper() for t in command.args[1]]
        if not items or any(i not in STATUS_ITEMS for i in items):
            raise BadCommand(f"STATUS items are {' '.join(sorted(STATUS_ITEMS))}")
        folder = await self.named_folder(command.args[0])
        self.send(await self._status_line(folder, items))
        return "STATUS completed"

    async def _status_line(self, folder: Folder, items: list[str]) -> bytes:
        async with self.db.read() as session:
            status = await folder_status(session, folder, with_size="SIZE" in items)
        values = {
            "MESSAGES": status.messages,
            "RECENT": status.recent,
            "UIDNEXT": status.uidnext,
            "UIDVALIDITY": status.uidvalidity,
            "UNSEEN": status.unseen,
            "HIGHESTMODSEQ": status.highest_modseq,
            "SIZE": status.size,
        }
        body = " ".join(f"{i} {values[i]}" for i in items)
        return b"* STATUS " + render(utf7.encode(folder.name)) + f" ({body})\r\n".encode()

    async def cmd_append(self, command: Command) -> str:
        if len(command.args) < 2:
            raise BadCommand("APPEND needs a mailbox name and a message")
        folder = await self.named_folder(command.args[0], missing_code="TRYCREATE")
        batches = _append_batches(command.args[1:])
        assert self.user is not None
        async with self.db.write() as session:
            uids = []
            for flags, when, raw in batches:
                stored = await store_message(session, raw, internal_date=when)
                entry = await store_append(
                    session, self.user.mailbox_id, folder.name, stored, flags
                )
                uids.append(entry.uid)
        return f"[APPENDUID {folder.uidvalidity} {format_uid_set(uids)}] APPEND completed"

    async def cmd_idle(self, command: Command) -> str:
        self.send(b"+ idling\r\n")
        await self.channel.drain()
        deadline = time.monotonic() + self.idle_timeout
        wake = self.wake or asyncio.Event()
        while True:
            if self.selected is not None:
                await self.catch_up(allow_expunge=True)
                await self.channel.drain()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise IdleTimeout()
            what = await self.channel.idle_wait(wake, min(self.keepalive, remaining))
            if what == "done":
                return "IDLE terminated"
            if what == "timeout":
                if time.monotonic() >= deadline:
                    raise IdleTimeout()
                self.send(b"* OK Still here\r\n")
                await self.channel.drain()


_FIRST_RECENT = select(Folder.first_recent_uid).where(Folder.id == bindparam("folder_id"))
# (database, folder) -> a first_recent_uid this process has seen: the UIDs below it are
# claimed (\\Recent is taken once, for good). Spares the sessions an IDLE wake-up catches up
# together the read of the folder row once one of them has seen it.
_claimed: dict[tuple[str, int], int] = {}


def _remember_claimed(key: tuple[str, int], first_recent: int) -> None:
    if len(_claimed) > 10_000:
        _claimed.clear()
    _claimed[key] = max(_claimed.get(key, 0), first_recent)


def _found(folder: Folder | None, name: str, missing_code: str = "NONEXISTENT") -> Folder:
    if folder is None:
        raise ImapError(f"there is no folder called {name!r}", missing_code)
    return folder


def folder_name(token: Token) -> str:
    """A mailbox name argument (atom, quoted or literal, modified UTF-7) as the store spells it."""
    wire = as_text(token, "a mailbox name")
    try:
        return normalise_folder_name(utf7.decode(wire))
    except utf7.InvalidMailboxName as exc:
        raise BadCommand(str(exc)) from None


class IdleTimeout(Exception):
    """IDLE lasted longer than the limit: the connection is closed with BYE."""


class _AlreadyAnswered(Exception):
    """The handler wrote its own tagged response (STARTTLS)."""


async def _folder_op(operation: Any) -> Any:
    try:
        return await operation
    except FolderError as exc:
        raise ImapError(exc.sentence, exc.code) from None


_DATE_LIKE = re.compile(rb"^ ?\d{1,2}-[A-Za-z]{3}-\d{4} \d\d:\d\d:\d\d [+-]\d{4}$")


def _append_batches(args: list[Token]) -> list[tuple[list[str], Any, bytes]]:
    """MULTIAPPEND groups of [flags] [date-time] message."""
    out = []
    i = 0
    while i < len(args):
        flags: list[str] = []
        when = None
        if isinstance(args[i], list):
            flags = parse_flag_list(args[i])
            i += 1
        date = args[i] if i + 1 < len(args) else None
        if isinstance(date, bytes) and _DATE_LIKE.match(bytes(date)):
            when = parse_date_time(date)
            i += 1
        raw = args[i] if i < len(args) else None
        if not isinstance(raw, bytes) or isinstance(raw, Atom):
            raise BadCommand("APPEND: expected the message as a literal")
        if not raw:
            raise ImapError("an empty message cannot be appended", "CANNOT")
        out.append((flags, when, bytes(raw)))
        i += 1
    return out


_ANY = {State.NOT_AUTHENTICATED, State.AUTHENTICATED, State.SELECTED}
_NOT_AUTH = {State.NOT_AUTHENTICATED}
_AUTH = {State.AUTHENTICATED, State.SELECTED}
_SELECTED = {State.SELECTED}

_HANDLERS: dict[str, tuple[Any, set[State]]] = {
    "CAPABILITY": (Session.cmd_capability, _ANY),
    "NOOP": (Session.cmd_noop, _ANY),
    "LOGOUT": (Session.cmd_logout, _ANY),
    "ID": (Session.cmd_id, _ANY),
    "STARTTLS": (Session.cmd_starttls, _NOT_AUTH),
    "LOGIN": (Session.cmd_login, _NOT_AUTH),
    "AUTHENTICATE": (Session.cmd_authenticate, _NOT_AUTH),
    "ENABLE": (Session.cmd_enable, _AUTH),
    "NAMESPACE": (Session.cmd_namespace, _AUTH),
    "SELECT": (Session.cmd_select, _AUTH),
    "EXAMINE": (Session.cmd_select, _AUTH),
    "CREATE": (Session.cmd_create, _AUTH),
    "DELETE": (Session.cmd_delete, _AUTH),
    "RENAME": (Session.cmd_rename, _AUTH),
    "SUBSCRIBE": (Session.cmd_subscribe, _AUTH),
    "UNSUBSCRIBE": (Session.cmd_subscribe, _AUTH),
    "LIST": (Session.cmd_list, _AUTH),
    "LSUB": (Session.cmd_list, _AUTH),
    "STATUS": (Session.cmd_status, _AUTH),
    "APPEND": (Session.cmd_append, _AUTH),
    "IDLE": (Session.cmd_idle, _AUTH),
    "CHECK": (messages.cmd_check, _SELECTED),
    "CLOSE": (messages.cmd_close, _SELECTED),
    "UNSELECT": (messages.cmd_unselect, _SELECTED),
    "EXPUNGE": (messages.cmd_expunge, _SELECTED),
    "UID EXPUNGE": (messages.cmd_expunge, _SELECTED),
    "SEARCH": (messages.cmd_search, _SELECTED),
    "UID SEARCH": (messages.cmd_search, _SELECTED),
    "FETCH": (messages.cmd_fetch, _SELECTED),
    "UID FETCH": (messages.cmd_fetch, _SELECTED),
    "STORE": (messages.cmd_store, _SELECTED),
    "UID STORE": (messages.cmd_store, _SELECTED),
    "COPY": (messages.cmd_copy, _SELECTED),
    "UID COPY": (messages.cmd_copy, _SELECTED),
    "MOVE": (messages.cmd_move, _SELECTED),
    "UID MOVE": (messages.cmd_move, _SELECTED),
}

__all__ = ["Channel", "IdleTimeout", "Session", "State", "render_flags"]
