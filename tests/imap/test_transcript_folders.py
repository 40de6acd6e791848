"""Transcripts: LIST/LSUB with wildcards and special-use, CREATE/RENAME/DELETE, STATUS, APPEND,
COPY, MOVE."""

from __future__ import annotations

from mss.db import Database
from tests.imap.conftest import Wire
from tests.imap.test_transcript_basic import deliver_n

SMALL = "From: a@b.fr\r\nSubject: hi\r\n\r\nhello\r\n"


async def test_list_special_use_and_hierarchy(wire: Wire) -> None:
    await wire.login()
    await wire.check(
        'a1 LIST "" *',
        r"""
* LIST (\HasNoChildren \Archive) "/" "Archive"
* LIST (\HasNoChildren \Drafts) "/" "Drafts"
* LIST (\HasNoChildren) "/" "INBOX"
* LIST (\HasNoChildren \Sent) "/" "Sent"
* LIST (\HasNoChildren \Trash) "/" "Trash"
a1 OK LIST completed
""",
    )
    await wire.check('a2 CREATE "Patients/Dossiers en cours/"', "a2 OK CREATE completed")
    await wire.check('a3 CREATE "R&AOk-sultats"', "a3 OK CREATE completed")  # "Résultats"
    await wire.check(
        'a4 LIST "" "Patients/%"',
        r"""
* LIST (\HasNoChildren) "/" "Patients/Dossiers en cours"
a4 OK LIST completed
""",
    )
    await wire.check(
        'a5 LIST "" %',
        r"""
* LIST (\HasNoChildren \Archive) "/" "Archive"
* LIST (\HasNoChildren \Drafts) "/" "Drafts"
* LIST (\HasNoChildren) "/" "INBOX"
* LIST (\HasChildren) "/" "Patients"
* LIST (\HasNoChildren) "/" "R&AOk-sultats"
* LIST (\HasNoChildren \Sent) "/" "Sent"
* LIST (\HasNoChildren \Trash) "/" "Trash"
a5 OK LIST completed
""",
    )
    await wire.check(
        'a6 LIST (SPECIAL-USE) "" *',
        r"""
* LIST (\HasNoChildren \Archive) "/" "Archive"
* LIST (\HasNoChildren \Drafts) "/" "Drafts"
* LIST (\HasNoChildren \Sent) "/" "Sent"
* LIST (\HasNoChildren \Trash) "/" "Trash"
a6 OK LIST completed
""",
    )
    await wire.check(
        'a7 LIST "" ""',
        r"""
* LIST (\Noselect) "/" ""
a7 OK LIST completed
""",
    )
    await wire.check("a8 UNSUBSCRIBE Archive", "a8 OK UNSUBSCRIBE completed")
    await wire.check('a9 LSUB "" A*', "a9 OK LSUB completed")
    await wire.check(
        'b1 LIST "" inbox', '* LIST (\\HasNoChildren) "/" "INBOX"\nb1 OK LIST completed'
    )
    await wire.check("b2 CREATE INBOX", "b2 NO [ALREADYEXISTS] INBOX already exists")
    await wire.check(
        "b3 DELETE Patients",
        "b3 NO [INUSE] the folder 'Patients' has subfolders: delete them first",
    )
    await wire.check('b4 RENAME Patients "Dossiers"', "b4 OK RENAME completed")
    await wire.check(
        'b5 LIST "" Dossiers*',
        r"""
* LIST (\HasChildren) "/" "Dossiers"
* LIST (\HasNoChildren) "/" "Dossiers/Dossiers en cours"
b5 OK LIST completed
""",
    )
    await wire.check('b6 DELETE "Dossiers/Dossiers en cours"', "b6 OK DELETE completed")
    await wire.check("b7 DELETE INBOX", "b7 NO [CANNOT] INBOX cannot be deleted")
    await wire.check("b8 SELECT Nowhere", "b8 NO [NONEXISTENT] there is no folder called 'Nowhere'")
    await wire.check("b9 NAMESPACE", '* NAMESPACE (("" "/")) NIL NIL\nb9 OK NAMESPACE completed')


async def test_append_status_copy_move(db: Database, mailbox_id: int, wire: Wire) -> None:
    await deliver_n(db, mailbox_id, 2)
    await wire.login()
    wire.send(f'a1 APPEND Drafts (\\Draft \\Seen) " 2-Mar-2026 09:15:00 +0100" {{{len(SMALL)}}}')
    assert await wire.read_line() == "+ Ready for literal data\r\n"
    wire.send(SMALL + "\r\n")  # the literal, then the end of the command line
    assert (await wire.until_tagged("a1")) == "a1 OK [APPENDUID {*} 1] APPEND completed\n".replace(
        "{*}", str(await _uidvalidity(wire, "Drafts"))
    )
    await wire.check(
        "a2 STATUS Drafts (MESSAGES UNSEEN UIDNEXT HIGHESTMODSEQ SIZE)",
        """
* STATUS "Drafts" (MESSAGES 1 UNSEEN 0 UIDNEXT 2 HIGHESTMODSEQ 2 SIZE 36)
a2 OK STATUS completed
""",
    )
    wire.send(
        f"a3 APPEND Archive {{{len(SMALL)}+}}\r\n{SMALL} (\\Flagged) "
        f"{{{len(SMALL)}+}}\r\n{SMALL}\r\n"
    )
    assert (await wire.until_tagged("a3")).endswith(" 1:2] APPEND completed\n")
    await wire.check(
        "a4 APPEND Nowhere {1+}\r\nx", "a4 NO [TRYCREATE] there is no folder called 'Nowhere'"
    )
    await wire.check("a5 SELECT INBOX", "{*}a5 OK [READ-WRITE] SELECT completed")
    await wire.check("a6 COPY 1:2 Archive", "a6 OK [COPYUID {*} 1:2 3:4] COPY completed")
    await wire.check(
        "a7 UID MOVE 2 Trash",
        """
* OK [COPYUID {*} 2 1] Moved
* 2 EXPUNGE
a7 OK UID MOVE completed
""",
    )
    await wire.check("a8 COPY 1 Nowhere", "a8 NO [TRYCREATE] there is no folder called 'Nowhere'")
    await wire.check(
        "a9 STATUS Archive (MESSAGES)", '* STATUS "Archive" (MESSAGES 4)\na9 OK STATUS completed'
    )
    await wire.check(
        "b1 EXAMINE Archive",
        r"""
* FLAGS (\Answered \Flagged \Deleted \Seen \Draft)
* OK [PERMANENTFLAGS ()] Read-only
* 4 EXISTS
* 4 RECENT
* OK [UNSEEN 1] First unseen
* OK [UIDVALIDITY {*}] UIDs valid
* OK [UIDNEXT 5] Predicted next UID
* OK [HIGHESTMODSEQ 4] Highest
b1 OK [READ-ONLY] EXAMINE completed
""",
    )
    await wire.check(
        "b2 STORE 1 +FLAGS (\\Seen)", "b2 NO [READ-ONLY] the folder is open read-only (EXAMINE)"
    )
    await wire.check(
        "b3 FETCH 1:2 (FLAGS INTERNALDATE)",
        r"""
* 1 FETCH (FLAGS (\Recent) INTERNALDATE "{*}")
* 2 FETCH (FLAGS (\Flagged \Recent) INTERNALDATE "{*}")
b3 OK FETCH completed
""",
    )
    await wire.check("b4 UNSELECT", "b4 OK UNSELECT completed")


async def _uidvalidity(wire: Wire, folder: str) -> int:
    got = await wire.command(f"z STATUS {folder} (UIDVALIDITY)")
    return int(got.split("UIDVALIDITY ")[1].split(")")[0])


async def test_create_subscribes_the_new_folder_and_the_parents_it_made(wire: Wire) -> None:
    """RFC 9051 §6.3.4 lets a server subscribe what CREATE makes; the hub does (as clients that
    list with LSUB, or LIST (SUBSCRIBED), expect to find a folder they just made), and the
    parents CREATE had to make too. UNSUBSCRIBE then takes it off, and DELETE + CREATE again
    subscribes afresh."""
    await wire.login()
    await wire.check('c1 CREATE "Suivi/Cardiologie"', "c1 OK CREATE completed")
    await wire.check(
        'c2 LSUB "" "Suivi*"',
        r"""
* LSUB () "/" "Suivi"
* LSUB () "/" "Suivi/Cardiologie"
c2 OK LSUB completed
""",
    )
    await wire.check(
        'c3 LIST (SUBSCRIBED) "" "Suivi/%"',
        r"""
* LIST (\HasNoChildren \Subscribed) "/" "Suivi/Cardiologie"
c3 OK LIST completed
""",
    )
    await wire.check('c4 UNSUBSCRIBE "Suivi/Cardiologie"', "c4 OK UNSUBSCRIBE completed")
    await wire.check('c5 LSUB "" "Suivi/*"', "c5 OK LSUB completed")
    await wire.check('c6 DELETE "Suivi/Cardiologie"', "c6 OK DELETE completed")
    await wire.check('c7 CREATE "Suivi/Cardiologie"', "c7 OK CREATE completed")
    await wire.check(
        'c8 LSUB "" "Suivi/*"',
        r"""
* LSUB () "/" "Suivi/Cardiologie"
c8 OK LSUB completed
""",
    )
