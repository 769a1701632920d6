"""Class summary: the numbers behind the plots, the self-contained page, and its place at the end of grade_class."""
import base64
import logging
import re
from pathlib import Path

import pytest

from autograder import pipeline
from autograder.reports import similarity, summary
from autograder.scoring import parse_rubric

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

RUBRIC = parse_rubric({
    "title": "Tiny <lab>",
    "penalties": {"archive_submission": {"fraction": 0.1, "message": "archive"}},
    "items": [
        {"id": "curves", "title": "Training curves ($\\beta$ costs)", "points": 10, "visibility": "visible",
         "check": "figure_training_curve"},
        {"id": "kl", "title": "KL divergence", "points": 4, "visibility": "hidden", "check": "kl_closed_form"},
    ],
})


def row(submission, status="ok", curves=10.0, kl=4.0, duration=5.0, flags=(), reason=""):
    items = {"curves": curves, "kl": kl}
    return {"submission": submission, "display_name": submission.replace("_", " "), "status": status,
            "reason": reason, "score": curves + kl, "max_score": 14.0, "items": items, "flags": list(flags),
            "duration_s": duration, "sandbox": "bwrap", "cache_key": "k"}


ROWS = [
    row("ada", duration=12.0),
    row("bob_archive", curves=9.0, kl=3.6, flags=["archive_submission"], duration=30.0),   # full, after penalty
    row("cy", curves=5.0, kl=0.0, duration=8.0),
    row("dee", status="cell_error", curves=0.0, kl=4.0, duration=20.0),
    row("eve", status="timeout", curves=0.0, kl=0.0, duration=600.0, reason="ran past the <b>time</b> limit"),
    row("fay", status="invalid", curves=0.0, kl=0.0, duration=0.1, reason="not a notebook"),
]


def test_item_outcomes_count_graded_rows_and_respect_penalties():
    stats = summary.summarise(ROWS, RUBRIC)
    assert stats["count"] == 6 and stats["graded"] == 4           # ok and cell_error only
    curves, kl = stats["items"]
    assert (curves["full"], curves["partial"], curves["zero"]) == (2, 1, 1)   # bob's 9 of 10 is full after the 10%
    assert curves["pass_rate"] == pytest.approx(0.5)
    assert (kl["full"], kl["partial"], kl["zero"]) == (3, 0, 1)
    assert kl["pass_rate"] == pytest.approx(0.75)


def test_status_counts_scores_and_slowest():
    stats = summary.summarise(ROWS, RUBRIC)
    counts = dict(stats["statuses"])
    assert counts["ok"] == 3 and counts["cell_error"] == 1 and counts["timeout"] == 1 and counts["invalid"] == 1
    assert counts["kernel_died"] == 0
    assert [name for name, _, _ in stats["slowest"]][:3] == ["eve", "bob_archive", "dee"]
    assert stats["mean"] == pytest.approx(sum(r["score"] for r in ROWS) / 6)
    assert stats["max_points"] == 14


def test_rows_as_read_from_gradebook_csv_are_accepted():
    """gradebook.csv cells are strings, blank where a row has no value; no duration, flags or names."""
    rows = [{"submission": "ada", "status": "ok", "score": "14", "max_score": "14", "items": {"curves": "10",
                                                                                            "kl": "4"}},
            {"submission": "bo", "status": "ok", "score": "", "max_score": "14", "items": {"curves": "", "kl": "4"}}]
    stats = summary.summarise(rows, RUBRIC)
    assert stats["items"][0]["full"] == 1 and stats["items"][0]["zero"] == 1
    assert stats["slowest"] == [] and stats["scores"] == [14.0]
    page = summary.render_summary_html(rows, RUBRIC)
    assert "No timings recorded" in page


def test_page_is_self_contained_escaped_and_links_existing_feedback(tmp_path):
    for name in ("ada", "bob_archive", "cy", "dee", "eve"):          # fay has no feedback page
        (tmp_path / name).mkdir()
        (tmp_path / name / "feedback.html").write_text("<!DOCTYPE html><title>f</title>")
    (tmp_path / "gradebook.csv").write_text("submission\n")
    path = summary.write_summary_html(tmp_path / "summary.html", ROWS, RUBRIC)
    page = path.read_text(encoding="utf-8")
    images = re.findall(r'<img src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 4 and all(base64.b64decode(data).startswith(PNG_MAGIC) for data in images)
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", page)
    links = re.findall(r'href="([^"#]+)"', page)
    assert sorted(links) == sorted(["ada/feedback.html", "bob_archive/feedback.html", "cy/feedback.html",
                                    "dee/feedback.html", "eve/feedback.html", "gradebook.csv"])
    assert all((tmp_path / link).is_file() for link in links)
    assert "fay <span class=\"muted\">(no feedback page)</span>" in page
    assert "ran past the &lt;b&gt;time&lt;/b&gt; limit" in page and "<b>time" not in page
    assert "Tiny &lt;lab&gt;" in page
    assert "50%" in page and "75%" in page                             # the pass rates in the item table
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".summary*"))


def test_written_answers_awaiting_review_are_not_counted_as_failed():
    rubric = parse_rubric({
        "title": "With written answers",
        "items": [{"id": "kl", "title": "KL", "points": 4, "visibility": "visible", "check": "kl_closed_form"}],
        "manual_items": [{"id": "q1", "heading": "Question 1", "points": 3, "title": "Question 1: why"}],
    })
    rows = [{**row("ada"), "items": {"kl": 4.0, "q1": 3.0}, "awaiting_review": []},
            {**row("bo"), "items": {"kl": 4.0, "q1": 0.0}, "awaiting_review": []},
            {**row("cy"), "items": {"kl": 4.0}, "awaiting_review": ["q1"]},
            {**row("di"), "items": {"kl": 0.0}, "awaiting_review": ["q1"]}]
    stats = summary.summarise(rows, rubric)
    kl, q1 = stats["items"]
    assert not kl["written"] and (kl["full"], kl["zero"]) == (3, 1)
    assert q1["written"] and (q1["full"], q1["zero"], q1["awaiting"]) == (1, 1, 2)
    assert q1["pass_rate"] == pytest.approx(0.5)                   # among the two answers scored so far
    assert stats["max_points"] == 7
    page = summary.render_summary_html(rows, rubric)
    assert "Awaiting review" in page and "written answer" in page


def test_empty_class_gives_a_page_without_plots(tmp_path):
    page = summary.render_summary_html([], RUBRIC, tmp_path)
    assert "No submissions were found" in page and "<img" not in page


def test_a_failing_report_is_logged_and_the_other_still_written(tmp_path, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("similarity exploded")

    monkeypatch.setattr(similarity, "write_similarity_report", broken)
    with caplog.at_level(logging.ERROR, logger="autograder"):
        pipeline.write_class_reports(tmp_path, [], ROWS, RUBRIC)
    assert (tmp_path / "summary.html").is_file()
    assert not (tmp_path / "similarity.html").exists()
    assert "similarity.html could not be written" in caplog.text and "similarity exploded" in caplog.text

    monkeypatch.undo()
    monkeypatch.setattr(summary, "write_summary_html", broken)
    (tmp_path / "summary.html").unlink()
    pipeline.write_class_reports(tmp_path, [], ROWS, RUBRIC)
    assert (tmp_path / "similarity.html").is_file() and not (tmp_path / "summary.html").exists()


def test_grade_class_writes_both_pages_after_the_gradebook(tmp_path, monkeypatch):
    """grade_class writes both pages, and calls them with its rows once gradebook.csv is on disk."""
    from autograder.execution.limits import Limits
    from autograder.lab.profiles import TINY

    submissions = tmp_path / "subs"
    submissions.mkdir()
    (submissions / "broken.ipynb").write_text("not a notebook")      # graded as invalid without running anything
    settings = pipeline.GradeSettings(out_dir=tmp_path / "out", rubric_path=Path(pipeline.__file__).with_name(
        "rubric.yaml"), data_dir=tmp_path, sandbox="none", profile_name="tiny", profile=dict(TINY),
        limits=Limits())
    seen = {}

    def record(out_dir, subs, rows, rubric, *rest):
        seen["gradebook_written"] = (out_dir / "gradebook.csv").is_file()
        seen["rows"] = rows

    rows = pipeline.grade_class(submissions, settings, progress=False)
    assert rows[0].status == "invalid"
    assert (settings.out_dir / "summary.html").is_file() and (settings.out_dir / "similarity.html").is_file()
    assert "broken" in (settings.out_dir / "similarity.html").read_text()

    # the command line rebuilds the page from the OUT folder
    (settings.out_dir / "summary.html").unlink()
    assert summary.main([str(settings.out_dir)]) == 0
    rebuilt = summary.rows_from_out_dir(settings.out_dir)
    assert [(r["submission"], r["status"], r["display_name"]) for r in rebuilt] == [("broken", "invalid", "broken")]
    assert "broken/feedback.html" in (settings.out_dir / "summary.html").read_text()
    assert summary.main([str(tmp_path / "subs")]) == 2                  # no grades there: a message, not a page

    monkeypatch.setattr(pipeline, "write_class_reports", record)
    pipeline.grade_class(submissions, settings, progress=False)
    assert seen["gradebook_written"] and seen["rows"][0]["submission"] == "broken"
