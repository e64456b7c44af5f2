"""The package's modules form layers: no import cycle, the runners side by side, no test tooling in the package."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

from grader.paths import PACKAGE_DIR

RUNNERS = ("grader.cluster", "grader.docker_runner")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE_DIR.rglob("*.py")}


def imported(path: Path, load_time_only: bool) -> set[str]:
    """The modules a file imports: with `load_time_only`, those its module body imports outside TYPE_CHECKING
    (`from package import submodule` names the submodule alone)."""
    tree = ast.parse(path.read_text())
    nodes = ast.walk(tree) if not load_time_only else (
        node for node in tree.body if not (isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            submodules = {f"{node.module}.{alias.name}" for alias in node.names} & MODULES.keys()
            found |= submodules or {node.module}
    return found


def load_time_graph() -> dict[str, set[str]]:
    return {name: imported(path, True) & MODULES.keys() - {name} for name, path in MODULES.items()}


def test_no_import_cycle_between_the_packages_modules() -> None:
    graphlib.TopologicalSorter(load_time_graph()).prepare()  # raises CycleError naming the cycle


@pytest.mark.parametrize(("runner", "other"), [RUNNERS, RUNNERS[::-1]])
def test_the_runners_sit_side_by_side(runner: str, other: str) -> None:
    graph, seen, todo = load_time_graph(), set(), [runner]
    while todo:
        seen.add(module := todo.pop())
        todo += graph[module] - seen
    assert other not in seen, f"{runner} imports {other}, directly or through the modules it imports"


def test_the_package_imports_no_test_or_benchmark_code() -> None:
    tooling = {name: sorted(m for m in imported(path, False) if m.split(".")[0] in ("tests", "bench"))
               for name, path in MODULES.items()}
    assert not {name: found for name, found in tooling.items() if found}
