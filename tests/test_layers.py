"""The package's folders are the pipeline's layers, and imports only run down (issue 13).

The import graph is read from the source with `ast`, counting imports inside functions (they
run as surely as the others, only later) and leaving out those under `if TYPE_CHECKING:`
(never run). A failure names the two modules of the offending import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "gradcli"

# Lowest first. A module may import its own layer and those below it, never one above; within
# a layer, imports may not go round in a circle either.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("floor", ("gradcli._version", "gradcli.language.source", "gradcli.language.limits")),
    ("graph", ("gradcli.graph",)),
    ("primitives", ("gradcli.primitives",)),
    ("language", ("gradcli.language",)),
    ("transforms", ("gradcli.transforms",)),
    ("evaluation", ("gradcli.evaluation",)),
    ("checking", ("gradcli.checking",)),
    ("api", ("gradcli.api", "gradcli")),
    ("output", ("gradcli.output",)),
    ("front ends", ("gradcli.cli", "gradcli.pytest_plugin", "gradcli.__main__")),
]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def rank(name: str) -> int:
    """The layer of a module: the longest matching prefix among the layers' entries."""
    best, found = -1, None
    for i, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > best:
                best, found = len(prefix), i
    assert found is not None, f"{name} is in no layer: add it to LAYERS"
    return found


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(tree: ast.AST):
    """Every import statement, leaving out the bodies of `if TYPE_CHECKING:`."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def _imports_gradcli(name: str) -> bool:
    tree = ast.parse(MODULES[name].read_text())
    return any(
        (isinstance(n, ast.ImportFrom) and (n.level or (n.module or "").startswith("gradcli")))
        or (isinstance(n, ast.Import) and any(a.name.startswith("gradcli") for a in n.names))
        for n in _walk(tree)
    )


def imports(name: str) -> set[str]:
    """The package's modules that module `name` imports, and the packages they live in whose
    `__init__` runs code of the package (one that imports nothing adds no edge)."""
    tree = ast.parse(MODULES[name].read_text())
    here = name if is_package(name) else name.rpartition(".")[0]
    found: set[str] = set()
    for node in _walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            base = node.module or ""
            if node.level:
                parts = here.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            targets = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES]
            targets = targets or [base]
        for target in targets:
            if not (target == "gradcli" or target.startswith("gradcli.")):
                continue
            while target not in MODULES:  # an attribute of a module: the module
                target = target.rpartition(".")[0]
            found.add(target)
            # Importing gradcli.a.b runs gradcli.a's __init__ first, unless this module is in it.
            parent = target.rpartition(".")[0]
            while parent and not (name == parent or name.startswith(parent + ".")):
                if _imports_gradcli(parent):
                    found.add(parent)
                parent = parent.rpartition(".")[0]
    found.discard(name)
    return found


GRAPH = {name: imports(name) for name in MODULES}


def test_every_module_is_in_a_layer() -> None:
    for name in MODULES:
        rank(name)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_only_run_down(name: str) -> None:
    upward = [t for t in sorted(GRAPH[name]) if rank(t) > rank(name)]
    assert not upward, (
        f"{name} ({LAYERS[rank(name)][0]}) imports "
        + ", ".join(f"{t} ({LAYERS[rank(t)][0]})" for t in upward)
        + ", above it"
    )


def test_no_import_goes_round_in_a_circle() -> None:
    """Depth-first search for a back edge, iteratively; the circle is named in full."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in sorted(GRAPH):
        if start in state:
            continue
        path, stack = [start], [iter(sorted(GRAPH[start]))]
        state[start] = 1
        while stack:
            target = next(stack[-1], None)
            if target is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(target) == 1:
                circle = [*path[path.index(target) :], target]
                pytest.fail("an import circle: " + " → ".join(circle))
            elif target not in state:
                state[target] = 1
                path.append(target)
                stack.append(iter(sorted(GRAPH[target])))


def test_the_test_sees_imports_inside_functions_and_skips_type_checking() -> None:
    """The reader itself, on this package's known cases: a lazy import in a function counts."""
    assert "gradcli.api" in GRAPH["gradcli"]  # `from . import api` inside __getattr__
    assert "gradcli.checking.engine" not in GRAPH["gradcli.checking.merging"]  # TYPE_CHECKING


def test_each_layer_says_what_it_holds_and_may_import() -> None:
    for name, path in MODULES.items():
        if path.name == "__init__.py" and name != "gradcli":
            doc = ast.get_docstring(ast.parse(path.read_text())) or ""
            assert "import" in doc and len(doc) > 150, f"{name}: say what the layer holds"


# A module that reads in one sitting; the generated parse tables are data, not reading.
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80
GENERATED = {"gradcli.language._tables"}


def test_no_module_is_longer_than_one_sitting() -> None:
    long = {
        name: n
        for name, path in MODULES.items()
        if name not in GENERATED and (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


def test_no_function_is_longer_than_a_screenful_without_saying_why() -> None:
    """A longer function says why in its docstring, in a sentence that begins "Long because"."""
    long = []
    for name, path in MODULES.items():
        if name in GENERATED:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            lines = node.end_lineno - node.lineno + 1
            reason = "Long because" in (ast.get_docstring(node) or "")
            if lines > MAX_FUNCTION_LINES and not reason:
                long.append(f"{name}.{node.name} ({lines} lines)")
    assert not long, "functions over 80 lines with no reason given: " + ", ".join(long)
