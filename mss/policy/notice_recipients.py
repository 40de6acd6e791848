"""Who is told when something happens to a patient's record: the patient, or for a minor the
guardians.

Guardians act for minors (DESIGN, "Consent and the DMP"): a notice about a
minor's record, such as an emergency access, goes to each legal guardian the
hub knows, in the guardian's own words ("le dossier d'un enfant dont vous êtes
le représentant légal"), and not to the minor's own e-mail or phone. A minor
with no guardian on record is told directly, so that somebody is.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class NoticeRecipient:
    """A patient to notify, and whether they are told as the guardian of the record's patient."""

    patient_id: int
    as_guardian: bool = False


def decide_record_notice_recipients(
    patient_id: int, guardian_ids: Iterable[int]
) -> tuple[NoticeRecipient, ...]:
    """The guardians of a minor (by id, once each), else the patient themself."""
    guardians = tuple(
        dict.fromkeys(guardian for guardian in guardian_ids if guardian != patient_id)
    )
    if guardians:
        return tuple(NoticeRecipient(guardian, as_guardian=True) for guardian in guardians)
    return (NoticeRecipient(patient_id),)
