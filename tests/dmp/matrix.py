"""The role x action table every consent test reads: what each role sees and may do.

The record holds four documents by ``AUTHOR`` (a professional who is not
authorised): one plain, one MASQUE_PS, one INVISIBLE_PATIENT, one
INVISIBLE_REPRESENTANTS_LEGAUX. The patient is a minor with one guardian.
"""

from __future__ import annotations

DOCUMENTS = ("plain", "masked", "invisible_patient", "invisible_guardians")
FLAGS = {
    "plain": {},
    "masked": {"masked_from_professionals": True},
    "invisible_patient": {"invisible_to_patient": True},
    "invisible_guardians": {"invisible_to_legal_representatives": True},
}
ROLES = (
    "patient",
    "guardian",
    "authorised",
    "unauthorised",
    "blocked",
    "treating",
    "break_glass",
    "break_glass_opposed",
)
PROFESSIONAL_ROLES = ROLES[2:]
ID_NATS = {
    "authorised": "810000000011",
    "unauthorised": "810000000012",
    "blocked": "810000000013",
    "treating": "810000000014",
    "break_glass": "810000000015",
    "break_glass_opposed": "810000000015",
    "author": "810000000016",
}
REASON = "Patient inconscient aux urgences, recherche d'allergies"

# Which documents a role finds in a list and can read (None: listing itself is refused).
VISIBLE: dict[str, set[str] | None] = {
    "patient": {"plain", "masked", "invisible_guardians"},
    "guardian": {"plain", "masked"},
    "authorised": {"plain", "invisible_patient", "invisible_guardians"},
    "unauthorised": None,
    "blocked": None,
    "treating": set(DOCUMENTS),
    "break_glass": {"plain", "invisible_patient", "invisible_guardians"},
    "break_glass_opposed": None,
}
LIST_REFUSED = {"unauthorised": 403, "blocked": 403, "break_glass_opposed": 403}
DEPOSIT = {role: 403 if role == "blocked" else 200 for role in ROLES}
MASK = {role: 200 if role in ("patient", "guardian") else 403 for role in ROLES}
# Replacing the plain document (a professional's): only its author may.
REPLACE = dict.fromkeys(ROLES, 403)


def read_status(role: str, document: str) -> int:
    """200 when the role may read it; 404 when hidden (as if absent); 403 when the record is
    closed to it."""
    visible = VISIBLE[role]
    if visible is None:
        return LIST_REFUSED[role]
    return 200 if document in visible else 404


# The medical profile (allergies, treatments) through AllergyIntolerance / MedicationStatement:
# read as the record's list is read (break-glass included); recorded only by the médecin
# traitant and authorised professionals (201), never through break-glass.
PROFILE_READ = {
    "patient": 200,
    "guardian": 200,
    "authorised": 200,
    "unauthorised": 403,
    "blocked": 403,
    "treating": 200,
    "break_glass": 200,
    "break_glass_opposed": 403,
}
PROFILE_WRITE = {
    "patient": 201,
    "guardian": 201,
    "authorised": 201,
    "unauthorised": 403,
    "blocked": 403,
    "treating": 201,
    "break_glass": 403,
    "break_glass_opposed": 403,
}

# The shared agenda, shared with every authorised professional: who reads it (FHIR search and
# .ics feed; by id a refusal reads as absent, 404) and who adds to it (201). Break-glass opens
# no agenda: the rule is the record's authorisation, and the patient's sharing choice.
AGENDA_READ = {role: 200 if role in ("authorised", "treating") else 403 for role in ROLES[2:]}
AGENDA_ADD = {role: 201 if status == 200 else status for role, status in AGENDA_READ.items()}

# Connected services of the catalogue (``mss.policy.services``): who connected them, the
# scopes granted. The record's documents are all of type 11488-4 (consultation).
SERVICES: dict[str, tuple[str, tuple[str, ...]]] = {
    "service_of_patient": ("patient", ("documents:11488-4",)),
    "service_of_guardian": ("guardian", ("documents:11488-4", "measurements:write")),
    "service_other_type": ("patient", ("documents:11502-2",)),
    "service_measurements_only": ("guardian", ("measurements:write",)),
    "service_profile": ("patient", ("profile:read",)),
    "service_agenda": ("guardian", ("agenda:read", "measurements:write")),
    "service_profile_and_agenda": ("guardian", ("profile:read", "agenda:read")),
}
# What each finds in a list (None: listing refused, 403 insufficient_scope): never more than
# the person who connected it, never a document masked from professionals.
SERVICE_VISIBLE: dict[str, set[str] | None] = {
    "service_of_patient": {"plain", "invisible_guardians"},
    "service_of_guardian": {"plain"},
    "service_other_type": set(),
    "service_measurements_only": None,
    "service_profile": None,
    "service_agenda": None,
    "service_profile_and_agenda": None,
}
SERVICE_WRITES = {name: "measurements:write" in scopes for name, (_, scopes) in SERVICES.items()}
# What each reads of the profile (its allergies and treatments) and of the agenda: all of it,
# as the person who connected it reads it, whoever the patient shares the agenda with among
# professionals; or nothing (403 insufficient_scope) without the scope.
SERVICE_READS_PROFILE = {
    "service_of_patient": False,
    "service_of_guardian": False,
    "service_other_type": False,
    "service_measurements_only": False,
    "service_profile": True,
    "service_agenda": False,
    "service_profile_and_agenda": True,
}
SERVICE_READS_AGENDA = {
    "service_of_patient": False,
    "service_of_guardian": False,
    "service_other_type": False,
    "service_measurements_only": False,
    "service_profile": False,
    "service_agenda": True,
    "service_profile_and_agenda": True,
}
