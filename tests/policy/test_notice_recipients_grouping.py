"""Who is told of a notice, on which channel, and how notices close together are grouped."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from mss.policy.notice_recipients import (
    GroupedNotice,
    NoticeContact,
    NoticeRecipient,
    PendingNotice,
    age_on,
    decide_channels,
    decide_notice_recipients,
    group_notices,
    merged_notices,
)

TODAY = dt.date(2026, 12, 3)
MOTHER = NoticeContact(1, email="m@example.org", phone="+33600000001")
FATHER = NoticeContact(2, phone="+33600000002")


def _minor(age_years: int, *, email: str | None = "e@example.org", days: int = 0) -> NoticeContact:
    born = TODAY.replace(year=TODAY.year - age_years) + dt.timedelta(days=days)
    return NoticeContact(3, email=email, birth_date=born)


def test_age_counts_full_years() -> None:
    assert age_on(dt.date(2010, 12, 3), TODAY) == 16
    assert age_on(dt.date(2010, 12, 4), TODAY) == 15
    assert age_on(None, TODAY) is None


def test_a_minor_s_record_notices_go_to_each_guardian_once() -> None:
    told = decide_notice_recipients("new_message", _minor(10), [MOTHER, FATHER, MOTHER], TODAY)
    assert told == (NoticeRecipient(1, as_guardian=True), NoticeRecipient(2, as_guardian=True))


def test_from_the_configured_age_the_minor_with_an_address_is_told_too() -> None:
    sixteen = _minor(16)
    assert NoticeRecipient(3) in decide_notice_recipients("new_document", sixteen, [MOTHER], TODAY)
    assert NoticeRecipient(3) not in decide_notice_recipients(
        "new_document", _minor(16, days=1), [MOTHER], TODAY
    )  # 16 tomorrow
    assert NoticeRecipient(3) not in decide_notice_recipients(
        "new_document", sixteen, [MOTHER], TODAY, own_contact_age=17
    )
    no_address = _minor(17, email=None)
    assert decide_notice_recipients("appointment", no_address, [MOTHER], TODAY) == (
        NoticeRecipient(1, as_guardian=True),
    )


def test_unknown_age_goes_to_the_guardians_only() -> None:
    unknown = NoticeContact(3, email="e@example.org")
    assert decide_notice_recipients("emergency_access", unknown, [FATHER], TODAY) == (
        NoticeRecipient(2, as_guardian=True),
    )


def test_account_notices_and_adults_are_told_themselves() -> None:
    assert decide_notice_recipients("login_locked", _minor(10), [MOTHER], TODAY) == (
        NoticeRecipient(3),
    )
    assert decide_notice_recipients("new_message", MOTHER, [], TODAY) == (NoticeRecipient(1),)
    adult = _minor(19)  # a guardianship left over after 18 does not redirect
    assert decide_notice_recipients("new_message", adult, [MOTHER], TODAY) == (NoticeRecipient(3),)


def test_channels_follow_the_choice_and_fall_back_to_reach_the_patient() -> None:
    both = NoticeContact(1, email="a@example.org", phone="+33600000001")
    assert decide_channels(both) == ("email", "sms")
    assert decide_channels(NoticeContact(1, "a@example.org", "+336", "sms")) == ("sms",)
    assert decide_channels(NoticeContact(1, "a@example.org", "+336", "email")) == ("email",)
    assert decide_channels(NoticeContact(1, "a@example.org", None, "sms")) == ("email",)
    assert decide_channels(NoticeContact(1, None, None, "both")) == ()
    assert decide_channels(NoticeContact(1, None, "+336", "nonsense")) == ("sms",)


def test_grouping_is_per_recipient_channel_and_role_in_arrival_order() -> None:
    notices = [
        PendingNotice(1, "sms", "appointment", "/agenda"),
        PendingNotice(1, "email", "appointment", "/agenda"),
        PendingNotice(1, "sms", "appointment", "/agenda"),
        PendingNotice(1, "sms", "new_message", "/messages"),
        PendingNotice(1, "sms", "new_message", "/messages", as_guardian=True),
    ]
    assert group_notices(notices) == [
        GroupedNotice(1, "sms", False, (("appointment", 2), ("new_message", 1)), "/"),
        GroupedNotice(1, "email", False, (("appointment", 1),), "/agenda"),
        GroupedNotice(1, "sms", True, (("new_message", 1),), "/messages"),
    ]
    assert group_notices([]) == []


_NOTICE = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(["new_message", "appointment", "new_document"]),
        "link": st.sampled_from(["/messages/1", "/messages/2", "/agenda", "/"]),
    }
)


@given(st.lists(st.lists(_NOTICE, max_size=6), max_size=6))
def test_a_merged_group_tells_what_the_notices_one_by_one_tell(
    arrivals: list[list[dict[str, str]]],
) -> None:
    """However the notices arrive (several batches joining one waiting group), the merged
    payload groups into the same e-mail as every notice taken alone, and stays one entry per
    kind."""
    one_by_one = [n for batch in arrivals for n in batch]
    held: list[dict[str, object]] = []
    for batch in arrivals:
        held = merged_notices(held, batch)
    assert len(held) == len({n["kind"] for n in one_by_one})

    def pending(notices: list[dict[str, object]]) -> list[PendingNotice]:
        return [
            PendingNotice(7, "email", str(n["kind"]), str(n["link"]), count=int(n.get("count", 1)))
            for n in notices
        ]

    assert group_notices(pending(held)) == group_notices(pending(list(one_by_one)))


def test_five_hundred_notices_make_a_payload_of_one_entry() -> None:
    held: list[dict[str, object]] = []
    for number in range(500):
        held = merged_notices(held, [{"kind": "new_message", "link": f"/messages/{number}"}])
    assert held == [{"kind": "new_message", "link": "/", "count": 500}]
