"""Harvesting the figure descriptions (in-process, no kernel), the graded notebook's layout (no probe in it: the
probes run out of the kernel, tests/probing/), and what the harvest flags."""

from __future__ import annotations

import nbformat
import numpy as np
from nbformat import v4

from autograder.execution.harvest import GradedLayout, cell_errors, harvest, integrity_findings
from autograder.execution.kernel import recorder as kernel_side
from autograder.execution.kernel.recorder import FIGURES_MIME
from autograder.execution.notebook import build_graded_notebook, find_parameters_cell, load_submission

EXPORT = "/submission/.labgrader-export"


def test_figure_description_reads_matplotlib_objects():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    figure, (left, right) = plt.subplots(1, 2)
    left.scatter([0, 1, 2, 3], [0, 1, 0, 1], c=[0, 1, 1, 5])
    right.imshow(np.arange(6.0).reshape(2, 3))
    right.plot(range(1200), label="curve")
    right.legend()
    figure.suptitle("both")
    description = kernel_side.describe_figure(figure)
    plt.close(figure)
    assert description["suptitle"] == "both"
    [scatter] = description["axes"][0]["scatters"]
    assert (scatter["n_points"], scatter["n_colors"], scatter["n_values"]) == (4, 3, 3)
    assert scatter["group_keys"] == [[0.0], [1.0], [5.0]] and scatter["points"]["shape"] == [4, 2]
    assert description["axes"][1]["images"] == [{"shape": [2, 3], "min": 0.0, "max": 5.0}]
    [line] = description["axes"][1]["lines"]
    assert len(line["x"]) == kernel_side.MAX_LINE_POINTS and line["n_points"] == 1200
    assert description["axes"][1]["legend"] == ["curve"]


def _student(*cells):
    notebook = v4.new_notebook()
    notebook.cells = list(cells)
    return notebook


def test_parameters_cell_found_by_tag_then_by_content_else_none():
    tagged = v4.new_code_cell("x = 1")
    tagged.metadata["tags"] = ["parameters"]
    content = v4.new_code_cell('SEED = 0\nDATA_DIR = "data_cache"')
    assert find_parameters_cell([v4.new_code_cell("import os"), content, tagged]) == 2
    assert find_parameters_cell([v4.new_markdown_cell("SEED = 0"), v4.new_code_cell("%matplotlib inline"),
                                 content]) == 2
    assert find_parameters_cell([v4.new_code_cell("N_TRAIN = 5\nN_TEST = 3\nBATCH_SIZE = 2")]) == 0
    assert find_parameters_cell([v4.new_code_cell("SEED = 0"), v4.new_code_cell("print(1)")]) is None


def test_graded_notebook_layout():
    student = _student(v4.new_markdown_cell("# Lab"), v4.new_code_cell('SEED = 1\nDATA_DIR = "x"'),
                       v4.new_code_cell("print(SEED)"))
    graded, layout = build_graded_notebook(student, overrides={"SEED": 5, "DATA_DIR": "/data"}, token="t0k",
                                           export_folder=EXPORT)
    assert layout.setup_cell == 0 and "labgrader_kernel_side" in graded.cells[0].source
    assert "labgrader_kernel_watch" in graded.cells[0].source
    assert layout.parameters_cell == 2 and layout.overrides_cell == 3
    assert "SEED = 5" in graded.cells[3].source and "DATA_DIR = '/data'" in graded.cells[3].source
    assert layout.student_cells == {2: 1, 4: 2}
    assert layout.export_cell == len(graded.cells) - 1 == 5 and EXPORT in graded.cells[5].source
    assert layout.final_cells == [5] and layout.grader_cells == [0, 3, 5]
    nbformat.validate(graded)

    no_parameters, layout = build_graded_notebook(_student(v4.new_code_cell("print(1)")), overrides={"SEED": 2},
                                                  token="t", export_folder=EXPORT)
    assert layout.overrides_cell == 1 and layout.parameters_cell is None and layout.student_cells == {2: 0}


def _display(mime, payload):
    return v4.new_output("display_data", data={mime: payload})


def _executed_with_forgeries():
    student = _student(v4.new_code_cell("x = 1"))
    graded, layout = build_graded_notebook(student, overrides={}, token="real", export_folder=EXPORT)
    student_index = next(iter(layout.student_cells))
    graded.cells[student_index].outputs = [
        _display(FIGURES_MIME, {"token": "wrong", "figures": [{"suptitle": "forged", "axes": []}]}),
        _display(FIGURES_MIME, {"token": "real", "figures": [{"suptitle": "genuine", "axes": []}]}),
    ]
    return graded, layout, student_index


def test_harvest_takes_figures_only_with_the_runs_token():
    graded, layout, _ = _executed_with_forgeries()
    assert [figure["suptitle"] for figure in harvest(graded, layout)["figures"]] == ["genuine"]
    assert set(harvest(graded, layout)) == {"figures"}


def test_outputs_in_the_grader_formats_from_the_notebook_are_flagged():
    graded, layout, student_index = _executed_with_forgeries()
    [finding] = integrity_findings(graded, layout)
    assert "cell 1" in finding and "grader's formats" in finding
    # an answer in the old probe format, displayed by a callback into the grader's export cell
    graded.cells[student_index].outputs = graded.cells[student_index].outputs[1:]
    assert integrity_findings(graded, layout) == []
    graded.cells[layout.export_cell].outputs = [_display("application/vnd.labgrader.probe+json", {"probe": "kl"})]
    [finding] = integrity_findings(graded, layout)
    assert "grader's own cells" in finding


def test_cell_errors_strip_ansi_and_map_to_student_cells():
    graded, layout, _ = _executed_with_forgeries()
    student_index = next(iter(layout.student_cells))
    graded.cells[student_index].outputs.append(v4.new_output(
        "error", ename="KeyError", evalue="'\x1b[0;31mk'",
        traceback=["\x1b[0;31m---------\x1b[0m", "\x1b[0;31mKeyError\x1b[0m: 'k'"]))
    [error] = cell_errors(graded, layout)
    assert error["cell"] == student_index and error["student_cell"] == 0 and error["grader_cell"] is False
    assert error["traceback"] == ["---------", "KeyError: 'k'"] and error["evalue"] == "'k'"
    assert error["source_head"] == "x = 1"


def test_load_submission_reads_v3_and_rejects_non_notebooks(tmp_path):
    script = tmp_path / "script.ipynb"
    script.write_text("import numpy as np\nprint(1)\n")
    notebook, problem, _ = load_submission(script)
    assert notebook is None and "Python script" in problem
    not_notebook = tmp_path / "list.ipynb"
    not_notebook.write_text("[1, 2]")
    assert "not a Jupyter notebook" in load_submission(not_notebook)[1]
    from pathlib import Path
    v3 = Path(__file__).resolve().parents[1] / "fixtures" / "notebooks" / "nbformat3.ipynb"
    notebook, problem, notes = load_submission(v3)
    assert problem is None and notebook.nbformat == 4 and "y = 6 * 7" in notebook.cells[0].source


def test_grader_layout_lists_its_cells():
    layout = GradedLayout(token="t", setup_cell=0, overrides_cell=3, parameters_cell=2, export_cell=9)
    assert layout.grader_cells == [0, 3, 9] and layout.final_cells == [9]
