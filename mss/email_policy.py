"""The stdlib's ``email.policy.default``, with parsed header values remembered.

``policy.default`` parses a structured header (Content-Type...) every time it
is read, and the feed parser reads each part's Content-Type several times
while it splits a message, so most of a parse went into parsing the same
few header values again. Parsed headers are immutable ``str`` subclasses, so
one parse can serve every read of the same (name, value); the cache is small
and emptied when full.
"""

from __future__ import annotations

from email.parser import BytesParser
from email.policy import EmailPolicy
from typing import Any

CACHE_SIZE = 2048
_parsed: dict[tuple[str, str], Any] = {}


class CachedHeaderPolicy(EmailPolicy):
    """``EmailPolicy`` (the default policy's settings) whose header parsing is memoised."""

    def header_fetch_parse(self, name: str, value: str) -> Any:
        if hasattr(value, "name"):
            return value  # already a parsed header object
        key = (name, value)
        found = _parsed.get(key)
        if found is None:
            found = super().header_fetch_parse(name, value)
            if len(_parsed) >= CACHE_SIZE:
                _parsed.clear()
            _parsed[key] = found
        return found


CACHED_DEFAULT = CachedHeaderPolicy()
PARSER = BytesParser(policy=CACHED_DEFAULT)
