"""The course around the grader, end to end with execution replaced by a counter and every check at full marks:
late work from each source of submission times, extensions, a policy change that re-executes nothing, `--only`, and
the release before and after publishing."""
import csv
import json
import logging
import shutil
from pathlib import Path

import nbformat
import pytest

from autograder import scoring
from autograder.execution.limits import Limits
from autograder.lab.profiles import TINY
from autograder.pipeline import GradeSettings, grade_class, release_class
from autograder.results import ROW_FILE, ItemScore
from tests.copying_execution import copy_instead_of_executing

ROOT = Path(__file__).resolve().parents[1]
RUBRIC = ROOT / "autograder" / "rubric.yaml"
TEMPLATE = ROOT / "student_template" / "lab.ipynb"
DEADLINE = 'deadline: "2026-03-13T23:59:00+01:00"'
GRADESCOPE_EXPORT = """\
submission_7:
  :submitters:
  - :name: Cy Gradescope
  :created_at: 2026-03-14 10:00:00.000000000 +01:00
"""
# The default policy (rubric.yaml): 10% per started day, at most 50%, nothing after 7 days, 15 minutes of grace,
# 10% when marked late with no time known.
EXPECTED = {   # submission -> (late column, share of the points kept)
    "Amy_OnTime": ("on time", 1.0),                       # times CSV, before the deadline
    "bob": ("2 days late (-20%)", 0.8),                    # timestamp.txt: 1 day 2.5 hours late
    "Cy_Gradescope": ("1 day late (-10%)", 0.9),           # Gradescope's export: 10 hours late
    "dunndee": ("late, time unknown (-10%)", 0.9),         # Canvas's late marker, no time
    "earleve": ("8 days late (-100%)", 0.0),               # Canvas's marker and a time in the CSV: 7.5 days late
    "Fay_Extended": ("on time (extension)", 1.0),          # 1.5 days late, extension of 3 days
    "Gus_NoTime": ("no time (on time)", 1.0),              # nothing known: on time, said so
    "Hal_Capped": ("6 days late (-50%)", 0.5),             # 5.5 days late: 60% capped at 50%
}


@pytest.fixture
def counted(monkeypatch):
    """Execution replaced by a counter (the notebook copied as executed); every check at full marks."""
    calls = copy_instead_of_executing(monkeypatch)

    def full_marks(rubric, artefacts, probe_inputs, **_):
        return [ItemScore(i.item_id, i.title, i.points, i.points, i.visibility, f"{i.item_id} is right", 1.0, i.check)
                for i in rubric.items]

    monkeypatch.setattr(scoring, "score", full_marks)
    return calls


def notebook() -> str:
    """The template with every written answer filled in."""
    filled = nbformat.read(TEMPLATE, as_version=4)
    for cell in filled.cells:
        if cell.cell_type == "markdown" and "otter_answer_cell" in cell.metadata.get("tags", []):
            cell.source = "The runs differ by a rotation of the codes."
    return nbformat.writes(filled)


@pytest.fixture
def course(tmp_path):
    """A class with every source of submission times, a CSV of times, extensions and a rubric with a deadline."""
    subs = tmp_path / "class"
    subs.mkdir()
    for name in ("Assignment1 Amy OnTime", "dunndee_LATE_4242_77_lab", "earleve_LATE_4343_78_lab",
                 "Assignment1 Fay Extended", "Assignment1 Gus NoTime", "Assignment1 Hal Capped"):
        (subs / f"{name}.ipynb").write_text(notebook())
    for folder, extra in (("bob", ("timestamp.txt", "2026-03-15 01:30:00.000000 UTC\n")), ("submission_7", None)):
        (subs / folder).mkdir()
        (subs / folder / "lab.ipynb").write_text(notebook())
        if extra:
            (subs / folder / extra[0]).write_text(extra[1])
    (subs / "submission_metadata.yml").write_text(GRADESCOPE_EXPORT)
    times = tmp_path / "times.csv"
    times.write_text("submission,submitted_at\nAmy OnTime,2026-03-13 22:00\nearleve,2026-03-21 12:00\n"
                     "Fay_Extended,2026-03-15 12:00\nHal_Capped,2026-03-19 12:00\n")
    extensions = tmp_path / "extensions.csv"
    extensions.write_text("submission,deadline\nFay Extended,2026-03-16T23:59:00+01:00\n")
    rubric = tmp_path / "rubric.yaml"
    rubric.write_text(RUBRIC.read_text().replace("deadline: null", DEADLINE, 1))
    settings = GradeSettings(out_dir=tmp_path / "out", rubric_path=rubric, data_dir=ROOT / "data_cache",
                             sandbox="none", profile_name="tiny", profile=dict(TINY), limits=Limits(),
                             extensions=extensions, submission_times=times)
    return subs, settings


def gradebook(out: Path) -> dict:
    with open(out / "gradebook.csv", newline="", encoding="utf-8") as handle:
        return {row["submission"]: row for row in csv.DictReader(handle)}


def test_late_work_from_every_source(counted, course):
    subs, settings = course
    rows = {r.submission: r for r in grade_class(subs, settings, progress=False)}
    automatic = scoring.load_rubric(settings.rubric_path).max_points
    assert {s: (r.lateness.label, round(r.score / automatic, 4)) for s, r in rows.items()} == EXPECTED
    table = gradebook(settings.out_dir)
    header = list(next(iter(table.values())))
    assert header[:6] == ["submission", "status", "score", "max_score", "late", "submitted_at"]
    assert {s: table[s]["late"] for s in table} == {s: label for s, (label, _) in EXPECTED.items()}
    assert table["bob"]["submitted_at"] == "2026-03-15T01:30:00+00:00" and table["Gus_NoTime"]["submitted_at"] == ""
    assert float(table["bob"]["training_curves"]) == 20.0                   # 25 points, 20% removed
    page = (settings.out_dir / "bob" / "feedback.html").read_text()
    assert "1 day 2 hours after the deadline (2026-03-13 23:59 +01:00): 2 started days late, so 20% of every item" \
           in page and page.count("20% of every item") == 1 and "after penalty" in page
    assert "your extended deadline" in (settings.out_dir / "Fay_Extended" / "feedback.html").read_text()
    assert "rule for an unknown time" in (settings.out_dir / "dunndee" / "feedback.html").read_text()
    results = json.loads((settings.out_dir / "earleve" / "results.json").read_text())
    assert results["score"] == 0 and "no points are given" in results["output"]
    summary = (settings.out_dir / "summary.html").read_text()
    assert "Late: 5 submission(s), 5 with points removed by the late policy" in summary
    assert "6 days late (-50%)" in summary


def test_policy_change_and_ta_scores_rescore_without_running_anything(counted, course):
    subs, settings = course
    grade_class(subs, settings, progress=False)
    assert len(counted) == len(EXPECTED)
    stamps = {s: (settings.out_dir / s / ROW_FILE).stat().st_mtime_ns for s in EXPECTED}
    rubric = settings.rubric_path
    rubric.write_text(rubric.read_text().replace("per_day: 0.1 ", "per_day: 0.25", 1))
    sheet = settings.out_dir / "review" / "written_answers.csv"
    with open(sheet, newline="", encoding="utf-8-sig") as handle:
        records = list(csv.DictReader(handle))
    for record in records:
        if record["question"] == "q1_autoencoder_runs":
            record["score"] = "3"
    with open(sheet, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows(records)
    rows = {r.submission: r for r in grade_class(subs, settings, progress=False)}
    assert len(counted) == len(EXPECTED), "a late policy or a TA's score must not run a notebook again"
    assert {s: (settings.out_dir / s / ROW_FILE).stat().st_mtime_ns for s in EXPECTED} == stamps
    assert rows["bob"].lateness.label == "2 days late (-50%)"                  # 2 x 25%
    assert rows["Cy_Gradescope"].lateness.fraction == 0.25
    assert rows["bob"].items["q1_autoencoder_runs"] == 1.5                     # the TA's 3 points, 50% removed
    assert rows["Amy_OnTime"].items["q1_autoencoder_runs"] == 3.0


def test_only_regrades_those_and_keeps_every_other_row(counted, course, caplog):
    subs, settings = course
    first = {r.submission: r for r in grade_class(subs, settings, progress=False)}
    before = gradebook(settings.out_dir)
    stamps = {s: (settings.out_dir / s / ROW_FILE).stat().st_mtime_ns for s in first}
    settings.only = ("bob",)
    with caplog.at_level(logging.INFO, logger="autograder"):
        rows = grade_class(subs, settings, progress=False)
    assert len(counted) == len(EXPECTED) + 1 and len(rows) == len(EXPECTED)
    assert "bob: regrading (--only): asked for by name; same notebook and settings as the last run" in caplog.text
    assert "kept from the last run, not regraded (--only): Amy_OnTime, Cy_Gradescope" in caplog.text
    assert gradebook(settings.out_dir) == before
    assert all((settings.out_dir / s / ROW_FILE).stat().st_mtime_ns == stamps[s] for s in stamps if s != "bob")

    # A folder holding one student never shrinks the gradebook to one row.
    alone = subs.parent / "resubmitted"
    alone.mkdir()
    shutil.copytree(subs / "bob", alone / "bob")
    changed = nbformat.reads(notebook(), as_version=4)
    changed.cells.append(nbformat.v4.new_markdown_cell("Resubmitted after the deadline."))
    nbformat.write(changed, alone / "bob" / "lab.ipynb")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="autograder"):
        rows = grade_class(alone, settings, progress=False)
    assert "which is no submission of this batch" not in caplog.text     # the CSVs name kept students too
    assert len(rows) == len(EXPECTED) and len(gradebook(settings.out_dir)) == len(EXPECTED)
    assert "bob: regrading (--only): asked for by name; its notebook or the grading settings changed" in caplog.text
    assert {r.submission: r.lateness.label for r in rows} == {s: label for s, (label, _) in EXPECTED.items()}
    sheet = (settings.out_dir / "review" / "written_answers.csv").read_text(encoding="utf-8-sig")
    assert len(sheet.strip().splitlines()) == 1 + len(EXPECTED) * 10          # every student's answers still listed
    canvas = (settings.out_dir / "canvas_gradebook.csv").read_text()
    assert "4242" in canvas and "4343" in canvas                               # kept rows keep their Canvas ids
    settings.only = ("nobody",)
    with pytest.raises(ValueError, match="--only nobody: no such submission"):
        grade_class(subs, settings, progress=False)

    # Without --only too: the student in the folder is graded (here: from the cache), the others are kept and named.
    settings.only = ()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="autograder"):
        rows = grade_class(alone, settings, progress=False)
    assert len(rows) == len(EXPECTED) and "kept 7 row(s) of earlier runs whose submissions are not in" in caplog.text
    assert len(counted) == len(EXPECTED) + 2


def test_release_before_and_after_publishing(counted, course):
    subs, settings = course
    grade_class(subs, settings, progress=False)
    rubric = scoring.load_rubric(settings.rubric_path)
    later = [item for item in rubric.items if item.visibility == "after_published"]
    assert later, "the default rubric releases some items with the grades"
    done = release_class(settings.out_dir, settings.rubric_path, publish=False, pdf=False)
    assert done["students"] == len(EXPECTED) and done["pdfs"] == 0
    release = settings.out_dir / "release"
    page = (release / "Amy_OnTime" / "feedback.html").read_text()
    shown = sum(i.points for i in rubric.items if i.visibility == "visible")
    assert f"{shown:g} / {shown + rubric.manual_points:g}" in page
    assert page.count("released later") >= len(later) and f"{later[0].item_id} is right" not in page
    assert "written answer(s) worth 30 points await review" in page
    assert (release / "Amy_OnTime.zip").is_file() and "Amy_OnTime" in (release / "index.html").read_text()

    release_class(settings.out_dir, settings.rubric_path, publish=True, pdf=False)
    page = (release / "Amy_OnTime" / "feedback.html").read_text()
    assert "released later" not in page and f"{later[0].item_id} is right" in page
    assert f"{rubric.max_points:g} / {rubric.max_points + rubric.manual_points:g}" in page
    bob = (release / "bob" / "feedback.html").read_text()
    assert "2 started days late, so 20% of every item" in bob
    results = json.loads((settings.out_dir / "Amy_OnTime" / "results.json").read_text())
    assert {t["visibility"] for t in results["tests"]} == {"visible", "after_published"}   # as Gradescope shows them


def test_summary_percentage_counts_only_what_is_graded(counted, course):
    subs, settings = course
    grade_class(subs, settings, progress=False)
    summary = (settings.out_dir / "summary.html").read_text()
    assert "80 written answer(s) worth 240 points, in 8 submission(s), await review" in summary
    assert ">100%<" in summary                                                 # Amy: 200 of the 200 graded points
    assert "30 pts await review" in summary
