"""The package's import graph: layers only point down, no cycles, no workbench imports inside functions.

Every module under workbench/ is parsed with :mod:`ast`, never imported, so this runs in well under a
second and cannot be fooled by import order. The layers, lowest first::

    core < data < models < training < evaluation < experiments < ui < cli

``workbench/__init__.py`` and ``workbench/__main__.py`` sit above ``cli``: they may import anything.
A layer's ``__init__.py`` belongs to its layer, so it may re-export its own modules and import lower
layers, like any other module of the layer, and nothing above it.

Rules, each test listing every offender as ``file:line``:

- no import cycle between workbench modules (module-level imports; imports under
  ``if TYPE_CHECKING:`` never run, so they cannot close a cycle);
- no upward import: a module imports only its own layer or lower ones (checked for every import,
  including ``if TYPE_CHECKING:`` and function-level ones: a type-only dependency still points up);
- no workbench import inside a function or class body (a hidden dependency, and the usual way a
  cycle gets papered over). Third-party imports inside functions are fine: that is how optional
  dependencies (matplotlib, transformers, ...) stay optional.

What counts as an edge: ``import workbench.a.b`` and ``from workbench.a import b`` (``b`` a module)
point at ``workbench.a.b``; ``from workbench.a import name`` points at the package ``workbench.a``
(its ``__init__``). Importing ``workbench.a.b`` also runs the parents' ``__init__``; those implicit
edges are left out, as in every import-graph tool, or every re-export would be a cycle.
Dynamic imports (``importlib.import_module("...")``) are not seen.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "workbench"

LAYERS = ("core", "data", "models", "training", "evaluation", "experiments", "ui", "cli")
TOP = len(LAYERS)  # workbench/__init__.py and workbench/__main__.py

# Exceptions, each (importing module, imported module) -> why. Keep these few and temporary.
ALLOWED_UPWARD: dict[tuple[str, str], str] = {}
ALLOWED_FUNCTION_LEVEL: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Import:
    source: str  # importing module, e.g. "workbench.ui.widgets"
    target: str  # imported workbench module, e.g. "workbench.models.gpt"
    path: Path
    line: int
    in_function: bool  # inside a def or class body
    type_checking: bool  # under `if TYPE_CHECKING:`

    def where(self, root: Path) -> str:
        return f"{self.path.relative_to(root)}:{self.line}"


def discover(root: Path, package: str = PACKAGE) -> dict[str, Path]:
    """Module name -> file, for every .py file of the package."""
    modules = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _in_package(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _nearest_module(name: str, modules: dict[str, Path]) -> str:
    """`name` if it is a module, else its closest ancestor that is (a name imported from a package)."""
    while name not in modules and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


class _Collector(ast.NodeVisitor):
    def __init__(self, module: str, path: Path, modules: dict[str, Path], package: str):
        self.module, self.path, self.modules, self.package = module, path, modules, package
        self.is_package = path.name == "__init__.py"
        self.depth = 0  # nesting in def / class bodies
        self.type_checking = 0  # nesting in `if TYPE_CHECKING:` bodies
        self.found: list[Import] = []

    def _add(self, target: str, node: ast.stmt) -> None:
        found = Import(self.module, target, self.path, node.lineno, self.depth > 0, self.type_checking > 0)
        if found not in self.found:  # `from .m import a, b` is one import of m
            self.found.append(found)

    def _scoped(self, node: ast.AST) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = visit_Lambda = _scoped

    def visit_If(self, node: ast.If) -> None:
        if not _is_type_checking(node.test):
            self.generic_visit(node)
            return
        self.visit(node.test)
        self.type_checking += 1
        for child in node.body:
            self.visit(child)
        self.type_checking -= 1
        for child in node.orelse:  # the else branch runs
            self.visit(child)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if _in_package(alias.name, self.package):
                self._add(_nearest_module(alias.name, self.modules), node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base = self.module.split(".") if self.is_package else self.module.split(".")[:-1]
            base = base[: len(base) - (node.level - 1)]
            base_name = ".".join(base + ([node.module] if node.module else []))
        else:
            base_name = node.module or ""
        if not _in_package(base_name, self.package):
            return
        for alias in node.names:
            submodule = f"{base_name}.{alias.name}"
            self._add(submodule if submodule in self.modules else _nearest_module(base_name, self.modules), node)


def collect_imports(root: Path = ROOT, package: str = PACKAGE) -> tuple[dict[str, Path], list[Import]]:
    modules = discover(root, package)
    imports: list[Import] = []
    for name, path in modules.items():
        collector = _Collector(name, path, modules, package)
        collector.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        imports.extend(collector.found)
    return modules, imports


def layer_of(module: str, package: str = PACKAGE) -> int | None:
    parts = module.split(".")
    if parts == [package] or parts == [package, "__main__"]:
        return TOP
    if len(parts) >= 2 and parts[1] in LAYERS:
        return LAYERS.index(parts[1])
    return None


def _layer_name(rank: int) -> str:
    return "top" if rank == TOP else LAYERS[rank]


def unlayered_modules(modules: dict[str, Path], package: str = PACKAGE) -> list[str]:
    return [name for name in modules if layer_of(name, package) is None]


def upward_imports(imports: list[Import], root: Path = ROOT, package: str = PACKAGE) -> list[str]:
    offenders = []
    for imp in imports:
        source, target = layer_of(imp.source, package), layer_of(imp.target, package)
        if source is None or target is None or target <= source or (imp.source, imp.target) in ALLOWED_UPWARD:
            continue
        scope = " (under TYPE_CHECKING)" if imp.type_checking else " (inside a function)" if imp.in_function else ""
        offenders.append(
            f"{imp.where(root)}: {imp.source} [{_layer_name(source)}] imports {imp.target} "
            f"[{_layer_name(target)}]{scope}"
        )
    return offenders


def function_level_imports(imports: list[Import], root: Path = ROOT) -> list[str]:
    return [
        f"{imp.where(root)}: {imp.source} imports {imp.target} inside a function or class body"
        for imp in imports
        if imp.in_function and (imp.source, imp.target) not in ALLOWED_FUNCTION_LEVEL
    ]


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; components of one node only when it imports itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
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
                    if len(component) > 1 or node in graph.get(node, ()):
                        components.append(sorted(component))
    return components


def import_cycles(imports: list[Import], root: Path = ROOT) -> list[str]:
    """One entry per cycle (strongly connected component), with every import that takes part in it."""
    runtime = [imp for imp in imports if not imp.in_function and not imp.type_checking]
    graph: dict[str, set[str]] = defaultdict(set)
    for imp in runtime:
        graph[imp.source].add(imp.target)
    offenders = []
    for component in _strongly_connected(graph):
        members = set(component)
        edges = sorted(
            {
                f"    {imp.where(root)}: {imp.source} -> {imp.target}"
                for imp in runtime
                if imp.source in members and imp.target in members
            }
        )
        offenders.append("cycle between " + ", ".join(component) + ":\n" + "\n".join(edges))
    return offenders


def _report(title: str, offenders: list[str]) -> str:
    return f"{len(offenders)} {title}:\n" + "\n".join(offenders)


# The package itself.


def test_every_module_belongs_to_a_layer():
    modules, _ = collect_imports()
    assert len(modules) > 10, "no workbench modules found"
    offenders = unlayered_modules(modules)
    assert not offenders, _report(f"modules outside the layers {LAYERS}", offenders)


def test_no_import_cycles():
    _, imports = collect_imports()
    offenders = import_cycles(imports)
    assert not offenders, _report("import cycles", offenders)


def test_no_upward_imports():
    _, imports = collect_imports()
    offenders = upward_imports(imports)
    assert not offenders, _report("upward imports (layers, lowest first: " + " < ".join(LAYERS) + ")", offenders)


def test_no_function_level_workbench_imports():
    _, imports = collect_imports()
    offenders = function_level_imports(imports)
    assert not offenders, _report("function-level workbench imports", offenders)


# The checker, on a made-up package: each rule catches what it should and nothing else.


def _fake_package(tmp_path: Path) -> Path:
    files = {
        "__init__.py": "from .models.gpt import GPT\n",
        "core/__init__.py": "",
        "core/io.py": """
            from typing import TYPE_CHECKING
            from ..models import gpt  # upward, and closes a cycle
            if TYPE_CHECKING:
                from ..data.corpus import Document  # upward, but no cycle
            """,
        "data/__init__.py": "from .corpus import Document\n",
        "data/corpus.py": """
            import numpy
            from workbench.core import io
            class Document:
                def load(self):
                    import matplotlib  # third party: fine
                    from . import tokens  # function level
            """,
        "data/tokens.py": "from .corpus import Document\n",
        "models/__init__.py": "",
        "models/gpt.py": "import workbench.core.io\nfrom workbench.data import Document\nGPT = 1\n",
        "stray.py": "",
    }
    for name, text in files.items():
        path = tmp_path / "workbench" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return tmp_path


def test_the_checker_on_a_made_up_package(tmp_path):
    root = _fake_package(tmp_path)
    modules, imports = collect_imports(root)
    assert unlayered_modules(modules) == ["workbench.stray"]
    assert upward_imports(imports, root) == [
        "workbench/core/io.py:3: workbench.core.io [core] imports workbench.models.gpt [models]",
        "workbench/core/io.py:5: workbench.core.io [core] imports workbench.data.corpus [data] (under TYPE_CHECKING)",
    ]
    assert function_level_imports(imports, root) == [
        "workbench/data/corpus.py:7: workbench.data.corpus imports workbench.data.tokens"
        " inside a function or class body"
    ]
    cycles = import_cycles(imports, root)
    assert len(cycles) == 1
    assert cycles[0].splitlines() == [
        "cycle between workbench.core.io, workbench.data, workbench.data.corpus, workbench.models.gpt:",
        "    workbench/core/io.py:3: workbench.core.io -> workbench.models.gpt",
        "    workbench/data/__init__.py:1: workbench.data -> workbench.data.corpus",
        "    workbench/data/corpus.py:3: workbench.data.corpus -> workbench.core.io",
        "    workbench/models/gpt.py:1: workbench.models.gpt -> workbench.core.io",
        "    workbench/models/gpt.py:2: workbench.models.gpt -> workbench.data",
    ]


def test_importing_the_trainer_leaves_plotting_and_notebook_libraries_out():
    """Training runs headless under torchrun: the loop must not drag in matplotlib or ipywidgets."""
    code = (
        "import sys, workbench.training.trainer, workbench.cli.pretrain; "
        "print(sorted(m for m in ('matplotlib', 'ipywidgets', 'IPython') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
