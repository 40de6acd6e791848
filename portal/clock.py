"""The portal's clock: real time plus an offset that tests move forward; the portal's time zone."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from mss.db import utcnow

PARIS = ZoneInfo("Europe/Paris")  # the portal shows every time in Paris time


class Clock:
    """``now()`` for session idling, code expiry and throttling; ``advance`` is the test hook."""

    def __init__(self) -> None:
        self.offset = dt.timedelta(0)

    def now(self) -> dt.datetime:
        return utcnow() + self.offset

    def advance(self, **delta: float) -> None:
        """Move time forward, e.g. ``clock.advance(minutes=2)``."""
        self.offset += dt.timedelta(**delta)
