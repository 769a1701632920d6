"""execute_submission end to end on the tiny fixture notebooks: one status per failure mode, probes and figures."""

from __future__ import annotations

import json
import math
import uuid
from pathlib import Path

import nbformat
import numpy as np
import pytest

from autograder.execution.run import STATUSES, ExecutionResult, execute_submission
from autograder.execution.limits import GiB, Limits
from autograder.execution.probe_inputs import draw_probe_inputs
from autograder.execution.sandbox import bwrap_check

NOTEBOOKS = Path(__file__).resolve().parents[1] / "fixtures" / "notebooks"
FAST_LIMITS = Limits(cell_timeout_s=5, notebook_timeout_s=40, probe_timeout_s=15, probe_reserve_s=15,
                     interrupt_grace_s=2, startup_grace_s=40, memory_bytes=2 * GiB, max_cell_output_bytes=200_000)
PROBE_SEED = 7


def run(name: str, tmp_path: Path, *, limits: Limits = FAST_LIMITS, overrides: dict | None = None,
        sandbox: str = "auto") -> ExecutionResult:
    result = execute_submission(NOTEBOOKS / name, tmp_path / f"work-{uuid.uuid4().hex[:8]}",
                                overrides=overrides or {}, probe_inputs=draw_probe_inputs(PROBE_SEED),
                                data_dir=None, limits=limits, sandbox=sandbox)
    assert result.status in STATUSES
    return result


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
    assert set(result.artefacts) == {"figures", "probes"}


def test_clean_notebook_is_ok_and_its_executed_copy_comes_back(tmp_path):
    result = run("runs_cleanly.ipynb", tmp_path)
    assert result.status == "ok", result.reason
    assert result.sandbox.startswith("bwrap")
    assert "answer 42" in outputs_text(result)
    assert result.cell_errors == []
    assert result.artefacts["probes"]["names"]["ok"] is True
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
    assert result.artefacts["probes"]["names"]["ok"] is True


def test_cell_ignoring_sigint_gets_its_kernel_killed(tmp_path):
    result = run("ignores_sigint.ipynb", tmp_path)
    assert result.status == "timeout"
    assert "ignored the interrupt" in result.reason
    assert "never reached" not in outputs_text(result)
    assert result.artefacts["probes"]["kl"]["error"].startswith("NotRun")
    assert result.duration_s < FAST_LIMITS.cell_timeout_s + FAST_LIMITS.interrupt_grace_s + 20


def test_kernel_exiting_is_kernel_died(tmp_path):
    result = run("kernel_dies.ipynb", tmp_path)
    assert result.status == "kernel_died"
    assert "cell 2" in result.reason and "exit code 3" in result.reason
    assert "never reached" not in outputs_text(result)


def test_notebook_deadline_skips_student_cells_but_probes_still_run(tmp_path):
    limits = FAST_LIMITS.replace(notebook_timeout_s=10, probe_reserve_s=5)
    result = run("slow_notebook.ipynb", tmp_path, limits=limits)
    assert result.status == "timeout"
    assert "10 s limit" in result.reason and "skipped" in result.reason
    assert outputs_text(result).count("slept") < 4
    names = result.artefacts["probes"]["names"]
    assert names["ok"] is True and names["value"]["kl_divergence"] is False  # the last cell was skipped


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
    assert scatter["scatters"] == [{"n_points": 30, "n_colors": 3, "n_values": 3}]
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


def test_forged_grader_outputs_in_student_cells_are_ignored(tmp_path):
    result = run("forges_grader_outputs.ipynb", tmp_path)
    assert result.status == "ok", result.reason
    assert result.artefacts["probes"]["kl"] == {
        "ok": False, "error": "NameError: name 'kl_divergence' is not defined by the notebook"}
    assert result.artefacts["figures"] == []


def _kl(mu, log_sigma_squared):
    return float(np.mean(-0.5 * np.sum(1 + log_sigma_squared - mu ** 2 - np.exp(log_sigma_squared), axis=1)))


def test_probes_on_a_correct_implementation_return_the_right_values(tmp_path):
    inputs = draw_probe_inputs(PROBE_SEED)
    result = run("defines_contract_names.ipynb", tmp_path, overrides={"SWEEP_DIMS": [2, 3, 4]})
    assert result.status == "ok", result.reason
    assert result.layout.parameters_cell == 1, "the untagged parameters cell must be found by its content"
    probes = result.artefacts["probes"]
    assert all(probe["ok"] for probe in probes.values()), {k: v for k, v in probes.items() if not v["ok"]}
    assert all(probes["names"]["value"].values())

    assert [shape["mu_shape"] for shape in probes["encoder_shapes"]["value"]] == [[1, 2], [7, 2], [16, 5]]
    for decoded, spec in zip(probes["decoder_output"]["value"], inputs["decoder_output"]):
        assert decoded["shape"] == [spec["batch"], spec["dim_output"]] and 0 <= decoded["min"] <= decoded["max"] <= 1

    mu, lss = np.array(inputs["kl"]["mu"]), np.array(inputs["kl"]["log_sigma_squared"])
    kl = probes["kl"]["value"]
    assert kl["batch"] == pytest.approx(_kl(mu, lss), rel=1e-5)
    assert kl["batch_doubled"] == pytest.approx(kl["batch"], rel=1e-6)
    assert kl["single"] == pytest.approx([_kl(mu[i:i + 1], lss[i:i + 1]) for i in range(len(mu))], rel=1e-5)

    loss = inputs["loss"]
    x, xr = np.array(loss["x"]), np.array(loss["x_reconstructed"])
    kl_loss = _kl(np.array(loss["mu"]), np.array(loss["log_sigma_squared"]))
    bce = -np.sum(x * np.log(xr) + (1 - x) * np.log(1 - xr), axis=1).mean()
    assert probes["loss"]["value"]["bernoulli"] == pytest.approx(bce + kl_loss, rel=1e-4)
    assert probes["loss"]["value"]["gaussian"] == pytest.approx(
        0.5 * np.sum((x - xr) ** 2, axis=1).mean() + kl_loss, rel=1e-4)

    reparameterized = probes["reparameterize"]["value"]
    assert reparameterized["mean"] == pytest.approx(inputs["reparameterize"]["mu"], abs=0.05)
    assert reparameterized["var"] == pytest.approx(np.exp(inputs["reparameterize"]["log_sigma_squared"]), rel=0.05)
    assert reparameterized["grad_mu_nonzero"] and reparameterized["grad_log_sigma_squared_nonzero"]

    from sklearn.decomposition import PCA
    data = np.array(inputs["pca"]["data"])
    pca = PCA(n_components=inputs["pca"]["k"], svd_solver="full").fit(data)
    value = probes["pca"]["value"]
    assert np.allclose(value["reconstruct"], pca.inverse_transform(pca.transform(data)), atol=1e-6)
    assert np.allclose(np.abs(value["encode"]), np.abs(pca.transform(data)), atol=1e-6)
    assert np.array(value["generate"]).shape == (3, data.shape[1])

    histories = probes["histories"]["value"]
    assert histories["vae_history"] == [210.0, 180.5, 170.25]
    assert histories["ae_histories"][0] == pytest.approx([0.3, 0.2, 0.1])
    assert probes["sweep"]["value"]["SWEEP_DIMS"] == [2, 3, 4], "the grader's override must win"
    assert probes["sweep"]["value"]["reconstruction_errors"]["pca"] == pytest.approx([0.03, 0.02, 0.015])

    figures = result.artefacts["figures"]
    assert figures[0]["suptitle"] == "VAE"
    assert figures[0]["axes"][0]["scatters"] == [{"n_points": 500, "n_colors": 10, "n_values": 10}]
    assert figures[0]["axes"][1]["images"][0]["shape"] == [420, 420]
    assert [line["label"] for line in figures[1]["axes"][0]["lines"]] == ["autoencoder", "PCA"]
    assert all(isinstance(v, float) and math.isfinite(v) for v in kl["single"])


def test_probes_on_missing_or_broken_names_are_errors_as_values(tmp_path):
    result = run("lacks_contract_names.ipynb", tmp_path)
    assert result.status == "ok", result.reason
    probes = result.artefacts["probes"]
    assert probes["kl"] == {"ok": False, "error": "NotImplementedError: TODO"}
    assert probes["encoder_shapes"]["error"].startswith("NameError")
    assert probes["pca"]["ok"] is True
    assert probes["pca"]["value"]["encode"] is not None and probes["pca"]["value"]["generate"] is None
    assert "pca_generate" in probes["pca"]["value"]["errors"]["generate"]
    assert probes["names"]["value"]["kl_divergence"] is True and probes["names"]["value"]["VAE"] is False
    assert probes["sweep"]["error"].startswith("NameError")
