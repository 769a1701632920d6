"""Grader-side integrity checks, run in the grader's process (never in the sandbox) on plain data.

- `scan_notebook`: the notebook's code (comments dropped, strings kept) is searched for references to the grader's
  in-kernel modules and IPython input/AST transformers (these can rewrite the grader's cells: both VOID the
  automatic results), the grader's output format or the run's token, names of the grader's files, interpreter
  hooks and dynamic code, and (by its syntax tree) assignments to attributes of torch/numpy/json/otter/IPython/
  builtins (monkeypatching); all flagged.
- `scan_workdir`: after the run, files in the submission's folder named like the grader's outputs.
The kernel-side findings (kernel_guard.py) and forged outputs (harvest.integrity_findings) join these. Every
finding becomes a row flag `integrity: <what was seen>`, plus the flag INTEGRITY_FLAG, for the instructor; the
grader never reads anything the submission wrote, so these attempts earn nothing.
"""

from __future__ import annotations

import ast
import io
import os
import re
import tokenize
from dataclasses import dataclass
from pathlib import Path

from autograder.results import (EXECUTED_NOTEBOOK, FEEDBACK_HTML, GRADEBOOK_CSV, RESULTS_JSON, ROW_FILE,
                                SECRET_FILE)

INTEGRITY_FLAG = "integrity_attempt"  # on every row with at least one finding (a rubric may penalise it)
FLAG_PREFIX = "integrity: "
MAX_LISTED = 8
MAX_WORKDIR_ENTRIES = 20_000

# substring of the code -> what it reaches; these void the automatic results: the grader's code in the kernel, and
# the machinery it runs through there (IPython's event callbacks and display path, matplotlib's figure registry
# that its recorder walks, cell transformers), or code made to pass for a library's (a faked code origin)
VOIDING_REFERENCES = {
    "labgrader_kernel": "the grader's in-kernel code",
    "kernel_side": "the grader's in-kernel code",
    "kernel_watch": "the grader's in-kernel code",
    "kernel_export": "the grader's in-kernel code",
    "ast_transformers": "IPython AST transformers (they can rewrite the grader's cells)",
    "input_transformer": "IPython input transformers (they can rewrite the grader's cells)",
    "events.register": "IPython's event callbacks (they run after every cell, the grader's included)",
    "events.callbacks": "IPython's event callbacks (they run after every cell, the grader's included)",
    "display_pub": "IPython's display publisher (every output passes through it)",
    "displayhook": "IPython's display hook (every output passes through it)",
    "display_formatter": "IPython's display formatters (every output passes through them)",
    "_pylab_helpers": "matplotlib's figure registry (the grader's figure recorder walks it)",
    "Gcf": "matplotlib's figure registry (the grader's figure recorder walks it)",
    "print_figure": "matplotlib's print_figure (the grader's figure recorder hooks it)",
    "co_filename": "code objects' file names (code made to pass for a library's)",
    "__wrapped__": "functools.wraps' __wrapped__ (a function made to pass for another)",
}
# flagged only: outputs in these formats or with this token are accepted only from the grader's own cells
GRADER_FORMATS = {"vnd.labgrader": "the grader's output format", "LABGRADER_RUN": "the run's token"}
GRADER_FILES = ("rubric.yaml", "checks.py", "solution/lab.ipynb", SECRET_FILE.lstrip("."), GRADEBOOK_CSV, ROW_FILE,
                "autograder/")
# label -> pattern in the code's text (tokens joined without spaces); reading sys.modules (`'google.colab' in
# sys.modules`) is common and not flagged, changing or scanning it is
INTERPRETER_HOOKS = {name: re.compile(pattern) for name, pattern in {
    "sys.modules changed": r"sys\.modules\[[^\]]*\]=(?!=)|delsys\.modules\[|sys\.modules\.(pop|update|setdefault|clear|popitem)\(",
    "sys.modules scanned": r"sys\.modules\.(values|items)\(", "meta_path": r"meta_path",
    "settrace": r"settrace\(", "setprofile": r"setprofile\(", "gc.get_referrers": r"get_referrers\(",
    "gc.get_objects": r"get_objects\(", "ctypes.pythonapi": r"pythonapi", "__builtins__": r"__builtins__",
    "sys._getframe": r"_getframe\(", "f_locals": r"f_locals",
    "attribute name assembled from pieces": r"(getattr|setattr|delattr)\([^,()]+,(f['\"]|[^,()]*(['\"]\+|\+['\"]|\.join\())",
    "code objects rebuilt": r"__code__|\.replace\(co_",
}.items()}
DYNAMIC_CODE = ("exec", "eval", "compile", "__import__")
PATCHED_LIBRARIES = ("torch", "numpy", "json", "otter", "IPython", "ipykernel", "builtins", "math", "sklearn",
                     "jupyter_client", "zmq", "matplotlib")
ALLOWED_ASSIGNMENTS = ("torch.backends.",)  # documented switches (cudnn.deterministic, ...), not functions
GRADER_OUTPUT_NAMES = (ROW_FILE, RESULTS_JSON, GRADEBOOK_CSV, FEEDBACK_HTML, EXECUTED_NOTEBOOK, SECRET_FILE)


@dataclass(frozen=True)
class Finding:
    text: str
    voids: bool = False  # the automatic results (probes and figures) are discarded

    @property
    def flag(self) -> str:
        return FLAG_PREFIX + self.text


def _listing(items) -> str:
    items = list(dict.fromkeys(items))
    more = f" and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else ""
    return ", ".join(items[:MAX_LISTED]) + more


def _python(source: str) -> str:
    """The cell as Python (IPython magics and shell escapes turned into calls); the source itself if that fails."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager
        return TransformerManager().transform_cell(source)
    except Exception:
        return source


def code_text(source: str) -> str:
    """The code's tokens without comments, joined without spaces (so `sys . modules` reads `sys.modules`);
    strings are kept. Falls back to the lines that are not comments when the code does not tokenize."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return "\n".join(line for line in source.splitlines() if not line.lstrip().startswith("#"))
    skipped = (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT)
    return "".join(token.string for token in tokens if token.type not in skipped)


def _library_aliases(tree: ast.AST) -> dict[str, str]:
    """Local name -> dotted name, for imports of the patched libraries (`import numpy as np`, `from torch import
    Tensor`, `import torch.nn.functional as F`)."""
    aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in PATCHED_LIBRARIES:
                    local = alias.asname or alias.name.split(".")[0]
                    aliases[local] = alias.name if alias.asname else alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] in PATCHED_LIBRARIES:
                for alias in node.names:
                    if alias.name != "*":
                        aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return aliases


def _dotted(node: ast.AST, aliases: dict[str, str]) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Call):  # get_ipython().display_pub.publish = ...
        node = node.func
        if isinstance(node, ast.Name) and node.id == "get_ipython":
            return ".".join(["get_ipython()", *reversed(parts)])
        return None
    if not isinstance(node, ast.Name) or node.id not in aliases:
        return None
    return ".".join([aliases[node.id], *reversed(parts)])


def _patched_names(tree: ast.AST, aliases: dict[str, str]) -> list[str]:
    """Library attributes the code assigns, deletes or setattr()s."""
    found = []
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, (ast.Assign, ast.Delete)):
            targets = node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in ("setattr", "delattr") and node.args):
            owner = _dotted(node.args[0], aliases)
            if owner is not None:
                name = node.args[1].value if len(node.args) > 1 and isinstance(node.args[1], ast.Constant) else "?"
                found.append(f"{owner}.{name}")
            continue
        for target in targets:
            for element in (target.elts if isinstance(target, (ast.Tuple, ast.List)) else [target]):
                if isinstance(element, ast.Attribute):
                    dotted = _dotted(element, aliases)
                    if dotted is not None and not dotted.startswith(ALLOWED_ASSIGNMENTS):
                        found.append(dotted)
    return found


def _dynamic_calls(tree: ast.AST) -> list[str]:
    return [node.func.id for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in DYNAMIC_CODE]


def scan_notebook(notebook) -> list[Finding]:
    """Findings in the student's code cells (an nbformat v4 notebook, as read by execute.load_submission)."""
    cells = []  # (where, python source, syntax tree or None)
    for number, cell in enumerate(notebook.get("cells", []), start=1):
        if cell.get("cell_type") == "code":
            source = _python(str(cell.get("source", "")))
            try:
                tree = ast.parse(source)
            except SyntaxError:
                tree = None
            cells.append((f"cell {number}", source, tree))
    aliases = {name: name for name in PATCHED_LIBRARIES}  # imports hold for the cells after them
    for _, _, tree in cells:
        if tree is not None:
            aliases.update(_library_aliases(tree))
    references: dict[str, list[str]] = {}
    hidden, formats, hooks, patched, dynamic = [], [], [], [], []
    for where, source, tree in cells:
        text = code_text(source)
        for needle, what in VOIDING_REFERENCES.items():
            if needle.lower() in text.lower():
                references.setdefault(what, []).append(where)
        hidden += [f"{name} ({where})" for name in GRADER_FILES if name in text]
        formats += [f"{what} ({where})" for needle, what in GRADER_FORMATS.items() if needle in text]
        hooks += [f"{name} ({where})" for name, pattern in INTERPRETER_HOOKS.items() if pattern.search(text)]
        if tree is not None:
            patched += [f"{name} ({where})" for name in _patched_names(tree, aliases)]
            dynamic += [f"{name}() ({where})" for name in _dynamic_calls(tree)]
    findings = [Finding(f"the notebook's code refers to {what} ({_listing(places)}); its automatic results were "
                        "discarded", voids=True) for what, places in references.items()]
    if formats:
        findings.append(Finding(f"the notebook's code uses {_listing(formats)} (answers are accepted only from the "
                                "grader's own cells)"))
    if hidden:
        findings.append(Finding(f"the notebook's code names the grader's files: {_listing(hidden)} (none of them is "
                                "visible or writable in the sandbox)"))
    if patched:
        findings.append(Finding(f"the notebook assigns library attributes: {_listing(patched)} (the grader's checks "
                                "run with the originals)"))
    if hooks:
        findings.append(Finding(f"the notebook uses interpreter hooks: {_listing(hooks)}"))
    if dynamic:
        findings.append(Finding(f"the notebook runs dynamically built code: {_listing(dynamic)}"))
    return findings


def scan_workdir(workdir: Path) -> list[Finding]:
    """Files named like the grader's outputs that the submission left in its folder (the grader ignores them)."""
    found, seen = [], 0
    for directory, subdirectories, files in os.walk(workdir):
        seen += len(subdirectories) + len(files)
        found += [os.path.relpath(os.path.join(directory, name), workdir) for name in files
                  if name.lower() in GRADER_OUTPUT_NAMES]
        if seen > MAX_WORKDIR_ENTRIES:
            break
    if not found:
        return []
    return [Finding(f"the notebook wrote files named like the grader's outputs in its folder: {_listing(found)} "
                    "(ignored: grades come only from the grader's own checks)")]


def flags(findings: list[Finding], kernel_texts: list[str] = ()) -> list[str]:
    """Row flags: one per finding (source, workdir, kernel and harvest texts), plus INTEGRITY_FLAG if any."""
    texts = list(dict.fromkeys([finding.flag for finding in findings] + [FLAG_PREFIX + text for text in kernel_texts]))
    return [INTEGRITY_FLAG, *texts] if texts else []
