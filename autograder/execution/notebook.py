"""The notebooks of one submission: reading what was submitted (`load_submission`) and building the graded notebook
(`build_graded_notebook`): a setup cell that installs the kernel-side recorder and guard (autograder/execution/kernel/),
the student's cells with the overrides cell right after the parameters cell (at the top when a student deleted it),
then one probe cell per probe with inputs drawn by the grader."""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import nbformat

from autograder.execution.harvest import GradedLayout
from autograder.execution.kernel import guard as kernel_guard, recorder as kernel_side
from autograder.execution.kernel.recorder import PROBE_MIME, PROBES
from autograder.execution.probe_inputs import inputs_for_probe

PARAMETER_NAMES = ("SEED", "DATA_DIR", "DEVICE", "N_TRAIN", "N_TEST", "BATCH_SIZE", "AE_RUNS", "AE_EPOCHS",
                   "SWEEP_DIMS", "SWEEP_EPOCHS", "SWEEP_TRAIN", "VAE_EPOCHS", "GAUSSIAN_VAE_EPOCHS", "SCATTER_SIZE")

# ---------------------------------------------------------------- reading the submission

def load_submission(path: Path) -> tuple[nbformat.NotebookNode | None, str | None, list[str]]:
    """(notebook as v4, None, notes) or (None, why it is not a runnable notebook, notes)."""
    notes: list[str] = []
    try:
        raw = Path(path).read_bytes()
    except OSError as error:
        return None, f"The submission could not be read ({error.strerror}).", notes
    if not raw.strip():
        return None, "The submitted file is empty: save the notebook in Jupyter (File > Save) and submit it again.", notes
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None, ("The submitted file is binary, not a notebook (.ipynb is JSON text); submit the .ipynb file "
                      "saved by Jupyter, not a PDF, zip or other file."), notes
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        if not text.lstrip().startswith("{"):
            looks_like_python = re.search(r"^\s*(import |from \S+ import |def |class |print\()", text, re.M)
            what = "a Python script saved with the .ipynb extension" if looks_like_python else "not a notebook"
            return None, (f"The submitted file is {what} (a notebook is JSON). In Jupyter use File > Download as "
                          "> Notebook (.ipynb) and submit that file."), notes
        return None, (f"The notebook file is truncated or corrupted (invalid JSON at line {error.lineno}, column "
                      f"{error.colno}: {error.msg}). Re-save it in Jupyter and check it opens before submitting."), notes
    if not isinstance(data, dict) or not ("cells" in data or "worksheets" in data):
        return None, "The submitted file is JSON but not a Jupyter notebook (no cells).", notes
    try:
        notebook = nbformat.reads(text, as_version=4)
    except Exception as error:  # nbformat raises many kinds for malformed notebooks
        return None, f"nbformat could not read the notebook ({type(error).__name__}: {error}); re-save it in Jupyter.", notes
    if data.get("nbformat", 4) < 4:
        notes.append(f"The notebook was in the old nbformat {data.get('nbformat')} and was converted to nbformat 4.")
    try:
        nbformat.validate(notebook)
    except nbformat.ValidationError as error:
        notes.append(f"The notebook does not fully validate ({str(error).splitlines()[0][:200]}); graded from its "
                     "cells' source anyway.")
    code_cells = [cell for cell in notebook.get("cells", []) if cell.get("cell_type") == "code"]
    if not code_cells:
        return None, "The notebook has no code cells, so there is nothing to run.", notes
    return notebook, None, notes


# ---------------------------------------------------------------- building the graded notebook

def _assigned_names(source: str) -> set[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:  # magics etc.: fall back to line matching
        return set(re.findall(r"^([A-Za-z_][A-Za-z0-9_]*)\s*(?::[^=]*)?=(?!=)", source, re.M))
    names = set()
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, ast.AnnAssign) else []
        names.update(target.id for target in targets if isinstance(target, ast.Name))
    return names


def find_parameters_cell(cells) -> int | None:
    """Index of the parameters cell: tagged `parameters`, else (tags get lost when students copy cells) the first
    code cell assigning SEED and DATA_DIR, or at least three of the known parameters."""
    for index, cell in enumerate(cells):
        if cell.get("cell_type") == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            return index
    for index, cell in enumerate(cells):
        if cell.get("cell_type") != "code":
            continue
        names = _assigned_names(cell.get("source", ""))
        if {"SEED", "DATA_DIR"} <= names or len(names & set(PARAMETER_NAMES)) >= 3:
            return index
    return None


def overrides_source(overrides: dict) -> str:
    lines = ["# Added by the grader: parameters for grading (they replace the values above)."]
    for name, value in overrides.items():
        if not name.isidentifier():
            raise ValueError(f"override name {name!r} is not a Python identifier")
        json.dumps(value, allow_nan=False)  # plain values only, so repr() is valid Python
        lines.append(f"{name} = {value!r}")
    return "\n".join(lines) + "\n"


def setup_source(seed: int, token: str) -> str:
    """The first graded cell: installs kernel_side (figures, seeds) and then kernel_guard (integrity snapshots),
    both as private modules, before any student code runs."""
    kernel_side_source = Path(kernel_side.__file__).read_text()
    guard_source = Path(kernel_guard.__file__).read_text()
    return (
        "# Added by the grader: records figures, seeds the random generators, selects the inline backend.\n"
        "def _labgrader_install():\n"
        "    import sys, types\n"
        "    module = types.ModuleType('labgrader_kernel_side')\n"
        f"    exec(compile({kernel_side_source!r}, 'labgrader_kernel_side.py', 'exec'), module.__dict__)\n"
        "    sys.modules['labgrader_kernel_side'] = module\n"
        f"    module.install(seed={int(seed)}, token={token!r})\n"
        "    guard = types.ModuleType('labgrader_kernel_guard')\n"
        f"    exec(compile({guard_source!r}, 'labgrader_kernel_guard.py', 'exec'), guard.__dict__)\n"
        "    sys.modules['labgrader_kernel_guard'] = guard\n"
        "    guard.install(module)\n"
        "_labgrader_install()\n"
        "del _labgrader_install\n"
    )


def probe_source(name: str, inputs, token: str) -> str:
    fallback = {"probe": name, "token": token, "ok": False}
    return (
        f"# Added by the grader: probe {name!r} (calls your code on inputs drawn by the grader).\n"
        "try:\n"
        f"    __import__('sys').modules['labgrader_kernel_guard'].run_probe({name!r}, {json.dumps(inputs)!r})\n"
        "except Exception as _labgrader_error:\n"
        f"    __import__('IPython').display.display({{{PROBE_MIME!r}: {{**{fallback!r}, 'error': "
        "f'{type(_labgrader_error).__name__}: {_labgrader_error}'[:500]}}, raw=True)\n"
    )


def _grader_cell(source: str) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["labgrader"] = True
    return cell


def build_graded_notebook(student: nbformat.NotebookNode, *, overrides: dict, probe_inputs: dict,
                          token: str) -> tuple[nbformat.NotebookNode, GradedLayout]:
    graded = nbformat.v4.new_notebook()
    graded.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    seed = overrides.get("SEED", 0)
    graded.cells.append(_grader_cell(setup_source(seed if isinstance(seed, int) else 0, token)))
    layout = GradedLayout(token=token, setup_cell=0, overrides_cell=-1, parameters_cell=None)
    parameters_index = find_parameters_cell(student.cells)
    overrides_cell = _grader_cell(overrides_source(overrides))
    if parameters_index is None:
        graded.cells.append(overrides_cell)
        layout.overrides_cell = 1
    for student_index, cell in enumerate(student.cells):
        kind = cell.get("cell_type")
        source = cell.get("source", "")
        if kind == "code":
            copy = nbformat.v4.new_code_cell(source)
        elif kind == "markdown":
            copy = nbformat.v4.new_markdown_cell(source)
        else:
            copy = nbformat.v4.new_raw_cell(source)
        tags = cell.get("metadata", {}).get("tags")
        if isinstance(tags, list):
            copy.metadata["tags"] = [str(tag) for tag in tags]
        graded.cells.append(copy)
        if kind == "code":
            layout.student_cells[len(graded.cells) - 1] = student_index
        if student_index == parameters_index:
            layout.parameters_cell = len(graded.cells) - 1
            graded.cells.append(overrides_cell)
            layout.overrides_cell = len(graded.cells) - 1
    for name in PROBES:
        graded.cells.append(_grader_cell(probe_source(name, inputs_for_probe(probe_inputs, name), token)))
        layout.probe_cells[len(graded.cells) - 1] = name
    layout.cell_ids = {index: graded.cells[index].id for index in layout.grader_cells}
    return graded, layout
