"""What a patient may attach to a message written in the portal: a photo or a PDF of a prescription.

The portal reads the facts (the type the bytes really are, the type the
browser declared, the size); this module decides.
"""

from __future__ import annotations

from mss.policy.decision import OK, Decision, refuse

# The types a prescription arrives as from a phone or a scanner, with their French names.
PRESCRIPTION_TYPES: dict[str, str] = {
    "image/jpeg": "photo JPEG",
    "image/png": "image PNG",
    "application/pdf": "document PDF",
}
MAX_PATIENT_ATTACHMENT = 10 * 1024 * 1024
_GENERIC_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream"})


def decide_patient_attachment(
    detected_type: str | None, declared_type: str, size: int, max_size: int = MAX_PATIENT_ATTACHMENT
) -> Decision:
    """A non-empty photo (JPEG, PNG) or PDF within ``max_size``, whose bytes match its declared
    type."""
    if size <= 0:
        return refuse(554, "5.6.0", "The attached file is empty", "Le fichier joint est vide.")
    if size > max_size:
        limit = max_size // (1024 * 1024)
        return refuse(
            552,
            "5.3.4",
            f"The attached file is larger than {limit} MB",
            f"Le fichier joint dépasse {limit} Mo : envoyez une photo moins lourde "
            "ou un PDF plus petit.",
        )
    if detected_type not in PRESCRIPTION_TYPES:
        return refuse(
            554,
            "5.6.1",
            "Only a photo (JPEG, PNG) or a PDF can be attached",
            "Seule une photo (JPEG ou PNG) ou un document PDF peut être joint.",
        )
    declared = declared_type.strip().lower()
    if declared not in _GENERIC_TYPES and declared != detected_type:
        return refuse(
            554,
            "5.6.1",
            f"The attached file is not the {declared} it claims to be",
            "Le contenu du fichier joint ne correspond pas à son type : choisissez "
            "directement la photo ou le PDF.",
        )
    return OK
