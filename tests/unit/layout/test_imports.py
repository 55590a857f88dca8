"""The direction of imports: downward through the floors, never from one process package into another,
the simulator importing nothing of Aerostic's, and no import cycle between modules."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
FLOORS: dict[str, int] = {
    # tools: start, measure or stand in for things
    "aerostic": 4, "stack": 4, "bench": 4, "metasim": 4,
    # processes: one deployable each
    "ingress": 3, "api": 3, "streams": 3, "dispatcher": 3, "projector": 3, "aiworker": 3, "deliverer": 3,
    # domain
    "tenants": 2, "automations": 2, "agents": 2, "ai": 2, "contacts": 2, "campaigns": 2, "templates": 2,
    "webhooks": 2,
    # kit
    "broker": 1, "db": 1, "vault": 1, "mediastore": 1,
    # ground
    "schemas": 0, "config": 0,
}
PROCESS = 3


def _modules() -> Iterator[tuple[str, Path]]:
    for package in FLOORS:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts), path


def _runtime_nodes(node: ast.AST) -> Iterator[ast.AST]:
    """Every node but those under ``if TYPE_CHECKING:`` (imported for annotations only)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and isinstance(child.test, ast.Name) and child.test.id == "TYPE_CHECKING":
            continue
        yield child
        yield from _runtime_nodes(child)


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] in FLOORS}


MODULES = dict(_modules())
IMPORTS = {name: _imports(path) for name, path in MODULES.items()}


def violations(imports: dict[str, set[str]]) -> list[str]:
    """Every import that goes upward, across process packages, or out of the simulator."""
    found = []
    for module, targets in imports.items():
        own = module.split(".")[0]
        for target in sorted(targets):
            other = target.split(".")[0]
            if other == own:
                continue
            if own == "metasim":
                found.append(f"{module} -> {target}: the simulator imports nothing of Aerostic's")
            elif FLOORS[other] > FLOORS[own]:
                found.append(f"{module} -> {target}: upward")
            elif FLOORS[other] == FLOORS[own] == PROCESS:
                found.append(f"{module} -> {target}: one process into another")
    return found


def test_every_package_has_a_floor() -> None:
    packages = {p.name for p in ROOT.iterdir() if (p / "__init__.py").exists() and p.name != "tests"}
    assert packages == set(FLOORS)


def test_imports_only_go_down() -> None:
    assert violations(IMPORTS) == []


def test_the_check_sees_a_wrong_import() -> None:
    assert violations({"streams.router": {"ingress.webhook"}, "broker.runtime": {"streams.router"},
                       "metasim.payloads": {"ingress.signature"}}) == [
        "streams.router -> ingress.webhook: one process into another",
        "broker.runtime -> streams.router: upward",
        "metasim.payloads -> ingress.signature: the simulator imports nothing of Aerostic's",
    ]


def _cycle(imports: dict[str, set[str]]) -> list[str] | None:
    """One import cycle between modules, if any (a module importing its own package's ``__init__`` is not)."""
    graph = {m: {t for t in targets if t in imports and t != m and not m.startswith(t + ".")}
             for m, targets in imports.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycles() -> None:
    assert _cycle(IMPORTS) is None
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


@pytest.mark.parametrize("module", sorted(m for m in MODULES if "." not in m))
def test_every_package_says_what_it_holds(module: str) -> None:
    docstring = ast.get_docstring(ast.parse(MODULES[module].read_text()))
    assert docstring and len(docstring) > 30, f"{module}/__init__.py needs a docstring saying what it holds"
