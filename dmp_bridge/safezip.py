"""Read a zip archive into memory, refusing anything hostile or ambiguous.

Nothing is ever extracted to disk. Each entry is stream-decompressed with a
hard cap: declared sizes are used only to refuse early, never to decide how
much to read. Every refusal is an :class:`XdmError` 906 with a precise sentence.

Refused: more entries than allowed, an entry or a total that decompresses past
its limit, a suspicious compression ratio (zip bomb), names that could escape
a folder (``..``, absolute paths, backslashes, drive letters, control
characters), symbolic links, duplicate names, encrypted entries, compression
methods other than stored/deflate, corrupt data (CRC), and zip archives nested
inside the zip (they are not opened: an XDM package never needs one, and
opening them is how nested bombs work).
"""

from __future__ import annotations

import io
import re
import stat
import zipfile
import zlib
from dataclasses import dataclass

from dmp_bridge.errors import XdmError, other

_CHUNK = 64 * 1024
_DRIVE = re.compile(r"^[A-Za-z]:")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NESTED_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
_ALLOWED_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate"}


@dataclass(frozen=True)
class ZipLimits:
    """Hard limits applied while reading; the defaults suit an MSSanté message."""

    max_archive_bytes: int = 64 * 1024 * 1024
    max_entries: int = 1000
    max_entry_bytes: int = 32 * 1024 * 1024
    max_total_bytes: int = 128 * 1024 * 1024
    max_ratio: int = 100
    #: the ratio is only judged past this many output bytes (tiny files compress oddly)
    ratio_grace_bytes: int = 1024 * 1024


DEFAULT_LIMITS = ZipLimits()


def read_zip(data: bytes, limits: ZipLimits = DEFAULT_LIMITS) -> dict[str, bytes]:
    """Return ``{entry name: bytes}`` for every file entry (directories skipped), in archive
    order."""
    if len(data) > limits.max_archive_bytes:
        raise other(
            f"The zip archive is {len(data)} bytes, above the limit of {limits.max_archive_bytes}.",
            f"L'archive zip fait {len(data)} octets, au-delà de la limite de "
            f"{limits.max_archive_bytes}.",
        )
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        ValueError,
        OSError,
        NotImplementedError,
    ) as exc:  # "zip file version 6.7" of a made-up header (fuzzer)
        raise other(
            f"The attachment is not a readable zip archive ({exc}).",
            f"La pièce jointe n'est pas une archive zip lisible ({exc}).",
        ) from exc
    with archive:
        infos = archive.infolist()
        if len(infos) > limits.max_entries:
            raise other(
                f"The zip archive has {len(infos)} entries, above the limit of "
                f"{limits.max_entries}.",
                f"L'archive zip contient {len(infos)} entrées, au-delà de la limite de "
                f"{limits.max_entries}.",
            )
        seen: set[str] = set()
        for info in infos:
            _check_entry(info, seen, limits)
        files: dict[str, bytes] = {}
        total = 0
        for info in infos:
            if info.is_dir():
                continue
            content = _read_entry(archive, info, limits, limits.max_total_bytes - total)
            total += len(content)
            if content.startswith(_NESTED_MAGIC):
                raise other(
                    f"The zip entry {info.filename!r} is itself a zip archive; nested archives "
                    "are not opened.",
                    f"L'entrée {info.filename!r} est elle-même une archive zip ; les archives "
                    "imbriquées ne sont pas ouvertes.",
                )
            files[info.filename] = content
        return files


def _check_entry(info: zipfile.ZipInfo, seen: set[str], limits: ZipLimits) -> None:
    """Refuse an entry from its central-directory record alone, before reading it."""
    name = info.filename
    _check_name(name)
    if name in seen:
        raise other(
            f"The zip archive holds two entries named {name!r}.",
            f"L'archive zip contient deux entrées nommées {name!r}.",
        )
    seen.add(name)
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise other(
            f"The zip entry {name!r} is a symbolic link; links are refused.",
            f"L'entrée {name!r} est un lien symbolique ; les liens sont refusés.",
        )
    if info.flag_bits & 0x1:
        raise other(
            f"The zip entry {name!r} is encrypted; encrypted entries are refused.",
            f"L'entrée {name!r} est chiffrée ; les entrées chiffrées sont refusées.",
        )
    if info.compress_type not in _ALLOWED_METHODS:
        raise other(
            f"The zip entry {name!r} uses compression method {info.compress_type}; only "
            "stored and deflate are accepted.",
            f"L'entrée {name!r} utilise la méthode de compression {info.compress_type} ; "
            "seules stored et deflate sont acceptées.",
        )
    if info.file_size > limits.max_entry_bytes:
        raise _entry_too_big(name, limits)


def _check_name(name: str) -> None:
    """Refuse a name that is empty, absolute, or could climb out of a folder."""
    problem_en, problem_fr = "", ""
    parts = name.rstrip("/").split("/")
    if not name or name in ("/", "."):
        problem_en, problem_fr = "is empty", "est vide"
    elif "\\" in name:
        problem_en, problem_fr = "contains a backslash", "contient une barre oblique inverse"
    elif name.startswith("/"):
        problem_en, problem_fr = "is an absolute path", "est un chemin absolu"
    elif _DRIVE.match(name):
        problem_en, problem_fr = "starts with a drive letter", "commence par une lettre de lecteur"
    elif _CONTROL.search(name):
        problem_en, problem_fr = (
            "contains a control character",
            "contient un caractère de contrôle",
        )
    elif ".." in parts:
        problem_en, problem_fr = (
            "climbs out of its folder with '..'",
            "remonte d'un dossier avec '..'",
        )
    elif "" in parts or "." in parts:
        problem_en, problem_fr = (
            "has an empty or '.' path component",
            "a un composant de chemin vide ou '.'",
        )
    if problem_en:
        raise other(
            f"The zip entry name {name!r} {problem_en}; refused.",
            f"Le nom d'entrée zip {name!r} {problem_fr} ; refusé.",
        )


def _read_entry(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, limits: ZipLimits, total_left: int
) -> bytes:
    """Stream-decompress one entry, stopping as soon as a limit is crossed."""
    cap = min(limits.max_entry_bytes, total_left)
    ratio_base = max(info.compress_size, 1)
    out = bytearray()
    try:
        with archive.open(info) as stream:
            while chunk := stream.read(_CHUNK):
                out += chunk
                if len(out) > cap:
                    if cap < limits.max_entry_bytes:
                        raise other(
                            f"The zip archive decompresses to more than "
                            f"{limits.max_total_bytes} bytes in total (reached at "
                            f"{info.filename!r}); refused as a zip bomb.",
                            f"L'archive zip se décompresse en plus de {limits.max_total_bytes} "
                            f"octets au total (atteint à {info.filename!r}) ; refusée comme "
                            "bombe zip.",
                        )
                    raise _entry_too_big(info.filename, limits)
                if len(out) > limits.ratio_grace_bytes and len(out) > limits.max_ratio * ratio_base:
                    raise other(
                        f"The zip entry {info.filename!r} expands more than {limits.max_ratio} "
                        f"times its compressed size of {info.compress_size} bytes; refused "
                        "as a zip bomb.",
                        f"L'entrée {info.filename!r} se décompresse plus de {limits.max_ratio} "
                        f"fois sa taille compressée de {info.compress_size} octets ; refusée "
                        "comme bombe zip.",
                    )
    except XdmError:
        raise
    except (
        zipfile.BadZipFile,
        zlib.error,
        EOFError,
        OSError,
        ValueError,
        NotImplementedError,
        RuntimeError,
    ) as exc:
        reason = "its CRC-32 does not match" if "CRC" in str(exc) else f"it is corrupt ({exc})"
        reason_fr = (
            "son CRC-32 ne correspond pas" if "CRC" in str(exc) else f"elle est corrompue ({exc})"
        )
        raise other(
            f"The zip entry {info.filename!r} cannot be read: {reason}.",
            f"L'entrée {info.filename!r} est illisible : {reason_fr}.",
        ) from exc
    return bytes(out)


def _entry_too_big(name: str, limits: ZipLimits) -> XdmError:
    return other(
        f"The zip entry {name!r} decompresses to more than {limits.max_entry_bytes} bytes; "
        "refused.",
        f"L'entrée {name!r} se décompresse en plus de {limits.max_entry_bytes} octets ; refusée.",
    )
