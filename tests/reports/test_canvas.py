"""OUT/canvas_gradebook.csv: Canvas's gradebook-import layout, ids from Canvas download names or a roster."""
import csv
import logging
from pathlib import Path

import pytest

from autograder.reports import canvas
from autograder.discover import discover
from autograder.scoring import load_rubric

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def rubric():
    return load_rubric(ROOT / "autograder" / "rubric.yaml")


@pytest.fixture()
def submissions(tmp_path):
    folder = tmp_path / "submissions"
    folder.mkdir()
    for name in ("lovelaceada_12345_999_Assignment1.ipynb", "turingalan_LATE_678_1000_lab.ipynb",
                 "Assignment1 Grace Hopper.ipynb", "Assignment1 =cmd.ipynb"):
        (folder / name).write_text("{}")
    return discover(folder)


def rows_for(submissions, scores: dict[str, tuple[str, float]]):
    return [{"submission": s.submission_id, "display_name": s.display_name, "status": scores[s.submission_id][0],
             "score": scores[s.submission_id][1], "max_score": 200.0} for s in submissions]


def read(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


def test_canvas_user_id_from_download_names(submissions):
    ids = {s.submission_id: canvas.canvas_user_id(s) for s in submissions}
    assert ids == {"lovelaceada": "12345", "turingalan": "678", "Grace_Hopper": "", "cmd": ""}


def test_layout_canvas_imports(tmp_path, submissions, rubric, caplog):
    scores = {"lovelaceada": ("ok", 187.5), "turingalan": ("error", 0.0), "Grace_Hopper": ("timeout", 12.0),
              "cmd": ("ok", 100.0)}
    with caplog.at_level(logging.WARNING, logger="autograder"):
        canvas.write_canvas_gradebook(tmp_path / "canvas.csv", rows_for(submissions, scores), submissions, rubric,
                                      assignment="Lab: Autoencoders, PCA and VAEs (4711)")
    table = read(tmp_path / "canvas.csv")
    assert table[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section",
                        "Lab: Autoencoders, PCA and VAEs (4711)"]
    assert table[1] == ["    Points Possible", "", "", "", "", "250"]          # 220 automatic + 30 written
    body = {row[0]: row for row in table[2:]}
    assert body["lovelaceada"] == ["lovelaceada", "12345", "", "", "", "187.5"]
    assert body["turingalan"][1:] == ["678", "", "", "", ""]                     # grader error: left unchanged
    assert body["Grace Hopper"][1:] == ["", "", "", "", "12"]
    assert "'=cmd" in body                                                       # a formula is never evaluated
    assert "no Canvas id for cmd, Grace_Hopper" in caplog.text


def test_default_column_is_the_rubric_title(tmp_path, submissions, rubric):
    scores = {s.submission_id: ("ok", 1.0) for s in submissions}
    canvas.write_canvas_gradebook(tmp_path / "canvas.csv", rows_for(submissions, scores), submissions, rubric)
    assert read(tmp_path / "canvas.csv")[0][5] == rubric.title


def test_roster_fills_ids_by_canvas_id_then_name(tmp_path, submissions, rubric, caplog):
    roster = tmp_path / "export.csv"
    roster.write_text("\ufeffStudent,ID,SIS User ID,SIS Login ID,Section,Old Quiz (12)\n"
                      "    Points Possible,,,,,10\n"
                      '"Lovelace, Ada",12345,S1,alovelace,Lab A,9\n'
                      '"Hopper, Grace",555,S3,ghopper,Lab B,7\n'
                      '"Turing, Alan",678,S2,aturing,Lab A,8\n', encoding="utf-8")
    scores = {s.submission_id: ("ok", 150.0) for s in submissions}
    with caplog.at_level(logging.WARNING, logger="autograder"):
        canvas.write_canvas_gradebook(tmp_path / "canvas.csv", rows_for(submissions, scores), submissions, rubric,
                                      roster=roster)
    body = {row[1]: row for row in read(tmp_path / "canvas.csv")[2:]}
    assert body["12345"] == ["Lovelace, Ada", "12345", "S1", "alovelace", "Lab A", "150"]
    assert body["555"] == ["Hopper, Grace", "555", "S3", "ghopper", "Lab B", "150"]     # "Grace Hopper" by name
    assert body["678"][:4] == ["Turing, Alan", "678", "S2", "aturing"]
    assert body[""][0] == "'=cmd"                                                      # no match: ids left blank
    assert "no Canvas id for cmd" in caplog.text


def test_bad_roster_says_what_to_pass(tmp_path):
    bad = tmp_path / "grades.csv"
    bad.write_text("name,points\nada,3\n")
    with pytest.raises(canvas.CanvasError, match=r"missing column\(s\) Student, ID .* exported from the Canvas"):
        canvas.read_roster(bad)
    with pytest.raises(canvas.CanvasError, match="cannot be read"):
        canvas.read_roster(tmp_path / "nope.csv")


def test_name_keys_match_canvas_sortable_names():
    assert canvas.name_keys("Lovelace, Ada") == {"lovelaceada", "adalovelace"}
    assert canvas.name_keys("lovelaceada") <= canvas.name_keys("Lovelace, Ada")
    assert canvas.name_keys("Ada Lovelace") <= canvas.name_keys("Lovelace, Ada")
    assert canvas.match_roster("Ada", "", [canvas.RosterEntry("Lovelace, Ada", "1")]) is None
