"""Reads the executed graded notebook back into plain data: the figures of docs/contract.md and the cell errors.

Trust: figure descriptions are displayed by the kernel-side recorder as outputs of the cell that drew them (so a
notebook that dies halfway keeps its earlier figures); they are accepted only from student cells and only with the
run's random token. Nothing read here is trusted as a result: the checks judge a figure only by comparing what it
shows with what the grader computes from the student's models (autograder/probing/). The student's functions are
never called in the kernel, so no answer of the grader's is read from the notebook.

Integrity: `integrity_findings` lists, as plain strings for the row's flags, every output in the grader's formats
(the family GRADER_MIME_PREFIX) that the notebook produced itself: in its own cells without the run's token, in any
format of the family but the figures', or in the grader's own cells, which display nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from autograder.execution.kernel.recorder import FIGURES_MIME, GRADER_MIME_PREFIX

ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
TRACEBACK_LINES = 12


@dataclass
class GradedLayout:
    """Where things are in the graded notebook, recorded by the builder."""
    token: str
    setup_cell: int
    overrides_cell: int
    parameters_cell: int | None  # graded index of the student's parameters cell, None when not found
    student_cells: dict[int, int] = field(default_factory=dict)  # graded index -> index in the student notebook
    export_cell: int = -1        # graded index of the export cell (the last one)
    cell_ids: dict[int, str] = field(default_factory=dict)  # graded index -> cell id, for the grader's cells

    @property
    def grader_cells(self) -> list[int]:
        return sorted(index for index in (self.setup_cell, self.overrides_cell, self.export_cell) if index >= 0)

    @property
    def final_cells(self) -> list[int]:
        """Cells that run even after the notebook's time is up (they have their own reserved time)."""
        return [self.export_cell] if self.export_cell >= 0 else []


def strip_ansi(text: str) -> str:
    return ANSI_ESCAPE.sub("", text)


def _outputs(cell) -> list:
    return cell.get("outputs", []) if cell.get("cell_type") == "code" else []


def harvest(executed_notebook, layout: GradedLayout) -> dict:
    """{"figures": [FigureDescription...]} from the student's cells (the recorder's payloads with the run's token)."""
    cells = executed_notebook.get("cells", []) if executed_notebook else []
    figures = []
    for index in sorted(layout.student_cells):
        if index >= len(cells):
            continue
        for output in _outputs(cells[index]):
            payload = output.get("data", {}).get(FIGURES_MIME) if output.get("output_type") == "display_data" else None
            if not isinstance(payload, dict) or payload.get("token") != layout.token:
                continue
            for figure in payload.get("figures", []):
                if _well_formed_figure(figure):
                    figures.append({**figure, "cell": index, "student_cell": layout.student_cells[index]})
    return {"figures": figures}


def _well_formed_figure(figure) -> bool:
    """The FigureDescription shape checks can rely on (anything else is dropped)."""
    if not isinstance(figure, dict) or not isinstance(figure.get("suptitle"), str):
        return False
    axes = figure.get("axes")
    list_keys = ("images", "scatters", "lines", "legend", "position")
    return isinstance(axes, list) and all(
        isinstance(ax, dict) and all(isinstance(ax.get(key), list) for key in list_keys)
        and all(isinstance(ax.get(key), str) for key in ("title", "xlabel", "ylabel")) for ax in axes)


def _grader_formats(cell) -> list[tuple[str, object]]:
    """(MIME type, payload) of every output of a cell in the grader's family of formats."""
    found = []
    for output in _outputs(cell):
        data = output.get("data") if isinstance(output.get("data"), dict) else {}
        found += [(mime, payload) for mime, payload in data.items() if str(mime).startswith(GRADER_MIME_PREFIX)]
    return found


def integrity_findings(executed_notebook, layout: GradedLayout) -> list[str]:
    """Plain-text findings: outputs in the grader's formats that the notebook produced itself."""
    cells = executed_notebook.get("cells", []) if executed_notebook else []
    forged, in_grader_cells = [], []
    for index, student_index in sorted(layout.student_cells.items()):
        if index < len(cells) and any(mime != FIGURES_MIME or not isinstance(payload, dict)
                                      or payload.get("token") != layout.token
                                      for mime, payload in _grader_formats(cells[index])):
            forged.append(f"cell {student_index + 1}")
    for index in layout.grader_cells:
        if index < len(cells) and _grader_formats(cells[index]):
            in_grader_cells.append(index)
    findings = []
    if forged:
        findings.append(f"the notebook displayed outputs in the grader's formats ({', '.join(forged)}); they were "
                        "ignored")
    if in_grader_cells:
        findings.append("outputs in the grader's formats appeared in the grader's own cells (displayed by the "
                        "notebook's code while they ran); they were ignored")
    return findings


def _first_line(source: str) -> str:
    for line in source.splitlines():
        if line.strip():
            return line.strip()[:80]
    return ""


IPYTHON_CELL = re.compile(r"\bIn ?\[(\d+)\]")   # how IPython names a cell in a traceback: "Cell In[15], line 3"


def cell_errors(executed_notebook, layout: GradedLayout | None = None) -> list[dict]:
    """One dict per code cell with an error output (its last error): {"cell": graded index, "student_cell": index
    in the student's notebook or None for the grader's cells, "number": the cell's number in the student's notebook
    (1-based, as every message says it), "grader_cell": bool, "ename", "evalue", "traceback": last lines without
    ANSI codes and with IPython's In[k] names turned into the student's cell numbers, "source_head": first line of
    the cell}."""
    errors = []
    cells = executed_notebook.get("cells", []) if executed_notebook else []
    numbers = {}     # kernel execution count -> the student's cell number
    for index, cell in enumerate(cells):
        count = cell.get("execution_count") if cell.get("cell_type") == "code" else None
        if isinstance(count, int) and layout and index in layout.student_cells:
            numbers[count] = layout.student_cells[index] + 1

    def renamed(line: str) -> str:
        return IPYTHON_CELL.sub(lambda m: f"cell {numbers[int(m.group(1))]}" if int(m.group(1)) in numbers
                                else m.group(0), line)

    for index, cell in enumerate(cells):
        failures = [output for output in _outputs(cell) if output.get("output_type") == "error"]
        if not failures:
            continue
        last = failures[-1]
        traceback = strip_ansi("\n".join(last.get("traceback", []))).splitlines()
        student_cell = layout.student_cells.get(index) if layout else None
        errors.append({
            "cell": index,
            "student_cell": student_cell,
            "number": student_cell + 1 if student_cell is not None else None,
            "grader_cell": bool(layout) and student_cell is None,
            "ename": str(last.get("ename", "")),
            "evalue": strip_ansi(str(last.get("evalue", ""))),
            "traceback": [renamed(line) for line in traceback[-TRACEBACK_LINES:]],
            "source_head": _first_line(cell.get("source", "")),
        })
    return errors
