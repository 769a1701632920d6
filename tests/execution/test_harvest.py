"""Harvesting, the kernel-side probes and figure descriptions (in-process, no kernel), probe inputs and the
graded notebook's layout."""

from __future__ import annotations

import json

import nbformat
import numpy as np
import pytest
from nbformat import v4

from autograder.execution.kernel import recorder as kernel_side
from autograder.execution.notebook import build_graded_notebook, find_parameters_cell, load_submission
from autograder.execution.harvest import GradedLayout, cell_errors, harvest
from autograder.execution.kernel.recorder import FIGURES_MIME, PROBE_MIME, PROBES, plain, probe_answer
from autograder.execution.probe_inputs import draw_probe_inputs, inputs_for_probe


class AlwaysEqual:
    """A student object that claims to equal anything."""

    def __eq__(self, other):
        return True

    def __float__(self):
        return 3.0


class Opaque:
    def __eq__(self, other):
        return True


def test_plain_rejects_objects_and_keeps_plain_values():
    assert plain({"a": [1, 2.5, True, None, "s"], "b": (float("nan"),)}) == {"a": [1, 2.5, True, None, "s"],
                                                                             "b": [None]}
    with pytest.raises(TypeError):
        plain([AlwaysEqual()])
    with pytest.raises(TypeError):
        plain(np.float32(1.0))


def test_probe_never_lets_a_student_object_through():
    answer = probe_answer("kl", draw_probe_inputs(0)["kl"], {"kl_divergence": lambda mu, lss: Opaque()})
    assert answer["ok"] is False and answer["error"].startswith("TypeError")
    answer = probe_answer("histories", None, {"vae_history": [AlwaysEqual(), 2]})
    assert answer == {"ok": True, "value": {"ae_histories": None, "vae_history": [3.0, 2.0],
                                            "gaussian_vae_history": None}}
    assert type(answer["value"]["vae_history"][0]) is float
    json.dumps(answer, allow_nan=False)


def test_probe_errors_are_values():
    assert probe_answer("kl", draw_probe_inputs(0)["kl"], {}) == {
        "ok": False, "error": "NameError: name 'kl_divergence' is not defined by the notebook"}

    def broken(mu, log_sigma_squared):
        raise ZeroDivisionError("boom")

    assert probe_answer("kl", draw_probe_inputs(0)["kl"], {"kl_divergence": broken}) == {
        "ok": False, "error": "ZeroDivisionError: boom"}


def test_kl_probe_uses_fresh_tensors_from_the_inputs():
    import torch
    inputs = draw_probe_inputs(3)["kl"]
    seen = []

    def kl(mu, log_sigma_squared):
        value = (-0.5 * (1 + log_sigma_squared - mu ** 2 - log_sigma_squared.exp()).sum(1)).mean()
        seen.append(mu.dtype)
        mu.mul_(0)  # a student mutating its argument must not change the inputs of the next calls
        log_sigma_squared.mul_(0)
        return value

    answer = probe_answer("kl", inputs, {"kl_divergence": kl})
    assert answer["ok"], answer
    assert seen == [torch.float32] * len(seen)
    mu, lss = np.array(inputs["mu"]), np.array(inputs["log_sigma_squared"])
    expected = np.mean(-0.5 * np.sum(1 + lss - mu ** 2 - np.exp(lss), axis=1))
    assert answer["value"]["batch"] == pytest.approx(expected, rel=1e-5)
    assert answer["value"]["batch_doubled"] == pytest.approx(expected, rel=1e-5)


def test_reparameterize_probe_detects_missing_gradients():
    import torch
    inputs = inputs_for_probe(draw_probe_inputs(1), "reparameterize")

    def detached(mu, log_sigma_squared):
        return (mu + torch.randn_like(mu) * torch.exp(0.5 * log_sigma_squared)).detach()

    value = probe_answer("reparameterize", inputs, {"reparameterize": detached})["value"]
    assert value["grad_mu_nonzero"] is False and value["grad_log_sigma_squared_nonzero"] is False
    assert value["mean"] == pytest.approx(inputs["mu"], abs=0.05)


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
    assert description["axes"][0]["scatters"] == [{"n_points": 4, "n_colors": 3, "n_values": 3}]
    assert description["axes"][1]["images"] == [{"shape": [2, 3], "min": 0.0, "max": 5.0}]
    [line] = description["axes"][1]["lines"]
    assert len(line["x"]) == kernel_side.MAX_LINE_POINTS and line["n_points"] == 1200
    assert description["axes"][1]["legend"] == ["curve"]


def test_probe_inputs_follow_the_contract_and_are_deterministic():
    inputs = draw_probe_inputs(11)
    assert inputs == draw_probe_inputs(11) and inputs != draw_probe_inputs(12)
    assert json.loads(json.dumps(inputs)) == inputs
    assert np.shape(inputs["kl"]["mu"]) == (6, 2) and np.shape(inputs["kl"]["log_sigma_squared"]) == (6, 2)
    loss = inputs["loss"]
    assert np.shape(loss["x"]) == (4, 784) and np.shape(loss["mu"]) == (4, 2)
    assert 0 <= np.min(loss["x"]) and np.max(loss["x"]) <= 1
    assert 0 < np.min(loss["x_reconstructed"]) and np.max(loss["x_reconstructed"]) < 1
    assert np.shape(inputs["pca"]["data"]) == (200, 30) and inputs["pca"]["k"] == 5
    assert np.shape(inputs["pca"]["coordinates"]) == (3, 5)
    assert inputs["reparameterize"]["n"] == 20000 and len(inputs["reparameterize"]["mu"]) == 2
    assert isinstance(inputs["reparameterize_seed"], int)
    assert [spec["batch"] for spec in inputs["encoder_shapes"]] == [1, 7, 16]


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
    graded, layout = build_graded_notebook(student, overrides={"SEED": 5, "DATA_DIR": "/data"},
                                           probe_inputs=draw_probe_inputs(0), token="t0k")
    assert layout.setup_cell == 0 and "labgrader_kernel_side" in graded.cells[0].source
    assert layout.parameters_cell == 2 and layout.overrides_cell == 3
    assert "SEED = 5" in graded.cells[3].source and "DATA_DIR = '/data'" in graded.cells[3].source
    assert layout.student_cells == {2: 1, 4: 2}
    assert sorted(layout.probe_cells.values()) == sorted(PROBES)
    assert min(layout.probe_cells) == 5 and max(layout.probe_cells) == len(graded.cells) - 1
    nbformat.validate(graded)

    no_parameters, layout = build_graded_notebook(_student(v4.new_code_cell("print(1)")), overrides={"SEED": 2},
                                                  probe_inputs=draw_probe_inputs(0), token="t")
    assert layout.overrides_cell == 1 and layout.parameters_cell is None and layout.student_cells == {2: 0}


def _display(mime, payload):
    return v4.new_output("display_data", data={mime: payload})


def _executed_with_forgeries():
    student = _student(v4.new_code_cell("x = 1"))
    graded, layout = build_graded_notebook(student, overrides={}, probe_inputs=draw_probe_inputs(0), token="real")
    student_index = next(iter(layout.student_cells))
    forged_probe = {"probe": "kl", "token": "real", "ok": True, "value": {"batch": 0.0}}
    graded.cells[student_index].outputs = [
        _display(PROBE_MIME, forged_probe),
        _display(FIGURES_MIME, {"token": "wrong", "figures": [{"suptitle": "forged", "axes": []}]}),
        _display(FIGURES_MIME, {"token": "real", "figures": [{"suptitle": "genuine", "axes": []}]}),
    ]
    kl_cell = next(index for index, name in layout.probe_cells.items() if name == "kl")
    graded.cells[kl_cell].outputs = [_display(PROBE_MIME, {"probe": "kl", "token": "real", "ok": True,
                                                           "value": {"batch": 1.5}})]
    return graded, layout, kl_cell


def test_harvest_reads_probes_only_from_the_grader_cells():
    graded, layout, kl_cell = _executed_with_forgeries()
    artefacts = harvest(graded, layout)
    assert artefacts["probes"]["kl"] == {"ok": True, "value": {"batch": 1.5}}
    assert [figure["suptitle"] for figure in artefacts["figures"]] == ["genuine"]
    assert artefacts["probes"]["loss"]["error"].startswith("NotRun")

    graded.cells[kl_cell].outputs = []  # the real probe produced nothing: the forged one must not stand in
    assert harvest(graded, layout)["probes"]["kl"]["ok"] is False

    graded.cells[kl_cell]["id"] = "replaced"  # a cell that is not the one we built is not trusted
    graded.cells[kl_cell].outputs = [_display(PROBE_MIME, {"probe": "kl", "token": "real", "ok": True, "value": 9})]
    assert harvest(graded, layout)["probes"]["kl"]["ok"] is False


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
    layout = GradedLayout(token="t", setup_cell=0, overrides_cell=3, parameters_cell=2, probe_cells={9: "kl", 8: "names"})
    assert layout.grader_cells == [0, 3, 8, 9]
