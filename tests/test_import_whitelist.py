"""MSSanté whitelist import: the sample, replacement of the set, hostile XML."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from mss.db import Database
from mss.directory.import_whitelist import import_whitelist
from mss.directory.models import TrustedDomain
from mss.directory.store import is_trusted_operator_dn, trusted_domain
from mss.errors import InvalidInput

SAMPLE = "whitelist/SYNTHETIC_listeblanchemssante_structure.xml"
DN_A1 = (
    "CN=smtp-1.operateur-fictif.example,OU=000000000000001,O=OPERATEUR FICTIF,ST=Gironde (33),C=FR"
)
HEAD = '<?xml version="1.0" encoding="UTF-8"?>'
ROOT = '<ListeBlancheMSSante xmlns="https://listeblanche.mssante.fr/schema">'


def domaine(name: str, dn: str, description: str = "D") -> str:
    return (
        f"<Domaine><Nom>{name}</Nom><Description>{description}</Description>"
        f"<DNCertificatOperateur>{dn}</DNCertificatOperateur>"
        "<ResponsableContact>01 00 00 00 01, r@op.example</ResponsableContact>"
        "<SupportContact>01 00 00 00 02, s@op.example</SupportContact>"
        "<DateMAJ>2025-01-01T00:00:00Z</DateMAJ></Domaine>\n"
    )


def whitelist(tmp_path: Path, *domaines: str, name: str = "liste.xml", tail: str = "") -> str:
    path = tmp_path / name
    path.write_text(
        f"{HEAD}{ROOT}\n<DateDeGeneration>2025-02-28T15:42:07Z</DateDeGeneration>\n"
        f"<ListeDomaines>\n{''.join(domaines)}</ListeDomaines>{tail}</ListeBlancheMSSante>",
        encoding="utf-8",
    )
    return str(path)


async def _import(db: Database, path: str, **kwargs: bool):  # type: ignore[no-untyped-def]
    async with db.write() as session:
        return await import_whitelist(session, path, **kwargs)


async def _rows(db: Database) -> list[tuple[str, str, bool]]:
    async with db.read() as session:
        rows = (
            await session.scalars(
                select(TrustedDomain).order_by(TrustedDomain.domain, TrustedDomain.operator_dn)
            )
        ).all()
    return [(r.domain, r.operator_dn, r.enabled) for r in rows]


async def test_sample_gives_one_row_per_domain_and_certificate(
    db: Database, ans_data: Path
) -> None:
    report = await _import(db, str(ans_data / SAMPLE))
    assert (report.added, report.updated, report.disabled) == (4, 0, 0)
    rows = await _rows(db)
    assert [r[0] for r in rows] == [
        "cabinet-fictif-c.example",
        "ehpad-fictif-b.mssante.example",
        "hopital-fictif-a.mssante.example",
        "hopital-fictif-a.mssante.example",
    ]
    async with db.read() as session:
        entry = await trusted_domain(session, "Hopital-Fictif-A.mssante.example")
        assert entry is not None and entry.description.startswith("Domaine de messagerie")
        assert "support: 01 00 00 00 02, support@operateur-fictif.example" in entry.contact
        assert await is_trusted_operator_dn(session, DN_A1)
        assert await is_trusted_operator_dn(session, DN_A1, "hopital-fictif-a.mssante.example")
        assert not await is_trusted_operator_dn(session, DN_A1, "ehpad-fictif-b.mssante.example")
        # OpenSSL's order and spacing name the same certificate subject.
        assert await is_trusted_operator_dn(
            session,
            "C=FR, ST=Gironde (33), O=OPERATEUR FICTIF, OU=000000000000001, "
            "CN=smtp-1.operateur-fictif.example",
        )
        assert await trusted_domain(session, "unknown.example") is None
    again = await _import(db, str(ans_data / SAMPLE))
    assert (again.added, again.updated, again.unchanged, again.disabled) == (0, 0, 4, 0)
    assert "nothing changed" in again.summary()


async def test_reimport_replaces_the_set(db: Database, ans_data: Path, tmp_path: Path) -> None:
    await _import(db, str(ans_data / SAMPLE))
    path = whitelist(
        tmp_path,
        domaine("hopital-fictif-a.mssante.example", DN_A1, "Nouvelle description"),
        domaine("nouveau.mssante.example", "CN=relais.nouveau.example,O=NOUVEAU,C=FR"),
    )
    report = await _import(db, path)
    assert (report.added, report.updated, report.unchanged, report.disabled) == (1, 1, 0, 3)
    assert "3 disabled" in report.summary()
    enabled = [(d, dn) for d, dn, on in await _rows(db) if on]
    assert enabled == [
        ("hopital-fictif-a.mssante.example", DN_A1),
        ("nouveau.mssante.example", "CN=relais.nouveau.example,O=NOUVEAU,C=FR"),
    ]
    async with db.read() as session:
        assert await trusted_domain(session, "ehpad-fictif-b.mssante.example") is None
        assert not await is_trusted_operator_dn(
            session,
            "CN=mss.autre-operateur.example,OU=000000000000002,O=AUTRE OPERATEUR,"
            "ST=Bouches-du-Rhône (13),C=FR",
        )
    back = await _import(db, str(ans_data / SAMPLE))
    assert (back.added, back.updated, back.disabled) == (0, 4, 1)


async def test_signature_is_tolerated(db: Database, tmp_path: Path) -> None:
    signature = (
        '<Signature xmlns="http://www.w3.org/2000/09/xmldsig#"><SignedInfo/>'
        "<SignatureValue>AAAA&#13;\nBBBB</SignatureValue></Signature>"
    )
    report = await _import(
        db, whitelist(tmp_path, domaine("a.example", "CN=a,C=FR"), tail=signature)
    )
    assert report.added == 1
    assert report.warnings == [f"{tmp_path / 'liste.xml'}: the XML-DSig signature was not verified"]


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
]>
<ListeBlancheMSSante xmlns="https://listeblanche.mssante.fr/schema">&lol2;</ListeBlancheMSSante>
"""
EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE foo [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>
<ListeBlancheMSSante xmlns="https://listeblanche.mssante.fr/schema"><ListeDomaines>
<Domaine><Nom>&xxe;</Nom></Domaine></ListeDomaines></ListeBlancheMSSante>
"""
EXTERNAL_DTD = """<?xml version="1.0"?>
<!DOCTYPE ListeBlancheMSSante SYSTEM "http://127.0.0.1:9/evil.dtd">
<ListeBlancheMSSante xmlns="https://listeblanche.mssante.fr/schema"/>
"""


@pytest.mark.parametrize(
    "content, sentence",
    [
        (
            BILLION_LAUGHS,
            (
                r"hostile.xml:3: the file declares the entity 'lol'; entity declarations are "
                r"refused because nested entities can expand to gigabytes \(billion laughs\)"
            ),
        ),
        (
            EXTERNAL_ENTITY,
            (
                r"hostile.xml:2: the file declares the external entity 'xxe' "
                r"\(file:///etc/passwd\); external entities are refused"
            ),
        ),
        (
            EXTERNAL_DTD,
            (
                r"hostile.xml:2: the file refers to the external DTD "
                r"'http://127.0.0.1:9/evil.dtd'; external DTDs are refused"
            ),
        ),
        (
            (
                "<?xml version='1.0'?>\n<ListeBlancheMSSante xmlns='https://listeblanche.mssante.fr/schema'>"
                "\n<ListeDomaines>\n<Domaine>\n</ListeDomaines>"
            ),
            r"hostile.xml:5: not well-formed XML: mismatched tag",
        ),
        ("<?xml version='1.0'?>\n<html/>", "the root element is html, not ListeBlancheMSSante"),
    ],
)
async def test_hostile_or_broken_xml_is_refused(
    db: Database, ans_data: Path, tmp_path: Path, content: str, sentence: str
) -> None:
    await _import(db, str(ans_data / SAMPLE))
    path = tmp_path / "hostile.xml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InvalidInput, match=sentence):
        await _import(db, str(path))
    assert all(enabled for _, _, enabled in await _rows(db)) and len(await _rows(db)) == 4


async def test_bad_entries_refuse_the_file_or_are_skipped(
    db: Database, ans_data: Path, tmp_path: Path
) -> None:
    await _import(db, str(ans_data / SAMPLE))
    path = whitelist(
        tmp_path,
        domaine("hopital-fictif-a.mssante.example", DN_A1),
        domaine("pas un domaine", "CN=x,C=FR"),
        domaine("hopital-fictif-a.mssante.example", DN_A1),
    )
    with pytest.raises(InvalidInput, match=r"liste.xml:5: 'pas un domaine' is not a mail domain"):
        await _import(db, path)
    assert len([r for r in await _rows(db) if r[2]]) == 4
    report = await _import(db, path, skip_invalid=True)
    assert [where.rsplit(":", 1)[-1] for where, _ in report.skipped] == ["5", "6"]
    assert report.skipped[0][1].startswith("'pas un domaine' is not a mail domain")
    assert report.skipped[1][1] == (
        "Domaine hopital-fictif-a.mssante.example with this "
        "DNCertificatOperateur is already listed on line 4"
    )
    assert report.disabled == 3


async def test_a_skipped_entry_leaves_its_domain_as_it_was(
    db: Database, ans_data: Path, tmp_path: Path
) -> None:
    await _import(db, str(ans_data / SAMPLE))
    path = whitelist(
        tmp_path,
        domaine("hopital-fictif-a.mssante.example", DN_A1),
        domaine("ehpad-fictif-b.mssante.example", ""),
    )
    report = await _import(db, path, skip_invalid=True)
    assert (
        report.skipped[0][1]
        == "Domaine ehpad-fictif-b.mssante.example has no DNCertificatOperateur"
    )
    assert report.disabled == 2  # the second hopital-fictif-a certificate and cabinet-fictif-c
    async with db.read() as session:
        assert await trusted_domain(session, "ehpad-fictif-b.mssante.example") is not None


async def test_an_empty_list_never_disables_everything(
    db: Database, ans_data: Path, tmp_path: Path
) -> None:
    await _import(db, str(ans_data / SAMPLE))
    with pytest.raises(InvalidInput, match="no valid Domaine entry"):
        await _import(db, whitelist(tmp_path))
    assert len([r for r in await _rows(db) if r[2]]) == 4
