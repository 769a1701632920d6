"""Issue 16, point 2: no submission name can produce a path that is one of the run's own outputs or another
submission's, and every re-run of the same folder works (also over an OUT folder an older version broke)."""
from __future__ import annotations

import csv
from pathlib import Path

from autograder.discover import discover
from autograder.execution.limits import Limits
from autograder.lab.profiles import TINY
from autograder.pipeline import GradeSettings, grade_class
from autograder.results import GRADEBOOK_CSV, OUT_NAMES, REVIEW_DIR

ROOT = Path(__file__).resolve().parents[1]
NAMES = [f"Assignment1 {name}.ipynb" for name in OUT_NAMES] + [
    "gradebook.csv.ipynb", "Review.ipynb", "summary.html.ipynb", "grading.log.ipynb", ".probe_secret.ipynb",
    "Ada.ipynb", "ada.ipynb", "ADA.zip", "Ada-2.ipynb", "Ada_2.ipynb", "CON.ipynb", "nul.ipynb", "..ipynb",
    "-rf.ipynb", "a.b.c.ipynb", "a_b_c.ipynb", "Assignment1 Zoë.ipynb", "Assignment1 Zoe.ipynb", "日本.ipynb",
    "submission.ipynb", "x" * 200 + ".ipynb", "x" * 201 + ".ipynb"]
SUBMISSIONS = len([name for name in NAMES if not name.startswith(".")])     # hidden files are not submissions


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "submissions"
    folder.mkdir()
    for name in NAMES:
        (folder / name).write_text("not a notebook")          # invalid: nothing runs, every report is written
    return folder


def _settings(out_dir: Path) -> GradeSettings:
    return GradeSettings(out_dir=out_dir, rubric_path=ROOT / "autograder" / "rubric.yaml",
                         data_dir=ROOT / "data_cache", sandbox="none", profile_name="tiny", profile=dict(TINY),
                         limits=Limits())


def test_ids_are_unique_and_never_an_output_name(tmp_path):
    ids = [s.submission_id for s in discover(_folder(tmp_path))]
    lowered = [i.lower() for i in ids]
    assert len(set(lowered)) == len(ids) == SUBMISSIONS
    reserved = {name.lower() for name in OUT_NAMES}
    for submission_id in ids:
        assert submission_id.lower() not in reserved
        assert "." not in submission_id and "/" not in submission_id and submission_id[:1].isalnum()
        assert len(submission_id) <= 90


def test_every_rerun_of_the_same_folder_works(tmp_path):
    folder, out_dir = _folder(tmp_path), tmp_path / "out"
    for _ in range(2):
        rows = grade_class(folder, _settings(out_dir), progress=False)
        assert len(rows) == SUBMISSIONS
        assert (out_dir / GRADEBOOK_CSV).is_file() and (out_dir / REVIEW_DIR).is_dir()
        with open(out_dir / GRADEBOOK_CSV, newline="", encoding="utf-8") as handle:
            assert sorted(line["submission"] for line in csv.DictReader(handle)) == sorted(r.submission for r in rows)
        for row in rows:
            assert (out_dir / row.submission / "feedback.html").is_file()


def test_a_rerun_over_an_out_folder_broken_by_an_older_version_works(tmp_path):
    folder, out_dir = _folder(tmp_path), tmp_path / "out"
    (out_dir / GRADEBOOK_CSV).mkdir(parents=True)       # what `Assignment1 gradebook.csv.ipynb` used to make
    (out_dir / GRADEBOOK_CSV / "row.json").write_text("{}")
    (out_dir / REVIEW_DIR).write_text("a file where the review folder goes")
    rows = grade_class(folder, _settings(out_dir), progress=False)
    assert (out_dir / GRADEBOOK_CSV).is_file() and len(rows) == SUBMISSIONS
    assert (out_dir / REVIEW_DIR).is_dir()
    assert any(path.name.startswith(f"{GRADEBOOK_CSV}.moved-") for path in out_dir.iterdir())
