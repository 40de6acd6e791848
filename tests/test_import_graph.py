"""The import graph of ``mss``, ``portal`` and ``dmp_bridge``, read from the source with ``ast``.

Every ``import`` counts, at module level, inside a function or under ``TYPE_CHECKING``:
a function-level import dodges a cycle at import time but the modules still depend on
each other. Three rules (``docs/architecture.md``, "Packages"):

- no cycle between modules;
- no two packages importing each other, one way and the other (a package is ``mss.<name>``
  for the hub's subpackages and top-level modules, ``portal`` and ``dmp_bridge`` whole);
  entry points (``__main__`` modules) sit above every package and are left out of this rule;
- nothing outside ``mss.smtp_gateway`` imports its internals: its public API is the package
  itself (``mss/smtp_gateway/__init__.py``).
"""

from __future__ import annotations

import ast
import functools
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("mss", "portal", "dmp_bridge")
GATEWAY = "mss.smtp_gateway"

# Cycles and pairs known and owned by someone else, each with what removes it. A fixed one
# fails ``test_the_expected_exceptions_are_still_needed``: delete it here then.
EXPECTED_CYCLES: dict[frozenset[str], str] = {}
EXPECTED_PAIRS: dict[frozenset[str], str] = {}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[_module_name(path)] = path
    return found


@functools.cache
def import_graph() -> dict[str, set[str]]:
    """Each module and the modules of ours it imports (a name imported from a package that is
    a submodule counts as that submodule)."""
    modules = _modules()

    def known(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([node.module] if node.module else [])])
                targets = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                    for alias in node.names
                ]
            for target in targets:
                found = known(target)
                if found is not None and found != name:
                    graph[name].add(found)
    return graph


def package_of(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "mss" else parts[0]


def cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(frozenset(component))
    return found


def two_way_pairs(graph: dict[str, set[str]]) -> dict[frozenset[str], list[str]]:
    """Package pairs importing each other both ways, with the imports that make each way."""
    ways: dict[tuple[str, str], list[str]] = defaultdict(list)
    for module, imported in graph.items():
        if module.rpartition(".")[2] == "__main__":
            continue
        for target in imported:
            a, b = package_of(module), package_of(target)
            if a != b:
                ways[(a, b)].append(f"{module} -> {target}")
    return {
        frozenset((a, b)): sorted(ways[(a, b)] + ways[(b, a)])
        for (a, b) in ways
        if a < b and (b, a) in ways
    }


def test_no_import_cycle() -> None:
    graph = import_graph()
    unexpected = {}
    for component in cycles(graph):
        if component in EXPECTED_CYCLES:
            continue
        unexpected[" <-> ".join(sorted(component))] = sorted(
            f"{a} -> {b}" for a in component for b in graph[a] if b in component
        )
    assert unexpected == {}


def test_no_two_packages_import_each_other() -> None:
    found = two_way_pairs(import_graph())
    assert {
        " <-> ".join(sorted(pair)): imports
        for pair, imports in found.items()
        if pair not in EXPECTED_PAIRS
    } == {}


def test_nothing_outside_the_gateway_imports_its_internals() -> None:
    graph = import_graph()
    assert (
        sorted(
            f"{module} -> {target}"
            for module, imported in graph.items()
            if not (module == GATEWAY or module.startswith(GATEWAY + "."))
            for target in imported
            if target.startswith(GATEWAY + ".")
        )
        == []
    )


def test_the_expected_exceptions_are_still_needed() -> None:
    graph = import_graph()
    assert set(EXPECTED_CYCLES) <= set(cycles(graph))
    assert set(EXPECTED_PAIRS) <= set(two_way_pairs(graph))


def test_the_graph_sees_function_level_and_relative_imports() -> None:
    graph = import_graph()
    assert "mss.serve" in graph["mss.cli"]  # ``from mss.serve import serve_forever`` in a function
    assert "mss.jobs" in graph["mss.agenda"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [frozenset("abc")]
