"""Hostile XDM packages: each is refused with code 906 and a precise sentence, nothing returned."""

from __future__ import annotations

import io
import os
import stat
import struct
import warnings
import zipfile

import pytest

from dmp_bridge.cda import read_cda_header
from dmp_bridge.errors import XdmError
from dmp_bridge.safezip import ZipLimits, read_zip
from dmp_bridge.xdm import read_xdm
from tests.xdm_factory import DocSpec, XdmSpec, make_cda, make_xdm, package_entries, zip_bytes

METADATA = "IHE_XDM/SUBSET01/METADATA.XML"
DOC = "urn:uuid:9a0b1c2d-0001-4000-8000-000000000001"


def refusal(data: bytes, limits: ZipLimits | None = None) -> XdmError:
    """The error read_xdm raises on ``data`` (the test fails if it returns)."""
    with pytest.raises(XdmError) as caught:
        read_xdm(data, limits) if limits else read_xdm(data)
    assert caught.value.code == 906
    assert caught.value.sentence_fr and caught.value.sentence_fr != caught.value.label_fr
    return caught.value


def with_metadata(metadata: bytes) -> bytes:
    entries = package_entries(XdmSpec())
    entries[METADATA] = metadata
    return zip_bytes(entries)


def patch_all(data: bytes, signature: bytes, offset: int, fmt: str, value: int) -> bytes:
    """Overwrite a field of every zip header with the given signature (local or central)."""
    out = bytearray(data)
    at = out.find(signature)
    while at != -1:
        struct.pack_into(fmt, out, at + offset, value)
        at = out.find(signature, at + 4)
    return bytes(out)


# -- zip bombs --------------------------------------------------------------------------------


def test_zip_bomb_by_ratio() -> None:
    entries = package_entries(XdmSpec())
    entries["IHE_XDM/SUBSET01/ZEROS.BIN"] = b"\0" * (8 * 1024 * 1024)
    error = refusal(zip_bytes(entries))
    assert error.sentence.startswith(
        "The zip entry 'IHE_XDM/SUBSET01/ZEROS.BIN' expands more "
        "than 100 times its compressed size of "
    )
    assert error.sentence.endswith("bytes; refused as a zip bomb.")


def test_zip_bomb_by_total() -> None:
    entries = package_entries(XdmSpec())
    for n in range(4):
        entries[f"IHE_XDM/SUBSET01/NOISE{n}.BIN"] = os.urandom(100_000)
    error = refusal(zip_bytes(entries), ZipLimits(max_total_bytes=300_000))
    assert error.sentence == (
        "The zip archive decompresses to more than 300000 bytes in total (reached at "
        "'IHE_XDM/SUBSET01/NOISE2.BIN'); refused as a zip bomb."
    )


def test_entry_over_its_limit() -> None:
    entries = package_entries(XdmSpec())
    entries["IHE_XDM/SUBSET01/BIG.BIN"] = os.urandom(200_000)
    error = refusal(zip_bytes(entries), ZipLimits(max_entry_bytes=100_000))
    assert error.sentence == (
        "The zip entry 'IHE_XDM/SUBSET01/BIG.BIN' decompresses to more than 100000 bytes; refused."
    )


def test_declared_size_is_not_trusted() -> None:
    """Central and local headers claim 10 bytes; the stream holds more: refused, not truncated."""
    data = zip_bytes({"IHE_XDM/SUBSET01/A.BIN": b"x" * 5000})
    data = patch_all(data, b"PK\x01\x02", 24, "<I", 10)
    data = patch_all(data, b"PK\x03\x04", 22, "<I", 10)
    with pytest.raises(XdmError) as caught:
        read_zip(data)
    assert caught.value.sentence == (
        "The zip entry 'IHE_XDM/SUBSET01/A.BIN' cannot be read: its CRC-32 does not match."
    )


def test_too_many_entries() -> None:
    entries = {f"IHE_XDM/SUBSET01/F{n}.TXT": b"x" for n in range(1001)}
    assert refusal(zip_bytes(entries)).sentence == (
        "The zip archive has 1001 entries, above the limit of 1000."
    )


def test_nested_zip_is_not_opened() -> None:
    entries = package_entries(XdmSpec())
    entries["IHE_XDM/SUBSET01/INNER.ZIP"] = make_xdm()
    assert refusal(zip_bytes(entries)).sentence == (
        "The zip entry 'IHE_XDM/SUBSET01/INNER.ZIP' is itself a zip archive; nested archives are "
        "not opened."
    )


# -- names ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("../evil.xml", "climbs out of its folder with '..'"),
        ("IHE_XDM/SUBSET01/../../etc/passwd", "climbs out of its folder with '..'"),
        ("/etc/passwd", "is an absolute path"),
        ("C:/Windows/evil.dll", "starts with a drive letter"),
        ("IHE_XDM\\SUBSET01\\DOC0001.XML", "contains a backslash"),
        ("IHE_XDM//SUBSET01/X", "has an empty or '.' path component"),
        ("IHE_XDM/\x01X", "contains a control character"),
    ],
)
def test_path_traversal_names(name: str, problem: str) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for entry, content in package_entries(XdmSpec()).items():
            archive.writestr(entry, content)
        archive.writestr(zipfile.ZipInfo(name), b"x")  # ZipInfo keeps the name as given
    data = buffer.getvalue()
    assert refusal(data).sentence == f"The zip entry name {name!r} {problem}; refused."


def test_symlink_entry() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for entry, content in package_entries(XdmSpec()).items():
            archive.writestr(entry, content)
        link = zipfile.ZipInfo("IHE_XDM/SUBSET01/LINK.XML")
        link.create_system = 3
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, b"/etc/passwd")
    assert refusal(buffer.getvalue()).sentence == (
        "The zip entry 'IHE_XDM/SUBSET01/LINK.XML' is a symbolic link; links are refused."
    )


def test_duplicate_names() -> None:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile warns about the duplicate
        with zipfile.ZipFile(buffer, "w") as archive:
            for entry, content in package_entries(XdmSpec()).items():
                archive.writestr(entry, content)
            archive.writestr(METADATA, b"<other/>")
    assert refusal(buffer.getvalue()).sentence == (
        f"The zip archive holds two entries named {METADATA!r}."
    )


def test_metadata_twice_differing_by_case() -> None:
    entries = package_entries(XdmSpec())
    entries["IHE_XDM/SUBSET01/metadata.xml"] = entries[METADATA]
    assert refusal(zip_bytes(entries)).sentence.startswith(
        "The XDM package has several METADATA.XML files differing only by case"
    )


def test_encrypted_entry() -> None:
    data = zip_bytes(package_entries(XdmSpec()))
    data = patch_all(data, b"PK\x01\x02", 8, "<H", 1)
    data = patch_all(data, b"PK\x03\x04", 6, "<H", 1)
    assert refusal(data).sentence == (
        "The zip entry 'README.TXT' is encrypted; encrypted entries are refused."
    )


def test_corrupt_crc() -> None:
    entries = package_entries(XdmSpec())
    data = bytearray(zip_bytes(entries, compression=zipfile.ZIP_STORED))
    at = data.find(b"Compte rendu de consultation</title>")
    data[at] ^= 0x01
    assert refusal(bytes(data)).sentence == (
        "The zip entry 'IHE_XDM/SUBSET01/DOC0001.XML' cannot be read: its CRC-32 does not match."
    )


def test_unsupported_compression_method() -> None:
    data = zip_bytes(package_entries(XdmSpec()), compression=zipfile.ZIP_BZIP2)
    assert refusal(data).sentence == (
        "The zip entry 'README.TXT' uses compression method 12; only stored and deflate are "
        "accepted."
    )


def test_not_a_zip() -> None:
    assert refusal(b"%PDF-1.4 not a zip").sentence == (
        "The attachment is not a readable zip archive (File is not a zip file)."
    )


def test_no_metadata() -> None:
    entries = package_entries(XdmSpec())
    del entries[METADATA]
    assert refusal(zip_bytes(entries)).sentence == (
        "The XDM package has no METADATA.XML (looked for it in any folder, in any case)."
    )


# -- XML --------------------------------------------------------------------------------------


def test_external_entity_in_metadata() -> None:
    xml = (
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><r>&xxe;</r>'
    )
    assert refusal(with_metadata(xml)).sentence == (
        f"{METADATA} declares the external entity 'xxe' pointing at 'file:///etc/passwd'; "
        "external entities are refused."
    )


def test_billion_laughs_in_metadata() -> None:
    lol = "".join(f'<!ENTITY l{n} "{f"&l{n - 1};" * 10 if n else "lol"}">' for n in range(10))
    xml = f'<?xml version="1.0"?><!DOCTYPE r [{lol}]><r>&l9;</r>'.encode()
    assert refusal(with_metadata(xml)).sentence == (
        f"{METADATA} declares the entity 'l0'; entity declarations are refused (entity "
        "expansion attack)."
    )


def test_external_dtd_in_metadata() -> None:
    xml = b'<?xml version="1.0"?><!DOCTYPE r SYSTEM "http://attacker.example/x.dtd"><r/>'
    assert refusal(with_metadata(xml)).sentence == (
        f"{METADATA} contains a document type declaration (<!DOCTYPE>); DTDs are refused."
    )


def test_broken_utf8_in_metadata() -> None:
    metadata = package_entries(XdmSpec())[METADATA].replace(b"Compte rendu", b"Compte \xe9rendu")
    error = refusal(with_metadata(metadata))
    assert error.sentence.startswith(f"{METADATA} is not valid UTF-8 (byte ")
    assert error.sentence.endswith("of the content: b'\\xe9').")


def test_metadata_not_well_formed() -> None:
    assert refusal(with_metadata(b"<ns3:SubmitObjectsRequest xmlns:ns3='x'><a></b>")).sentence == (
        f"{METADATA} is not well-formed XML: mismatched tag (line 1, column 46)."
    )


def test_metadata_of_another_vocabulary() -> None:
    error = refusal(
        with_metadata(b'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"/>')
    )
    assert error.sentence.startswith(
        f"{METADATA}: the root element is '{{http://www.w3.org/1999/xhtml}}html', expected"
    )


def test_entity_in_cda_inside_package() -> None:
    cda = (
        b'<?xml version="1.0"?><!DOCTYPE ClinicalDocument [<!ENTITY e "x">]>'
        b'<ClinicalDocument xmlns="urn:hl7-org:v3">&e;</ClinicalDocument>'
    )
    entry = read_xdm(make_xdm(XdmSpec(documents=[DocSpec(content=cda)]))).documents[0]
    with pytest.raises(XdmError) as caught:
        read_cda_header(entry.data)
    assert (caught.value.code, caught.value.sentence) == (
        906,
        (
            "The CDA document declares the entity 'e'; entity declarations are refused (entity "
            "expansion attack)."
        ),
    )


def test_broken_utf8_in_cda() -> None:
    with pytest.raises(XdmError) as caught:
        read_cda_header(make_cda().replace(b"Cabinet", b"Cab\xc3\x28net", 1))
    assert caught.value.code == 906
    assert caught.value.sentence.startswith("The CDA document is not valid UTF-8 (byte ")


def test_utf16_cda() -> None:
    with pytest.raises(XdmError) as caught:
        read_cda_header(make_cda(declaration=False).decode().encode("utf-16"))
    assert caught.value.sentence == "The CDA document is encoded in UTF-16; only UTF-8 is accepted."


# -- files against metadata -------------------------------------------------------------------


def test_missing_document_file() -> None:
    assert refusal(make_xdm(XdmSpec(omit_files=("DOC0001.XML",)))).sentence == (
        f"The document entry {DOC!r} (Compte rendu de consultation) refers to the file "
        "'DOC0001.XML', which is not in the zip (looked for 'IHE_XDM/SUBSET01/DOC0001.XML' "
        "and 'IHE_XDM/DOC0001.XML')."
    )


def test_wrong_hash() -> None:
    error = refusal(make_xdm(XdmSpec(documents=[DocSpec(hash="0" * 40)])))
    assert error.sentence.startswith(
        f"The document entry {DOC!r} (Compte rendu de consultation) declares the SHA-1 "
        f"{'0' * 40} but 'IHE_XDM/SUBSET01/DOC0001.XML' hashes to "
    )


def test_hash_that_is_not_sha1() -> None:
    error = refusal(make_xdm(XdmSpec(documents=[DocSpec(hash="md5:abc")])))
    assert error.sentence.endswith("has a hash slot 'md5:abc' that is not a SHA-1 in hex.")


def test_wrong_size() -> None:
    size = len(DocSpec().content)
    assert refusal(make_xdm(XdmSpec(documents=[DocSpec(size=size + 1)]))).sentence == (
        f"The document entry {DOC!r} (Compte rendu de consultation) declares a size of "
        f"{size + 1} bytes but 'IHE_XDM/SUBSET01/DOC0001.XML' has {size}."
    )


def test_uri_climbing_out_of_the_subset() -> None:
    entries = package_entries(XdmSpec())
    entries[METADATA] = entries[METADATA].replace(
        b"<Value>DOC0001.XML</Value>", b"<Value>../../README.TXT</Value>"
    )
    assert refusal(zip_bytes(entries)).sentence == (
        "The URI slot '../../README.TXT' points outside the subset folder 'IHE_XDM/SUBSET01'; "
        "refused."
    )


def test_extra_files_are_not_an_error() -> None:
    package = read_xdm(make_xdm(XdmSpec(extra_files={"EXTRA.TXT": b"hello"})))
    assert len(package.documents) == 1
    assert any("EXTRA.TXT: file of subset" in w for w in package.warnings)


def test_package_without_any_document_entry() -> None:
    entries = package_entries(XdmSpec())
    metadata = entries[METADATA]
    start = metadata.index(b"<ExtrinsicObject")
    end = metadata.index(b"</ExtrinsicObject>") + len(b"</ExtrinsicObject>")
    entries[METADATA] = metadata[:start] + metadata[end:]
    del entries["IHE_XDM/SUBSET01/DOC0001.XML"]
    assert refusal(zip_bytes(entries)).sentence == (
        "The XDM package holds no clinical document entry."
    )
