"""Who may read the patient's medical profile and record in it, as pure functions over plain facts.

The profile (allergies, history, vaccinations, treatments) is the patient's,
kept beside the DMP. Professionals read it under the DMP's own rule
(``mss.policy.consent``): the médecin traitant and the professionals the
patient authorised, or anyone through break-glass with a stated reason
unless the patient opposed it; a blocked professional never. Recording is
narrower: only the médecin traitant and authorised professionals write, and
only allergies and treatments (the two the document API carries, as FHIR
AllergyIntolerance and MedicationStatement). Break-glass is for reading in
an emergency, never for writing into the patient's profile.

The patient, or a guardian acting for a minor, reads and changes the whole
profile from the portal.
"""

from __future__ import annotations

import enum

from mss.policy.consent import (
    ConsentFacts,
    DmpAction,
    ViewerFacts,
    decide_dmp_action,
)
from mss.policy.decision import Decision, allow, refuse_http

# What a professional records through the API: profile category -> FHIR resource type.
PROFESSIONAL_CATEGORIES: dict[str, str] = {
    "allergy": "AllergyIntolerance",
    "treatment": "MedicationStatement",
}


class ProfileAction(str, enum.Enum):
    READ = "read"
    WRITE = "write"


def decide_profile_read(viewer: ViewerFacts, consent: ConsentFacts) -> Decision:
    """May ``viewer`` read the medical profile? Exactly who may list the record's documents.

    ``decision.break_glass`` set: allowed only as an emergency access (log it, tell the patient
    and the médecin traitant).
    """
    return decide_dmp_action(viewer, consent, DmpAction.LIST)


def decide_profile_write(viewer: ViewerFacts, consent: ConsentFacts, category: str) -> Decision:
    """May ``viewer`` add an item of ``category`` to the profile?"""
    if not viewer.is_professional:
        return decide_dmp_action(viewer, consent, DmpAction.LIST)  # the patient's own profile
    if category not in PROFESSIONAL_CATEGORIES:
        return refuse_http(
            422,
            "category_not_recorded",
            f"A professional records only allergies and treatments in the patient's profile, "
            f"not {category!r}",
            "Un professionnel n'inscrit au profil du patient que des allergies et des traitements",
        )
    as_reader = decide_dmp_action(
        ViewerFacts(viewer.kind, viewer.id_nat, viewer.institution, None),
        consent,
        DmpAction.LIST,
    )
    if as_reader.allowed:
        return allow("Allowed", "Autorisé")
    if as_reader.reason == "not_authorised":
        return refuse_http(
            403,
            "not_authorised_to_write",
            "Only the patient's médecin traitant and the professionals they authorised record "
            "allergies and treatments in their profile; emergency access (break-glass) only "
            "reads them",
            "Seuls le médecin traitant et les professionnels que le patient a autorisés "
            "inscrivent des allergies et des traitements dans son profil ; l'accès en urgence "
            "permet seulement de les lire",
        )
    return as_reader  # no record, blocked, not an identified professional


def decide_profile_action(
    viewer: ViewerFacts, consent: ConsentFacts, action: ProfileAction, category: str = ""
) -> Decision:
    """One entry for the role × action table: read, or write an item of ``category``."""
    if action is ProfileAction.READ:
        return decide_profile_read(viewer, consent)
    return decide_profile_write(viewer, consent, category)


__all__ = [
    "PROFESSIONAL_CATEGORIES",
    "ProfileAction",
    "decide_profile_action",
    "decide_profile_read",
    "decide_profile_write",
]
