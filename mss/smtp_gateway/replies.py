"""Replies that are not policy decisions: outcomes of the machinery itself."""

from __future__ import annotations

from mss.policy import Decision, allow, refuse

DATABASE_UNAVAILABLE = refuse(451, "4.3.0", "Temporary failure: the message store is unavailable, "
                              "please try again later", "Échec temporaire : le stockage des messages "
                              "est indisponible, veuillez réessayer plus tard")
INTERNAL_ERROR = refuse(451, "4.3.0", "Temporary failure while processing the message, please try "
                        "again later", "Échec temporaire pendant le traitement du message, veuillez "
                        "réessayer plus tard")
UNREADABLE = refuse(554, "5.6.0", "The message cannot be parsed", "Le message est illisible")


def accepted(queue_id: str) -> Decision:
    return allow(f"Message accepted for delivery as {queue_id}", f"Message accepté ({queue_id})")
