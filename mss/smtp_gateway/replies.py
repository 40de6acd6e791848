"""Replies that are not policy decisions (outcomes of the machinery itself), and how every reply
is written."""

from __future__ import annotations

import unicodedata

from mss.policy import Decision, allow, refuse

DATABASE_UNAVAILABLE = refuse(
    451,
    "4.3.0",
    "Temporary failure: the message store is unavailable, please try again later",
    "Échec temporaire : le stockage des messages est indisponible, veuillez réessayer plus tard",
)
INTERNAL_ERROR = refuse(
    451,
    "4.3.0",
    "Temporary failure while processing the message, please try again later",
    "Échec temporaire pendant le traitement du message, veuillez réessayer plus tard",
)
UNREADABLE = refuse(554, "5.6.0", "The message cannot be parsed", "Le message est illisible")


def accepted(queue_id: str) -> Decision:
    return allow(f"Message accepted for delivery as {queue_id}", f"Message accepté ({queue_id})")


# Letters NFKD does not split into a base letter and accents, and punctuation French text uses.
_ASCII_FOR = str.maketrans(
    {
        "œ": "oe",
        "Œ": "OE",
        "æ": "ae",
        "Æ": "AE",
        "ß": "ss",
        "ø": "o",
        "Ø": "O",
        "đ": "d",
        "Đ": "D",
        "ł": "l",
        "Ł": "L",
        "’": "'",
        "‘": "'",
        "«": '"',
        "»": '"',
        "“": '"',
        "”": '"',
        "–": "-",
        "—": "-",
        "…": "...",
        "\u00a0": " ",
        "\u202f": " ",
    }
)


def reply_bytes(reply: str, *, utf8: bool = False) -> bytes:
    """One SMTP reply as it goes on the wire: every line ends in CRLF and carries no other CR or LF.

    Without SMTPUTF8 the reply text must be ASCII (RFC 5321 §4.2): accents are
    dropped (``Médecin`` -> ``Medecin``) and any other character becomes ``?``. In a
    transaction where the client asked for SMTPUTF8 it may be UTF-8 (RFC 6531 §3.7.4).
    """
    lines = [" ".join(line.replace("\r", " ").split("\n")) for line in reply.split("\r\n")]
    text = "\r\n".join(lines)
    if utf8:
        return text.encode("utf-8", "replace") + b"\r\n"
    if not text.isascii():
        text = unicodedata.normalize("NFKD", text.translate(_ASCII_FOR))
        text = "".join(c for c in text if not unicodedata.combining(c))
    return text.encode("ascii", "replace") + b"\r\n"
