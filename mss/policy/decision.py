"""The value every policy function returns: allowed or not, with a code and a sentence."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Decision:
    """An allow/deny decision with its SMTP reply and the sentence shown to people.

    ``sentence`` (English, ASCII) goes on the SMTP wire; ``sentence_fr`` goes
    to the portal and into delivery status notifications.
    """

    allowed: bool
    smtp_code: int
    enhanced_status: str
    sentence: str
    sentence_fr: str

    @property
    def smtp_reply(self) -> str:
        """The reply line for an SMTP server: code, enhanced status, sentence."""
        return f"{self.smtp_code} {self.enhanced_status} {self.sentence}"

    def __bool__(self) -> bool:
        return self.allowed


def allow(
    sentence: str = "OK",
    sentence_fr: str = "Accepté",
    *,
    smtp_code: int = 250,
    enhanced_status: str = "2.0.0",
) -> Decision:
    """An allowing decision."""
    return Decision(True, smtp_code, enhanced_status, sentence, sentence_fr)


def refuse(smtp_code: int, enhanced_status: str, sentence: str, sentence_fr: str) -> Decision:
    """A refusing decision; the code says whether trying again later can help (4xx) or not (5xx)."""
    if not 400 <= smtp_code < 600:
        raise ValueError(f"a refusal needs a 4xx or 5xx code, not {smtp_code}")
    return Decision(False, smtp_code, enhanced_status, sentence, sentence_fr)


OK = allow()
