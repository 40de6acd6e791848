"""Where things are in an XDM zip: the METADATA.XML of each subset and the subset's files.

Real packages vary (README §1 and §6 of the ANS sample set): a wrapping folder
above ``IHE_XDM/``, subset folders named ``SUBSET01``, ``SS000001`` or
anything, names in any case, and "flat" zips whose entries have no separator
after the subset folder (``IHE_XDM/SUBSET01METADATA.xml``). A subset is the
folder (or flat prefix) holding one METADATA.XML; its files are addressed by
their name relative to it, as the ``URI`` slot does.
"""

from __future__ import annotations

import posixpath
from collections.abc import Collection
from dataclasses import dataclass, field

from dmp_bridge.errors import other

METADATA_NAME = "metadata.xml"


@dataclass(frozen=True)
class Subset:
    """One submission set's folder inside the zip."""

    prefix: str  # "samplexdm/IHE_XDM/SUBSET01/" or, flat, "IHE_XDM/SUBSET01"
    metadata_path: str
    flat: bool
    files: dict[str, str] = field(default_factory=dict)  # relative name -> zip entry name

    @property
    def folder(self) -> str:
        """The subset folder as a user would name it ("IHE_XDM/SUBSET01")."""
        return self.prefix.rstrip("/")


def find_subsets(names: list[str]) -> tuple[list[Subset], list[str]]:
    """Find every subset of the zip; return them with layout warnings."""
    warnings: list[str] = []
    candidates = [n for n in names if n.rsplit("/", 1)[-1].lower().endswith(METADATA_NAME)]
    if not candidates:
        raise other(
            "The XDM package has no METADATA.XML (looked for it in any folder, in any case).",
            "Le paquet XDM ne contient pas de METADATA.XML (cherché dans tous les dossiers, "
            "sans tenir compte de la casse).",
        )
    by_prefix: dict[str, list[str]] = {}
    for name in candidates:
        by_prefix.setdefault(name[: -len(METADATA_NAME)].lower(), []).append(name)
    subsets = []
    for group in by_prefix.values():
        if len(group) > 1:
            raise other(
                f"The XDM package has several METADATA.XML files differing only by case "
                f"({', '.join(sorted(group))}); cannot tell which one to read.",
                f"Le paquet XDM contient plusieurs METADATA.XML qui ne diffèrent que par la "
                f"casse ({', '.join(sorted(group))}) ; impossible de choisir.",
            )
        path = group[0]
        prefix = path[: -len(METADATA_NAME)]
        flat = prefix != "" and not prefix.endswith("/")
        if flat:
            warnings.append(
                f"{path}: flat zip paths, no separator after the subset folder "
                f"{prefix!r}; files are resolved as {prefix!r} + URI."
            )
        if "ihe_xdm" not in path.lower().split("/")[:-1]:
            warnings.append(f"{path}: METADATA.XML is not under an IHE_XDM folder.")
        subsets.append(
            Subset(
                prefix=prefix, metadata_path=path, flat=flat, files=_files_of(prefix, path, names)
            )
        )
    subsets.sort(key=lambda s: s.metadata_path)
    return subsets, warnings


def _files_of(prefix: str, metadata_path: str, names: list[str]) -> dict[str, str]:
    files = {}
    for name in names:
        if name == metadata_path or not name.startswith(prefix) or name.endswith("/"):
            continue
        files[name[len(prefix) :]] = name
    return files


@dataclass(frozen=True)
class UriLookup:
    """Where a ``URI`` slot led: the zip entry, or what was looked for."""

    path: str | None
    note: str | None = None  # a warning when the file was found in a tolerated way
    tried: tuple[str, ...] = ()  # the zip names looked for, when not found
    other_subset: str | None = None  # the zip entry it names, outside this subset


def _in_subset(subset: Subset, relative: str) -> tuple[str | None, str | None]:
    """A subset file by its relative name: exact, else a unique match ignoring case (warned)."""
    if relative in subset.files:
        return subset.files[relative], None
    folded = [k for k in subset.files if k.lower() == relative.lower()]
    if len(folded) == 1:
        return subset.files[folded[0]], "only ignoring case"
    return None, None


def resolve_uri(subset: Subset, uri: str, names: Collection[str] = ()) -> UriLookup:
    """Find the file a ``URI`` slot names, relative to the subset folder, then to ``IHE_XDM/``.

    XDM (ITI TF-2b §3.32) makes the URI relative to the subset folder, where
    METADATA.XML is; DRIMbox platforms write it relative to the folder above
    (``SS000001/KOS_1_1.DCM``), which names the same file when it starts with
    the subset's own folder. The subset reading wins; either may match only
    ignoring case (8.3 upper-case names rewritten by tools), said in ``note``.
    A URI may not climb out of the package's folders, nor name a file of
    another subset (``names``: every entry of the zip).
    """
    relative = posixpath.normpath(uri.strip().replace("\\", "/"))
    if relative.startswith(("../", "/")) or relative == "..":
        raise other(
            f"The URI slot {uri!r} points outside the subset folder {subset.folder!r}; refused.",
            f"Le slot URI {uri!r} pointe hors du dossier du sous-ensemble {subset.folder!r} ; "
            "refusé.",
        )
    path, how = _in_subset(subset, relative)
    if path is not None:
        return UriLookup(path, f"URI {uri!r} matched the file {path!r} {how}." if how else None)
    tried = [subset.prefix + relative]
    parent = subset.folder.rpartition("/")[0]
    if not parent:
        return UriLookup(None, tried=tuple(tried))
    candidate = posixpath.normpath(f"{parent}/{relative}")
    tried.append(candidate)
    if candidate.lower().startswith(subset.prefix.lower()):
        rest = candidate[len(subset.prefix) :].lstrip("/")
        path, how = _in_subset(subset, rest)
        if path is not None:
            return UriLookup(
                path,
                (
                    f"URI {uri!r} is relative to {parent + '/'!r}, not to the subset folder "
                    f"{subset.folder!r}; read as {path!r}" + (f" {how}." if how else ".")
                ),
            )
    elsewhere = [n for n in names if n.lower() == candidate.lower()]
    return UriLookup(None, tried=tuple(tried), other_subset=elsewhere[0] if elsewhere else None)


def resolve_by_id(subset: Subset, object_id: str) -> str | None:
    """The unique file of the subset whose name without extension is exactly ``object_id``."""
    matches = [k for k in subset.files if "/" not in k and posixpath.splitext(k)[0] == object_id]
    return subset.files[matches[0]] if len(matches) == 1 else None
