"""Reads the executed graded notebook back into plain data: the Artefacts of docs/contract.md and the cell errors.

Trust: probe answers are read ONLY from the probe cells the grader appended, found by the position and cell id
recorded when the notebook was built (GradedLayout, kept in the grader's process), never by content; a student
cell that displays a forged probe dict is ignored. Figure descriptions are displayed by the kernel-side hook as
outputs of the cell that drew them (so a notebook that dies halfway keeps its earlier figures); they are accepted
only from student cells and only with the run's random token.

Integrity: a probe cell must hold exactly ONE answer, and an answer given as correct must carry the kernel guard's
"integrity" report; otherwise the notebook forged it (e.g. from an IPython callback or from its own function while
the probe ran) and the answer is voided. `integrity_findings` lists, as plain strings for the row's flags, what the
kernel guard reported and every output in the grader's formats that the notebook produced itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from autograder.execution.kernel.guard import GUARD_MIME
from autograder.execution.kernel.recorder import FIGURES_MIME, PROBE_MIME, PROBES

ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
TRACEBACK_LINES = 12
NOT_RUN = "NotRun: the probe cell did not run ({why})"
MAX_REPORTS, MAX_REPORT_CHARS = 20, 500  # integrity reports kept per probe answer


@dataclass
class GradedLayout:
    """Where things are in the graded notebook, recorded by the builder."""
    token: str
    setup_cell: int
    overrides_cell: int
    parameters_cell: int | None  # graded index of the student's parameters cell, None when not found
    student_cells: dict[int, int] = field(default_factory=dict)  # graded index -> index in the student notebook
    probe_cells: dict[int, str] = field(default_factory=dict)  # graded index -> probe name
    cell_ids: dict[int, str] = field(default_factory=dict)  # graded index -> cell id, for the grader's cells

    @property
    def grader_cells(self) -> list[int]:
        return sorted([self.setup_cell, self.overrides_cell, *self.probe_cells])


def strip_ansi(text: str) -> str:
    return ANSI_ESCAPE.sub("", text)


def _outputs(cell) -> list:
    return cell.get("outputs", []) if cell.get("cell_type") == "code" else []


def harvest(executed_notebook, layout: GradedLayout) -> dict:
    """{"figures": [FigureDescription...], "probes": {name: {"ok": True, "value": ...} | {"ok": False,
    "error": ...}}}; every probe of kernel_side.PROBES is present (a probe that did not run is an error)."""
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
    probes = {}
    for index, name in sorted(layout.probe_cells.items()):
        probes[name] = _probe_answer(cells, index, name, layout)
    for name in PROBES:
        probes.setdefault(name, {"ok": False, "error": NOT_RUN.format(why="no probe cell was built for it")})
    return {"figures": figures, "probes": probes}


def _well_formed_figure(figure) -> bool:
    """The FigureDescription shape checks can rely on (anything else is dropped)."""
    if not isinstance(figure, dict) or not isinstance(figure.get("suptitle"), str):
        return False
    axes = figure.get("axes")
    list_keys = ("images", "scatters", "lines", "legend", "position")
    return isinstance(axes, list) and all(
        isinstance(ax, dict) and all(isinstance(ax.get(key), list) for key in list_keys)
        and all(isinstance(ax.get(key), str) for key in ("title", "xlabel", "ylabel")) for ax in axes)


def _payloads(cell, mime: str) -> list:
    """The `mime` payloads a cell displayed (display_data, execute_result or update_display_data)."""
    return [output.get("data", {}).get(mime) for output in _outputs(cell)
            if isinstance(output.get("data"), dict) and mime in output["data"]]


def _guard_installed(cells, layout: GradedLayout) -> bool:
    """The setup cell reported that the kernel guard was installed (before any student code ran)."""
    if layout.setup_cell >= len(cells):
        return False
    return any(isinstance(payload, dict) and payload.get("token") == layout.token and payload.get("installed")
               for payload in _payloads(cells[layout.setup_cell], GUARD_MIME))


def _probe_problem(cells, index: int, name: str, layout: GradedLayout) -> str | None:
    """Why the answer in probe cell `index` cannot be trusted, or None."""
    payloads = _payloads(cells[index], PROBE_MIME)
    if len(payloads) > 1:
        return (f"the grader's cell for probe '{name}' held {len(payloads)} answers: the notebook displayed "
                "forged ones while it ran")
    answer = payloads[0] if payloads else None
    if (isinstance(answer, dict) and answer.get("ok") is True and not isinstance(answer.get("integrity"), list)
            and _guard_installed(cells, layout)):
        return f"the answer to probe '{name}' did not come from the grader's code (it lacks the guard's report)"
    return None


def _probe_answer(cells, index: int, name: str, layout: GradedLayout) -> dict:
    if index >= len(cells) or cells[index].get("id") != layout.cell_ids.get(index):
        return {"ok": False, "error": NOT_RUN.format(why="the probe cell is missing from the executed notebook")}
    failures = [output for output in _outputs(cells[index]) if output.get("output_type") == "error"]
    if failures:  # the probe wrapper catches Exception, so this is a timeout, a dead kernel or a skipped cell
        last = failures[-1]
        if last.get("ename") == "NotRun":
            return {"ok": False, "error": NOT_RUN.format(why=last.get("evalue"))}
        return {"ok": False, "error": f"{last.get('ename')}: {strip_ansi(str(last.get('evalue')))}"}
    problem = _probe_problem(cells, index, name, layout)
    if problem:
        return {"ok": False, "error": f"IntegrityError: {problem}; this answer is not graded"}
    for output in _outputs(cells[index]):
        payload = output.get("data", {}).get(PROBE_MIME) if output.get("output_type") == "display_data" else None
        if isinstance(payload, dict) and payload.get("probe") == name and payload.get("token") == layout.token:
            if payload.get("ok") is True:
                return {"ok": True, "value": payload.get("value")}
            return {"ok": False, "error": str(payload.get("error", "unknown error"))}
    return {"ok": False, "error": NOT_RUN.format(why="the probe cell produced no answer")}


def integrity_findings(executed_notebook, layout: GradedLayout) -> list[str]:
    """Plain-text findings: the kernel guard's reports from the probe answers, forged or duplicated answers in the
    probe cells, and outputs in the grader's formats displayed by the notebook's own cells."""
    cells = executed_notebook.get("cells", []) if executed_notebook else []
    findings = []
    for index, name in sorted(layout.probe_cells.items()):
        if index >= len(cells):
            continue
        for payload in _payloads(cells[index], PROBE_MIME):
            reports = payload.get("integrity") if isinstance(payload, dict) else None
            if isinstance(reports, list):  # a forged payload may carry anything: bounded
                findings += [text[:MAX_REPORT_CHARS] for text in reports[:MAX_REPORTS] if isinstance(text, str)]
        problem = _probe_problem(cells, index, name, layout)
        if problem:
            findings.append(problem + "; that answer was not graded")
    forged_probes, forged_figures = [], []
    for index, student_index in sorted(layout.student_cells.items()):
        if index >= len(cells):
            continue
        if _payloads(cells[index], PROBE_MIME):
            forged_probes.append(f"cell {student_index + 1}")
        if any(not isinstance(payload, dict) or payload.get("token") != layout.token
               for payload in _payloads(cells[index], FIGURES_MIME)):
            forged_figures.append(f"cell {student_index + 1}")
    if forged_probes:
        findings.append(f"the notebook displayed answers in the grader's probe format ({', '.join(forged_probes)}); "
                        "they were ignored")
    if forged_figures:
        findings.append("the notebook displayed figure descriptions in the grader's format without the run's token "
                        f"({', '.join(forged_figures)}); they were ignored")
    return list(dict.fromkeys(findings))


def _first_line(source: str) -> str:
    for line in source.splitlines():
        if line.strip():
            return line.strip()[:80]
    return ""


def cell_errors(executed_notebook, layout: GradedLayout | None = None) -> list[dict]:
    """One dict per code cell with an error output (its last error): {"cell": graded index, "student_cell": index
    in the student's notebook or None for the grader's cells, "grader_cell": bool, "ename", "evalue",
    "traceback": last lines without ANSI codes, "source_head": first line of the cell}."""
    errors = []
    cells = executed_notebook.get("cells", []) if executed_notebook else []
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
            "grader_cell": bool(layout) and student_cell is None,
            "ename": str(last.get("ename", "")),
            "evalue": strip_ansi(str(last.get("evalue", ""))),
            "traceback": traceback[-TRACEBACK_LINES:],
            "source_head": _first_line(cell.get("source", "")),
        })
    return errors
