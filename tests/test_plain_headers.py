"""Plainly written header blocks are read directly, with exactly the email package's answers.

``mss.email_policy.header_fields`` / ``plain_content_type``, the policy facts of
``mss.message`` and the Content-Type and signature-part readers of
``mss.crypto.smime`` answer only for plain input and leave the rest to the email
package. Every test here runs both readers on a corpus (the repository's sample
messages, the ANS samples, messages signed by the hub and by OpenSSL, crafted edge
cases) and asserts the same answers, and that the direct reader did answer for the
plain ones: otherwise a regression to "always fall back" would pass unnoticed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import email.policy
import itertools
from email.parser import BytesParser
from pathlib import Path

import pytest

from examples.hospital_convocations import ConvocationSender, sign_message
from mss import message as content
from mss.crypto import cms, smime
from mss.email_policy import PARSER, header_fields, plain_content_type
from mss.message import parse_message
from tests.fixtures_pki import DevPki
from tests.test_smime import INNER, MESSAGE, openssl

COMPAT32 = BytesParser(policy=email.policy.compat32)
GOLDEN = Path(__file__).parent / "golden" / "imap" / "messages"
PARAMS = ("protocol", "boundary", "smime-type", "micalg", "charset", "name")
BASE = {
    "From": "Jean Dupont <jean.dupont@mss.localhost>",
    "To": "180012B123456@patient.mss.localhost",
    "Subject": "Convocation : Cardiologie",
    "Message-ID": "<1@mss.localhost>",
    "MIME-Version": "1.0",
    "Content-Type": 'text/plain; charset="utf-8"',
}

# (field, value, plain): plain says whether the direct reader must answer for it.
FIELDS = [
    ("From", "jean.dupont@mss.localhost", True),
    ("From", "  Jean \t Dupont\t<jean@x.fr>  ", True),
    ("From", "a@b.c, Other <o@p.q>", True),
    ("From", "a@b.c,b@c.d", True),
    ("From", "CHU<a@b.c>", True),
    ("From", "CHU de Test - Convocations <convocations@mss.localhost>", True),
    ("From", "O'Brien <o@x.fr>", True),
    ("From", "a!#$%&'*+/?=^_`{|}~-b <x!#$%&'*+/?=^_`{|}~-.y@z.example>", True),
    ("From", "A@B.C", True),
    ("From", "a@b", True),
    ("From", "Jean\r\n Dupont <j@x.fr>", True),
    ("From", "j@x.fr\r\n\t, k@y.fr", True),
    ("From", "=?utf-8?q?J=C3=A9r=C3=B4me?= <j@x.fr>", False),
    ("From", '"Dupont, Jean" <j@x.fr>', False),
    ("From", "j@x.fr (Jean)", False),
    ("From", "Equipe: a@b.c, d@e.f;", False),
    ("From", "undisclosed-recipients:;", False),
    ("From", "<j@x.fr>", False),
    ("From", "Dr. Jean <j@x.fr>", False),
    ("From", "jean.@x.fr", False),
    ("From", "j..d@x.fr", False),
    ("From", "j@[192.0.2.1]", False),
    ("From", '"quoted local"@x.fr', False),
    ("From", "", False),
    ("From", "a@b.c,", False),
    ("From", ",a@b.c", False),
    ("From", "J\u00e9r\u00f4me <j@x.fr>", False),
    ("From", "a@b.c <d@e.f>", False),
    ("From", "Jean <j@x.fr> <k@x.fr>", False),
    ("From", "<@route.example:j@x.fr>", False),
    ("From", "a=?b@c.d", False),
    ("Subject", "  spaced   out  ", True),
    ("Subject", "tab\there", True),
    ("Subject", "folded\r\n subject\r\n\tagain", True),
    ("Subject", "", True),
    ("Subject", '(not a comment) "nor quotes" \\ back', True),
    ("Subject", "x?=y a = ? b", True),
    ("Subject", "=?utf-8?q?R=C3=A9sultat?=", False),
    ("Subject", "Re: =?utf-8?b?w6k=?=", False),
    ("Subject", "R\u00e9sultat", False),
    ("Subject", "ctrl\x01char", False),
    ("Subject", "x=?y", False),
    ("Message-ID", " <a.b@c.d>  ", True),
    ("Message-ID", "<a=b+c@d.e>", True),
    ("Message-ID", "\r\n <a@b.c>", True),
    ("Message-ID", "", True),
    ("Message-ID", "<a@b> <c@d>", False),
    ("Message-ID", "<a..b@c>", False),
    ("Message-ID", "<a@[192.0.2.1]>", False),
    ("Message-ID", "a@b", False),
    ("Message-ID", "<a>", False),
    ("Message-ID", "<a@b> (comment)", False),
    ("Message-ID", "(c) <a@b>", False),
    ("Message-ID", "<a b@c>", False),
    ("Message-ID", "<=?x?=@c>", False),
    ("Message-ID", '<"q"@c>', False),
    ("In-Reply-To", "<a@b>", True),
    ("In-Reply-To", "<a@b> <c@d>", True),
    ("References", "<a@b>\r\n <c@d>\r\n\t<e@f>", True),
    ("References", "<a@b>,<c@d>", True),
    ("References", "garbage", True),
    ("References", "<a@b>(comment)", True),
    ("References", "=?utf-8?q?x?= <a@b>", False),
    ("In-Reply-To", "R\u00e9f <a@b>", False),
    ("X-MSS-MES", "MES-1", True),
    ("X-MSS-MES", "", True),
    ("X-MSS-MES", "=?utf-8?q?x?=", False),
    (
        "Content-Type",
        (
            'multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256; '
            'boundary="----=_mss_signed_7622"'
        ),
        True,
    ),
    (
        "Content-Type",
        'Multipart/Signed; Protocol="application/pkcs7-signature"; BOUNDARY=abc',
        True,
    ),
    (
        "Content-Type",
        'multipart/signed;\r\n\tboundary="b";\r\n protocol="application/pkcs7-signature"',
        True,
    ),
    ("Content-Type", "application/pkcs7-mime; smime-type=signed-data; name=smime.p7m", True),
    ("Content-Type", 'application/pkcs7-mime; smime-type="enveloped-data"', True),
    ("Content-Type", "application/x-pkcs7-mime; smime-type=signed-data", True),
    (
        "Content-Type",
        'multipart/signed; boundary="a;b"; protocol="application/pkcs7-signature"',
        True,
    ),
    ("Content-Type", 'multipart/signed; boundary="<abc>"', True),
    ("Content-Type", 'multipart/signed; boundary=""', True),
    (
        "Content-Type",
        'multipart/signed ; boundary = abc ; protocol = "application/pkcs7-signature" ',
        True,
    ),
    ("Content-Type", "multipart/signed; boundary=abc; boundary=def", True),
    ("Content-Type", 'application/pkcs7-mime; smime-type=" signed-data "', True),
    ("Content-Type", "  text/plain  ", True),
    ("Content-Type", "application/pkcs7-mime; smime-type*=us-ascii''signed-data", False),
    ("Content-Type", "application/pkcs7-mime; smime-type*0=signed; smime-type*1=-data", False),
    ("Content-Type", "text/plain (comment); charset=utf-8", False),
    ("Content-Type", 'text/plain; charset="a\\"b"', False),
    ("Content-Type", "text/plain;", False),
    ("Content-Type", "text/plain; charset", False),
    ("Content-Type", "textplain", False),
    ("Content-Type", "text/plain/x", False),
    ("Content-Type", "multipart/signed; boundary=<abc>", False),
    ("Content-Type", "multipart/signed; boundary=a b", False),
    ("Content-Type", 'multipart/signed; boundary="unterminated', False),
    ("Content-Type", 'text/plain; name="R\u00e9sultat"', False),
    ("Content-Type", "text/plain; name==x", False),
    ("Content-Type", "text/plain; name=a@b", False),
    (
        "Content-Type",
        "text/plain; a.b=e; a!#$&+-^_`{|}~=f; name=a.e!f#g$h&i+j-k^l_m`n{o|p}q~r",
        True,
    ),
    ("Content-Type", 'text/plain; name="a\'b%c*d"', True),
    ("Content-Type", "text/plain; a'b=c", False),
    ("Content-Type", "text/plain; a%b=c", False),
    ("Content-Type", "text/plain; name=a'b", False),
    ("Content-Type", "text/plain; name=a%b", False),
    ("Content-Type", "text/plain; name=a*b", False),
    # policy.default reads "application" here, compat32 the whole value: the email packages decide
    ("Content-Type", "multipart/signed; protocol=application/pkcs7-signature; boundary=abc", False),
]

# Whole header blocks: (block, plain) where plain says whether the direct reader answers.
BLOCKS = [
    (b" continuation first\r\nFrom: a@b.c\r\n\r\n", False),
    (b"From a@b.c Mon Jan  1 00:00:00 2026\r\nFrom: a@b.c\r\n\r\n", False),
    (b":novalue\r\nFrom: a@b.c\r\n\r\n", False),
    (b"Bad Header: x\r\nFrom: a@b.c\r\n\r\n", False),
    (b"From: a@b.c\r\nX-Tab-Name\t: v\r\n\r\n", False),
    (b"X-Name\x7f: v\r\nFrom: a@b.c\r\n\r\n", False),
    (b"From: a@b.c\nSubject: lf\n\n", False),
    (b"From: a@b.c\r\nSubject: bare\rcr\r\n\r\n", False),
    (b"From: a@b.c\r\nSubject: only headers, no empty line", False),
    (b"\r\nbody only\r\n\r\nmore", False),
    (b"From: a@b.c\r\nX-Raw: caf\xc3\xa9\r\nSubject: s\r\n\r\n", True),
    (
        b"FROM: a@b.c\r\nsubject: lower\r\nmessage-id: <x@y>\r\ncontent-type: text/plain\r\n\r\n",
        True,
    ),
    (b"From: a@b.c\r\nX-Empty:\r\nX-Blank: \r\n \r\nSubject: s\r\n\r\n", True),
    (b"From: a@b.c\r\nFrom: Other <o@p.q>\r\n\r\n", True),
    (b"Subject: first\r\nSubject: =?utf-8?q?second?=\r\nFrom: a@b.c\r\n\r\n", True),
    (b"Message-ID: <1@a>\r\nMessage-ID: <<bad>>\r\nFrom: a@b.c\r\n\r\n", True),
    (b"X-MSS-MES: one\r\nX-MSS-MES: =?utf-8?q?two?=\r\nFrom: a@b.c\r\n\r\n", True),
    (b"Content-Type: text/plain\r\nContent-Type: multipart/signed; boundary=x\r\n\r\n", True),
    (b"Content-Type: text/plain\r\nContent-Type: text/plain (odd)\r\n\r\n", True),
    (b"From: a@b.c\r\nIn-Reply-To: <a@b>\r\nIn-Reply-To: <c@d>\r\n\r\n", True),
    (b"From: a@b.c\r\nIn-Reply-To: <a@b>\r\nIn-Reply-To: =?utf-8?q?x?=\r\n\r\n", False),
    (b"From: a@b.c\r\n\r\n", True),
    (b"Subject: trailing  \r\nFrom: a@b.c\r\n\r\n", True),
    (b"Subject:no space\r\nFrom:a@b.c\r\nMessage-ID:<a@b>\r\n\r\n", True),
    (b'From: a@b.c\r\nFrom: "Quoted" <q@b.c>\r\n\r\n', False),
]


def block_of(field: str, value: str) -> bytes:
    fields = {**BASE, field: value}
    return "".join(f"{name}: {text}\r\n" for name, text in fields.items()).encode("utf-8") + b"\r\n"


def read_both_ways(raw: bytes) -> bool:
    """Assert that the direct readers and the email package agree on ``raw``; True if the direct
    ones answered."""
    head = smime.split_head(raw)[0]
    compat = COMPAT32.parsebytes(head, headersonly=True)
    default = PARSER.parsebytes(head, headersonly=True)
    fields = header_fields(head)
    if fields is not None:
        assert fields == list(compat.raw_items())
        assert fields == list(default.raw_items())

    plain_type = plain_content_type(fields) if fields is not None else None
    if plain_type is not None:
        for message in (compat, default):
            assert message.get_content_type() == plain_type[0]
            assert {name for name, _ in message.get_params([("", "")])[1:]} == set(plain_type[1])
            for name in {*PARAMS, *plain_type[1]}:
                assert message.get_param(name) == plain_type[1].get(name), name
    ctype = compat.get_content_type()
    assert smime._content_type(head) == (
        ctype,
        {name: compat.get_param(name) for name in smime._SMIME_PARAMS},
    )

    slow_facts, slow_id = content._parsed_facts(default)
    parsed = parse_message(raw)
    assert (dataclasses.replace(parsed.facts, size=0), parsed.message_id) == (slow_facts, slow_id)
    assert parsed.facts.size == len(raw)
    # the email package's reading of the block gives S/MIME's Content-Type without a second parse
    assert content._smime_content_type(default) == smime._content_type(head)
    assert smime.framing(*parsed.content_type) == smime.framing(*smime._content_type(head))
    plain_facts = content._plain_facts(fields) if fields is not None else None
    return plain_facts is not None and plain_type is not None


@pytest.mark.parametrize(
    ("field", "value", "plain"), FIELDS, ids=[f"{f}-{i}" for i, (f, _, _) in enumerate(FIELDS)]
)
def test_a_field_reads_the_same_both_ways(field: str, value: str, plain: bool) -> None:
    raw = block_of(field, value) + b"Bonjour\r\n"
    assert read_both_ways(raw) is plain


@pytest.mark.parametrize(("block", "plain"), BLOCKS, ids=[str(i) for i in range(len(BLOCKS))])
def test_a_header_block_reads_the_same_both_ways(block: bytes, plain: bool) -> None:
    assert read_both_ways(block + b"Bonjour\r\n") is plain


def test_every_printable_character_reads_the_same_both_ways() -> None:
    answered = 0
    for char in map(chr, [0x09, *range(0x20, 0x7F)]):
        for field, value in [
            ("Content-Type", f"text/plain; na{char}me=x"),
            ("Content-Type", f"text/plain; name=a{char}b"),
            ("Content-Type", f'text/plain; name="a{char}b"'),
            ("Content-Type", f"text/pl{char}ain"),
            ("Content-Type", f"multipart/signed; boundary={char}; protocol=x{char}"),
            ("From", f"Na{char}me <lo{char}cal@x.fr>"),
            ("From", f"lo{char}cal@x{char}y.fr"),
            ("From", f"{char}a@x.fr"),
            ("Message-ID", f"<a{char}b@x{char}y.fr>"),
            ("Subject", f"a{char}b"),
            ("References", f"<a{char}b@c> <d@e>"),
        ]:
            answered += read_both_ways(block_of(field, value) + b"Bonjour\r\n")
    assert answered > 400


def test_each_field_variant_combined_with_the_others() -> None:
    """Two varied fields at once: plain only when both are."""
    for (f1, v1, p1), (f2, v2, p2) in itertools.combinations(FIELDS[::3], 2):
        if f1 == f2:
            continue
        fields = {**BASE, f1: v1, f2: v2}
        raw = "".join(f"{n}: {t}\r\n" for n, t in fields.items()).encode() + b"\r\nBonjour\r\n"
        assert read_both_ways(raw) is (p1 and p2), (f1, v1, f2, v2)


def test_sample_messages_read_the_same_both_ways(ans_data: Path) -> None:
    samples = [*sorted(GOLDEN.glob("*.eml")), *sorted((ans_data / "mss").glob("*.eml"))]
    assert len(samples) >= 10
    answered = 0
    for path in samples:
        raw = path.read_bytes()
        for variant in {raw, smime.canonical(raw)}:  # the ANS samples have bare LF line endings
            answered += read_both_ways(variant)
    assert answered >= 5


# --- signed and encrypted messages: the Content-Type, the signature part, verify -----------


def signed_corpus(dev_pki: DevPki, tmp_path: Path) -> list[tuple[bytes, str]]:
    """(message, From address): ours in RSA and EC, detached and opaque, convocations, OpenSSL's,
    encrypted."""
    corpus: list[tuple[bytes, str]] = []
    doctor = "jean.dupont@mss.localhost"
    for key_type in ("rsa", "ec"):
        identity = dev_pki.issue_smime(doctor, "899700367917", key_type=key_type)
        corpus += [(identity.sign(MESSAGE, detached=d), doctor) for d in (True, False)]
        corpus.append(
            (
                identity.sign(
                    MESSAGE.replace(b"Subject: =?utf-8?q?R=C3=A9sultat?=", b"Subject: CR")
                ),
                doctor,
            )
        )
    app = "convocations@mss.localhost"
    signer = dev_pki.issue_smime(app, common_name="CHU Convocations")
    body = (
        b'Content-Type: multipart/alternative; boundary="=_b"\r\n\r\n--=_b\r\n'
        b'Content-Type: text/plain; charset="utf-8"\r\n\r\nBonjour\r\n--=_b--\r\n'
    )
    for name in ("CHU de Test - Convocations", "H\u00f4pital Nord"):
        sender = ConvocationSender(
            address=app,
            host="localhost",
            port=0,
            client_cert=signer.cert_path,
            client_key=signer.key_path,
            smime_cert=signer.cert_path,
            smime_key=signer.key_path,
            display_name=name,
        )
        corpus.append(
            (
                sign_message(
                    sender,
                    "180012B123456@patient.mss.localhost",
                    "Convocation : Cardiologie",
                    body,
                    dt.datetime.now(dt.UTC),
                ),
                app,
            )
        )
    identity = dev_pki.issue_smime(doctor, "899700367917", key_type="rsa")
    (tmp_path / "inner.txt").write_bytes(INNER)
    for extra in (
        [],
        ["-nodetach"],
        ["-crlfeol"],
        ["-nodetach", "-crlfeol"],
        ["-keyid", "-crlfeol"],
        ["-md", "sha512", "-crlfeol"],
        ["-noattr", "-crlfeol"],
        ["-keyopt", "rsa_padding_mode:pss", "-crlfeol"],
    ):
        signed = openssl(
            "cms",
            "-sign",
            "-in",
            tmp_path / "inner.txt",
            "-signer",
            identity.cert_path,
            "-inkey",
            identity.key_path,
            "-from",
            doctor,
            "-subject",
            "Compte rendu",
            *extra,
        )
        assert signed.returncode == 0, signed.stderr.decode()
        corpus.append((signed.stdout, doctor))
    patient = dev_pki.issue_smime("180012B123456@patient.mss.localhost", key_type="rsa")
    corpus.append((smime.encrypt(MESSAGE, [patient.cert]), doctor))
    return corpus


def test_signed_messages_read_and_verify_the_same_both_ways(
    dev_pki: DevPki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = signed_corpus(dev_pki, tmp_path)
    direct = [read_both_ways(raw) for raw, _ in corpus]
    assert sum(direct) >= 8
    parts = 0
    for raw, _ in corpus:
        head, body = smime.split_head(raw)
        ctype, params = smime._content_type(head)
        if ctype != "multipart/signed":
            continue
        part = smime._multipart_parts(body, str(params["boundary"]))[1]
        slow = email.message_from_bytes(part, policy=email.policy.compat32)
        quick = smime._plain_signature_der(part)
        if quick is not None:
            parts += 1
            assert slow.get_content_type() in smime._SIGNATURE_TYPES
            assert quick == slow.get_payload(decode=True)
    assert parts >= 6

    quick_results = [
        smime.verify(raw, dev_pki.trust, from_address=sender) for raw, sender in corpus
    ]
    assert [r.status for r in quick_results].count("valid") == len(
        corpus
    ) - 1  # all but the encrypted one
    monkeypatch.setattr(smime, "header_fields", lambda head: None)
    monkeypatch.setattr(cms, "_check_strict_der", lambda der, detached: None)
    slow_results = [smime.verify(raw, dev_pki.trust, from_address=sender) for raw, sender in corpus]
    assert quick_results == slow_results


def test_garbage_and_refusals_verify_the_same_both_ways(
    dev_pki: DevPki, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.test_smime import GARBAGE

    identity = dev_pki.issue_smime("jean.dupont@mss.localhost", "899700367917", key_type="rsa")
    signed = identity.sign(MESSAGE)
    cases = [
        *GARBAGE,
        signed.replace(b"normal", b"anormal"),
        signed.replace(b"protocol=", b"x-protocol="),
        signed.replace(b"application/pkcs7-signature;", b"application/pkcs7-mime;"),
        signed.replace(b"Content-Transfer-Encoding: base64", b"Content-Transfer-Encoding: 8bit"),
        signed.replace(
            b'name="smime.p7s"\r\nContent-Transfer-Encoding: base64\r\n',
            b'name="smime.p7s"\r\nContent-Transfer-Encoding: base64\r\n\r\n',
        ),
    ]
    senders = ("jean.dupont@mss.localhost", "Someone <marie.curie@mss.localhost>", None)
    quick = [smime.verify(raw, dev_pki.trust, from_address=s) for raw in cases for s in senders]
    monkeypatch.setattr(smime, "header_fields", lambda head: None)
    monkeypatch.setattr(cms, "_check_strict_der", lambda der, detached: None)
    assert quick == [
        smime.verify(raw, dev_pki.trust, from_address=s) for raw in cases for s in senders
    ]
