"""When each submission came in: nbgrader's timestamp.txt, Gradescope's export, a CSV of times, Canvas's late marker;
extensions from a CSV. Clear errors for anything that cannot be read as a time."""
import logging
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from autograder.discover import discover, times
from autograder.discover.names import canvas_late, student_name

GRADESCOPE_EXPORT = """\
submission_101:
  :submitters:
  - :name: Ada Lovelace
    :sid: '1815'
    :email: ada@example.org
  :created_at: 2026-03-14 10:00:00.123456000 +01:00
  :score: 0.0
  :status: processed
submission_102: !ruby/hash:ActiveSupport::HashWithIndifferentAccess
  :submitters:
  - :name: Alan Turing
  - :name: Grace Hopper
  :created_at: '2026-03-13T20:00:00Z'
"""


def test_times_in_the_forms_lmss_write():
    plus_one = timezone(timedelta(hours=1))
    assert times.parse_time("2026-03-13 23:59", "x") == datetime(2026, 3, 13, 23, 59)
    assert times.parse_time("2026-03-13T23:59:00+01:00", "x") == datetime(2026, 3, 13, 23, 59, tzinfo=plus_one)
    assert times.parse_time("2026-03-13 22:58:23.948203 UTC", "x") == \
        datetime(2026, 3, 13, 22, 58, 23, 948203, tzinfo=timezone.utc)
    assert times.parse_time("2026-03-13 23:59 Europe/Amsterdam", "x") == \
        datetime(2026, 3, 13, 23, 59, tzinfo=ZoneInfo("Europe/Amsterdam"))
    assert times.parse_time("2026-03-13T23:59:00Z", "x").utcoffset() == timedelta(0)
    with pytest.raises(times.TimeError, match="x: 'next friday' is not a time; write ISO 8601"):
        times.parse_time("next friday", "x")
    with pytest.raises(times.TimeError, match="unknown time zone 'Mars/Olympus'"):
        times.parse_time("2026-03-13 23:59 Mars/Olympus", "x")
    assert times.show_time(datetime(2026, 3, 13, 23, 59, tzinfo=plus_one)) == "2026-03-13 23:59 +01:00"


def test_canvas_late_marker_is_kept_and_the_name_unchanged():
    assert canvas_late("lovelaceada_LATE_12345_678901_lab") and not canvas_late("lovelaceada_12345_678901_lab")
    assert not canvas_late("Assignment1 Ada Lovelace")
    assert student_name("lovelaceada_LATE_12345_678901_lab") == "lovelaceada"


def test_discovery_reads_timestamp_txt_gradescope_export_and_canvas_marker(tmp_path, caplog):
    (tmp_path / "turingalan_LATE_678_1000_lab.ipynb").write_text("{}")
    folder = tmp_path / "grace"
    folder.mkdir()
    (folder / "lab.ipynb").write_text("{}")
    (folder / "timestamp.txt").write_text("2026-03-15 01:30:00.000001 UTC\n")
    bad = tmp_path / "bad_time"
    bad.mkdir()
    (bad / "lab.ipynb").write_text("{}")
    (bad / "timestamp.txt").write_text("yesterday-ish\n")
    for name in ("submission_101", "submission_102"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "lab.ipynb").write_text("{}")
    (tmp_path / "submission_metadata.yml").write_text(GRADESCOPE_EXPORT)
    with caplog.at_level(logging.WARNING, logger="autograder"):
        found = {s.submission_id: s for s in discover(tmp_path)}
    assert sorted(found) == ["Ada_Lovelace", "Alan_Turing_Grace_Hopper", "bad_time", "grace", "turingalan"]
    assert found["turingalan"].late_marker and found["turingalan"].submitted_at is None
    assert found["grace"].submitted_at == datetime(2026, 3, 15, 1, 30, 0, 1, tzinfo=timezone.utc)
    assert found["grace"].time_source == "timestamp.txt" and not found["grace"].late_marker
    assert found["bad_time"].submitted_at is None and "bad_time/timestamp.txt" in caplog.text
    ada = found["Ada_Lovelace"]
    assert ada.display_name == "Ada Lovelace" and ada.source.name == "submission_101"
    assert ada.submitted_at == datetime(2026, 3, 14, 10, 0, 0, 123456, tzinfo=timezone(timedelta(hours=1)))
    assert "Gradescope" in ada.time_source
    pair = found["Alan_Turing_Grace_Hopper"]
    assert pair.display_name == "Alan Turing & Grace Hopper" and pair.submitted_at.utcoffset() == timedelta(0)


def test_csv_of_times_matches_ids_names_and_file_names(tmp_path, caplog):
    (tmp_path / "class").mkdir()
    for name in ("Assignment1 Ada Lovelace.ipynb", "turingalan_LATE_678_1000_lab.ipynb"):
        (tmp_path / "class" / name).write_text("{}")
    submissions = discover(tmp_path / "class")
    table = tmp_path / "times.csv"
    table.write_text("submission,submitted_at\nAda Lovelace,2026-03-13 22:00\n"
                     "turingalan_LATE_678_1000_lab.ipynb,2026-03-14T08:00:00+01:00\nnobody,2026-03-13 10:00\n")
    with caplog.at_level(logging.WARNING, logger="autograder"):
        matched = times.match_table(times.read_time_table(table, "submitted_at", "submission times"), submissions,
                                    table, "submission times")
    assert matched == {"Ada_Lovelace": datetime(2026, 3, 13, 22, 0),
                       "turingalan": datetime(2026, 3, 14, 8, 0, tzinfo=timezone(timedelta(hours=1)))}
    assert "row 4 names 'nobody', which is no submission of this batch" in caplog.text


@pytest.mark.parametrize("text, expected", [
    ("who,when\nada,2026-03-13\n", "the header must hold the columns submission,deadline"),
    ("submission,deadline\nada,13/03/2026\n", "row 2 ('ada'): '13/03/2026' is not a time"),
    ("submission,deadline\n,2026-03-13 10:00\n", "row 2 names no submission"),
])
def test_bad_csv_files_say_where_and_what_to_write(tmp_path, text, expected):
    path = tmp_path / "extensions.csv"
    path.write_text(text)
    with pytest.raises(times.TimeError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        times.read_time_table(path, "deadline", "extensions")
