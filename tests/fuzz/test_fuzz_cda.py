"""CDA R2 headers (tests/xdm_factory.make_cda and the ANS samples) and eDISP-MED dispensations
(dmp_bridge.dispensation_cda), then broken.

Property: read_cda_header and read_dispensation return or raise XdmError with a sentence.
"""

from __future__ import annotations

from hypothesis import example, given

from tests.fuzz.near_valid import fuzz_settings
from tests.fuzz.targets import check, inputs


@fuzz_settings(80)
@given(inputs("cda"))
@example(b'<?xml version="1.0" encoding="UVF-8"?><ClinicalDocument/>')  # LookupError
@example(
    b'<ClinicalDocument xmlns="urn:hl7-org:v3">'
    + b"<a>" * 5000
    + b"</a>" * 5000
    + b"</ClinicalDocument>"
)  # deeper than MAX_XML_DEPTH
def test_cda_header_is_read_or_refused(data: bytes) -> None:
    check("cda", data)


@fuzz_settings(60)
@given(inputs("dispensation"))
@example(
    b'<ClinicalDocument xmlns="urn:hl7-org:v3"><component><structuredBody>'
    b'<supply moodCode="EVN"><quantity value="1e999999"/></supply>'
    b"</structuredBody></component></ClinicalDocument>"
)  # Decimal overflow
def test_dispensation_items_are_read_or_refused(data: bytes) -> None:
    check("dispensation", data)
