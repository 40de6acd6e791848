"""Attack surface: hostile input before and after login (big literals, deep nesting, odd names)."""

from __future__ import annotations

import ssl

from mss.db import Database
from mss.mailbox.imap import server as imap_server
from mss.mailbox.imap.parser import MAX_NESTING
from mss.mailbox.store import deliver
from tests.imap.conftest import PASSWORD, RunningImap, Wire

ADDRESS = "jean.dupont@mss.localhost"
TOOBIG = f"before login a literal is at most {imap_server.PRE_AUTH_MAX_LITERAL} bytes"


# --- memory before login: literals (RFC 7888 §4, §5 LITERAL-) ---


async def test_capabilities_say_literal_minus_before_login_and_literal_plus_after(
    wire: Wire,
) -> None:
    got = await wire.check("c1 CAPABILITY", "* CAPABILITY {*}\nc1 OK CAPABILITY completed")
    assert " LITERAL- " in got and "LITERAL+" not in got
    await wire.login()
    got = await wire.check("c2 CAPABILITY", "* CAPABILITY {*}\nc2 OK CAPABILITY completed")
    assert " LITERAL+ " in got and "LITERAL-" not in got


async def test_a_50_mb_non_synchronising_literal_before_login_is_refused_unread(
    imap: RunningImap, client_ssl: ssl.SSLContext
) -> None:
    wire = await Wire.connect(imap, client_ssl)
    wire.send("a1 LOGIN {50000000+}")  # the header only: the 50 MB never need to be sent
    assert await wire.read_line() == f"* BYE [TOOBIG] {TOOBIG}\r\n"
    assert await wire.reader.read() == b""
    await wire.close()


async def test_a_50_mb_synchronising_literal_before_login_gets_no_continuation(
    imap: RunningImap, wire: Wire
) -> None:
    wire.send("a1 LOGIN {50000000}")
    assert await wire.read_line() == f"a1 BAD [TOOBIG] {TOOBIG}\r\n"
    service = imap.servers[0].mss_imap_service  # type: ignore[attr-defined]
    assert [len(c.reader._buffer) for c in service.connections] == [0]
    await wire.check("a2 NOOP", "a2 OK NOOP completed")


async def test_refused_literals_before_login_count_as_bad_commands(
    imap: RunningImap, wire: Wire
) -> None:
    for i in range(imap_server.MAX_BAD_IN_A_ROW - 1):
        wire.send(f"b{i} LOGIN {{50000000}}")
        assert await wire.read_line() == f"b{i} BAD [TOOBIG] {TOOBIG}\r\n"
    wire.send("last LOGIN {50000000}")
    assert await wire.read_line() == f"last BAD [TOOBIG] {TOOBIG}\r\n"
    assert await wire.read_line() == "* BYE too many invalid commands\r\n"


async def test_appends_too_big_after_login_are_not_bad_commands(
    imap: RunningImap, wire: Wire
) -> None:
    imap.settings.limits.imap_max_literal = 1000
    await wire.login()
    for i in range(imap_server.MAX_BAD_IN_A_ROW + 1):
        wire.send(f"p{i} APPEND INBOX {{5000}}")
        assert (
            await wire.read_line()
            == f"p{i} NO [TOOBIG] the message is larger than the limit of 1000 bytes\r\n"
        )
    await wire.check("p NOOP", "p OK NOOP completed")


async def test_small_literals_before_login_still_log_in(wire: Wire) -> None:
    user, password = ADDRESS.encode(), PASSWORD.encode()
    wire.send(b"a1 LOGIN {%d+}\r\n%s {%d+}\r\n%s" % (len(user), user, len(password), password))
    assert (await wire.until_tagged("a1")).endswith("a1 OK Logged in\n")


async def test_a_literal_of_exactly_the_limit_is_read_before_login(wire: Wire) -> None:
    size = imap_server.PRE_AUTH_MAX_LITERAL
    wire.send(b"a1 LOGIN {%d+}\r\n%s x" % (size, b"u" * size))
    assert (await wire.until_tagged("a1")).startswith("a1 NO ")
    wire.send(b"a2 LOGIN {%d}" % size)
    assert await wire.read_line() == "+ Ready for literal data\r\n"
    wire.send(b"%s x" % (b"u" * size))
    assert (await wire.until_tagged("a2")).startswith("a2 NO ")


async def test_many_small_literals_before_login_cannot_add_up(wire: Wire) -> None:
    chunk = b"{4000+}\r\n" + b"x" * 4000
    wire.send(b"a1 LOGIN " + chunk * 16 + b"{4000+}")  # the 17th literal would pass 64 KiB
    assert await wire.read_line() == "* BAD command too long\r\n"
    assert await wire.read_line() == "* BYE closing the connection\r\n"


async def test_after_login_the_big_literal_limit_applies(imap: RunningImap, wire: Wire) -> None:
    await wire.login()
    body = b"From: a@b.fr\r\nSubject: x\r\n\r\n" + b"y" * 10_000 + b"\r\n"
    wire.send(b"a1 APPEND Drafts {%d+}\r\n" % len(body) + body + b"\r\n")
    assert (await wire.until_tagged("a1")).endswith("APPEND completed\n")


# --- deep nesting: command lists, SEARCH keys ---


async def _selected_with_messages(db: Database, mailbox_id: int, wire: Wire) -> None:
    async with db.write() as session:
        for n in range(3):
            await deliver(session, mailbox_id, b"From: a@b.fr\r\nSubject: m%d\r\n\r\nbody\r\n" % n)
    await wire.login()
    await wire.check("s SELECT INBOX", "{*}s OK [READ-WRITE] SELECT completed")


async def test_deeply_nested_search_criteria_are_refused_with_a_sentence(
    db: Database, mailbox_id: int, wire: Wire
) -> None:
    await _selected_with_messages(db, mailbox_id, wire)
    limit = MAX_NESTING
    await wire.check(
        "n1 SEARCH " + "(" * 500 + "ALL" + ")" * 500,
        f"n1 BAD parenthesised lists nested too deeply (limit {limit})",
    )
    await wire.check(
        "n2 SEARCH " + "NOT " * 2000 + "ALL",
        f"n2 BAD search criteria nested too deeply (limit {limit})",
    )
    await wire.check(
        "n3 SEARCH " + "OR " * 2000 + "ALL " * 2001,
        f"n3 BAD search criteria nested too deeply (limit {limit})",
    )
    nested = "(" * (limit - 1) + "SEEN" + ")" * (limit - 1)
    await wire.check(f"n4 SEARCH {nested}", "* SEARCH\nn4 OK SEARCH completed")


async def test_a_long_chain_of_or_is_evaluated(db: Database, mailbox_id: int, wire: Wire) -> None:
    await _selected_with_messages(db, mailbox_id, wire)
    await wire.check(
        "o1 SEARCH " + "OR ALL " * 2000 + "ALL", "* SEARCH 1 2 3\no1 OK SEARCH completed"
    )
    await wire.check(
        "o2 SEARCH " + "OR SEEN " * 2000 + "SUBJECT m1", "* SEARCH 2\no2 OK SEARCH completed"
    )


async def test_deeply_nested_lists_in_fetch_store_append_are_bad(
    db: Database, mailbox_id: int, wire: Wire
) -> None:
    await _selected_with_messages(db, mailbox_id, wire)
    deep = "(" * 500 + ")" * 500
    sentence = f"parenthesised lists nested too deeply (limit {MAX_NESTING})"
    await wire.check(f"f1 FETCH 1 {deep}", f"f1 BAD {sentence}")
    await wire.check(f"f2 STORE 1 +FLAGS {deep}", f"f2 BAD {sentence}")
    await wire.check(f"f3 APPEND INBOX {deep} {{1+}}\r\nx", f"f3 BAD {sentence}")
    await wire.check("f4 FETCH 1 (FLAGS)", "* 1 FETCH (FLAGS (\\Recent))\nf4 OK FETCH completed")


# --- names made of atom-specials and brackets (the IMAP issue) ---


async def test_select_of_odd_names_answers_no_not_bad(wire: Wire) -> None:
    await wire.login()
    await wire.check(
        'b1 SELECT "[(){ %*\\"\\\\]"',
        "b1 NO [NONEXISTENT] there is no folder called '[(){ %*\"\\\\]'",
    )
    name = b"[(){ %*]"
    wire.send(b"b2 SELECT {%d+}\r\n%s" % (len(name), name))
    assert (
        await wire.until_tagged("b2")
        == "b2 NO [NONEXISTENT] there is no folder called '[(){ %*]'\n"
    )
    await wire.check("b3 SELECT foo[bar", "b3 NO [NONEXISTENT] there is no folder called 'foo[bar'")
    await wire.check("b4 SELECT [", "b4 NO [NONEXISTENT] there is no folder called '['")
    await wire.check(
        "b5 STATUS a[ (MESSAGES)", "b5 NO [NONEXISTENT] there is no folder called 'a['"
    )
    await wire.check('b6 CREATE "[Archives"', "b6 OK CREATE completed")
    await wire.check("b7 SELECT [Archives", "{*}b7 OK [READ-WRITE] SELECT completed")


async def test_a_bracket_never_joins_an_atom_to_the_next_line(wire: Wire) -> None:
    wire.send(b"a1 LOGIN [ {3+}\r\nx]y")
    assert await wire.until_tagged("a1") == (
        "a1 NO [AUTHENTICATIONFAILED] wrong address or password\n"
    )


async def test_a_refusal_that_quotes_the_client_stays_one_line(
    db: Database, mailbox_id: int, wire: Wire
) -> None:
    await _selected_with_messages(db, mailbox_id, wire)
    wire.send(b"c1 SEARCH CHARSET {4+}\r\na\r\nb ALL")
    assert await wire.read_line() == (
        "c1 NO [BADCHARSET (UTF-8 US-ASCII)] charset a\\x0d\\x0ab is not supported\r\n"
    )
    await wire.check("c2 NOOP", "c2 OK NOOP completed")
