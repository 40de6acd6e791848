"""MIME structure (BODYSTRUCTURE, ENVELOPE), S/MIME verification, the CMS reader and the
gateway's decryption of EnvelopedData.

Property: describe, verify and decryption always return (decryption with a status of
``mss.policy.encryption``'s table); the CMS reader returns or raises CmsFailure with a
sentence.
"""

from __future__ import annotations

from hypothesis import example, given

from tests.fuzz.near_valid import fuzz_settings
from tests.fuzz.targets import check, inputs


@fuzz_settings(60)
@given(inputs("mime_structure", max_edits=3))
@example(
    b"From: =?u\xd6f-8?q?Fran=C3=A7oise?= <f@b.example>\r\n\r\n"
)  # CharsetError in decode_words
@example(
    b'Content-Type: multipart/mixed; boundary="n"\r\n\r\n--n\r\n' * 3000
)  # deeper than MAX_DEPTH
def test_structure_of_any_message(data: bytes) -> None:
    check("mime_structure", data)


@fuzz_settings(60)
@given(inputs("smime", max_edits=3))
def test_smime_verify_answers_every_message(data: bytes) -> None:
    check("smime", data)


@fuzz_settings(150)
@given(inputs("cms"))
def test_cms_reader_refuses_with_a_sentence(data: bytes) -> None:
    check("cms", data)


@fuzz_settings(60)
@given(inputs("decryption"))
def test_decryption_answers_every_enveloped_data(data: bytes) -> None:
    check("decryption", data)
