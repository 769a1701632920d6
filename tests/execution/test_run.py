"""execute_submission end to end on the tiny fixture notebooks: one status per failure mode, the figures, and the
export of what the notebook ended with (the probes themselves are tested in tests/probing/)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import nbformat
import numpy as np
import pytest

from autograder.checks.figure_reader import decode_array
from autograder.execution.kernel.export import EXPORT_FOLDER
from autograder.execution.run import STATUSES, ExecutionResult, execute_submission
from autograder.execution.limits import GiB, Limits
from autograder.execution.sandbox import bwrap_check
from autograder.probing.exported import read_export

NOTEBOOKS = Path(__file__).resolve().parents[1] / "fixtures" / "notebooks"
FAST_LIMITS = Limits(cell_timeout_s=5, notebook_timeout_s=40, export_timeout_s=15, export_reserve_s=15,
                     interrupt_grace_s=2, startup_grace_s=40, memory_bytes=2 * GiB, max_cell_output_bytes=200_000)


def run(name: str, tmp_path: Path, *, limits: Limits = FAST_LIMITS, overrides: dict | None = None,
        sandbox: str = "auto") -> ExecutionResult:
    workdir = tmp_path / f"work-{uuid.uuid4().hex[:8]}"
    result = execute_submission(NOTEBOOKS / name, workdir, overrides=overrides or {}, data_dir=None, limits=limits,
                                sandbox=sandbox)
    assert result.status in STATUSES
    result.workdir = workdir
    return result


def exported_names(result: ExecutionResult) -> dict:
    exported = read_export(result.workdir)
    assert not exported.problems, exported.problems
    return exported.report["names"]


def outputs_text(result: ExecutionResult) -> str:
    notebook = nbformat.read(result.executed_notebook_path, as_version=4)
    return "".join(output.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                   for output in cell.outputs)


def test_bwrap_is_usable_here_so_the_suite_tests_the_sandbox():
    ok, why = bwrap_check()
    assert ok, f"bwrap should work on this machine: {why}"


@pytest.mark.parametrize("name, words", [
    ("empty.ipynb", "empty"),
    ("binary.ipynb", "binary"),
    ("not_json.ipynb", "Python script"),
    ("truncated.ipynb", "truncated or corrupted"),
    ("no_code_cells.ipynb", "no code cells"),
])
def test_unreadable_files_are_invalid_with_a_reason(tmp_path, name, words):
    result = run(name, tmp_path)
    assert result.status == "invalid"
    assert words in result.reason
    assert result.executed_notebook_path is None
    assert set(result.artefacts) == {"figures"}


def test_clean_notebook_is_ok_and_its_executed_copy_comes_back(tmp_path):
    result = run("runs_cleanly.ipynb", tmp_path)
    assert result.status == "ok", result.reason
    assert result.sandbox.startswith("bwrap")
    assert "answer 42" in outputs_text(result)
    assert result.cell_errors == []
    assert exported_names(result)["vae"] is False
    assert json.loads(json.dumps(result.to_dict()))["status"] == "ok"


def test_nbformat3_notebook_is_converted_and_run(tmp_path):
    result = run("nbformat3.ipynb", tmp_path)
    assert result.status == "ok", result.reason
    assert "v3 42" in outputs_text(result)
    assert any("nbformat 3" in note for note in result.notes)


def test_error_halfway_is_a_cell_error_and_later_cells_still_run(tmp_path):
    result = run("raises_halfway.ipynb", tmp_path)
    assert result.status == "cell_error"
    assert "cell 3" in result.reason and "ValueError: broken on purpose" in result.reason
    [error] = result.cell_errors
    assert (error["student_cell"], error["ename"]) == (2, "ValueError")
    assert any("broken on purpose" in line for line in error["traceback"])
    assert not any("\x1b[" in line for line in error["traceback"]), "ANSI codes must be stripped"
    assert "after 2" in outputs_text(result)


def test_infinite_loop_is_interrupted_and_the_next_cells_run(tmp_path):
    result = run("infinite_loop.ipynb", tmp_path)
    assert result.status == "timeout"
    assert "5 s limit per cell" in result.reason and "still ran" in result.reason
    assert "still running after" in outputs_text(result)
    assert "vae" in exported_names(result), "the export cell runs after a cell that timed out"


def test_cell_ignoring_sigint_gets_its_kernel_killed(tmp_path):
    result = run("ignores_sigint.ipynb", tmp_path)
    assert result.status == "timeout"
    assert "ignored the interrupt" in result.reason
    assert "never reached" not in outputs_text(result)
    assert not (result.workdir / EXPORT_FOLDER).exists(), "a killed kernel exports nothing"
    assert read_export(result.workdir).problems
    assert result.duration_s < FAST_LIMITS.cell_timeout_s + FAST_LIMITS.interrupt_grace_s + 20


def test_kernel_exiting_is_kernel_died(tmp_path):
    result = run("kernel_dies.ipynb", tmp_path)
    assert result.status == "kernel_died"
    assert "cell 2" in result.reason and "exit code 3" in result.reason
    assert "never reached" not in outputs_text(result)


def test_notebook_deadline_skips_student_cells_but_the_export_still_runs(tmp_path):
    limits = FAST_LIMITS.replace(notebook_timeout_s=10, export_reserve_s=5)
    result = run("slow_notebook.ipynb", tmp_path, limits=limits)
    assert result.status == "timeout"
    assert "10 s limit" in result.reason and "skipped" in result.reason
    assert outputs_text(result).count("slept") < 4
    assert exported_names(result)["kl_divergence"] is False  # the last cell was skipped


def test_megabytes_of_prints_are_truncated_with_a_note(tmp_path):
    result = run("prints_megabytes.ipynb", tmp_path)
    assert result.status == "ok", result.reason
    assert any("truncated" in note for note in result.notes)
    text = outputs_text(result)
    assert "output truncated by the grader" in text
    assert "small" in text
    assert result.executed_notebook_path.stat().st_size < 4 * FAST_LIMITS.max_cell_output_bytes


def test_memory_bomb_is_stopped_with_a_memory_reason(tmp_path):
    result = run("memory_bomb.ipynb", tmp_path, limits=FAST_LIMITS.replace(memory_bytes=1 * GiB))
    assert result.status == "cell_error"
    assert "MemoryError" in result.reason and "memory limit is 1 GiB" in result.reason
    assert "after the bomb" in outputs_text(result)


def test_figures_are_described_from_matplotlib_objects(tmp_path):
    result = run("draws_figures.ipynb", tmp_path)
    assert result.status == "ok", result.reason
    figures = result.artefacts["figures"]
    assert [figure["student_cell"] for figure in figures] == [1, 2, 3]
    scatter = figures[0]["axes"][0]
    assert scatter["title"] == "scatter"
    [points] = scatter["scatters"]
    assert {key: points[key] for key in ("n_points", "n_colors", "n_values")} == {"n_points": 30, "n_colors": 3,
                                                                                  "n_values": 3}
    xy = decode_array(points["points"]["zlib_base64"], points["points"]["shape"], np.float32)
    groups = decode_array(points["groups"]["zlib_base64"], points["groups"]["shape"], np.uint8)
    assert xy.shape == (30, 2) and sorted(set(groups.tolist())) == [0, 1, 2] and len(points["group_keys"]) == 3
    line_axes = figures[1]["axes"][0]
    [line] = line_axes["lines"]
    assert len(line["x"]) == 1000 and line["n_points"] == 1500 and line["y"][10] == 5.0
    assert line_axes["legend"] == ["half"] and line_axes["xlabel"] == "epoch"
    assert figures[2]["axes"][0]["images"] == [{"shape": [3, 4], "min": 0.0, "max": 11.0}]
    assert all(len(figure["axes"][0]["position"]) == 4 for figure in figures)


def test_large_figures_keep_their_descriptions_past_the_per_cell_text_cap(tmp_path):
    # Bug: PNGs counted toward the per-cell cap for printed text, so a cell of big figures lost the grader's
    # descriptions of them (and the figure points with them).
    result = run("large_figures_in_one_cell.ipynb", tmp_path)
    assert result.status == "ok", result.reason
    titles = [axes["title"] for figure in result.artefacts["figures"] for axes in figure["axes"]]
    assert titles == ["noise 0", "noise 1", "noise 2"]
    notebook = nbformat.read(result.executed_notebook_path, as_version=4)
    pngs = [output for cell in notebook.cells for output in cell.get("outputs", [])
            if "image/png" in output.get("data", {})]
    assert len(pngs) == 3 and sum(len(png["data"]["image/png"]) for png in pngs) > FAST_LIMITS.max_cell_output_bytes


def test_forged_grader_outputs_in_student_cells_are_ignored_and_flagged(tmp_path):
    result = run("forges_grader_outputs.ipynb", tmp_path)
    assert result.status == "ok", result.reason
    assert result.artefacts["figures"] == []
    assert any(finding.voids and "grader's formats" in finding.text for finding in result.findings)
