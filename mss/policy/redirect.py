"""Where the hub may send a browser back to: a path of its own, never another host.

Browsers read ``/\\evil.example/`` as ``//evil.example/`` (another host), drop
tabs and newlines anywhere in a URL (``/\\t/evil.example``) and some decode
``%5C``; a target that only "starts with a slash" is therefore not enough.
"""

from __future__ import annotations

from urllib.parse import unquote


def _one_leading_slash(text: str) -> bool:
    return text.startswith("/") and not text.startswith(("//", "/\\")) and "\\" not in text


def local_path(target: str) -> str | None:
    """``target`` when it is a path on this host that no browser reads as another one, else None.

    One leading ``/`` (not ``//`` nor ``/\\``), no backslash, printable ASCII only (no
    control character, no space), and still so once percent-decoded (``/%5Cevil``,
    ``/%2F/evil``, ``/%09/evil``). The caller then checks that it serves that path.
    """
    if not _one_leading_slash(target) or not all(0x21 <= ord(char) < 0x7F for char in target):
        return None
    decoded = unquote(target)
    if not _one_leading_slash(decoded) or any(
        ord(char) < 0x20 or ord(char) == 0x7F for char in decoded
    ):
        return None
    return target
