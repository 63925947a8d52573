"""The package layout holds: imports read with `ast` from every tfgreen module.

Every import statement counts, also the ones inside functions (tfgreen imports
heavy modules lazily there). The graph's nodes are tfgreen's subpackages and
top-level modules (`tfgreen.export`, `tfgreen.comparison`, ...).
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "tfgreen"


def _module_name(path: Path) -> str:
    parts = ["tfgreen", *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@functools.lru_cache(maxsize=1)
def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def _imports(name: str) -> set[str]:
    """Dotted names a module imports (`from a import b` gives `a.b` when that is a module)."""
    path = _modules()[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.add(full if full in _modules() else base)
    return found


def _node(dotted: str) -> str | None:
    """The subpackage or top-level module of a tfgreen name (None outside tfgreen)."""
    parts = dotted.split(".")
    if parts[0] != "tfgreen" or len(parts) < 2:
        return None
    return f"tfgreen.{parts[1]}"


def _package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name in _modules():
        source = _node(name)
        if source is None:
            continue
        targets = {_node(i) for i in _imports(name)} - {None, source}
        graph.setdefault(source, set()).update(targets)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index, low, stack, on_stack, result = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return result


def _importers(predicate) -> dict[str, list[str]]:
    found = {}
    for name in _modules():
        hits = sorted(i for i in _imports(name) if predicate(i))
        if hits:
            found[name] = hits
    return found


def _edges_between(graph, component) -> list[str]:
    return sorted(f"{a} -> {b}" for a in component for b in graph.get(a, ()) if b in component)


def test_the_walker_sees_local_and_from_imports():
    imports = _imports("tfgreen.energy.tracker")
    assert "tfgreen._adapters.codecarbon" in imports and "tfgreen.errors" in imports
    # a function-local import (inside compare's _measure)
    assert "tfgreen.energy.inference" in _imports("tfgreen.comparison")
    assert len(_modules()) > 40


def test_no_import_cycle_between_packages():
    graph = _package_graph()
    cycles = _cycles(graph)
    assert not cycles, "import cycles between tfgreen packages:\n" + "\n".join(
        ", ".join(_edges_between(graph, c)) for c in cycles
    )


def test_argparse_only_in_the_cli_package():
    outside = {
        name: hits
        for name, hits in _importers(lambda i: i.split(".")[0] == "argparse").items()
        if not (name == "tfgreen.cli" or name.startswith("tfgreen.cli."))
    }
    assert not outside, f"argparse imported outside tfgreen/cli: {sorted(outside)}"


def test_codecarbon_only_in_its_adapter():
    users = set(_importers(lambda i: i.split(".")[0] == "codecarbon"))
    assert users == {"tfgreen._adapters.codecarbon"}, (
        f"codecarbon imported in {sorted(users - {'tfgreen._adapters.codecarbon'})}"
    )


@pytest.mark.parametrize(
    "package, forbidden",
    [
        ("tfgreen.tflite", ("export", "energy", "comparison", "cli")),
        ("tfgreen.energy", ("export", "comparison", "cli")),
        ("tfgreen.comparison", ("export", "cli")),
    ],
)
def test_the_tflite_core_and_its_users_stay_downstream(package, forbidden):
    bad = {f"tfgreen.{name}" for name in forbidden}
    found = {
        name: hits
        for name, hits in _importers(lambda i: _node(i) in bad).items()
        if name == package or name.startswith(package + ".")
    }
    assert not found, f"{package} imports what it must not: {found}"
