"""docs/architecture.md's floors are the package's import graph: every module is drawn on one
floor, imports only its floor or below (deferred imports too), the graph has no cycle, and only
the CLI imports the plots."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "hades"


def floors() -> dict[str, int]:
    block = (ROOT / "docs" / "architecture.md").read_text().split("```")[1]
    out, floor = {}, None
    for line in block.splitlines():
        m = re.match(r"floor (\d+)\s+(\w+)\.py", line) or re.match(r"\s{9}(\w+)\.py", line)
        if m and m.re.pattern.startswith("floor"):
            floor = int(m.group(1))
            out[m.group(2)] = floor
        elif m:
            out[m.group(1)] = floor
    return out


def imports(module: Path) -> set[str]:
    """Every hades module ``module`` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("hades."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.ImportFrom) and node.module == "hades.cli":
            found.add("cli")
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("hades.")}
    return found - {module.stem}


MODULES = {p.stem: imports(p) for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
# the CLI is a package (one module per group of commands): one node, the union of its imports
MODULES["cli"] = set().union(*(imports(p) for p in (PACKAGE / "cli").glob("*.py"))) - {"cli"}


def test_every_module_is_drawn_once_on_a_floor():
    assert set(floors()) == set(MODULES), set(floors()) ^ set(MODULES)


def upward(modules: dict[str, set[str]], floor: dict[str, int]) -> list[tuple[str, str]]:
    return [(m, d) for m, deps in modules.items() for d in deps if floor[d] > floor[m]]


def test_no_module_imports_one_above_its_floor():
    assert not upward(MODULES, floors()), upward(MODULES, floors())


def test_the_import_graph_has_no_cycle_and_only_the_cli_draws():
    state: dict[str, int] = {}

    def visit(m, path):
        assert state.get(m) != 1, " -> ".join([*path, m])
        if state.get(m) == 2:
            return
        state[m] = 1
        for d in MODULES[m]:
            visit(d, [*path, m])
        state[m] = 2

    for m in MODULES:
        visit(m, [])
    assert {m for m, deps in MODULES.items() if "plots" in deps} == {"cli"}
    assert not any("cli" in deps for deps in MODULES.values())


def test_the_check_can_fail():
    # an upward import would be caught: evaluation (floor 5) importing runs (floor 7), as the
    # deferred ci95 import once had evaluation's callers do the other way round
    mutated = {**MODULES, "evaluation": MODULES["evaluation"] | {"runs"}}
    assert upward(mutated, floors()) == [("evaluation", "runs")]
