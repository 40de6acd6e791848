"""Size limits: one for every message, a separate one when a patient receives it."""

from __future__ import annotations

from mss.policy.decision import OK, Decision, refuse


def decide_size(
    size: int, *, max_size: int, to_patient: bool = False, max_size_to_patient: int | None = None
) -> Decision:
    """Refuse a message larger than the limit that applies to its recipients."""
    limit = max_size
    if to_patient and max_size_to_patient is not None:
        limit = min(limit, max_size_to_patient)
    if size > limit:
        who, who_fr = (" to a patient", " à un patient") if to_patient else ("", "")
        return refuse(
            552,
            "5.3.4",
            f"Message too big{who}: {size} bytes, the limit is {limit}",
            f"Message trop volumineux{who_fr} : {size} octets, la limite est {limit}",
        )
    return OK


def decide_line_endings(has_bare_cr_or_lf: bool) -> Decision:
    """Bare CR or LF in DATA is refused: it is how SMTP smuggling hides a second message."""
    if has_bare_cr_or_lf:
        return refuse(
            550,
            "5.6.0",
            "Message refused: it contains a bare CR or LF; lines must end with CRLF",
            "Message refusé : il contient un CR ou un LF isolé ; les lignes doivent finir par CRLF",
        )
    return OK


def decide_mime_depth(too_deep: bool, *, max_depth: int) -> Decision:
    """Refuse a message whose MIME parts nest deeper than the hub opens (a recursion bomb)."""
    if too_deep:
        return refuse(
            554,
            "5.6.0",
            f"Message refused: its MIME parts are nested more than {max_depth} levels deep",
            f"Message refusé : ses parties MIME sont imbriquées sur plus de {max_depth} niveaux",
        )
    return OK
