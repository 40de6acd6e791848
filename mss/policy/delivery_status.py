"""A sent message's delivery status for one recipient: what it may become next, and its words.

The states, in the DSN/MDN sense (RFC 3464 actions, RFC 8098 dispositions):
``relayed`` (handed to the recipient's operator), ``delivered`` (stored in the
recipient's mailbox), ``dispatched`` (the recipient's side passed it on without
showing it), ``filed`` (its documents went into the patient's DMP record),
``displayed`` (shown to the recipient) and ``failed`` (with its code: an enhanced
status, or the IG's 90x integration error). A status only moves forward: a later
event of a lower rank (a late "delivered" after "displayed") is stale, and
``failed`` is final, the first failure kept.
"""

from __future__ import annotations

from typing import Literal

from mss.policy.decision import Decision, allow, refuse

State = Literal["relayed", "delivered", "dispatched", "filed", "displayed", "failed"]
STATES: tuple[State, ...] = ("relayed", "delivered", "dispatched", "filed", "displayed", "failed")
_RANK: dict[str, int] = {state: rank for rank, state in enumerate(STATES)}

LABELS_FR: dict[str, str] = {
    "relayed": "Transmis à la messagerie du destinataire",
    "delivered": "Distribué dans la boîte du destinataire",
    "dispatched": "Pris en charge par la messagerie du destinataire",
    "filed": "Classé dans le dossier médical",
    "displayed": "Ouvert par le destinataire",
    "failed": "Non distribué",
}
NOT_FILED_FR = "Distribué, mais non classé dans le dossier médical"
LABELS_EN: dict[str, str] = {
    "relayed": "Relayed to the recipient's operator",
    "delivered": "Delivered to the recipient's mailbox",
    "dispatched": "Dispatched by the recipient's side",
    "filed": "Filed into the medical record",
    "displayed": "Displayed to the recipient",
    "failed": "Failed",
}


def decide_status_change(current: str | None, new: str) -> Decision:
    """May a recipient's status become ``new``, given ``current`` (None: no status yet)?"""
    if new not in _RANK:
        return refuse(
            550,
            "5.5.4",
            f"{new!r} is not a delivery status",
            f"« {new} » n'est pas un état de distribution",
            reason="unknown_state",
        )
    if current is None:
        return allow()
    if current == "failed":
        return refuse(
            550,
            "5.0.0",
            "The message already failed for this recipient; the first failure is kept",
            "Le message a déjà échoué pour ce destinataire ; le premier échec est gardé",
            reason="final",
        )
    if new != "failed" and _RANK[new] <= _RANK.get(current, -1):
        return refuse(
            550,
            "5.0.0",
            f"The status is already {current}; {new} comes earlier",
            f"L'état est déjà « {LABELS_FR.get(current, current)} » ; "
            f"« {LABELS_FR[new]} » vient avant",
            reason="stale",
        )
    return allow()


def status_sentence_fr(state: str, detail_fr: str = "", code: str = "") -> str:
    """The patient's words for a status: its label, and for a failure its reason and code
    (a 90x failure is the DMP's: the message was delivered, its documents not filed)."""
    label = LABELS_FR.get(state, state)
    if state != "failed":
        return label
    if code.isdigit() and code.startswith("90"):  # the IG's integration errors: delivered
        label = NOT_FILED_FR
    reason = f" : {detail_fr.rstrip('.')}" if detail_fr else ""
    return f"{label}{reason}" + (f" (code {code})" if code else "")


def report_state(disposition: str) -> State | None:
    """The state an RFC 8098 disposition field reports (``...; displayed``), else None.

    ``processed`` with an error modifier (the IG's ``processed/Error: 90x^...``) and
    ``deleted`` are failures; plain ``processed`` is the IG's filing success.
    """
    _, _, kind = disposition.partition(";")
    kind = kind.strip().lower()
    base, _, modifier = kind.partition("/")
    base = base.strip()
    if base == "displayed":
        return "displayed"
    if base == "dispatched":
        return "dispatched"
    if base == "processed":
        return "failed" if modifier.strip().startswith("error") else "filed"
    if base == "deleted":
        return "failed"
    return None


def decide_report(report_from: str, final_recipient: str, mail_from: str) -> Decision:
    """May a report (an MDN, a DSN) that came back change the status of ``final_recipient``?

    An MDN is written by the recipient's side: its From must be in the final recipient's
    domain. A DSN comes from a reporting MTA with an empty envelope sender (RFC 3464 §2):
    it is taken when its ``MAIL FROM`` is empty, whoever writes it, since the hub only
    counts it as a failure it already may have recorded itself.
    """
    recipient_domain = final_recipient.rpartition("@")[2].lower()
    from_domain = report_from.rpartition("@")[2].lower()
    if not recipient_domain or (from_domain != recipient_domain and mail_from):
        return refuse(
            550,
            "5.7.1",
            f"A report from {report_from!r} cannot speak for {final_recipient!r}",
            f"Un accusé venant de {report_from!r} ne peut pas parler pour {final_recipient!r}",
            reason="foreign_report",
        )
    return allow()


def states_before(new: str) -> tuple[str, ...]:
    """The states a status may become ``new`` from (``decide_status_change``, per state)."""
    return tuple(s for s in STATES if decide_status_change(s, new).allowed)
