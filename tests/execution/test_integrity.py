"""A submission cannot raise its own score. Each attack fixture is WRONG_IMPLEMENTATION (make_notebooks.py) plus one
attack; graded in one batch with the same wrong implementation alone, each scores no more than it and is flagged
for the instructor. In-process tests show the attacks would work against unguarded probes, and that the guard,
the source scan and the harvest rules catch them without flagging honest notebooks."""

from __future__ import annotations

import csv
import functools
import json
import shutil
import sys
import types
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbformat import v4

from autograder.execution import integrity
from autograder.execution.kernel import guard as kernel_guard, recorder as kernel_side
from autograder.execution.notebook import build_graded_notebook
from autograder.execution.harvest import harvest, integrity_findings
from autograder.execution.limits import GiB, Limits
from autograder.pipeline import GradeSettings, grade_class
from autograder.execution.probe_inputs import draw_probe_inputs, inputs_for_probe
from autograder.lab.profiles import TINY

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "notebooks"
RUBRIC = ROOT / "autograder" / "rubric.yaml"
BASELINE = "wrong_implementation"
LIMITS = Limits(cell_timeout_s=30, notebook_timeout_s=120, probe_timeout_s=20, probe_reserve_s=20, interrupt_grace_s=2,
                startup_grace_s=60, memory_bytes=3 * GiB)

# attack -> (words in its integrity flags, its score against the baseline's: "same" = every item equal, "less",
# or "zero"). "same": the grader undid the attack and graded the honest wrong code; "less"/"zero": answers voided.
ATTACKS = {
    "monkeypatches_torch": ("had replaced torch.allclose, torch.Tensor.var, torch.Tensor.__ne__", "same"),
    "patches_during_probe": ("replaced torch.Tensor.var while the grader called it (probe 'reparameterize')", "less"),
    "monkeypatches_json_numpy_otter": ("otter.Notebook.check", "same"),
    "always_equal_objects": ("object of class ConvincingTensor", "less"),
    "forges_probe_answers": ("probe 'kl' held 2 answers", "less"),
    "hooks_ipython_events": ("registered IPython 'pre_run_cell' callbacks (forge_answer)", "same"),
    "patches_grader_probes": ("labgrader_kernel_side.PROBES['kl']", "same"),
    "replaces_grader_module": ("refers to the grader's in-kernel code", "zero"),
    "repatches_from_thread": ("threads started by the notebook (keep-patched)", "zero"),
    "writes_fake_results": ("wrote files named like the grader's outputs in its folder", "same"),
    "reads_solution": ("names the grader's files: rubric.yaml", "same"),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    submissions = tmp_path_factory.mktemp("attacks")
    out_dir = tmp_path_factory.mktemp("attack-grades")
    for name in [BASELINE, *ATTACKS]:
        shutil.copyfile(FIXTURES / f"{name}.ipynb", submissions / f"{name}.ipynb")
    result_targets = [str(out_dir / name / file) for name in (BASELINE, "writes_fake_results")
                      for file in ("row.json", "results.json")] + [str(out_dir / "gradebook.csv")]
    hidden = [str(ROOT / "solution" / "lab.ipynb"), str(ROOT / "autograder" / "checks" / "registry.py"), str(RUBRIC)]
    settings = GradeSettings(out_dir=out_dir, rubric_path=RUBRIC, data_dir=ROOT / "data_cache", sandbox="auto",
                             profile_name="tiny",
                             profile={**TINY, "RESULT_TARGETS": result_targets, "HIDDEN_PATHS": hidden},
                             limits=LIMITS)
    rows = grade_class(submissions, settings, jobs=2, progress=False)
    return out_dir, {row.submission: row for row in rows}


def test_the_wrong_implementation_earns_some_points_and_no_flag(graded):
    _, rows = graded
    baseline = rows[BASELINE]
    assert baseline.status == "ok" and 0 < baseline.score < baseline.max_score, (baseline.status, baseline.score)
    assert baseline.items["kl_formula"] > 0 and 0 < baseline.items["reparameterization"] < 10
    assert not [flag for flag in baseline.flags if flag.startswith("integrity")], baseline.flags


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_an_attack_earns_nothing_and_is_flagged(graded, attack):
    _, rows = graded
    words, outcome = ATTACKS[attack]
    row, baseline = rows[attack], rows[BASELINE]
    assert row.status == "ok", row.reason
    assert row.score <= baseline.score, f"{attack} raised the score from {baseline.score} to {row.score}"
    if outcome == "same":
        assert row.items == baseline.items
    elif outcome == "less":
        assert row.score < baseline.score
    else:
        assert row.score == 0.0
    assert integrity.INTEGRITY_FLAG in row.flags
    assert any(words in flag for flag in row.flags), row.flags


def test_flags_reach_the_feedback_page(graded):
    out_dir, rows = graded
    page = (out_dir / "monkeypatches_torch" / "feedback.html").read_text(encoding="utf-8")
    assert "attempts to influence the grading" in page and "Integrity check: the notebook had replaced" in page
    assert "Integrity check" not in (out_dir / BASELINE / "feedback.html").read_text(encoding="utf-8")


def test_fake_result_files_do_not_replace_the_graders(graded):
    out_dir, rows = graded
    for name in (BASELINE, "writes_fake_results"):
        row = json.loads((out_dir / name / "row.json").read_text())
        assert row["submission"] == name and row["score"] == rows[name].score < 170
        results = json.loads((out_dir / name / "results.json").read_text())
        assert results["score"] == rows[name].score
    with open(out_dir / "gradebook.csv", newline="") as handle:
        gradebook = {line["submission"]: float(line["score"]) for line in csv.DictReader(handle)}
    assert gradebook == {name: row.score for name, row in rows.items()}
    executed = nbformat.read(out_dir / "writes_fake_results" / "executed.ipynb", as_version=4)
    assert executed.cells[0].metadata.get("labgrader"), "the executed notebook is the grader's, not the forged one"
    [attack] = [cell for cell in executed.cells if "perfect = " in cell.source]
    attempts = json.loads(attack.outputs[0]["text"].splitlines()[0])
    # Inside the sandbox the writes into its own folder and into its private /tmp (which hides the grader's
    # /tmp, where this test's OUT folder lies) succeed; the files above show that none reached the grader's.
    assert attempts["row.json"] == "written" and attempts["../row.json"] == "PermissionError"


def test_the_solution_is_not_visible_in_the_sandbox(graded):
    out_dir, _ = graded
    executed = nbformat.read(out_dir / "reads_solution" / "executed.ipynb", as_version=4)
    printed = "".join(output.get("text", "") for cell in executed.cells for output in cell.get("outputs", []))
    assert "found [] refused" in printed, printed[:500]


# ---------------------------------------------------------------- in-process: the attacks are real, the guards work

def fresh_kernel_side():
    """A private copy of kernel_side (the copy injected into kernels is also fresh), so tests can wrap it."""
    module = types.ModuleType("kernel_side_copy")
    exec(compile(Path(kernel_side.__file__).read_text(), "kernel_side_copy.py", "exec"), module.__dict__)
    return module


class AlwaysEqual(float):
    def __eq__(self, other):
        return True


def convincing_reparameterize():
    import torch

    class ConvincingTensor(torch.Tensor):
        claimed = None

        def var(self, *args, **kwargs):
            return ConvincingTensor.claimed.exp().double()

    def reparameterize(mu, log_sigma_squared):
        ConvincingTensor.claimed = log_sigma_squared.detach()[0]
        return (mu + 0 * log_sigma_squared).as_subclass(ConvincingTensor)

    return reparameterize


def test_a_lying_tensor_fools_unguarded_probes_and_is_refused_by_the_guard():
    inputs = inputs_for_probe(draw_probe_inputs(2), "reparameterize")
    expected = np.exp(inputs["log_sigma_squared"])
    unguarded = fresh_kernel_side()
    answer = unguarded.probe_answer("reparameterize", inputs, {"reparameterize": convincing_reparameterize()})
    assert answer["ok"] and answer["value"]["var"] == pytest.approx(expected), "the attack is real"

    guarded = fresh_kernel_side()
    for name in kernel_guard.CONVERTERS:
        setattr(guarded, name, kernel_guard._vetting(getattr(guarded, name)))
    answer = guarded.probe_answer("reparameterize", inputs, {"reparameterize": convincing_reparameterize()})
    assert answer["ok"] is False and answer["error"].startswith("IntegrityError")
    assert "ConvincingTensor" in answer["error"] and "var" in answer["error"]
    kl = guarded.probe_answer("kl", draw_probe_inputs(2)["kl"], {"kl_divergence": lambda mu, lss: AlwaysEqual(1.0)})
    assert kl["ok"] is False and "AlwaysEqual" in kl["error"]


def test_vet_accepts_what_honest_code_returns():
    import torch
    for value in (1.5, 3, True, np.float32(2.0), np.arange(3.0), torch.ones(2), torch.nn.Parameter(torch.ones(2)),
                  [1.0, np.float64(2.0)], (torch.ones(1),)):
        kernel_guard.vet(value)
    with pytest.raises(kernel_guard.IntegrityError):
        kernel_guard.vet([1.0, AlwaysEqual(2.0)])
    with pytest.raises(kernel_guard.IntegrityError):
        kernel_guard.vet(np.array([AlwaysEqual(1.0)], dtype=object))

    class EqualToEverything(type):
        def __eq__(cls, other):
            return True

        __hash__ = type.__hash__

    class Disguised(float, metaclass=EqualToEverything):  # claims to be float and to come from torch
        __module__ = "torch"

        def __eq__(self, other):
            return True

    with pytest.raises(kernel_guard.IntegrityError, match="class Disguised that redefines __eq__"):
        kernel_guard.vet(Disguised(1.0))


def test_watch_reports_and_restores_replacements_but_accepts_library_wrappers():
    library = types.ModuleType("library")
    library.function = lambda: "original"

    class Tensor:
        def var(self):
            return "original"

    library.Tensor = Tensor
    module_watch = kernel_guard.Watch("library", library, "module")
    class_watch = kernel_guard.Watch("library.Tensor", Tensor, "class")

    def notebook_function():
        return "patched"

    notebook_function.__module__ = "__main__"  # as functions defined in a notebook cell are
    library.function = notebook_function
    Tensor.mean = notebook_function  # an added name shadows the base class
    Tensor.var = notebook_function
    assert module_watch.replaced() == ["function"] and sorted(class_watch.replaced()) == ["mean", "var"]
    module_watch.restore(["function"])
    class_watch.restore(["mean", "var"])
    assert library.function() == "original" and Tensor().var() == "original" and not hasattr(Tensor, "mean")

    original = library.function
    library.function = functools.wraps(original)(lambda: original())  # a library's wrapper, e.g. torch._dynamo's
    assert module_watch.replaced() == []


def test_source_scan_flags_each_trick_and_no_honest_notebook():
    def scanned(*sources):
        notebook = v4.new_notebook()
        notebook.cells = [v4.new_code_cell(source) for source in sources]
        return [(finding.text, finding.voids) for finding in integrity.scan_notebook(notebook)]

    patched = scanned("%matplotlib inline\nimport torch\nfrom torch import Tensor\nimport numpy as np",
                      "Tensor.var = lambda self, *a: 1\nsetattr(np, 'allclose', lambda *a: True)\n"
                      "torch.backends.cudnn.deterministic = True  # a documented switch, not flagged")
    assert patched == [("the notebook assigns library attributes: torch.Tensor.var (cell 2), numpy.allclose "
                        "(cell 2) (the grader's checks run with the originals)", False)]
    assert scanned("import sys\nsys.modules['labgrader_' + 'kernel_side'].PROBES.clear()")[0][1] is True
    assert scanned("get_ipython().ast_transformers.append(object())")[0][1] is True
    assert scanned("# labgrader_kernel_side is only mentioned in a comment\nx = 1") == []
    assert scanned("import sys\nIN_COLAB = 'google.colab' in sys.modules") == []
    assert scanned("import sys\nsys.modules['torch'] = None") == [
        ("the notebook uses interpreter hooks: sys.modules changed (cell 1)", False)]
    honest = [ROOT / "solution" / "lab.ipynb", ROOT / "student_template" / "lab.ipynb",
              *sorted((ROOT / "autograder" / "lab" / "demo_class").glob("*.ipynb")), FIXTURES / f"{BASELINE}.ipynb"]
    for path in honest:
        assert integrity.scan_notebook(nbformat.read(path, as_version=4)) == [], path


def test_workdir_scan_finds_files_named_like_grader_outputs(tmp_path):
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "q4_kl_divergence.py").write_text("")
    assert integrity.scan_workdir(tmp_path) == []
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "Results.JSON").write_text("{}")
    [finding] = integrity.scan_workdir(tmp_path)
    assert "sub/Results.JSON" in finding.text and not finding.voids


def _graded_with_outputs(kl_outputs, setup_outputs):
    student = v4.new_notebook()
    student.cells = [v4.new_code_cell("x = 1")]
    graded, layout = build_graded_notebook(student, overrides={}, probe_inputs=draw_probe_inputs(0), token="t0k")
    kl_cell = next(index for index, name in layout.probe_cells.items() if name == "kl")
    graded.cells[layout.setup_cell].outputs = setup_outputs
    graded.cells[kl_cell].outputs = kl_outputs
    return graded, layout


def _display(mime, payload):
    return v4.new_output("display_data", data={mime: payload})


def test_harvest_voids_duplicated_or_unreported_probe_answers():
    genuine = {"probe": "kl", "token": "t0k", "ok": True, "value": {"batch": 1.0}, "integrity": []}
    forged = {**genuine, "value": {"batch": 2.0}}
    installed = [_display(kernel_guard.GUARD_MIME, {"token": "t0k", "installed": True})]

    graded, layout = _graded_with_outputs([_display(kernel_side.PROBE_MIME, genuine)], installed)
    assert harvest(graded, layout)["probes"]["kl"] == {"ok": True, "value": {"batch": 1.0}}
    assert integrity_findings(graded, layout) == []

    graded, layout = _graded_with_outputs([_display(kernel_side.PROBE_MIME, forged),
                                           _display(kernel_side.PROBE_MIME, genuine)], installed)
    assert harvest(graded, layout)["probes"]["kl"]["error"].startswith("IntegrityError")
    assert integrity_findings(graded, layout) == [
        "the grader's cell for probe 'kl' held 2 answers: the notebook displayed forged ones while it ran; that "
        "answer was not graded"]

    unreported = {key: value for key, value in forged.items() if key != "integrity"}
    graded, layout = _graded_with_outputs([_display(kernel_side.PROBE_MIME, unreported)], installed)
    assert harvest(graded, layout)["probes"]["kl"]["ok"] is False
    graded, layout = _graded_with_outputs([_display(kernel_side.PROBE_MIME, unreported)], [])
    assert harvest(graded, layout)["probes"]["kl"]["ok"] is True, "no guard installed: nothing to compare with"


def test_guard_source_runs_as_injected():
    """The guard is injected as text into a fresh module: it must not depend on the autograder package."""
    module = types.ModuleType("labgrader_kernel_guard_copy")
    exec(compile(Path(kernel_guard.__file__).read_text(), "guard.py", "exec"), module.__dict__)
    assert "autograder" not in Path(kernel_guard.__file__).read_text().split('"""', 2)[2]
    assert callable(module.install) and callable(module.run_probe)
    assert sys.modules.get(kernel_guard.GUARD) is None
