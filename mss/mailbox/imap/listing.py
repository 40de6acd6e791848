"""LIST and LSUB: RFC 3501 patterns, LIST-EXTENDED (RFC 5258), SPECIAL-USE (RFC 6154), LIST-STATUS
(RFC 5819).

:func:`parse_list` reads the extended syntax (selection options, one or
several patterns, return options) and :func:`list_lines` decides which
folders are listed and with which attributes; the session sends the lines
and, for ``RETURN (STATUS (...))``, a STATUS response after each folder.

Subscriptions live on the folders themselves; a deleted folder's stays as
a lost subscription (RFC 3501 §6.3.6), listed ``\\NonExistent``. There
are no remote mailboxes: REMOTE is accepted and changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from mss.mailbox.folders import DELIMITER
from mss.mailbox.imap import utf7
from mss.mailbox.imap.wire import Atom, BadCommand, Token, as_text, render
from mss.mailbox.models import Folder

SELECTION_OPTIONS = {"SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"}
RETURN_OPTIONS = {"SUBSCRIBED", "CHILDREN", "SPECIAL-USE", "STATUS"}
STATUS_ITEMS = {"MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "HIGHESTMODSEQ", "SIZE"}


@dataclass
class ListRequest:
    """A parsed LIST or LSUB command."""

    lsub: bool
    reference: str
    patterns: list[str]
    selection: set[str] = field(default_factory=set)
    returns: set[str] = field(default_factory=set)
    status_items: list[str] = field(default_factory=list)

    @property
    def criteria(self) -> list[str]:
        """The selection options that filter folders (REMOTE and RECURSIVEMATCH only modify)."""
        return sorted(self.selection & {"SUBSCRIBED", "SPECIAL-USE"})


def parse_list(
    name: str, args: Sequence[Token], decode_reference: Callable[[Token], str]
) -> ListRequest:
    """``LIST [(selection)] reference pattern-or-(patterns) [RETURN (options)]``; raises
    BadCommand."""
    rest = list(args)
    request = ListRequest(lsub=name == "LSUB", reference="", patterns=[])
    if rest and isinstance(rest[0], list):
        if request.lsub:
            raise BadCommand("LSUB takes no selection options")
        request.selection = {_option(t, "selection option") for t in rest.pop(0)}
        unknown = request.selection - SELECTION_OPTIONS
        if unknown:
            raise BadCommand(f"unknown LIST selection option {min(unknown)}")
        if "RECURSIVEMATCH" in request.selection and not request.criteria:
            raise BadCommand(
                "RECURSIVEMATCH needs another selection option (SUBSCRIBED or SPECIAL-USE)"
            )
    if (
        len(rest) == 4
        and isinstance(rest[2], Atom)
        and rest[2].upper() == "RETURN"
        and not request.lsub
    ):
        if not isinstance(rest[3], list):
            raise BadCommand("RETURN options go in a parenthesised list")
        _parse_returns(request, rest[3])
        rest = rest[:2]
    if len(rest) != 2:
        raise BadCommand(f"{name} needs a reference and a mailbox pattern")
    reference = as_text(rest[0], "a reference")
    request.reference = decode_reference(rest[0]) if reference else ""
    raw_patterns = rest[1] if isinstance(rest[1], list) and not request.lsub else [rest[1]]
    if not raw_patterns:
        raise BadCommand("the list of patterns is empty")
    try:
        request.patterns = [utf7.decode(as_text(p, "a pattern")) for p in raw_patterns]
    except utf7.InvalidMailboxName as exc:
        raise BadCommand(str(exc)) from None
    if "SUBSCRIBED" in request.selection:
        request.returns.add("SUBSCRIBED")  # implied (RFC 5258 section 3)
    return request


def _option(token: object, what: str) -> str:
    if not isinstance(token, Atom):
        raise BadCommand(f"expected a LIST {what}")
    return token.upper()


def _parse_returns(request: ListRequest, tokens: list[Token]) -> None:
    i = 0
    while i < len(tokens):
        option = _option(tokens[i], "return option")
        if option not in RETURN_OPTIONS:
            raise BadCommand(f"unknown LIST return option {option}")
        if option == "STATUS":
            if i + 1 >= len(tokens) or not isinstance(tokens[i + 1], list) or not tokens[i + 1]:
                raise BadCommand("RETURN (STATUS (...)) needs a list of status items")
            items = [_option(t, "status item") for t in tokens[i + 1]]
            if any(item not in STATUS_ITEMS for item in items):
                raise BadCommand(f"STATUS items are {' '.join(sorted(STATUS_ITEMS))}")
            request.status_items = items
            i += 1
        request.returns.add(option)
        i += 1


def pattern_regex(pattern: str) -> re.Pattern[str]:
    """``*`` matches anything, ``%`` anything but the delimiter; INBOX in any case."""

    def convert(text: str) -> str:
        return "".join(
            ".*" if c == "*" else f"[^{DELIMITER}]*" if c == "%" else re.escape(c) for c in text
        )

    if pattern[:5].upper() == "INBOX":
        return re.compile(f"^(?i:INBOX){convert(pattern[5:])}$")
    return re.compile(f"^{convert(pattern)}$")


@dataclass
class _Name:
    """A name LIST or LSUB may show: a folder, a lost subscription, or a parent that does not
    exist."""

    name: str
    folder: Folder | None
    subscribed: bool


def _satisfies(entry: _Name, criteria: list[str]) -> bool:
    return all(
        entry.subscribed if c == "SUBSCRIBED" else bool(entry.folder and entry.folder.special_use)
        for c in criteria
    )


def _names(
    folders: Sequence[Folder], lost: Sequence[str], criteria: list[str], recursive: bool
) -> list[_Name]:
    entries = {f.name: _Name(f.name, f, f.subscribed) for f in folders}
    if "SUBSCRIBED" in criteria:
        for name in lost:
            entries.setdefault(name, _Name(name, None, True))
    if recursive:
        for name in list(entries):
            segments = name.split(DELIMITER)
            for depth in range(1, len(segments)):
                parent = DELIMITER.join(segments[:depth])
                entries.setdefault(parent, _Name(parent, None, False))
    return sorted(entries.values(), key=lambda e: e.name)


def list_lines(
    request: ListRequest, folders: Sequence[Folder], lost: Sequence[str] = ()
) -> list[tuple[Folder | None, bytes]]:
    """The untagged LIST/LSUB lines, each with its folder (None for a name that is no folder).

    ``lost`` are the subscribed names whose folder was deleted: LSUB shows them with
    \\Noselect, LIST (SUBSCRIBED) with \\NonExistent (RFC 3501 §6.3.9, RFC 5258 §3). A
    parent whose own name does not match the criteria is shown when a descendant does and
    the pattern hides it: in LSUB with \\Noselect (the ``%`` rule of §6.3.9), with
    RECURSIVEMATCH with CHILDINFO.
    """
    name = "LSUB" if request.lsub else "LIST"
    if request.patterns == [""]:
        return [(None, f'* {name} (\\Noselect) "{DELIMITER}" ""\r\n'.encode())]
    regexes = [pattern_regex(request.reference + p) for p in request.patterns]
    names = [f.name for f in folders]
    criteria = ["SUBSCRIBED"] if request.lsub else request.criteria
    recursive = request.lsub or "RECURSIVEMATCH" in request.selection
    entries = _names(folders, lost, criteria, recursive)
    out: list[tuple[Folder | None, bytes]] = []
    for entry in entries:
        if not any(r.match(entry.name) for r in regexes):
            continue
        prefix = entry.name + DELIMITER
        selected = _satisfies(entry, criteria)
        childinfo = False
        if recursive:
            # Only for matching descendants the client will not see listed (RFC 5258 section 3).
            childinfo = any(
                d.name.startswith(prefix)
                and _satisfies(d, criteria)
                and not any(r.match(d.name) for r in regexes)
                for d in entries
            )
        if not selected and not childinfo:
            continue
        attributes: list[str] = []
        if request.lsub:
            if entry.folder is None or not selected:
                attributes.append("\\Noselect")
        else:
            if entry.folder is None:
                attributes.append("\\NonExistent")
            else:
                has_children = any(n.startswith(prefix) for n in names)
                attributes.append("\\HasChildren" if has_children else "\\HasNoChildren")
                if entry.folder.special_use:
                    attributes.append(entry.folder.special_use)
            if "SUBSCRIBED" in request.returns and entry.subscribed:
                attributes.append("\\Subscribed")
        line = f'* {name} ({" ".join(attributes)}) "{DELIMITER}" '.encode() + render(
            utf7.encode(entry.name)
        )
        if childinfo and not request.lsub:
            line += b' ("CHILDINFO" (' + " ".join(f'"{c}"' for c in criteria).encode() + b"))"
        out.append((entry.folder, line + b"\r\n"))
    return out
