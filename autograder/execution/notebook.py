"""The notebooks of one submission: reading what was submitted (`load_submission`) and building the graded notebook
(`build_graded_notebook`): a setup cell that installs the kernel-side recorder, watch and exporter
(autograder/execution/kernel/), the student's cells with the overrides cell right after the parameters cell (at the
top when a student deleted it), then the export cell, which writes the trained models and reported values to
EXPORT_FOLDER in the submission's folder for the probes (autograder/probing/). No probe runs in the kernel and no
probe input is ever in the graded notebook."""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import nbformat

from autograder.execution.harvest import GradedLayout
from autograder.execution.kernel import export as kernel_export, recorder as kernel_side, watch as kernel_watch

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


KERNEL_MODULES = (("labgrader_kernel_side", kernel_side), ("labgrader_kernel_watch", kernel_watch),
                  ("labgrader_kernel_export", kernel_export))


def setup_source(seed: int, token: str) -> str:
    """The first graded cell: installs the recorder (figures, seeds), then the watch (references to the grader's
    machinery, taken before any student code runs) and the exporter, as private modules."""
    lines = ["# Added by the grader: records figures, seeds the random generators, selects the inline backend.",
             "def _labgrader_install():", "    import sys, types", "    modules = {}"]
    for name, module in KERNEL_MODULES:
        source = Path(module.__file__).read_text()
        lines += [f"    module = types.ModuleType({name!r})",
                  f"    exec(compile({source!r}, {name + '.py'!r}, 'exec'), module.__dict__)",
                  f"    sys.modules[{name!r}] = modules[{name!r}] = module"]
    lines += [f"    modules['labgrader_kernel_side'].install(seed={int(seed)}, token={token!r})",
              "    modules['labgrader_kernel_watch'].install(modules['labgrader_kernel_side'])",
              "_labgrader_install()", "del _labgrader_install"]
    return "\n".join(lines) + "\n"


def export_source(folder: str) -> str:
    """The last graded cell: the exporter writes what the notebook ended with (and the watch's findings)."""
    return ("# Added by the grader: saves your trained models and training histories for the grader's checks.\n"
            "__import__('sys').modules['labgrader_kernel_export'].export(\n"
            f"    {folder!r}, __import__('IPython').get_ipython().user_ns,\n"
            "    __import__('sys').modules['labgrader_kernel_watch'].report)\n")


GRADER_CELL_KEY = "labgrader"     # metadata key marking the grader's own cells in the graded notebook


def _grader_cell(source: str) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata[GRADER_CELL_KEY] = True
    return cell


def build_graded_notebook(student: nbformat.NotebookNode, *, overrides: dict, token: str,
                          export_folder: str) -> tuple[nbformat.NotebookNode, GradedLayout]:
    """`export_folder`: where the export cell writes, as the kernel sees it (inside the sandbox)."""
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
    graded.cells.append(_grader_cell(export_source(export_folder)))
    layout.export_cell = len(graded.cells) - 1
    layout.cell_ids = {index: graded.cells[index].id for index in layout.grader_cells}
    return graded, layout
