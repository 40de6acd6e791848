"""The portal reads and writes other packages' data through their store functions, never their
tables (``docs/architecture.md``, "Packages").

Every module of ``portal/`` is read with ``ast``; a call is a violation when it builds or runs a
statement on a model or table that another package owns (``mss.directory.models``,
``mss.mailbox.models``, ``mss.conversations``, ``dmp_bridge.models``, ``mss.audit``...):

- a statement builder (``select``, ``update``, ``delete``, ``insert``, ``aliased``, ``exists``,
  ``union``, ``join``, ``outerjoin``...) or a statement method (``.join``, ``.where``,
  ``.order_by``, ``.values``...) given such a model, one of its columns or its ``__table__``;
- ``session.get`` / ``get_one`` with such a model;
- ``session.add`` / ``add_all`` / ``delete`` / ``merge`` / ``refresh`` of a row of such a model:
  one built here, one the function's annotations give that type, or one returned by a function
  annotated to return it (a store function's ``Patient | None``);
- ``session.execute`` / ``scalars`` / ``scalar`` / ``stream`` of a statement built by another
  package and imported (a store's private prebuilt statement);
- ``text(...)`` naming another package's table.

The portal's own table (``portal.models``: ``PortalSession``) is the portal's to query. Names are
resolved from the module's imports (imported for real), so aliases and re-exports count too.
"""

from __future__ import annotations

import ast
import importlib
import re
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Table
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Mapper
from sqlalchemy.sql.base import Executable

from mss.db import Base

ROOT = Path(__file__).resolve().parent.parent
OWN = "portal"

BUILDERS = frozenset(
    {
        "select",
        "update",
        "delete",
        "insert",
        "aliased",
        "exists",
        "union",
        "union_all",
        "intersect",
        "except_",
        "join",
        "outerjoin",
        "lambda_stmt",
    }
)
STATEMENT_METHODS = BUILDERS | {
    "where",
    "filter",
    "filter_by",
    "order_by",
    "group_by",
    "having",
    "select_from",
    "join_from",
    "outerjoin_from",
    "add_columns",
    "with_only_columns",
    "values",
    "returning",
    "correlate",
    "options",
}
GETS = frozenset({"get", "get_one"})
ROW_WRITES = frozenset({"add", "add_all", "delete", "merge", "refresh"})
RUNS = frozenset({"execute", "scalars", "scalar", "stream", "stream_scalars"})


def _mapped_class(obj: Any) -> type | None:
    """The mapped class ``obj`` is (a model, an alias of one) or whose table it is."""
    if isinstance(obj, Table):
        for mapper in Base.registry.mappers:
            if mapper.local_table is obj:
                return mapper.class_
        return None
    found = sa_inspect(obj, raiseerr=False)
    mapper = getattr(found, "mapper", None)
    return mapper.class_ if isinstance(mapper, Mapper) else None


def owner_of(obj: Any) -> str | None:
    """The module that defines ``obj`` when it is another package's model or table, else None."""
    cls = _mapped_class(obj)
    if cls is None:
        if isinstance(obj, Table):  # a table without a mapped class: its own name says it
            return None if obj.name in _own_tables() else f"table {obj.name}"
        return None
    module = cls.__module__
    return None if module == OWN or module.startswith(OWN + ".") else module


def _own_tables() -> frozenset[str]:
    return frozenset(
        mapper.local_table.name  # type: ignore[union-attr]
        for mapper in Base.registry.mappers
        if mapper.class_.__module__.startswith(OWN + ".")
    )


def _foreign_tables() -> frozenset[str]:
    return frozenset(Base.metadata.tables) - _own_tables()


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    call: str
    models: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.call} on {', '.join(self.models)}"


def _dotted(node: ast.expr) -> list[str] | None:
    """``a.b.c`` as ["a", "b", "c"]; None for anything but names and attributes."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return [node.id, *reversed(parts)]


class _Module:
    """One portal module's namespace, as its imports (any level) and top-level functions make it."""

    def __init__(self, tree: ast.Module, name: str) -> None:
        self.names: dict[str, Any] = {}
        self.functions: dict[str, ast.AsyncFunctionDef | ast.FunctionDef] = {}
        self.imported: set[str] = set()  # names bound by an import
        package = name.rpartition(".")[0]
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        self.names[alias.asname] = importlib.import_module(alias.name)
                    else:
                        top = alias.name.partition(".")[0]
                        importlib.import_module(alias.name)
                        self.names[top] = importlib.import_module(top)
                    self.imported.add(alias.asname or alias.name.partition(".")[0])
            elif isinstance(node, ast.ImportFrom) and node.module != "__future__":
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                module = importlib.import_module(base)
                for alias in node.names:
                    bound = alias.asname or alias.name
                    value = getattr(module, alias.name, None)
                    if value is None:
                        value = importlib.import_module(f"{base}.{alias.name}")
                    self.names[bound] = value
                    self.imported.add(bound)
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                self.functions[node.name] = node

    def resolve(self, node: ast.expr) -> Any:
        """The object a name or attribute chain denotes here (None when it is not known)."""
        parts = _dotted(node)
        if parts is None or parts[0] not in self.names:
            return None
        value = self.names[parts[0]]
        for part in parts[1:]:
            value = getattr(value, part, None)
            if value is None:
                return None
        return value

    def models_in(self, node: ast.AST) -> set[str]:
        """Other packages' models (or tables) this expression names, as ``Model (module)``."""
        found: set[str] = set()
        for sub in ast.walk(node):
            if not isinstance(sub, ast.Name | ast.Attribute):
                continue
            parts = _dotted(sub)
            if parts is None:
                continue
            for length in range(1, len(parts) + 1):  # Patient, Patient.__table__, m.Patient
                value = self.resolve(_chain(parts[:length]))
                owner = owner_of(value) if value is not None else None
                if owner is not None:
                    found.add(f"{'.'.join(parts[:length])} ({owner})")
                    break
        return found

    def annotation_models(self, annotation: ast.expr | None, names: dict[str, Any]) -> set[str]:
        """Other packages' models an annotation names, its names resolved in ``names``."""
        if annotation is None:
            return set()
        if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
            annotation = ast.parse(annotation.value, mode="eval").body
        found = set()
        for sub in ast.walk(annotation):
            parts = _dotted(sub) if isinstance(sub, ast.Name | ast.Attribute) else None
            if parts is None or parts[0] not in names:
                continue
            value: Any = names[parts[0]]
            for part in parts[1:]:
                value = getattr(value, part, None)
            owner = owner_of(value) if value is not None else None
            if owner is not None:
                found.add(f"{'.'.join(parts)} ({owner})")
        return found

    def returns_models(self, call: ast.Call) -> set[str]:
        """Other packages' models the called function is annotated to return."""
        func = call.func
        if isinstance(func, ast.Name) and func.id in self.functions:
            return self.annotation_models(self.functions[func.id].returns, self.names)
        target = self.resolve(func)
        if target is None or not callable(target):
            return set()
        annotation = getattr(target, "__annotations__", {}).get("return")
        if annotation is None:
            return set()
        if isinstance(annotation, str):
            return self.annotation_models(
                ast.Constant(annotation), getattr(target, "__globals__", {})
            )
        return {f"{c.__name__} ({owner_of(c)})" for c in _classes(annotation) if owner_of(c)}


def _classes(hint: Any) -> set[type]:
    found = {hint} if isinstance(hint, type) else set()
    for arg in typing.get_args(hint):
        found |= _classes(arg)
    return found


def _chain(parts: list[str]) -> ast.expr:
    node: ast.expr = ast.Name(parts[0])
    for part in parts[1:]:
        node = ast.Attribute(node, part)
    return node


def _row_models(module: _Module, function: ast.AST | None, arg: ast.expr) -> set[str]:
    """Other packages' models a row handed to ``session.add``/``delete``/... is one of."""
    if isinstance(arg, ast.Await):
        arg = arg.value
    if isinstance(arg, ast.List | ast.Tuple | ast.Set):
        return {m for element in arg.elts for m in _row_models(module, function, element)}
    if isinstance(arg, ast.Call):
        return module.models_in(arg.func) | module.returns_models(arg)
    if not isinstance(arg, ast.Name) or function is None:
        return set()
    found: set[str] = set()
    for node in ast.walk(function):
        if isinstance(node, ast.arg) and node.arg == arg.id:
            found |= module.annotation_models(node.annotation, module.names)
        elif isinstance(node, ast.AnnAssign) and _binds(node.target, arg.id):
            found |= module.annotation_models(node.annotation, module.names)
            if node.value is not None:
                found |= _row_models(module, None, node.value)
        elif isinstance(node, ast.Assign) and any(_binds(t, arg.id) for t in node.targets):
            found |= _row_models(module, None, node.value)
        elif isinstance(node, ast.NamedExpr) and node.target.id == arg.id:
            found |= _row_models(module, None, node.value)
    return found


def _binds(target: ast.expr, name: str) -> bool:
    if isinstance(target, ast.Name):
        return target.id == name
    if isinstance(target, ast.Tuple | ast.List):
        return any(_binds(t, name) for t in target.elts)
    return False


def violations(source: str, name: str, path: str) -> list[Violation]:
    """Every call of one module that reaches another package's tables."""
    tree = ast.parse(source, path)
    module = _Module(tree, name)
    foreign_tables = _foreign_tables()
    found: dict[tuple[int, int, str], Violation] = {}

    def report(call: ast.Call, what: str, models: set[str]) -> None:
        # A chained call (``select(...).join(...)``) starts where the chain does: it is placed at
        # its own name's line.
        line, column = call.func.end_lineno or call.lineno, call.func.end_col_offset or 0
        if models:
            found[(line, column, what)] = Violation(path, line, what, tuple(sorted(models)))

    def visit(node: ast.AST, function: ast.AST | None) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            function = node
        if isinstance(node, ast.Call):
            check(node, function)
        for child in ast.iter_child_nodes(node):
            visit(child, function)

    def check(call: ast.Call, function: ast.AST | None) -> None:
        func = call.func
        arguments = [*call.args, *(k.value for k in call.keywords)]
        named = func.id if isinstance(func, ast.Name) else None
        method = func.attr if isinstance(func, ast.Attribute) else None
        if named == "text" or method == "text":
            words = {
                table
                for arg in arguments
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str)
                for table in foreign_tables
                if re.search(rf"\b{re.escape(table)}\b", arg.value, re.IGNORECASE)
            }
            report(call, "text()", {f"table {table}" for table in words})
        if named in BUILDERS:
            report(call, f"{named}()", {m for arg in arguments for m in module.models_in(arg)})
            return
        if method is None:
            return
        assert isinstance(func, ast.Attribute)
        if method in STATEMENT_METHODS:
            models = {m for arg in arguments for m in module.models_in(arg)}
            if not isinstance(func.value, ast.Call):  # Patient.__table__.update()
                models |= module.models_in(func.value)
            report(call, f".{method}()", models)
        if method in GETS and call.args:
            report(call, f"session.{method}()", module.models_in(call.args[0]))
        if method in ROW_WRITES and call.args:
            report(call, f"session.{method}()", _row_models(module, function, call.args[0]))
        if method in RUNS and call.args:
            statement = call.args[0]
            parts = _dotted(statement)
            value = module.resolve(statement)
            if parts is not None and parts[0] in module.imported and isinstance(value, Executable):
                report(call, f"session.{method}()", {f"{'.'.join(parts)} (a statement imported)"})

    visit(tree, None)
    return [found[key] for key in sorted(found)]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def portal_violations() -> list[str]:
    found = []
    for path in sorted((ROOT / OWN).rglob("*.py")):
        relative = str(path.relative_to(ROOT))
        found += [str(v) for v in violations(path.read_text(), _module_name(path), relative)]
    return found


def test_the_portal_reads_other_packages_through_their_stores() -> None:
    found = portal_violations()
    assert not found, "the portal reaches other packages' tables (use their store functions):\n" + (
        "\n".join(found)
    )


VIOLATING = """
from sqlalchemy import select, text, update
from sqlalchemy.orm import aliased

import mss.directory.models as directory_models
from dmp_bridge.models import DmpConsent
from mss.audit import AuditEvent
from mss.conversations import Conversation
from mss.directory.models import Guardianship, Patient
from mss.directory.store import _PATIENT_MAILBOX, patient_by_id
from mss.mailbox.models import StoredMessage
from portal.models import PortalSession

_MINOR = aliased(Patient)
_LOAD = select(PortalSession).outerjoin(Guardianship, Guardianship.guardian_id == 1)


async def page(session, patient: Patient):
    await session.get(Conversation, 1)
    await session.execute(update(Patient.__table__).values(totp_last_step=1))
    await session.scalars(select(AuditEvent.id).where(AuditEvent.patient_id == 1))
    await session.get(directory_models.Professional, 2)
    row = await patient_by_id(session, 1)
    await session.delete(row)
    session.add(DmpConsent(patient_id=1))
    await session.delete(patient)
    await session.execute(_PATIENT_MAILBOX, {"patient_id": 1})
    await session.execute(text("DELETE FROM messages WHERE id = 1"))
    await session.get(StoredMessage, 3)


async def allowed(session, token: str):
    row = await session.get(PortalSession, token)
    await session.delete(row)
    await session.execute(select(PortalSession).where(PortalSession.token_hash == token))
    return ", ".join(["a", "b"])
"""


def test_the_check_names_each_violation_with_its_line_and_model() -> None:
    found = [str(v) for v in violations(VIOLATING, "portal.example", "portal/example.py")]
    assert found == [
        "portal/example.py:14: aliased() on Patient (mss.directory.models)",
        "portal/example.py:15: .outerjoin() on Guardianship (mss.directory.models)",
        "portal/example.py:19: session.get() on Conversation (mss.conversations)",
        "portal/example.py:20: update() on Patient (mss.directory.models)",
        "portal/example.py:21: select() on AuditEvent (mss.audit)",
        "portal/example.py:21: .where() on AuditEvent (mss.audit)",
        "portal/example.py:22: session.get() on directory_models.Professional"
        " (mss.directory.models)",
        "portal/example.py:24: session.delete() on Patient (mss.directory.models)",
        "portal/example.py:25: session.add() on DmpConsent (dmp_bridge.models)",
        "portal/example.py:26: session.delete() on Patient (mss.directory.models)",
        "portal/example.py:27: session.execute() on _PATIENT_MAILBOX (a statement imported)",
        "portal/example.py:28: text() on table messages",
        "portal/example.py:29: session.get() on StoredMessage (mss.mailbox.models)",
    ]


def test_the_portal_table_is_its_own_and_the_others_are_not() -> None:
    from dmp_bridge.models import DmpConsent
    from mss.directory.models import Patient
    from portal.models import PortalSession

    assert owner_of(PortalSession) is None and owner_of(PortalSession.__table__) is None
    assert owner_of(Patient) == owner_of(Patient.__table__) == "mss.directory.models"
    assert owner_of(DmpConsent) == "dmp_bridge.models"
    assert "portal_sessions" not in _foreign_tables() and "patients" in _foreign_tables()
