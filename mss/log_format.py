"""The hub's log lines: text or JSON (``log_format``), tagged with the request or session, no INS.

``log_format = "json"`` writes one object per line: ``time``, ``level``, ``logger``,
``message`` and, when the line belongs to one, ``request_id`` (an HTTPS request, sent
back as ``X-Request-Id``) or ``session_id`` (an SMTP or IMAP connection), plus
``exception`` for a traceback. Text lines carry the same id in brackets.

No health datum goes to the logs: the hub never logs a subject or a body, and every
line (aiosmtpd's, a traceback's) has each INS matricule replaced by ``[INS]``, since
a patient's address is their INS. aiosmtpd's own INFO lines (every command of every
session) stay out below WARNING.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import re
import secrets
import sys
from typing import IO, Any

from mss.config import Settings
from mss.directory.identifiers import INS_PATTERN

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
session_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("session_id", default=None)

# An INS matricule (mss.directory.identifiers) not inside a longer word or number.
_INS = re.compile(rf"(?<![0-9A-Za-z]){INS_PATTERN.pattern}(?![0-9A-Za-z])")
# What a client may send as X-Request-Id to follow its request through our logs.
_CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
QUIET_LOGGERS = ("mail.log",)  # aiosmtpd: every command line at INFO, with its addresses


def new_id() -> str:
    return secrets.token_hex(8)


def request_id_from(header: str | None) -> str:
    """The client's X-Request-Id when it is a plain token, else a new one."""
    if header is not None and _CLIENT_REQUEST_ID.fullmatch(header):
        return header
    return new_id()


def redact(text: str) -> str:
    """Every INS matricule in ``text`` as ``[INS]``."""
    return _INS.sub("[INS]", text)


def _ids() -> dict[str, str]:
    ids = {}
    if (value := request_id.get()) is not None:
        ids["request_id"] = value
    if (value := session_id.get()) is not None:
        ids["session_id"] = value
    return ids


class JsonFormatter(logging.Formatter):
    """One JSON object per record."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_ids(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry, ensure_ascii=False))


class TextFormatter(logging.Formatter):
    """The classic line, with ``[request_id=...]`` or ``[session_id=...]`` when there is one."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = _ids()
        if ids:
            line += " [" + " ".join(f"{key}={value}" for key, value in ids.items()) + "]"
        return redact(line)


def log_handler(settings: Settings, stream: IO[str] | None = None) -> logging.Handler:
    """A handler writing ``settings.log_format`` lines to ``stream`` (standard error)."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else TextFormatter())
    return handler


def configure_logging(settings: Settings, stream: IO[str] | None = None) -> logging.Handler:
    """The root logger at ``log_level`` with our one handler (``mss serve`` and its children)."""
    root = logging.getLogger()
    for old in list(root.handlers):
        if isinstance(old.formatter, JsonFormatter | TextFormatter):
            root.removeHandler(old)
    handler = log_handler(settings, stream)
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    for name in QUIET_LOGGERS:  # at DEBUG, aiosmtpd would log the lines of DATA: bodies
        logging.getLogger(name).setLevel(logging.WARNING)
    return handler
