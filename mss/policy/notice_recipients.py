"""Who is told when something happens to a patient's record: the patient, or for a minor the
guardians.

Guardians act for minors (DESIGN, "Consent and the DMP"): a notice about a
minor's record, such as an emergency access, goes to each legal guardian the
hub knows, in the guardian's own words ("le dossier d'un enfant dont vous êtes
le représentant légal"), and not to the minor's own e-mail or phone. A minor
with no guardian on record is told directly, so that somebody is.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


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


# -- who is told, on which channel, and how notices close together are grouped --------------

CHANNEL_CHOICES = ("both", "email", "sms")  # the patient's choice in "Compte"; "both" by default
ADULT_AGE = 18
# Notices about what arrives in a record (a minor's goes to the guardians); the others are about
# the account holder's own login and account, and go to them.
RECORD_KINDS = frozenset(
    {
        "new_message",
        "new_document",
        "appointment",
        "appointment_reminder",
        "health_reminder",
        "emergency_access",
    }
)


@dataclass(frozen=True)
class NoticeContact:
    """What the decisions read of a patient: addresses, their channel choice, their birth date."""

    patient_id: int
    email: str | None = None
    phone: str | None = None
    channels: str = "both"
    birth_date: dt.date | None = None


def age_on(birth_date: dt.date | None, today: dt.date) -> int | None:
    """Full years on ``today`` (None when the birth date is unknown)."""
    if birth_date is None:
        return None
    before_birthday = (today.month, today.day) < (birth_date.month, birth_date.day)
    return today.year - birth_date.year - int(before_birthday)


def decide_notice_recipients(
    kind: str,
    patient: NoticeContact,
    guardians: Iterable[NoticeContact],
    today: dt.date,
    *,
    own_contact_age: int = 16,
) -> tuple[NoticeRecipient, ...]:
    """Who is told of a ``kind`` notice about ``patient``'s space.

    A minor's record notices go to each guardian; the minor is told too only when they have
    an address of their own and are ``own_contact_age`` or older (the hand-over at 16). A
    minor of unknown age is told through the guardians only. Notices about the account holder's
    own login and account, and any notice of a patient without guardians, go to the patient.
    """
    held_by = [g for g in dict.fromkeys(guardians) if g.patient_id != patient.patient_id]
    age = age_on(patient.birth_date, today)
    is_minor = bool(held_by) and (age is None or age < ADULT_AGE)
    if kind not in RECORD_KINDS or not is_minor:
        return (NoticeRecipient(patient.patient_id),)
    told = [NoticeRecipient(g.patient_id, as_guardian=True) for g in held_by]
    own_address = bool(patient.email or patient.phone)
    if own_address and age is not None and age >= own_contact_age:
        told.append(NoticeRecipient(patient.patient_id))
    return tuple(dict.fromkeys(told))


def decide_channels(contact: NoticeContact) -> tuple[str, ...]:
    """The channels a notice goes out on: those the patient chose that they have an address for;
    when the chosen one has none, the other, so that a notice still reaches them."""
    addresses = (("email", contact.email), ("sms", contact.phone))
    have = tuple(channel for channel, address in addresses if address)
    chosen = ("email", "sms") if contact.channels not in ("email", "sms") else (contact.channels,)
    return tuple(c for c in chosen if c in have) or have


@dataclass(frozen=True)
class PendingNotice:
    """One notice for one recipient on one channel, before grouping."""

    recipient_id: int
    channel: str
    kind: str
    link: str
    as_guardian: bool = False
    count: int = 1  # notices of this kind a waiting group merged (``merged_notices``)


@dataclass(frozen=True)
class GroupedNotice:
    """What goes out as one e-mail or one SMS: the kinds it tells of, in order, with counts."""

    recipient_id: int
    channel: str
    as_guardian: bool
    kinds: tuple[tuple[str, int], ...]  # (kind, how many), in the order they arrived
    link: str  # the common link, or the portal's home when they differ


def group_notices(notices: Iterable[PendingNotice]) -> list[GroupedNotice]:
    """One notice per recipient, channel and role (themself or as a guardian), in first-arrival
    order: a patient convoked three times within the window gets one e-mail and one SMS."""
    groups: dict[tuple[int, str, bool], list[PendingNotice]] = {}
    for notice in notices:
        groups.setdefault((notice.recipient_id, notice.channel, notice.as_guardian), []).append(
            notice
        )
    grouped = []
    for (recipient_id, channel, as_guardian), items in groups.items():
        counts: dict[str, int] = {}
        for item in items:
            counts[item.kind] = counts.get(item.kind, 0) + item.count
        links = {item.link for item in items}
        grouped.append(
            GroupedNotice(
                recipient_id,
                channel,
                as_guardian,
                tuple(counts.items()),
                links.pop() if len(links) == 1 else "/",
            )
        )
    return grouped


def merged_notices(
    held: Iterable[Mapping[str, Any]], arriving: Iterable[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """The notices a waiting group carries once ``arriving`` joins what it ``held``: one entry
    per kind, in first-arrival order, with its count and its link (the portal's home, "/", when
    that kind's links differ).

    ``group_notices`` tells the same from these entries as from the notices one by one, and a
    group's payload stays as small as the kinds it tells of: a patient sent 500 results within
    the window does not make every later notice rewrite a list of 500.
    """
    by_kind: dict[str, dict[str, Any]] = {}
    for notice in (*held, *arriving):
        kind, link, count = notice["kind"], notice["link"], int(notice.get("count", 1))
        entry = by_kind.get(kind)
        if entry is None:
            by_kind[kind] = {"kind": kind, "link": link, "count": count}
            continue
        entry["count"] += count
        if entry["link"] != link:
            entry["link"] = "/"
    return list(by_kind.values())
