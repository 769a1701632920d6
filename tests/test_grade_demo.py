"""`make grade` end to end on the bundled demo class: every stage, one batch, each mistake graded as it should be."""
import csv
import json
import time
from pathlib import Path

import pytest

from autograder.lab import demo
from autograder.execution.limits import Limits
from autograder.pipeline import GradeSettings, grade_class
from autograder.results import ROW_FILE
from autograder.lab.profiles import TINY
from autograder.scoring import load_rubric

ROOT = Path(__file__).resolve().parents[1]
RUBRIC = ROOT / "autograder" / "rubric.yaml"

# What each student's feedback must say about their mistake.
FEEDBACK_NAMES_MISTAKE = {
    "kl_summed_over_batch": "summed over the batch",
    "logvar_as_std": "standard deviation",
    "recon_per_pixel_mean": "784 times too much",
    "z_equals_mu": "no sampling",
    "wrong_figures": "10x10",
    "exception_halfway": "ValueError: shapes do not match",
}


def settings_for(out_dir: Path) -> GradeSettings:
    return GradeSettings(out_dir=out_dir, rubric_path=RUBRIC, data_dir=ROOT / "data_cache", sandbox="auto",
                         profile_name="tiny", profile=dict(TINY),
                         limits=Limits(cell_timeout_s=120, notebook_timeout_s=300))


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("grades")
    rows = grade_class(demo.DEMO_DIR, settings_for(out_dir), jobs=2, progress=False)
    return out_dir, {row.submission: row for row in rows}


def full_points(rubric, item, flags):
    fraction = sum(penalty.fraction for name, penalty in rubric.penalties.items() if name in flags)
    return item.points * (1 - min(1.0, fraction))


def test_every_demo_student_has_a_row_and_a_report(graded):
    out_dir, rows = graded
    assert sorted(rows) == sorted(["Ada_Lovelace", "untouched_template", *demo.EXPECTED_LOSSES.keys() - {"Ada_Lovelace"}])
    with open(out_dir / "gradebook.csv", newline="") as handle:
        table = list(csv.reader(handle))
    rubric = load_rubric(RUBRIC)
    assert table[0] == ["submission", "status", "score", "max_score", *rubric.item_ids, *rubric.manual_ids]
    assert [line[0] for line in table[1:]] == sorted(rows, key=str.lower)
    for submission in rows:
        for name in ("results.json", "feedback.html", "executed.ipynb"):
            assert (out_dir / submission / name).is_file(), f"{submission}/{name} missing"
    with open(out_dir / "review" / "written_answers.csv", newline="", encoding="utf-8-sig") as handle:
        sheet = list(csv.DictReader(handle))
    assert len(sheet) == len(rows) * len(rubric.manual_items)
    assert {r["answer"].startswith("_Model answer._") for r in sheet if r["submission"] == "Ada_Lovelace"} == {True}
    assert len(list(csv.reader((out_dir / "canvas_gradebook.csv").open()))) == 2 + len(rows)


def test_solution_earns_every_point_and_template_almost_none(graded):
    _, rows = graded
    rubric = load_rubric(RUBRIC)
    assert rows["Ada_Lovelace"].status == "ok"
    # Every automatic point; the written answers await a TA's review (counted 0 until then).
    assert rows["Ada_Lovelace"].score == rubric.max_points
    assert rows["Ada_Lovelace"].max_score == rubric.max_points + rubric.manual_points
    assert rows["Ada_Lovelace"].awaiting_review == rubric.manual_ids
    assert "report_pdf_present" in rows["Ada_Lovelace"].flags
    assert rows["untouched_template"].score <= 0.05 * rows["untouched_template"].max_score


def test_each_mistake_loses_exactly_its_items(graded):
    _, rows = graded
    rubric = load_rubric(RUBRIC)
    for submission, expected in demo.EXPECTED_LOSSES.items():
        row = rows[submission]
        lost = {item.item_id for item in rubric.items
                if row.items[item.item_id] < full_points(rubric, item, row.flags) - 1e-9}
        assert lost == expected, f"{submission} lost {sorted(lost)}, expected {sorted(expected)}"


def test_feedback_names_each_mistake(graded):
    out_dir, _ = graded
    for submission, phrase in FEEDBACK_NAMES_MISTAKE.items():
        page = (out_dir / submission / "feedback.html").read_text()
        assert phrase in page, f"{submission}'s feedback does not say {phrase!r}"


def test_statuses_and_archive_penalty(graded):
    _, rows = graded
    assert rows["exception_halfway"].status == "cell_error"
    assert "archive_submission" in rows["exception_halfway"].flags
    assert rows["exception_halfway"].score < rows["exception_halfway"].max_score * 0.9
    for submission in ("kl_summed_over_batch", "logvar_as_std", "recon_per_pixel_mean", "z_equals_mu", "wrong_figures"):
        assert rows[submission].status == "ok", (submission, rows[submission].reason)


def test_results_json_is_gradescope_format_without_check_code(graded):
    out_dir, rows = graded
    checks_source = [line for path in sorted((ROOT / "autograder" / "checks").glob("*.py"))
                     for line in path.read_text().splitlines()]
    telling_lines = [line.strip() for line in checks_source if line.strip().startswith(("def ", "return "))]
    for submission in rows:
        text = (out_dir / submission / "results.json").read_text()
        results = json.loads(text)
        assert abs(results["score"] - rows[submission].score) < 1e-6
        assert all({"name", "score", "max_score", "visibility"} <= set(test) for test in results["tests"])
        assert not [line for line in telling_lines if len(line) > 20 and line in text]


def test_rerun_skips_unchanged_and_gives_the_same_scores(graded):
    out_dir, rows = graded
    stamps = {s: (out_dir / s / ROW_FILE).stat().st_mtime_ns for s in rows}
    started = time.monotonic()
    again = {row.submission: row for row in grade_class(demo.DEMO_DIR, settings_for(out_dir), jobs=2, progress=False)}
    assert time.monotonic() - started < 20, "unchanged submissions should not be executed again"
    assert {s: r.score for s, r in again.items()} == {s: r.score for s, r in rows.items()}
    assert {s: (out_dir / s / ROW_FILE).stat().st_mtime_ns for s in rows} == stamps


def test_demo_class_is_fresh(tmp_path):
    rebuilt = tmp_path / "demo"
    demo.build(rebuilt)
    committed = sorted(p.name for p in demo.DEMO_DIR.iterdir())
    assert sorted(p.name for p in rebuilt.iterdir()) == committed
    for name in committed:
        assert (rebuilt / name).read_bytes() == (demo.DEMO_DIR / name).read_bytes(), (
            f"autograder/lab/demo_class/{name} is stale: run `python -m autograder.lab.demo`")
