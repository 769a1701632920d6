"""Which statements of a notebook the probe server executes: its definitions, not its work.

Kept, in notebook order: imports; function and class definitions; assignments that only compute cheap values
(literals, names, arithmetic, library calls, and calls of the notebook's own functions that neither loop nor load
data nor train); `if`/`try` blocks made only of such statements; and the grader's parameter overrides right after
the parameters cell. Dropped: everything else (training, plotting, printing, data loading, loops). A kept statement
that fails in the server (it needs a dropped one) is skipped there, so a wrong guess costs nothing but that name.
Runs in the grader's process, on the notebook's source only.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass

# A notebook function is "work" when it (or a notebook function it calls) loops, loads data or trains.
WORK_CALL_NAMES = ("backward", "fit", "fit_transform", "DataLoader", "MNIST", "FashionMNIST", "download",
                   "train", "load", "read_csv", "savefig", "show", "input", "sleep", "system", "Popen", "run")
WORK_NODES = (ast.For, ast.AsyncFor, ast.While, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


@dataclass(frozen=True)
class Statement:
    cell: int          # 1-based cell number in the student's notebook (0: the grader's overrides)
    line: int
    source: str

    def to_wire(self) -> dict:
        return {"cell": self.cell, "line": self.line, "source": self.source}


def python_source(cell_source: str) -> str:
    """The cell as plain Python: IPython magics and shell escapes become calls (dropped later as expressions)."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager
        return TransformerManager().transform_cell(cell_source)
    except Exception:  # noqa: BLE001 - a cell IPython cannot read is taken as it is
        return cell_source


def _called_names(node: ast.AST) -> list[str]:
    names = []
    for call in ast.walk(node):
        if isinstance(call, ast.Call):
            func = call.func
            if isinstance(func, ast.Name):
                names.append(func.id)
            elif isinstance(func, ast.Attribute):
                names.append(func.attr)
    return names


class _Notebook:
    """The notebook's top-level functions and classes, and which of them are work."""

    def __init__(self, trees: list[ast.Module]):
        self.functions: dict[str, ast.AST] = {}
        self.classes: set[str] = set()
        for tree in trees:
            for node in tree.body:
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    self.functions[node.name] = node
                elif isinstance(node, ast.ClassDef):
                    self.classes.add(node.name)
        self._work: dict[str, bool] = {}

    def is_work(self, name: str, seen: frozenset = frozenset()) -> bool:
        if name in self._work:
            return self._work[name]
        node = self.functions.get(name)
        if node is None or name in seen:
            return False
        work = any(isinstance(n, WORK_NODES) for n in ast.walk(node)) or any(
            called in WORK_CALL_NAMES or any(called.startswith(p) for p in ("train", "load_", "fit_"))
            or self.is_work(called, seen | {name}) for called in _called_names(node))
        self._work[name] = work
        return work

    def cheap_value(self, value: ast.AST | None) -> bool:
        if value is None:
            return True
        if any(isinstance(n, WORK_NODES + (ast.Await, ast.Yield, ast.YieldFrom, ast.NamedExpr)) for n in ast.walk(value)):
            return False
        for called in _called_names(value):
            if called in WORK_CALL_NAMES or called.startswith(("train", "load_", "fit_")):
                return False
            if called in self.functions and self.is_work(called):
                return False
            if called in self.classes:      # building a model is cheap, but not needed: the grader rebuilds them
                return False
        return True


def _keep(node: ast.stmt, notebook: _Notebook) -> bool:
    if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return True
    if isinstance(node, ast.Assign):
        return all(isinstance(t, (ast.Name, ast.Tuple, ast.List)) for t in node.targets) and \
            notebook.cheap_value(node.value)
    if isinstance(node, (ast.AnnAssign, ast.AugAssign)):
        return isinstance(node.target, ast.Name) and notebook.cheap_value(node.value)
    if isinstance(node, ast.If):
        return notebook.cheap_value(node.test) and all(_keep(n, notebook) for n in node.body + node.orelse)
    if isinstance(node, ast.Try):
        return all(_keep(n, notebook) for n in node.body + node.orelse + node.finalbody) and all(
            all(_keep(n, notebook) or isinstance(n, ast.Pass) for n in handler.body) for handler in node.handlers)
    return isinstance(node, ast.Pass)


def extract(cells: list[tuple[int, str]]) -> list[Statement]:
    """Statements to run from (cell number, cell source) pairs in notebook order (code cells only; the grader's
    overrides cell included as cell 0 where it runs)."""
    parsed = []
    for number, source in cells:
        text = python_source(source)
        try:
            parsed.append((number, text, ast.parse(text)))
        except SyntaxError:
            continue
    notebook = _Notebook([tree for _, _, tree in parsed])
    statements = []
    for number, text, tree in parsed:
        for node in tree.body:
            if _keep(node, notebook):
                source = ast.get_source_segment(text, node, padded=True) or ast.unparse(node)
                statements.append(Statement(number, node.lineno, _dedented(source)))
    return statements


def _dedented(source: str) -> str:
    lines = source.splitlines()
    return "\n".join(lines) + "\n"


def constructor_source(cells: list[tuple[int, str]], name: str, classes: set[str] | None = None) -> str | None:
    """The last `name = Class(...)` (optionally followed by `.to(...)`, `.double()`, ...) in the notebook, as the
    source of the `Class(...)` call, so the server can build the same architecture; None when there is none."""
    found = None
    for _, source in cells:
        try:
            tree = ast.parse(python_source(source))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
                call = node.value
                while isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and \
                        isinstance(call.func.value, ast.Call):
                    call = call.func.value      # VAE(784, 2).to(device) -> VAE(784, 2)
                if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and \
                        (classes is None or call.func.id in classes):
                    found = ast.unparse(call)
    return found
