"""The one value every policy decision returns: allowed or not, with its codes and sentences.

A refusal carries what each way out needs: the SMTP reply code and RFC 3463
enhanced status (SMTP, DSN, IMAP ``NO``), an HTTP status (portal, document
API, health endpoints), a short machine ``reason`` (logs, audit, tests), and
the sentence in English (ASCII on the SMTP wire, the API) and in French
(portal, DSN). A few decisions also carry a payload their caller needs: the
DMP integration error code of a filing refusal, the break-glass flag of a
consent decision, the retry time of a login throttle, the type a patient's
file is stored as. The protocol layer only turns a ``Decision`` into its
wire form.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

ACCOUNT_LOCKED = "account_locked"  # this account, from this source address
SOURCE_LOCKED = "source_locked"  # every account, from this source address


@dataclass(frozen=True)
class Decision:
    """An allow/deny decision with its codes, the sentences shown to people, and its payload."""

    allowed: bool
    smtp_code: int
    enhanced_status: str
    sentence: str  # English
    sentence_fr: str
    status: int = 0  # HTTP status; 0: derived from the SMTP code
    reason: str = ""  # a short machine code: ok, not_found, blocked, back_off...
    # -- payload, for the callers that need it ------------------------------------------
    code: int | None = None  # DMP filing: the MSSanté integration error (900-906)
    break_glass: bool = False  # DMP consent: allowed only through break-glass (log, notify)
    retry_at: dt.datetime | None = None  # login throttle: when trying again can help
    lock_began: bool = False  # login throttle: this failure set the account's lock
    mime_type: str = ""  # patient file: the type the record stores it as
    type_code: str = ""  # patient file: its LOINC type code
    type_label: str = ""  # patient file: its French type label

    def __post_init__(self) -> None:
        if not self.status:
            object.__setattr__(self, "status", http_status_of(self.smtp_code, self.enhanced_status))
        if not self.reason:
            object.__setattr__(self, "reason", "ok" if self.allowed else "refused")

    @property
    def smtp_reply(self) -> str:
        """The reply line for an SMTP server: code, enhanced status, sentence."""
        return f"{self.smtp_code} {self.enhanced_status} {self.sentence}"

    @property
    def locked(self) -> bool:
        """A login refused by a temporary lock (not by a wait, nor by a wrong password)."""
        return self.reason in (ACCOUNT_LOCKED, SOURCE_LOCKED)

    def wait_seconds(self, now: dt.datetime) -> int:
        """Whole seconds until ``retry_at`` (at least 1 while refused; 0 without one)."""
        if self.retry_at is None:
            return 0
        return max(1, int((self.retry_at - now).total_seconds() + 0.999))

    def __bool__(self) -> bool:
        return self.allowed


def http_status_of(smtp_code: int, enhanced_status: str) -> int:
    """The HTTP status of a decision stated in SMTP terms."""
    if smtp_code < 400:
        return 200
    if smtp_code in (530, 535):
        return 401
    if smtp_code == 552:
        return 413
    if smtp_code < 500:
        return 429 if enhanced_status in ("4.7.0", "4.5.3") else 503
    if enhanced_status == "5.1.1":
        return 404
    if enhanced_status.startswith("5.6."):
        return 422
    return 403


# HTTP status -> (SMTP code, enhanced status), for decisions stated in HTTP terms.
_SMTP_OF_HTTP: dict[int, tuple[int, str]] = {
    400: (550, "5.6.0"),
    401: (535, "5.7.8"),
    403: (550, "5.7.1"),
    404: (550, "5.1.1"),
    409: (550, "5.6.0"),
    413: (552, "5.3.4"),
    415: (554, "5.6.1"),
    422: (550, "5.6.0"),
}


def allow(
    sentence: str = "OK",
    sentence_fr: str = "Accepté",
    *,
    smtp_code: int = 250,
    enhanced_status: str = "2.0.0",
    break_glass: bool = False,
    mime_type: str = "",
    type_code: str = "",
    type_label: str = "",
) -> Decision:
    """An allowing decision."""
    return Decision(
        True,
        smtp_code,
        enhanced_status,
        sentence,
        sentence_fr,
        break_glass=break_glass,
        mime_type=mime_type,
        type_code=type_code,
        type_label=type_label,
    )


def refuse(
    smtp_code: int,
    enhanced_status: str,
    sentence: str,
    sentence_fr: str,
    *,
    reason: str = "",
    status: int = 0,
    code: int | None = None,
    retry_at: dt.datetime | None = None,
    lock_began: bool = False,
) -> Decision:
    """A refusing decision; the code says whether trying again later can help (4xx) or not (5xx)."""
    if not 400 <= smtp_code < 600:
        raise ValueError(f"a refusal needs a 4xx or 5xx code, not {smtp_code}")
    return Decision(
        False,
        smtp_code,
        enhanced_status,
        sentence,
        sentence_fr,
        status=status,
        reason=reason,
        code=code,
        retry_at=retry_at,
        lock_began=lock_began,
    )


def refuse_http(status: int, reason: str, sentence: str, sentence_fr: str) -> Decision:
    """A refusal stated in HTTP terms (the DMP, the portal); its SMTP codes follow from it."""
    smtp_code, enhanced_status = _SMTP_OF_HTTP.get(status, (550, "5.7.1"))
    return refuse(smtp_code, enhanced_status, sentence, sentence_fr, reason=reason, status=status)


OK = allow()
