"""IMAP4rev1 server (RFC 3501 and extensions) on the mailbox store.

Layers: :mod:`.parser` (wire tokens), :mod:`.session` and :mod:`.messages`
(command handlers), :mod:`.fetch`, :mod:`.search` and :mod:`.sections`
(data), :mod:`.selected` (a session's view of its folder), :mod:`.server`
(listeners, framing, limits).
"""

from mss.mailbox.imap.server import start_imap_servers, stop_imap_servers

__all__ = ["start_imap_servers", "stop_imap_servers"]
