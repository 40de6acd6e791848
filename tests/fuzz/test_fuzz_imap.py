"""Property tests for the IMAP command parser and the argument parsers behind it.

Inputs are built from the grammar (tags, command names, atoms, quoted
strings with escapes, literals, nested lists, sequence sets, FETCH items,
SEARCH keys, flags, dates), then broken the way a hostile client would
(bytes flipped, cut, specials and deep nesting dropped in), plus plain
random bytes. The property: a typed :class:`Command` comes back, or the
project's own :class:`ImapError` whose reply is one line with a sentence;
never another exception, and quickly (the ``deadline``).
"""

from __future__ import annotations

import datetime as dt
import string

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mss.mailbox.imap.fetch import parse_fetch
from mss.mailbox.imap.listing import parse_list
from mss.mailbox.imap.parser import (
    MAX_NESTING,
    Command,
    SequenceSet,
    parse_command,
    parse_flag_list,
)
from mss.mailbox.imap.search import parse_search
from mss.mailbox.imap.session import _append_batches, folder_name
from mss.mailbox.imap.wire import Atom, BadCommand, ImapError, Token

BUDGET = settings(
    max_examples=300,
    derandomize=True,
    database=None,
    deadline=dt.timedelta(milliseconds=500),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --- the grammar, as (expected token, wire bytes) pairs ---

TAG_CHARS = "".join(c for c in string.printable[:94] if c not in '(){%*"\\]+')
ATOM_CHARS = "".join(c for c in string.printable[:94] if c not in '(){" ')
SECTION_ITEMS = ("BODY", "BODY.PEEK", "BINARY", "BINARY.PEEK", "BINARY.SIZE")
COMMANDS = (
    "CAPABILITY",
    "NOOP",
    "LOGOUT",
    "ID",
    "STARTTLS",
    "LOGIN",
    "AUTHENTICATE",
    "ENABLE",
    "NAMESPACE",
    "SELECT",
    "EXAMINE",
    "CREATE",
    "DELETE",
    "RENAME",
    "SUBSCRIBE",
    "UNSUBSCRIBE",
    "LIST",
    "LSUB",
    "STATUS",
    "APPEND",
    "IDLE",
    "CHECK",
    "CLOSE",
    "UNSELECT",
    "EXPUNGE",
    "SEARCH",
    "FETCH",
    "STORE",
    "COPY",
    "MOVE",
    "UID SEARCH",
    "UID FETCH",
    "UID STORE",
    "UID COPY",
    "UID MOVE",
    "UID EXPUNGE",
)


def _plain_atom(text: str) -> bool:
    """Not an atom whose "[" opens a section that never closes (BODY[ without "]")."""
    head, bracket, rest = text.partition("[")
    return not (bracket and head.upper() in SECTION_ITEMS and "]" not in rest)


def _quote(data: bytes) -> bytes:
    return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


atoms = (
    st.text(ATOM_CHARS, min_size=1, max_size=8)
    .filter(_plain_atom)
    .map(lambda a: (("atom", a), a.encode()))
)
quoted = (
    st.binary(max_size=12)
    .filter(lambda b: b"\r" not in b and b"\n" not in b)
    .map(lambda b: (("string", b), _quote(b)))
)
literals = st.tuples(st.binary(max_size=12), st.booleans()).map(
    lambda p: (("string", p[0]), b"{%d%s}\r\n" % (len(p[0]), b"+" if p[1] else b"") + p[0])
)
numbers = st.integers(0, 2**64).map(lambda n: (("atom", str(n)), str(n).encode()))
seq_items = st.one_of(
    st.integers(1, 2**32).map(str),
    st.just("*"),
    st.tuples(st.integers(1, 2**32), st.one_of(st.integers(1, 2**32), st.just("*"))).map(
        lambda r: f"{r[0]}:{r[1]}"
    ),
)
sequence_sets = (
    st.lists(seq_items, min_size=1, max_size=4)
    .map(",".join)
    .map(lambda s: (("atom", s), s.encode()))
)
SECTIONS = (
    "",
    "HEADER",
    "TEXT",
    "1",
    "1.2.MIME",
    "2.HEADER.FIELDS (FROM TO)",
    "HEADER.FIELDS.NOT (X-A)",
    'HEADER.FIELDS ("Subject")',
    "0",
    "1.",
    "MIME",
    "HEADER.FIELDS ()",
    "99999999999999999999.TEXT",
)
section_items = st.tuples(
    st.sampled_from(SECTION_ITEMS),
    st.one_of(st.sampled_from(SECTIONS), st.text(ATOM_CHARS.replace("]", ""), max_size=10)),
    st.one_of(
        st.just(""),
        st.tuples(st.integers(0, 2**40), st.integers(0, 2**40)).map(lambda p: f"<{p[0]}.{p[1]}>"),
    ),
).map(lambda p: (("atom", f"{p[0]}[{p[1]}]{p[2]}"), f"{p[0]}[{p[1]}]{p[2]}".encode()))
leaves = st.one_of(atoms, quoted, literals, numbers, sequence_sets, section_items)


def _as_list(children: list[tuple[object, bytes]]) -> tuple[object, bytes]:
    return ("list", tuple(c[0] for c in children)), b"(" + b" ".join(c[1] for c in children) + b")"


tokens = st.recursive(leaves, lambda inner: st.lists(inner, max_size=3).map(_as_list), max_leaves=6)


@st.composite
def commands(draw: st.DrawFn) -> tuple[tuple[str, str, tuple[object, ...]], bytes]:
    """A well-formed command line and what the parser must make of it."""
    tag = draw(st.text(TAG_CHARS, min_size=1, max_size=8))
    name = draw(
        st.one_of(
            st.sampled_from(COMMANDS),
            st.text(ATOM_CHARS, min_size=1, max_size=10).filter(
                lambda n: n.upper() != "UID" and _plain_atom(n)
            ),
        )
    )
    args = draw(st.lists(tokens, max_size=4))
    wire = f"{tag} {name}".encode() + b"".join(b" " + a[1] for a in args) + b"\r\n"
    return (tag, name.upper(), tuple(a[0] for a in args)), wire


# --- the argument grammars of the commands with their own parsers ---

flags = st.sampled_from(
    [
        "\\Seen",
        "\\Answered",
        "\\Flagged",
        "\\Deleted",
        "\\Draft",
        "\\Recent",
        "\\*",
        "$Label1",
        "Junk",
        "\\Bogus",
        "a]b",
        "%",
    ]
)
dates = st.one_of(
    st.dates(dt.date(1, 1, 1)).map(lambda d: f"{d.day}-{d:%b}-{d.year:04d}"),
    st.tuples(
        st.integers(0, 99), st.sampled_from(["Jan", "feb", "Foo", "DEC"]), st.integers(0, 99999)
    ).map(lambda p: f"{p[0]}-{p[1]}-{p[2]}"),
)
date_times = st.tuples(
    dates, st.integers(0, 99), st.integers(0, 99), st.sampled_from(["+", "-"]), st.integers(0, 9999)
).map(lambda p: f'"{p[0]} {p[1]:02d}:{p[2]:02d}:00 {p[3]}{p[4]:04d}"')
string_bytes = st.lists(
    st.sampled_from(
        [
            b"a",
            b"Z",
            b" ",
            b"\r\n",
            b"\n",
            b"\xe9",
            b"\xc3\xa9",
            b"\x00",
            b'"',
            b"\\",
            b"&",
            b"-",
            b"]",
        ]
    ),
    max_size=6,
).map(b"".join)
strings = st.one_of(
    st.text(string.ascii_letters, min_size=1, max_size=8),
    quoted.map(lambda q: q[1].decode("latin-1")),
    string_bytes.map(lambda b: f"{{{len(b)}}}\r\n" + b.decode("latin-1")),
)
search_leaves = st.one_of(
    st.sampled_from(
        [
            "ALL",
            "SEEN",
            "UNSEEN",
            "FLAGGED",
            "ANSWERED",
            "DELETED",
            "DRAFT",
            "RECENT",
            "NEW",
            "OLD",
            "UNDRAFT",
            "UNKEYWORD $x",
            "KEYWORD \\Seen",
            "MODSEQ 5",
            'MODSEQ "/flags/\\\\seen" all 7',
            "LARGER",
            "NOT",
            "OR ALL",
            "()",
            "UID",
            "BOGUS",
        ]
    ),
    st.tuples(st.sampled_from(["FROM", "TO", "CC", "BCC", "SUBJECT", "BODY", "TEXT"]), strings).map(
        " ".join
    ),
    st.tuples(strings, strings).map(lambda p: f"HEADER {p[0]} {p[1]}"),
    st.tuples(
        st.sampled_from(["BEFORE", "ON", "SINCE", "SENTBEFORE", "SENTON", "SENTSINCE"]), dates
    ).map(" ".join),
    st.tuples(st.sampled_from(["LARGER", "SMALLER", "MODSEQ"]), st.integers(0, 2**70)).map(
        lambda p: f"{p[0]} {p[1]}"
    ),
    sequence_sets.map(lambda s: s[1].decode()),
    sequence_sets.map(lambda s: "UID " + s[1].decode()),
)
search_keys = st.recursive(
    search_leaves,
    lambda inner: st.one_of(
        inner.map(lambda k: f"NOT {k}"),
        st.tuples(inner, inner).map(lambda p: f"OR {p[0]} {p[1]}"),
        st.lists(inner, min_size=1, max_size=3).map(lambda ks: "(" + " ".join(ks) + ")"),
    ),
    max_leaves=12,
)


# SEARCH, FETCH, STORE, APPEND, LIST, STATUS, COPY lines with near-valid arguments.
def _line(*parts: st.SearchStrategy[str] | str) -> st.SearchStrategy[str]:
    return st.tuples(*(st.just(p) if isinstance(p, str) else p for p in parts)).map("".join)


uid_prefix = st.sampled_from(["", "UID "])
seq_text = sequence_sets.map(lambda s: s[1].decode())
flag_lists = st.lists(flags, max_size=3).map(lambda f: "(" + " ".join(f) + ")")
fetch_items = st.one_of(
    st.sampled_from(["ALL", "FAST", "FULL", "FLAGS", "(FLAGS UID)", "()"]),
    st.lists(
        st.one_of(
            st.sampled_from(
                ["FLAGS", "UID", "RFC822.SIZE", "ENVELOPE", "BODYSTRUCTURE", "MODSEQ", "X"]
            ),
            section_items.map(lambda s: s[1].decode()),
        ),
        min_size=1,
        max_size=4,
    ).map(lambda i: "(" + " ".join(i) + ")"),
)
mailboxes = st.one_of(
    st.sampled_from(["INBOX", "Sent", "&AOk-t&AOk-", "&Jjo", "&-", "a/b", "[Gmail]/Sent"]), strings
)
typed_lines = st.one_of(
    _line(uid_prefix, "SEARCH ", st.lists(search_keys, min_size=1, max_size=3).map(" ".join)),
    _line(
        "SEARCH CHARSET ",
        st.one_of(st.sampled_from(["UTF-8", "KOI8-R", "us-ascii"]), strings),
        " ",
        search_keys,
    ),
    _line(uid_prefix, "FETCH ", seq_text, " ", fetch_items),
    _line(
        uid_prefix,
        "FETCH ",
        seq_text,
        " ",
        fetch_items,
        " (CHANGEDSINCE ",
        st.integers(0, 2**64).map(str),
        " VANISHED)",
    ),
    _line(
        uid_prefix,
        "STORE ",
        seq_text,
        " ",
        st.sampled_from(["FLAGS", "+FLAGS.SILENT", "-FLAGS", "X"]),
        " ",
        flag_lists,
    ),
    _line(uid_prefix, "COPY ", seq_text, " ", mailboxes),
    _line("APPEND ", mailboxes, " ", flag_lists, " ", date_times, " {5+}\r\nhello"),
    _line("APPEND ", mailboxes, " {0}\r\n ", flag_lists, " {3}\r\nabc"),
    _line(
        "LIST ",
        st.sampled_from(["", "(SUBSCRIBED) ", "(RECURSIVEMATCH) ", "(BOGUS) "]),
        '"" ',
        mailboxes,
    ),
    _line('LIST "" (', mailboxes, ' "*") RETURN (STATUS (MESSAGES SIZE) CHILDREN)'),
    _line("STATUS ", mailboxes, " (MESSAGES UNSEEN)"),
    _line("SELECT ", mailboxes, " (CONDSTORE)"),
)
typed_commands = st.tuples(st.text(TAG_CHARS, min_size=1, max_size=4), typed_lines).map(
    lambda p: f"{p[0]} {p[1]}\r\n".encode("latin-1")
)


# --- how hostile clients break them ---

SPECIALS = (
    b"{",
    b"}",
    b"{5}\r\n",
    b"{5+}\r\n",
    b"{99999999999}\r\n",
    b'"',
    b"\\",
    b"[",
    b"]",
    b"(",
    b")",
    b"<",
    b">",
    b"*",
    b":",
    b",",
    b" ",
    b"\r",
    b"\n",
    b"\r\n",
    b"\x00",
    b"\x7f",
    b"\xff",
    b"\xc3\xa9",
    b"BODY[",
    b"BODY.PEEK[HEADER.FIELDS (",
    b"NOT ",
    b"OR ",
    b"UID ",
    b"NIL",
    b"&",
    b"-",
)


@st.composite
def broken(draw: st.DrawFn, lines: st.SearchStrategy[bytes]) -> bytes:
    """A line from ``lines`` with a few hostile edits; one time in ten, random bytes instead."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=200))
    data = bytearray(draw(lines))
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["flip", "cut", "drop", "special", "special", "nest"]))
        if kind == "flip" and data:
            data[min(at, len(data) - 1)] ^= draw(st.integers(1, 255))
        elif kind == "cut":
            del data[at:]
        elif kind == "drop":
            del data[at : at + draw(st.integers(1, 16))]
        elif kind == "special":
            data[at:at] = draw(st.sampled_from(SPECIALS))
        elif kind == "nest":
            depth = draw(st.integers(MAX_NESTING - 2, 3000))
            opening, closing = draw(
                st.sampled_from(
                    [
                        (b"(", b")"),
                        (b"NOT ", b""),
                        (b"OR ALL ", b"ALL"),
                        (b"OR ", b"ALL "),
                        (b"(NOT ", b")"),
                    ]
                )
            )
            data[at:at] = opening * depth + closing * depth
    return bytes(data)


# --- the property ---


def _arg(args: list[Token], index: int) -> Token:
    if index >= len(args):
        raise BadCommand("missing argument")
    return args[index]


def parse_typed(data: bytes) -> Command:
    """What the server does with a command before touching the store: the tokens, then the
    arguments."""
    command = parse_command(data)
    name, args = command.name, command.args
    verb = name.removeprefix("UID ")
    if verb == "SEARCH":
        parse_search(args)
    elif verb == "FETCH":
        SequenceSet.parse(_arg(args, 0))
        parse_fetch(args[1:], uid=name != verb)
    elif verb == "STORE":
        SequenceSet.parse(_arg(args, 0))
        parse_flag_list(_arg(args, len(args) - 1))
    elif verb in ("COPY", "MOVE"):
        SequenceSet.parse(_arg(args, 0))
        folder_name(_arg(args, 1))
    elif name == "APPEND":
        folder_name(_arg(args, 0))
        _append_batches(args[1:])
    elif name in ("LIST", "LSUB"):
        parse_list(name, args, folder_name)
    elif name in (
        "SELECT",
        "EXAMINE",
        "CREATE",
        "DELETE",
        "RENAME",
        "SUBSCRIBE",
        "UNSUBSCRIBE",
        "STATUS",
    ):
        folder_name(_arg(args, 0))
    return command


def holds(data: bytes) -> Command | ImapError:
    """The property on one input; returns the command, or the refusal after checking its reply."""
    try:
        command = parse_typed(data)
    except ImapError as refusal:
        assert refusal.sentence.strip(), f"{type(refusal).__name__} without a sentence"
        reply = refusal.response("a1")
        assert reply.endswith(b"\r\n") and reply.count(b"\n") == 1 and b"\r" not in reply[:-2], (
            f"the refusal is not one reply line: {reply!r}"
        )
        return refusal
    assert isinstance(command, Command) and command.tag and command.name
    return command


def _shape(token: Token) -> object:
    if isinstance(token, list):
        return ("list", tuple(_shape(t) for t in token))
    if isinstance(token, Atom):
        return ("atom", str(token))
    assert isinstance(token, bytes), type(token)
    return ("string", bytes(token))


@BUDGET
@given(commands())
@example((("a1", "SELECT", (("atom", "foo[bar"),)), b"a1 SELECT foo[bar\r\n"))
@example((("a1", "LOGIN", (("atom", "["), ("string", b"x]y"))), b"a1 LOGIN [ {3+}\r\nx]y\r\n"))
@example(
    (
        ("a1", "FETCH", (("atom", "1"), ("atom", "BODY[HEADER.FIELDS (A B)]<0.5>"))),
        b"a1 FETCH 1 BODY[HEADER.FIELDS (A B)]<0.5>\r\n",
    )
)
def test_well_formed_commands_parse_to_their_tokens(
    case: tuple[tuple[str, str, tuple[object, ...]], bytes],
) -> None:
    (tag, name, args), wire = case
    command = parse_command(wire)
    assert (command.tag, command.name, tuple(_shape(a) for a in command.args)) == (tag, name, args)


@BUDGET
@given(broken(commands().map(lambda c: c[1])))
@example(b"a1 SEARCH " + b"(" * 500 + b"ALL" + b")" * 500 + b"\r\n")
@example(b"a1 FETCH 1 " + b"(" * 5000 + b")" * 5000 + b"\r\n")
@example(b"a1 LOGIN [ {3}\r\nx]y\r\n")
def test_hostile_command_lines_get_a_command_or_a_sentence(data: bytes) -> None:
    holds(data)


@BUDGET
@given(broken(typed_commands))
@example(b"a1 SEARCH " + b"OR ALL " * 2000 + b"ALL\r\n")
@example(b"a1 SEARCH " + b"OR " * 2000 + b"ALL " * 2001 + b"\r\n")
@example(b"a1 SEARCH " + b"NOT " * 2000 + b"ALL\r\n")
@example(b"a1 SEARCH CHARSET {4}\r\na\r\nb ALL\r\n")  # the refusal echoed CR LF: two reply lines
def test_hostile_arguments_get_a_command_or_a_sentence(data: bytes) -> None:
    holds(data)


@BUDGET
@given(st.binary(max_size=512))
def test_random_bytes_get_a_command_or_a_sentence(data: bytes) -> None:
    holds(data)


def _naive_seq(ranges: list[tuple[int | None, int | None]], count: int) -> list[int]:
    chosen = set()
    for lo, hi in ranges:
        a, b = count if lo is None else lo, count if hi is None else hi
        chosen.update(n - 1 for n in range(min(a, b), max(a, b) + 1) if 1 <= n <= count)
    return sorted(chosen)


@BUDGET
@given(st.lists(seq_items, min_size=1, max_size=8).map(",".join), st.integers(0, 60))
@example(
    ",".join(["1:*"] * 16_000), 20_000
)  # 64 KiB of ranges on a big folder: was 19 s, one range each
def test_sequence_sets_name_each_message_once_and_quickly(text: str, count: int) -> None:
    chosen = SequenceSet.parse(Atom(text))
    small = [
        (lo if lo is None else min(lo, 70), hi if hi is None else min(hi, 70))
        for lo, hi in chosen.ranges
    ]
    if small == list(chosen.ranges) and len(small) <= 8:
        assert chosen.indexes_by_seq(count) == _naive_seq(small, count)
    uids = list(range(3, 3 + 2 * count, 2))
    by_uid = chosen.indexes_by_uid(uids)
    assert by_uid == sorted(set(by_uid))
    assert by_uid == [i for i, uid in enumerate(uids) if chosen.contains_uid(uid, uids[-1])]
