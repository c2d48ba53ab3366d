"""The package's import graph: no cycles, and the stores import nothing above them.

Read from the source with ``ast`` (no module is executed), every ``import`` counted wherever it
stands, inside functions too: a lazy import still ties two modules together. An edge goes to
the module named (``from .pkg import sub`` to ``pkg.sub`` when that is a module, else to
``pkg``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "python"
PACKAGE = "synapse_mojo"


def _modules() -> dict[str, tuple[Path, bool]]:
    found = {}
    for path in sorted((ROOT / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def _import_graph() -> dict[str, set[str]]:
    modules = _modules()

    def known(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, (path, is_package) in modules.items():
        package = name if is_package else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                source = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    source = ".".join(anchor + ([node.module] if node.module else []))
                for alias in node.names:
                    sub = f"{source}.{alias.name}"
                    targets.append(sub if sub in modules else source)
            for target in targets:
                if target == PACKAGE or target.startswith(PACKAGE + "."):
                    resolved = known(target)
                    if resolved is not None and resolved != name:
                        graph[name].add(resolved)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in graph:
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
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_checker_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_in_the_package():
    graph = _import_graph()
    assert "synapse_mojo.stores.redis" in graph  # the walk saw the package
    cycles = _cycles(graph)
    assert not cycles, "import cycles (each a set of modules that import one another):\n" + (
        "\n".join(" <-> ".join(c) for c in cycles)
    )


@pytest.mark.parametrize(
    "lower, upper",
    [
        ("synapse_mojo.vectors", "synapse_mojo."),  # below everything but errors
        ("synapse_mojo.stores", "synapse_mojo.search"),
        ("synapse_mojo.stores", "synapse_mojo.patternmap"),
        ("synapse_mojo.stores", "synapse_mojo.embeddings"),
        ("synapse_mojo.stores", "synapse_mojo.router"),
        ("synapse_mojo.stores", "synapse_mojo.serve"),
        ("synapse_mojo.stores", "synapse_mojo.cli"),
        ("synapse_mojo.search", "synapse_mojo.stores"),
    ],
)
def test_layers_point_down(lower, upper):
    allowed = {"synapse_mojo.errors"}
    wrong = sorted(
        f"{module} -> {target}"
        for module, targets in _import_graph().items()
        if module == lower or module.startswith(lower + ".")
        for target in targets
        if target.startswith(upper) and target not in allowed and not target.startswith(lower)
    )
    assert not wrong, f"{lower} must not import {upper}: " + ", ".join(wrong)
