"""Errors that reach a user: each carries a sentence a person understands.

They are raised deep down and turned into an SMTP reply, an IMAP response,
an HTTP problem or a CLI exit code at the boundary.
"""

from __future__ import annotations


class HubError(Exception):
    """Base of every error the hub explains to a user."""

    exit_code = 1

    def __init__(self, sentence: str) -> None:
        super().__init__(sentence)
        self.sentence = sentence

    def __str__(self) -> str:
        return self.sentence


class ConfigError(HubError):
    """The configuration file or an MSS_* variable is wrong."""

    exit_code = 2


class InvalidInput(HubError):
    """A file, row or argument given by the user was refused."""

    exit_code = 2

    def __init__(self, sentence: str, *, where: str | None = None) -> None:
        super().__init__(f"{where}: {sentence}" if where else sentence)
        self.where = where


class DatabaseUnavailable(HubError):
    """The database cannot be reached or did not answer in time."""

    exit_code = 3
