"""The package's layers, held to the code: imports point downward only, no import cycle
(function-level imports included), the request path never reaches the batch verbs, the
project's own imports sit at the top of a module unless what they import is heavy, and no
function is longer than about a screen."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("smp_platform", "feature_repo", "flows")
# Lowest first. A module may import its own package and anything in a lower layer.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("smp_platform", "smp_platform.core"),
    ("smp_platform.features", "smp_platform.sources"),
    ("feature_repo", "smp_platform.validation", "smp_platform.modeling"),
    ("smp_platform.infra",),
    ("smp_platform.online", "smp_platform.testing"),
    ("smp_platform.pipeline",),
    ("smp_platform.service",),
    ("flows",),
    ("smp_platform.demo",),
    ("smp_platform.cli",),
)
# Entry points: their commands import what they run when they run (``smp --help`` is instant).
ENTRY_POINTS = {"smp_platform.cli"}
# Third-party packages whose import costs seconds or pulls a framework: a module that imports
# one at its top is heavy, and may be imported lazily.
HEAVY = {
    "torch",
    "feast",
    "mlflow",
    "prefect",
    "great_expectations",
    "fastapi",
    "uvicorn",
    "transformers",
    "open_clip",
    "matplotlib",
}
MAX_FUNCTION_LINES = 100


@dataclass(frozen=True)
class Import:
    source: str
    target: str
    line: int
    in_function: bool
    type_checking: bool


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {
        _module_name(path): path
        for package in PACKAGES
        for path in sorted((REPO / package).rglob("*.py"))
    }


def _resolve(module: str, node: ast.ImportFrom, known: set[str]) -> list[str]:
    """The project modules an import-from names (``from pkg import module`` included)."""
    if node.level:
        base = module.split(".")[: -node.level]
        name = ".".join([*base, node.module] if node.module else base)
    else:
        name = node.module or ""
    targets = [f"{name}.{alias.name}" for alias in node.names if f"{name}.{alias.name}" in known]
    return targets or ([name] if name.split(".")[0] in PACKAGES else [])


def _imports(module: str, path: Path, known: set[str]) -> Iterator[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"))

    def walk(node: ast.AST, in_function: bool, type_checking: bool) -> Iterator[Import]:
        for child in ast.iter_child_nodes(node):
            function = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            guarded = type_checking or (
                isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test)
            )
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield Import(module, alias.name, child.lineno, in_function, type_checking)
            elif isinstance(child, ast.ImportFrom):
                for target in _resolve(module, child, known) or [child.module or ""]:
                    yield Import(module, target, child.lineno, in_function, type_checking)
            yield from walk(child, function, guarded)

    yield from walk(tree, False, False)


def _graph() -> tuple[dict[str, list[Import]], dict[str, Path]]:
    modules = _modules()
    known = set(modules)
    return {m: list(_imports(m, p, known)) for m, p in modules.items()}, modules


def _project(name: str) -> bool:
    return name.split(".")[0] in PACKAGES


def _layer(module: str) -> tuple[int, str]:
    """(layer, the package prefix that placed it): the longest prefix wins."""
    best: tuple[int, str] | None = None
    for level, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (
                best is None or len(prefix) > len(best[1])
            ):
                best = (level, prefix)
    assert best is not None, f"{module} is in no layer of tests/unit/test_layers.py"
    return best


def _owner(name: str, modules: dict[str, Path]) -> str:
    """The project module an import names (a module, or the module holding a name)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name


def test_every_module_has_a_layer() -> None:
    for module in _modules():
        _layer(module)


def test_imports_point_downward_only() -> None:
    graph, modules = _graph()
    wrong = []
    for module, imports in graph.items():
        level, package = _layer(module)
        for edge in imports:
            if not _project(edge.target):
                continue
            target = _owner(edge.target, modules)
            target_level, target_package = _layer(target)
            same_package = target_package == package or target == package
            if target_level > level or (target_level == level and not same_package):
                wrong.append(f"{module}:{edge.line} imports {target} (layer {target_level})")
    assert not wrong, "imports that point up or across a layer:\n" + "\n".join(wrong)


def test_the_request_path_never_imports_the_batch_verbs() -> None:
    graph, modules = _graph()
    for module, imports in graph.items():
        if not module.startswith(("smp_platform.service", "smp_platform.online")):
            continue
        for edge in imports:
            target = _owner(edge.target, modules)
            assert not target.startswith(("smp_platform.pipeline", "flows")), (module, target)


def test_no_import_cycle_function_level_imports_included() -> None:
    graph, modules = _graph()
    edges = {
        m: {_owner(i.target, modules) for i in imports if _project(i.target)} - {m}
        for m, imports in graph.items()
    }
    # A package's __init__ is imported with any of its modules: an edge to it is not a cycle
    # through its submodules unless the __init__ itself imports them back.
    cycles = _cycles(edges)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
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

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def _heavy(graph: dict[str, list[Import]], modules: dict[str, Path]) -> set[str]:
    """Modules that import a heavy package at their top, directly or through the project."""
    heavy = {
        m
        for m, imports in graph.items()
        if any(
            not i.in_function and not i.type_checking and i.target.split(".")[0] in HEAVY
            for i in imports
        )
    }
    grew = True
    while grew:
        grew = False
        for m, imports in graph.items():
            if m in heavy:
                continue
            top = {
                _owner(i.target, modules)
                for i in imports
                if _project(i.target) and not i.in_function and not i.type_checking
            }
            if top & heavy:
                heavy.add(m)
                grew = True
    return heavy


def test_the_project_is_imported_at_the_top_of_a_module_unless_what_it_imports_is_heavy() -> None:
    graph, modules = _graph()
    heavy = _heavy(graph, modules)
    lazy = [
        f"{module}:{edge.line} imports {edge.target} inside a function"
        for module, imports in graph.items()
        if module not in ENTRY_POINTS
        for edge in imports
        if edge.in_function and _project(edge.target) and _owner(edge.target, modules) not in heavy
    ]
    assert not lazy, "\n".join(lazy)


def test_no_function_is_longer_than_a_screen() -> None:
    long = []
    for module, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{module}.{node.name}: {lines} lines")
    assert not long, "\n".join(long)


def _constants_naming(node: ast.AST, names: set[str]) -> Iterator[ast.Constant]:
    """String constants equal to one of ``names`` in a comparison, a subscript or a dict key:
    the ways code tells one group from another."""
    for child in ast.walk(node):
        if isinstance(child, ast.Compare):
            operands = [child.left, *child.comparators]
            for operand in operands:
                elements = (
                    operand.elts
                    if isinstance(operand, ast.Tuple | ast.List | ast.Set)
                    else [operand]
                )
                yield from (e for e in elements if isinstance(e, ast.Constant) and e.value in names)
        elif isinstance(child, ast.Subscript) and isinstance(child.slice, ast.Constant):
            if child.slice.value in names:
                yield child.slice
        elif isinstance(child, ast.Dict):
            yield from (k for k in child.keys if isinstance(k, ast.Constant) and k.value in names)


def test_no_code_outside_a_group_s_own_file_names_a_group_or_a_view() -> None:
    from smp_platform.testing.feature_frames import builtin_groups

    groups = builtin_groups()
    # a group named like one of its fields ("perplexity") cannot be told from the field here
    group_names = {g.name for g in groups} - set(groups.fields)
    view_names = {v.name for v in groups.views}
    found = []
    for module, path in _modules().items():
        if module.startswith("smp_platform.features.groups."):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):  # a view's name is distinctive: any mention counts
            if isinstance(node, ast.Constant) and node.value in view_names:
                found.append(f"{module}:{node.lineno} names view {node.value!r}")
        for node in _constants_naming(tree, group_names):
            found.append(f"{module}:{node.lineno} compares with group {node.value!r}")
    assert not found, "\n".join(found)
