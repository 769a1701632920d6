"""A submission cannot raise its own score, and what reaches into the grader is flagged.

One batch at the TINY profile holds two sets:
- the red team (tests/fixtures/red_team.py): the blank student template plus attack cells, one notebook per attack
  class (late callbacks, cleared outputs, display hooks, faked code origins, wrapped patches, figure managers,
  hooks in the definitions, a forged probe channel, faked figures, a lookup decoder, constant losses, forged
  histories). Each scores no more than the blank template; those that reach into the grader's machinery are
  flagged and their automatic results voided, and the feedback says so;
- the older attacks on the in-kernel probes (tests/fixtures/make_notebooks.py): WRONG_IMPLEMENTATION plus one
  attack each, which must score no more than it, flagged.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import nbformat
import pytest
from nbformat import v4

from autograder.execution import integrity
from autograder.execution.limits import GiB, Limits
from autograder.lab.profiles import TINY
from autograder.pipeline import GradeSettings, grade_class
from tests.fixtures import red_team

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "notebooks"
RUBRIC = ROOT / "autograder" / "rubric.yaml"
BASELINE = "wrong_implementation"
LIMITS = Limits(cell_timeout_s=60, notebook_timeout_s=240, export_timeout_s=30, export_reserve_s=30,
                interrupt_grace_s=2, startup_grace_s=60, memory_bytes=3 * GiB)

# the older attacks on in-kernel probes -> words of their flags
OLD_ATTACKS = {
    "monkeypatches_torch": "assigns library attributes",
    "patches_during_probe": "assigns library attributes",
    "monkeypatches_json_numpy_otter": "assigns library attributes",
    "forges_probe_answers": "displayed outputs in the grader's formats",
    "hooks_ipython_events": "event callbacks",
    "patches_grader_probes": "sys.modules scanned",
    "replaces_grader_module": "in-kernel code",
    "repatches_from_thread": "assigns library attributes",
    "writes_fake_results": "wrote files named like the grader's outputs in its folder",
    "reads_solution": "names the grader's files: rubric.yaml",
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    submissions = tmp_path_factory.mktemp("attacks")
    out_dir = tmp_path_factory.mktemp("attack-grades")
    red = red_team.build(submissions)
    for name in [BASELINE, "always_equal_objects", *OLD_ATTACKS]:
        shutil.copyfile(FIXTURES / f"{name}.ipynb", submissions / f"{name}.ipynb")
    result_targets = [str(out_dir / name / file) for name in (BASELINE, "writes_fake_results")
                      for file in ("row.json", "results.json")] + [str(out_dir / "gradebook.csv")]
    hidden = [str(ROOT / "solution" / "lab.ipynb"), str(ROOT / "autograder" / "checks" / "registry.py"), str(RUBRIC)]
    settings = GradeSettings(out_dir=out_dir, rubric_path=RUBRIC, data_dir=ROOT / "data_cache", sandbox="auto",
                             profile_name="tiny",
                             profile={**TINY, "RESULT_TARGETS": result_targets, "HIDDEN_PATHS": hidden},
                             limits=LIMITS)
    rows = grade_class(submissions, settings, jobs=2, progress=False)
    return out_dir, {row.submission: row for row in rows}, red


def integrity_flags(row) -> list[str]:
    return [flag for flag in row.flags if flag.startswith("integrity")]


def test_the_blank_template_earns_little_and_no_flag(graded):
    _, rows, _ = graded
    blank = rows[red_team.BLANK]
    assert blank.score < 10, [(s.item_id, s.points) for s in blank.item_scores if s.points]
    assert integrity_flags(blank) == []


@pytest.mark.parametrize("attack", sorted(red_team.ATTACKS))
def test_a_red_team_attack_scores_no_more_than_the_blank_template(graded, attack):
    _, rows, red = graded
    row, blank = rows[attack], rows[red_team.BLANK]
    earned = {s.item_id: s.points for s in row.item_scores if s.points > blank.items.get(s.item_id, 0.0) + 1e-9}
    assert row.score <= blank.score + 1e-9 and not earned, (row.score, blank.score, earned)
    if red[attack]:
        assert "integrity_attempt" in row.flags, row.flags


@pytest.mark.parametrize("attack", sorted(name for name, flagged in red_team.ATTACKS.items() if flagged[1]))
def test_voided_results_are_explained_to_the_student(graded, attack):
    out_dir, rows, _ = graded
    page = (out_dir / attack / "feedback.html").read_text(encoding="utf-8")
    assert "attempts to influence the grading" in page
    assert "could not be verified" in page


def test_the_wrong_implementation_earns_some_points_and_no_flag(graded):
    _, rows, _ = graded
    baseline = rows[BASELINE]
    assert baseline.status == "ok" and 0 < baseline.score < baseline.max_score, (baseline.status, baseline.score)
    assert baseline.items["kl_formula"] > 0 and baseline.items["reparameterization"] == 0   # z = mu: no sampling
    assert not [flag for flag in baseline.flags if flag.startswith("integrity")], baseline.flags


def test_an_object_that_lies_about_its_value_earns_nothing_there(graded):
    # The probe server converts answers with torch's own methods on exact tensors: an object that claims to equal
    # anything is not a tensor, so the probe that received it fails (it reaches nothing of the grader's: no flag).
    _, rows, _ = graded
    row, baseline = rows["always_equal_objects"], rows[BASELINE]
    assert row.score <= baseline.score and row.items["kl_formula"] < baseline.items["kl_formula"]


@pytest.mark.parametrize("attack", sorted(OLD_ATTACKS))
def test_an_older_attack_earns_no_more_than_the_wrong_implementation_and_is_flagged(graded, attack):
    _, rows, _ = graded
    row, baseline = rows[attack], rows[BASELINE]
    assert row.score <= baseline.score + 1e-9, (row.score, baseline.score)
    assert "integrity_attempt" in row.flags and any(OLD_ATTACKS[attack] in flag for flag in row.flags), row.flags


def test_flags_reach_the_feedback_page(graded):
    out_dir, rows, _ = graded
    page = (out_dir / "monkeypatches_torch" / "feedback.html").read_text(encoding="utf-8")
    assert "attempts to influence the grading" in page and "assigns library attributes" in page
    assert "Integrity check" not in (out_dir / BASELINE / "feedback.html").read_text(encoding="utf-8")


def test_fake_result_files_do_not_replace_the_graders(graded):
    out_dir, rows, _ = graded
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
    out_dir, _, _ = graded
    executed = nbformat.read(out_dir / "reads_solution" / "executed.ipynb", as_version=4)
    printed = "".join(output.get("text", "") for cell in executed.cells for output in cell.get("outputs", []))
    assert "found [] refused" in printed, printed[:500]


# ---------------------------------------------------------------- the source scan

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
    assert scanned("get_ipython().events.register('post_execute', print)")[0][1] is True
    assert scanned("import matplotlib._pylab_helpers as helpers")[0][1] is True
    assert scanned("f = g.__code__.replace(co_filename='torch/__init__.py')")[0][1] is True
    assert scanned("shell = get_ipython()\np = getattr(shell, 'display' + '_pub')") == [
        ("the notebook uses interpreter hooks: attribute name assembled from pieces (cell 1)", False)]
    assert scanned("optimizer = getattr(torch.optim, 'Adam')\nvalue = getattr(record, name)") == []
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
