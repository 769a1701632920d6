"""Correct work written differently keeps every automatic point; each classic mistake loses points on its item with a
message that names it (autograder/lab/variants.py, generated from the master). One batch at the TINY profile, with
the reference; the same notebooks are judged at the GRADING profile by bench/calibrate.py."""
from __future__ import annotations

from pathlib import Path

import pytest

from autograder.execution.limits import GiB, Limits
from autograder.lab import variants
from autograder.lab.demo import filled_in_notebook, write_notebook
from autograder.lab.profiles import TINY
from autograder.pipeline import GradeSettings, grade_class

ROOT = Path(__file__).resolve().parents[2]
RUBRIC = ROOT / "autograder" / "rubric.yaml"
REFERENCE = "reference"


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    submissions = tmp_path_factory.mktemp("variants")
    built = variants.build(submissions)
    write_notebook(filled_in_notebook(), submissions / f"{REFERENCE}.ipynb")
    settings = GradeSettings(out_dir=tmp_path_factory.mktemp("variant-grades"), rubric_path=RUBRIC,
                             data_dir=ROOT / "data_cache", sandbox="auto", profile_name="tiny", profile=dict(TINY),
                             limits=Limits(cell_timeout_s=120, notebook_timeout_s=400, memory_bytes=3 * GiB))
    rows = {row.submission: row for row in grade_class(submissions, settings, jobs=2, progress=False)}
    return rows, built


def test_the_reference_earns_every_automatic_point(graded):
    rows, _ = graded
    reference = rows[REFERENCE]
    missed = {s.item_id: (s.points, s.message) for s in reference.item_scores if s.points < s.max_points}
    assert not missed, missed


@pytest.mark.parametrize("name", [variant.name for variant in variants.VARIANTS])
def test_correct_work_written_differently_keeps_every_point(graded, name):
    rows, _ = graded
    row = rows[name]
    missed = {s.item_id: (s.points, s.message[:300]) for s in row.item_scores if s.points < s.max_points}
    assert row.status in ("ok", "cell_error") and not missed, (row.status, row.reason[:300], missed)
    assert not [flag for flag in row.flags if flag.startswith("integrity")], row.flags


@pytest.mark.parametrize("name", [mistake.name for mistake in variants.SINGLE_MISTAKES])
def test_a_single_mistake_loses_points_on_its_item_and_says_so(graded, name):
    rows, built = graded
    row, mistake = rows[name], built[name]
    scores = {s.item_id: s for s in row.item_scores}
    kept = {item: scores[item].points for item in mistake.loses if scores[item].points >= scores[item].max_points}
    assert not kept, kept
    messages = " ".join(scores[item].message for item in mistake.loses)
    assert mistake.words in messages, messages[:600]
