"""A database step that must answer in time, or the SMTP client gets a 451 at once.

The deadline itself lives with the database engine (``mss.db.within``), so the
group commit writer and the SMTP stages share it.
"""

from __future__ import annotations

from mss.db import within

__all__ = ["within"]
