"""XDM packages (the zip, its layout, METADATA.XML) built by tests/xdm_factory.py, then broken.

Property: read_xdm and the ebRIM reader return or raise XdmError with a sentence.
"""

from __future__ import annotations

from hypothesis import example, given

from tests.fuzz.near_valid import fuzz_settings
from tests.fuzz.targets import check, inputs


@fuzz_settings(60)
@given(inputs("xdm", max_edits=3))
def test_xdm_zip_is_read_or_refused(data: bytes) -> None:
    check("xdm", data)


@fuzz_settings(80)
@given(inputs("xdm_metadata"))
@example(b'<?xml version="1.0" encoding="UTFe8"?><SubmitObjectsRequest/>')  # LookupError
@example(b"<a>" * 5000 + b"</a>" * 5000)  # deeper than MAX_XML_DEPTH
@example(b"<?a?>" * 40 + b"<x")  # hang: the root-prefix regular expression backtracked 2^40 ways
def test_metadata_xml_is_read_or_refused(data: bytes) -> None:
    check("xdm_metadata", data)
