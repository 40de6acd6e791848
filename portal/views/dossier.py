""" "Mon dossier", the patient's medical record (DMP) in the portal: documents, own documents,
consent.

``/dossier`` is the documents list (the filing job's "new_document"
notification links there); the pages live in ``dossier_documents``,
``dossier_upload``, ``dossier_from_message`` (a PDF attachment of a received
message), ``dossier_dispensations`` (the medicines the pharmacies gave) and ``dossier_consent``.
"""

from __future__ import annotations

from typing import Any

from portal.views import (
    dossier_consent,
    dossier_dispensations,
    dossier_documents,
    dossier_from_message,
    dossier_upload,
)

ROUTES: list[tuple[str, str, dict[str, Any]]] = [
    *dossier_documents.ROUTES,
    *dossier_dispensations.ROUTES,
    *dossier_upload.ROUTES,
    *dossier_from_message.ROUTES,
    *dossier_consent.ROUTES,
]
