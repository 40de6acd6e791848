"""Build French IHE XDM packages and CDA documents in memory, with the quirks of README §6.

``make_cda(**options)`` writes a CI-SIS-style ClinicalDocument (INS, traits,
author idNat, level 3 narrative or level 1 PDF); ``make_xdm(XdmSpec(...))``
writes METADATA.XML plus the documents into a zip, with options for the
subset folder name, a wrapping folder, flat paths, URIs relative to the
subset folder or to ``IHE_XDM/``, a BOM, no declaration,
the undeclared ``ns3`` prefix, an IHE DSG signature entry, ``action`` C/D,
RPLC associations and the DMP confidentiality flags.
"""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

INS_TEST_OID = "1.2.250.1.213.1.4.10"
INS = "277076322082910"  # NIR key correct
INS_WRONG_KEY = "147720425367411"  # NIR key wrong (the DUI sample's)
IDNAT = "810000000013"  # 8 + RPPS
LOINC = "2.16.840.1.113883.6.1"
TRE_A07 = "1.2.250.1.213.1.1.4.13"
HL7_CONF = "2.16.840.1.113883.5.25"
RIM = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
LCM = "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"
PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)


def make_cda(
    *,
    doc_root: str = "1.2.250.1.999.1.1.20240101",
    doc_ext: str | None = "42",
    code: str = "11488-4",
    code_system: str = LOINC,
    display: str = "Compte rendu de consultation",
    effective_time: str = "20240115103000+0100",
    ins: str | None = INS,
    ins_oid: str = INS_TEST_OID,
    local_id: bool = True,
    traits: bool = True,
    author_idnat: str = IDNAT,
    rplc_parent: str | None = None,
    version: int = 1,
    level1_pdf: bytes | None = None,
    narrative: str | None = None,
    bom: bool = False,
    declaration: bool = True,
    crlf: bool = False,
    xsl_root: bool = False,
    stylesheet_pi: bool = True,
    mailto: str | None = None,
    translation: tuple[str, str] | None = None,
) -> bytes:
    """A French CDA R2 document with the header facts the bridge reads."""
    ext = f" extension={quoteattr(doc_ext)}" if doc_ext else ""
    ids = f'<id root="{ins_oid}" extension="{ins}"/>' if ins else ""
    if local_id:
        ids += '<id root="1.2.250.1.999.2.3" extension="IPP-0042"/>'
    names = (
        (
            '<family qualifier="BR">NESSI</family><given>Ruth Isabelle</given>'
            '<given qualifier="BR">Ruth</given><family qualifier="CL">DECOURCY</family>'
            '<given qualifier="CL">Ruth</given>'
        )
        if traits
        else "<family>NESSI</family>"
    )
    traits_xml = (
        (
            '<administrativeGenderCode code="F" codeSystem="2.16.840.1.113883.5.1"/>'
            '<birthTime value="19770714"/>'
        )
        if traits
        else ""
    )
    telecom = f"<telecom value={quoteattr('mailto:' + mailto)}/>" if mailto else ""
    translation_xml = (
        f'<translation code="{translation[0]}" codeSystem="{translation[1]}"/>'
        if translation
        else ""
    )
    related = (
        (
            f'<relatedDocument typeCode="RPLC"><parentDocument><id root="{rplc_parent}"/>'
            f"</parentDocument></relatedDocument>"
        )
        if rplc_parent
        else ""
    )
    if level1_pdf is not None:
        body = (
            '<component><nonXMLBody><text mediaType="application/pdf" representation="B64">'
            + base64.encodebytes(level1_pdf).decode("ascii")
            + "</text></nonXMLBody></component>"
        )
        template = '<templateId root="1.3.6.1.4.1.19376.1.2.20"/>'
    else:
        text = (
            narrative
            if narrative is not None
            else (
                "<paragraph>Patiente vue en consultation.</paragraph>"
                '<list><item>Tension 12/8</item><item><content styleCode="Bold">Pas de '
                "fièvre</content></item></list>"
            )
        )
        body = (
            "<component><structuredBody><component><section>"
            f'<code code="29299-5" codeSystem="{LOINC}"/><title>Motif</title>'
            f"<text>{text}</text></section></component></structuredBody></component>"
        )
        template = ""
    document = (
        '<ClinicalDocument xmlns="urn:hl7-org:v3" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n'
        '<realmCode code="FR"/><typeId root="2.16.840.1.113883.1.3" extension="POCD_HD000040"/>\n'
        f'<templateId root="1.2.250.1.213.1.1.1.1"/>{template}\n'
        f'<id root="{doc_root}"{ext}/>\n'
        f'<code code="{code}" codeSystem="{code_system}" displayName={quoteattr(display)}>'
        f"{translation_xml}</code>\n"
        f"<title>{escape(display)}</title>\n"
        f'<effectiveTime value="{effective_time}"/>\n'
        f'<confidentialityCode code="N" codeSystem="{HL7_CONF}"/>\n'
        '<languageCode code="fr-FR"/>\n'
        f'<setId root="{doc_root}.0"/><versionNumber value="{version}"/>\n'
        f"<recordTarget><patientRole>{ids}{telecom}<patient><name>{names}</name>"
        f"{traits_xml}</patient></patientRole></recordTarget>\n"
        f'<author><time value="{effective_time}"/><assignedAuthor>'
        f'<id root="1.2.250.1.71.4.2.1" extension="{author_idnat}"/>'
        '<code code="10" codeSystem="1.2.250.1.71.1.2.7" displayName="Médecin"/>'
        "<assignedPerson><name><prefix>Dr</prefix><given>Jean</given><family>MARTIN</family>"
        "</name></assignedPerson><representedOrganization>"
        '<id root="1.2.250.1.71.4.2.2" extension="1750803447"/><name>Cabinet Martin</name>'
        "</representedOrganization></assignedAuthor></author>\n"
        "<custodian><assignedCustodian><representedCustodianOrganization>"
        '<id root="1.2.250.1.71.4.2.2" extension="1750803447"/><name>Cabinet Martin</name>'
        "</representedCustodianOrganization></assignedCustodian></custodian>\n"
        f'<legalAuthenticator><time value="{effective_time}"/><signatureCode code="S"/>'
        f'<assignedEntity><id root="1.2.250.1.71.4.2.1" extension="{author_idnat}"/>'
        "<assignedPerson><name><given>Jean</given><family>MARTIN</family></name>"
        "</assignedPerson></assignedEntity></legalAuthenticator>\n"
        f"{related}\n{body}\n</ClinicalDocument>\n"
    )
    if xsl_root:
        document = (
            '<xsl:stylesheet version="1.0" '
            'xmlns:xsl="http://www.w3.org/1999/XSL/Transform">'
            '<xsl:template match="/"><html/></xsl:template>\n'
            f"{document}</xsl:stylesheet>\n"
        )
    prolog = '<?xml version="1.0" encoding="UTF-8"?>\n' if declaration else ""
    if stylesheet_pi:
        prolog += '<?xml-stylesheet type="text/xsl" href="CDA-FO.xsl"?>\n'
    text = prolog + document
    if crlf:
        text = text.replace("\n", "\r\n")
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8")


@dataclass
class DocSpec:
    """One document of the package and the metadata written for it."""

    content: bytes = field(default_factory=make_cda)
    file_name: str = "DOC0001.XML"
    entry_id: str = "urn:uuid:9a0b1c2d-0001-4000-8000-000000000001"
    unique_id: str = "1.2.250.1.999.1.1.20240101^42"
    mime_type: str = "text/xml"
    patient_cx: str | None = f"{INS}^^^&{INS_TEST_OID}&ISO^NH"
    class_code: tuple[str, str] = ("10", "1.2.250.1.213.1.1.4.1")
    type_code: tuple[str, str] = ("11488-4", LOINC)
    format_code: tuple[str, str] = ("urn:ihe:pcc:xds-ms:2007", "1.3.6.1.4.1.19376.1.2.3")
    confidentiality: tuple[tuple[str, str], ...] = (("N", HL7_CONF),)
    creation_time: str = "20240115093000"  # UTC, the CDA's 10:30+01:00
    author_person: str = f"{IDNAT}^MARTIN^Jean^^^Dr^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS"
    uri_slot: bool = True
    size: int | None = None  # None: the true size
    hash: str | None = None  # None: the true SHA-1
    action: str | None = None
    replaces: str | None = None  # entryUUID target of an RPLC association
    title: str = "Compte rendu de consultation"


@dataclass
class XdmSpec:
    """The package layout and its quirks."""

    documents: list[DocSpec] = field(default_factory=lambda: [DocSpec()])
    subset: str = "SUBSET01"
    wrap: str | None = None
    flat: bool = False
    bom: bool = False
    declaration: bool = True
    undeclared_prefix: bool = False
    signature: bool = False
    readme: bool = True
    extra_files: dict[str, bytes] = field(default_factory=dict)
    omit_files: tuple[str, ...] = ()
    submission_patient_cx: str | None = f"{INS}^^^&{INS_TEST_OID}&ISO^NH"
    # "subset": URIs relative to the subset folder (ITI); "ihe_xdm": relative to IHE_XDM/
    # (``SS000001/KOS_1_1.DCM``, as DRIMbox platforms write them).
    uri_base: str = "subset"


def _slot(name: str, *values: str) -> str:
    items = "".join(f"<Value>{escape(v)}</Value>" for v in values)
    return f'<Slot name="{name}"><ValueList>{items}</ValueList></Slot>'


def _classification(
    scheme: str, obj: str, ident: str, code: str, coding: str, display: str = ""
) -> str:
    return (
        f'<Classification classificationScheme="urn:uuid:{scheme}" classifiedObject="{obj}" '
        f'id="{ident}" nodeRepresentation={quoteattr(code)}>{_slot("codingScheme", coding)}'
        f"<Name><LocalizedString value={quoteattr(display or code)}/></Name></Classification>"
    )


def _external(scheme: str, obj: str, ident: str, value: str | None, label: str) -> str:
    value_attr = f" value={quoteattr(value)}" if value is not None else ""
    return (
        f'<ExternalIdentifier identificationScheme="urn:uuid:{scheme}" '
        f'registryObject="{obj}" id="{ident}"{value_attr}><Name>'
        f'<LocalizedString value="{label}"/></Name></ExternalIdentifier>'
    )


def _document_entry(doc: DocSpec, n: int, uri_prefix: str = "") -> str:
    e = doc.entry_id
    slots = [
        _slot("creationTime", doc.creation_time),
        _slot("languageCode", "fr-FR"),
        _slot("serviceStartTime", "20240115090000"),
        _slot("serviceStopTime", "20240115093000"),
        _slot("sourcePatientId", "IPP-0042^^^&1.2.250.1.999.2.3&ISO^PI"),
        _slot("sourcePatientInfo", "PID-5|NESSI^Ruth^^^^^L", "PID-7|19770714", "PID-8|F"),
        _slot("hash", doc.hash or hashlib.sha1(doc.content).hexdigest()),
        _slot("size", str(doc.size if doc.size is not None else len(doc.content))),
    ]
    if doc.uri_slot:
        slots.append(_slot("URI", uri_prefix + doc.file_name))
    if doc.action:
        slots.append(_slot("action", doc.action))
    author = (
        f'<Classification classificationScheme="urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d"'
        f' classifiedObject="{e}" id="a{n}" nodeRepresentation="">'
        + _slot("authorPerson", doc.author_person)
        + _slot(
            "authorInstitution", "Cabinet Martin^^^^^&1.2.250.1.71.4.2.2&ISO^IDNST^^^31750803447"
        )
        + _slot("authorRole", "10^Médecin^1.2.250.1.71.1.2.7")
        + _slot("authorSpecialty", "SM26^Qualifié en médecine générale^1.2.250.1.71.4.2.5")
        + "</Classification>"
    )
    classifications = [
        author,
        _classification(
            "41a5887f-8865-4c09-adf7-e362475b143a", e, f"c{n}", *doc.class_code, "Compte rendu"
        ),
        _classification(
            "f0306f51-975f-434e-a61c-c59651d33983", e, f"t{n}", *doc.type_code, doc.title
        ),
        _classification("a09d5840-386c-46f2-b5ad-9c3699a4309d", e, f"f{n}", *doc.format_code),
        _classification(
            "f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1",
            e,
            f"h{n}",
            "SA07",
            "1.2.250.1.71.4.2.4",
            "Cabinet individuel",
        ),
        _classification(
            "cccf5598-8b07-4b77-a05e-ae952c785ead",
            e,
            f"p{n}",
            "ETABLISSEMENT",
            "1.2.250.1.213.1.1.4.9",
            "Etablissement de santé",
        ),
    ]
    for i, (code, scheme) in enumerate(doc.confidentiality):
        classifications.append(
            _classification("f4f85eac-e6cb-4883-b524-f2705394840f", e, f"k{n}_{i}", code, scheme)
        )
    externals = [
        _external(
            "58a6f841-87b3-4a3e-92fd-a8ffeff98427",
            e,
            f"ip{n}",
            doc.patient_cx,
            "XDSDocumentEntry.patientId",
        ),
        _external(
            "2e82c1f6-a085-4c72-9da3-8640a32e42ab",
            e,
            f"iu{n}",
            doc.unique_id,
            "XDSDocumentEntry.uniqueId",
        ),
    ]
    return (
        f'<ExtrinsicObject id="{e}" mimeType="{doc.mime_type}" '
        'objectType="urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1">'
        + "".join(slots)
        + f"<Name><LocalizedString value={quoteattr(doc.title)}/></Name>"
        + "".join(classifications)
        + "".join(externals)
        + "</ExtrinsicObject>"
    )


SIGNATURE_ID = "urn:uuid:9a0b1c2d-5150-4000-8000-00000000005e"
SIGNATURE = b'<Signature xmlns="http://www.w3.org/2000/09/xmldsig#"><SignedInfo/></Signature>'


def _signature_entry(uri_prefix: str = "") -> str:
    e = SIGNATURE_ID
    return (
        f'<ExtrinsicObject id="{e}" mimeType="text/xml" '
        'objectType="urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1">'
        + _slot("creationTime", "20240115093100")
        + _slot("URI", uri_prefix + "SIGN_1.XML")
        + _slot("hash", hashlib.sha1(SIGNATURE).hexdigest())
        + _slot("size", str(len(SIGNATURE)))
        + _classification(
            "41a5887f-8865-4c09-adf7-e362475b143a",
            e,
            "sc",
            "urn:oid:1.3.6.1.4.1.19376.1.2.1.1.1",
            "URN",
            "Digital Signature",
        )
        + _classification(
            "f0306f51-975f-434e-a61c-c59651d33983", e, "st", "E1762", "ASTM", "Full Document"
        )
        + _classification(
            "a09d5840-386c-46f2-b5ad-9c3699a4309d",
            e,
            "sf",
            "http://www.w3.org/2000/09/xmldsig#",
            "URN",
        )
        + _external(
            "58a6f841-87b3-4a3e-92fd-a8ffeff98427",
            e,
            "sp",
            f"{INS}^^^&{INS_TEST_OID}&ISO^NH",
            "XDSDocumentEntry.patientId",
        )
        + _external(
            "2e82c1f6-a085-4c72-9da3-8640a32e42ab",
            e,
            "su",
            "1.2.250.1.999.7.7",
            "XDSDocumentEntry.uniqueId",
        )
        + "</ExtrinsicObject>"
    )


def make_metadata(spec: XdmSpec) -> bytes:
    """METADATA.XML for the spec (ebRIM 3.0, lcm prefixed ns3 as the ANS samples do)."""
    ss = "urn:uuid:9a0b1c2d-5555-4000-8000-000000000055"
    uri_prefix = f"{spec.subset}/" if spec.uri_base == "ihe_xdm" else ""
    objects = [_document_entry(doc, n, uri_prefix) for n, doc in enumerate(spec.documents)]
    if spec.signature:
        objects.append(_signature_entry(uri_prefix))
    objects.append(
        f'<RegistryPackage id="{ss}">'
        + _slot("submissionTime", "20240115093200")
        + _slot(
            "intendedRecipient",
            "|ruth.nessi^NESSI^Ruth^^^^^^&1.2.250.1.213.1.4.10&ISO"
            "|^^Internet^" + INS + "@patient.mssante.fr",
        )
        + '<Name><LocalizedString value="Envoi"/></Name>'
        + f'<Classification classificationScheme="urn:uuid:a7058bb9-b4e4-4307-ba5b-e3f0ab85e12d"'
        f' classifiedObject="{ss}" id="sa" nodeRepresentation="">'
        + _slot("authorPerson", spec.documents[0].author_person)
        + "</Classification>"
        + _classification(
            "aa543740-bdda-424e-8c96-df4873be8500",
            ss,
            "sct",
            "04",
            "1.2.250.1.213.1.1.4.2.3",
            "Consultation",
        )
        + _external(
            "96fdda7c-d067-4183-912e-bf5ee74998a8",
            ss,
            "su",
            "1.2.250.1.999.5.20240115",
            "XDSSubmissionSet.uniqueId",
        )
        + _external(
            "554ac39e-e3fe-47fe-b233-965d2a147832",
            ss,
            "ss",
            "1.2.250.1.999",
            "XDSSubmissionSet.sourceId",
        )
        + _external(
            "6b5aea1a-874d-4603-a4bc-96a0a7b38446",
            ss,
            "sp",
            spec.submission_patient_cx,
            "XDSSubmissionSet.patientId",
        )
        + "</RegistryPackage>"
    )
    objects.append(
        f'<Classification classifiedObject="{ss}" id="ssc" '
        'classificationNode="urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd"/>'
    )
    for n, doc in enumerate(spec.documents):
        objects.append(
            '<Association associationType="urn:oasis:names:tc:ebxml-regrep:AssociationType:'
            f'HasMember" sourceObject="{ss}" targetObject="{doc.entry_id}" id="as{n}">'
            + _slot("SubmissionSetStatus", "Original")
            + "</Association>"
        )
        if doc.replaces:
            objects.append(
                '<Association associationType="urn:ihe:iti:2007:AssociationType:RPLC"'
                f' sourceObject="{doc.entry_id}" targetObject="{doc.replaces}"'
                f' id="rp{n}"/>'
            )
    if spec.signature:
        objects.append(
            '<Association associationType="urn:ihe:iti:2007:AssociationType:signs"'
            f' sourceObject="{SIGNATURE_ID}" targetObject="{ss}" id="sg"/>'
        )
    inner = "<RegistryObjectList>" + "".join(objects) + "</RegistryObjectList>"
    if spec.undeclared_prefix:
        text = f"\n  <ns3:SubmitObjectsRequest>{inner}</ns3:SubmitObjectsRequest>\n"
    else:
        text = (
            f'<ns3:SubmitObjectsRequest xmlns="{RIM}" xmlns:ns3="{LCM}">{inner}'
            "</ns3:SubmitObjectsRequest>"
        )
        if spec.declaration:
            text = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>' + text
    return (b"\xef\xbb\xbf" if spec.bom else b"") + text.encode("utf-8")


def zip_bytes(entries: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A zip of the given entries, in order."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def package_entries(spec: XdmSpec) -> dict[str, bytes]:
    """The zip entries (name -> bytes) of the spec, before zipping."""
    top = f"{spec.wrap}/" if spec.wrap else ""
    subset = f"{top}IHE_XDM/{spec.subset}" + ("" if spec.flat else "/")
    entries: dict[str, bytes] = {}
    if spec.readme:
        entries[f"{top}README.TXT"] = b"MSS hub test package\r\n"
        entries[f"{top}INDEX.HTM"] = b"<html><body>IHE_XDM</body></html>"
    entries[f"{subset}METADATA.XML"] = make_metadata(spec)
    for doc in spec.documents:
        entries[subset + doc.file_name] = doc.content
    if spec.signature:
        entries[subset + "SIGN_1.XML"] = SIGNATURE
    for name, content in spec.extra_files.items():
        entries[subset + name] = content
    for name in spec.omit_files:
        entries.pop(subset + name, None)
    return entries


def make_xdm(spec: XdmSpec | None = None) -> bytes:
    """An XDM zip for the spec (a default French consultation report when None)."""
    return zip_bytes(package_entries(spec or XdmSpec()))
