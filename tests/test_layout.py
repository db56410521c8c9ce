"""The package layout keeps its promises: no import circles, inference never imports training, the library
imports nothing from benchmarks/ or research/, no test reaches into benchmarks/ or research/ through sys.path,
and no function of the library runs past a screen (80 lines)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("detector", "explain")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports() -> dict[str, set[str]]:
    """Project module -> project modules it imports (top level or inside functions)."""
    files = [p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")]
    names = {_module_name(p) for p in files}
    graph: dict[str, set[str]] = {}
    for p in files:
        me = _module_name(p)
        deps: set[str] = set()
        for node in ast.walk(ast.parse(p.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for t in targets:
                while t and t not in names:
                    t = t.rpartition(".")[0]
                if t and t != me and not me.startswith(t + "."):  # a submodule importing its package: fine
                    deps.add(t)
        graph[me] = deps
    return graph


def test_no_import_cycles():
    graph = _imports()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for d in sorted(graph.get(m, ())):
            if state.get(d) == 1:
                cycle = stack[stack.index(d):] + [d]
                raise AssertionError("import circle: " + " -> ".join(cycle))
            if d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_inference_never_imports_training():
    graph = _imports()
    inference = [m for m in graph if not m.startswith("detector.training") and m not in ("detector.cli",)]
    for m in inference:
        bad = sorted(d for d in graph[m] if d.startswith("detector.training"))
        assert not bad, f"{m} imports {bad}"


def test_the_library_never_imports_benchmarks_or_research():
    for p in (q for pkg in PACKAGES for q in (ROOT / pkg).rglob("*.py")):
        for node in ast.walk(ast.parse(p.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            bad = [n for n in names if n.split(".")[0] in ("benchmarks", "research")]
            assert not bad, f"{p.relative_to(ROOT)}:{node.lineno} imports {bad}"


def _script_modules(folder: str) -> set[str]:
    return {p.stem for p in (ROOT / folder).glob("*.py")} - {"__init__"}


def test_no_test_puts_benchmarks_or_research_on_sys_path():
    """A test imports the library (or the `research` package by its name), never a script beside it."""
    scripts = _script_modules("benchmarks") | _script_modules("research")
    for p in (ROOT / "tests").rglob("*.py"):
        tree = ast.parse(p.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr == "path" and getattr(node.value, "id", "") == "sys":
                raise AssertionError(f"{p.relative_to(ROOT)}:{node.lineno} touches sys.path")
            if isinstance(node, ast.Import):
                bad = [a.name for a in node.names if a.name.split(".")[0] in scripts | {"benchmarks"}]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                bad = [node.module] if (node.module or "").split(".")[0] in scripts | {"benchmarks"} else []
            else:
                bad = []
            assert not bad, f"{p.relative_to(ROOT)}:{node.lineno} imports the script(s) {bad}"


def test_no_library_function_is_longer_than_a_screen():
    """80 lines at most, docstring included: a longer function is several named steps (split it)."""
    long = []
    for p in (q for pkg in PACKAGES for q in (ROOT / pkg).rglob("*.py")):
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > 80:
                    long.append(f"{p.relative_to(ROOT)}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, "functions over 80 lines: " + "; ".join(long)
