"""Reports: Gradescope results.json through otter's model, escaped self-contained feedback HTML, gradebook CSV, and
atomic writes."""
import base64
import csv
import inspect
import json
import struct
import zlib

import pytest

from autograder.checks import elbo
from autograder.reports import feedback, gradebook, results_json, writing
from autograder.results import ItemScore
from autograder.scoring import DEFAULT_RUBRIC, load_rubric

XSS = "<script>alert('pwned')</script>"


def item(item_id, points, max_points, visibility="visible", message="", title=None) -> ItemScore:
    return ItemScore(item_id=item_id, title=title or item_id.replace("_", " "), points=points, max_points=max_points,
                     visibility=visibility, message=message or f"message for {item_id}",
                     fraction=points / max_points if max_points else 0.0)


SCORES = [item("training_curves", 25, 25), item("latent_scatter", 12.5, 25, message="yours has 500 points"),
          item("kl_formula", 0, 6, "after_published", "you use the log-variance as a standard deviation"),
          item("pca", 10, 10, "hidden")]


def tiny_png() -> bytes:
    """A valid 1x1 grey PNG."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00\x80")) + chunk(b"IEND", b""))


# --- results.json ------------------------------------------------------------------------------------------------

def test_results_json_round_trips_with_gradescope_fields(tmp_path):
    path = tmp_path / "results.json"
    written = results_json.write_results_json(path, SCORES, status="ok", reason="")
    data = json.loads(path.read_text())
    assert data == written
    assert data["score"] == pytest.approx(47.5)
    assert data["stdout_visibility"] in results_json.GRADESCOPE_VISIBILITIES
    assert [t["name"] for t in data["tests"]] == [s.title for s in SCORES]
    for test, expected in zip(data["tests"], SCORES):
        assert (test["score"], test["max_score"]) == (expected.points, expected.max_points)
        assert test["visibility"] == expected.visibility
        assert test["output"] == expected.message
    assert data["tests"][0]["status"] == "passed" and data["tests"][1]["status"] == "failed"
    # the submission-level message totals only visible items: hidden scores stay hidden until published
    assert data["output"].startswith("Visible items: 37.5 / 50 (the other items are released with the grades)")


def test_results_json_never_contains_check_code(tmp_path):
    text = json.dumps(results_json.gradescope_dict(SCORES, "ok"))
    source = inspect.getsource(elbo.kl_closed_form)
    assert "def kl_closed_form" not in text and source[200:260] not in text
    assert '"body"' not in text and "import " not in text


def test_grader_error_uses_otters_failure_result():
    data = results_json.gradescope_dict([item("curve", 0, 25)], "error", "grader bug: KeyError 'x'")
    assert data["score"] == 0
    assert data["tests"][0]["name"] == "Autograder Failed" and data["tests"][0]["visibility"] == "visible"
    hidden = data["tests"][1]
    assert hidden["visibility"] == "hidden" and "grader bug: KeyError 'x'" in hidden["output"]


def test_failed_submission_lists_every_item_at_zero(tmp_path):
    zeros = [item(s.item_id, 0, s.max_points, message="the notebook ran past the time limit") for s in SCORES]
    data = results_json.write_results_json(tmp_path / "r.json", zeros, status="timeout", reason="ran past 600 s")
    assert data["score"] == 0 and len(data["tests"]) == len(SCORES)
    assert "timeout" in data["output"] and "ran past 600 s" in data["output"]


# --- feedback.html -----------------------------------------------------------------------------------------------

def render(**changes) -> str:
    options = dict(submission_id=f"x{XSS}", status="cell_error", reason="1 cell raised an error",
                   item_scores=SCORES + [item("evil", 0, 1, message=f"found {XSS}")],
                   cell_errors=[{"cell": 9, "student_cell": 6, "number": 7, "ename": "ModuleNotFoundError", "evalue": f"No module named '{XSS}'",
                                 "traceback": ["\x1b[0;31m---------\x1b[0m", f"File {XSS}.py line 3",
                                               "ModuleNotFoundError: No module named 'wandb'"]}],
                   figures_png=[(f"cell 4 {XSS}", tiny_png()), ("cell 5", b"GIF89a not a png")],
                   display_name=f"Ada {XSS}", sandbox="none", flags=["report_pdf_missing"])
    options.update(changes)
    return feedback.render_feedback_html(**options)


def test_feedback_escapes_everything_from_the_student():
    html = render()
    assert "<script" not in html
    assert html.count("&lt;script&gt;") >= 6      # name, id, message, traceback, error value, caption
    assert "\x1b" not in html                       # ANSI colours stripped from the traceback


def test_feedback_is_self_contained_with_embedded_thumbnails():
    html = render()
    assert "data:image/png;base64," + base64.b64encode(tiny_png()).decode() in html
    assert "cell 5: not a PNG image" in html
    assert "http://" not in html and "https://" not in html and "<link" not in html


def test_feedback_content_total_errors_hints_and_hidden_items():
    html = render()
    assert "47.5 / 67" in html
    assert "Cell 7" in html and "What to fix" in html and "pip" in html
    assert "without an operating-system sandbox" in html
    assert "No PDF report was found" in html
    assert "pca" not in html.split("Rubric")[1].split("hidden item")[0]   # the hidden item is not listed...
    assert "1 hidden item(s) worth 10" in html                              # ...but counted
    assert "without an operating-system sandbox" not in render(sandbox="bwrap")


def test_feedback_lists_the_notes_of_the_run_only_when_there_are_some():
    note = "Output was truncated in 2 cell(s) (more than 1.0 MiB in a cell); grading is unaffected."
    html = render(notes=[note, f"note {XSS}"])
    assert "Notes from the run" in html and note in html and "<script" not in html
    assert "Notes from the run" not in render()


def test_write_feedback_html_writes_the_page(tmp_path):
    path = feedback.write_feedback_html(tmp_path / "feedback.html", "ada", "ok", "", SCORES)
    assert path.read_text().startswith("<!DOCTYPE html>")


# --- gradebook.csv -----------------------------------------------------------------------------------------------

def test_gradebook_columns_and_sorted_rows(tmp_path):
    rubric = load_rubric(DEFAULT_RUBRIC)
    rows = [{"submission": "zed", "status": "ok", "score": 150.5, "max_score": 170,
             "items": {i.item_id: i.points for i in rubric.items}},
            {"submission": "=HYPERLINK(1)", "status": "invalid", "score": 0, "max_score": 170, "items": {}},
            {"submission": "amy", "status": "error", "score": 0.0, "max_score": 170,
             "items": {i.item_id: 0.0 for i in rubric.items}}]
    gradebook.write_gradebook_csv(tmp_path / "gradebook.csv", rows, rubric)
    table = list(csv.reader((tmp_path / "gradebook.csv").open()))
    assert table[0] == ["submission", "status", "score", "max_score"] + rubric.item_ids
    assert [r[0] for r in table[1:]] == ["'=HYPERLINK(1)", "amy", "zed"]       # sorted, formula defused
    assert table[1][1:4] == ["invalid", "0", "170"] and table[1][4:] == [""] * len(rubric.items)
    assert table[2][1] == "error"
    assert table[3][2] == "150.5" and table[3][4] == "25"


def test_gradebook_accepts_item_scores(tmp_path):
    rubric = load_rubric(DEFAULT_RUBRIC)
    gradebook.write_gradebook_csv(tmp_path / "g.csv", [{"submission": "a", "status": "ok", "max_score": 170,
                                                     "item_scores": SCORES[:2]}], rubric)
    row = list(csv.DictReader((tmp_path / "g.csv").open()))[0]
    assert (row["score"], row["training_curves"], row["latent_scatter"], row["pca"]) == ("37.5", "25", "12.5", "")


# --- atomic writes -----------------------------------------------------------------------------------------------

class Explodes:
    def __str__(self):
        raise RuntimeError("disk full")


def test_a_writer_failing_midway_leaves_the_previous_file(tmp_path):
    rubric = load_rubric(DEFAULT_RUBRIC)
    path = tmp_path / "gradebook.csv"
    path.write_text("previous\n")
    rows = [{"submission": "a", "status": "ok", "score": 1, "max_score": 170, "items": {}},
            {"submission": "b", "status": Explodes(), "score": 1, "max_score": 170, "items": {}}]
    with pytest.raises(RuntimeError, match="disk full"):
        gradebook.write_gradebook_csv(path, rows, rubric)
    assert path.read_text() == "previous\n"
    assert [p.name for p in tmp_path.iterdir()] == ["gradebook.csv"]          # no temporary file left


def test_atomic_write_never_creates_a_partial_file(tmp_path):
    def half(f):
        f.write("half of it")
        raise OSError("killed")
    with pytest.raises(OSError):
        writing.atomic_write(tmp_path / "new.json", half)
    assert list(tmp_path.iterdir()) == []


def test_fix_hints_come_from_the_error_not_from_the_code_shown():
    shape_in_code = {"cell": 3, "ename": "AssertionError", "evalue": "wrong values",
                     "traceback": ["assert reconstructed.shape == data.shape", "AssertionError: wrong values"]}
    layer = {"cell": 4, "ename": "RuntimeError", "evalue": "mat1 and mat2 shapes cannot be multiplied (1x784 and 2x512)",
             "traceback": []}
    html = feedback.render_feedback_html("s", "cell_error", "", SCORES, [shape_in_code, layer])
    assert html.count("What to fix") == 1 and "flatten images to (batch, 784)" in html


def test_penalties_are_stated_once(tmp_path):
    note = "Submitted as an archive (10% penalty)."
    penalised = [ItemScore(**{**s.to_dict(), "points": s.points * 0.9, "penalties": [note]}) for s in SCORES]
    data = results_json.gradescope_dict(penalised, "ok")
    assert data["output"].count(note) == 1 and all(note not in t["output"] for t in data["tests"])
    html = feedback.render_feedback_html("s", "ok", "", penalised, flags=["archive_submission"])
    assert html.count(note) == 1 and "after penalty" in html


def test_reports_are_readable_by_others_not_private_temp_files(tmp_path):
    # Bug: atomic writes renamed a mkstemp file (mode 0600) over the report, so a TA's web server could not read it.
    path = writing.atomic_write_text(tmp_path / "feedback.html", "<p>ok</p>")
    assert path.stat().st_mode & 0o777 == writing.REPORT_FILE_MODE == 0o644


def test_an_unfinished_task_gets_a_hint_naming_it():
    # The template's TODOs raise NotImplementedError("Task 2b: ..."): the hint says to fill in that task.
    todo = {"cell": 12, "ename": "NotImplementedError", "evalue": "Task 2b: the PCA figure", "traceback": []}
    html = feedback.render_feedback_html("s", "cell_error", "", SCORES, [todo])
    assert "still the template&#39;s TODO: the error names the task" in html
    assert feedback.hint_for("NotImplementedError", "") == ""       # a student's own NotImplementedError: no hint
