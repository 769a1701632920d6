"""Discovering submissions: names -> ids, folders, archives, PDFs, and problems as values."""
import zipfile

import pytest

from autograder.discover import discover
from autograder.discover.names import safe_id, student_name


def test_student_names_from_seed_and_canvas_exports():
    assert student_name("Assignment1 Ada Lovelace") == "Ada Lovelace"
    assert student_name("lovelaceada_LATE_12345_678901_Assignment1 Ada Lovelace") == "lovelaceada"
    assert student_name("turingalan_2345_99_lab") == "turingalan"
    assert student_name("plain") == "plain"


def test_ids_are_safe_for_file_names():
    assert safe_id("Zoë O'Brien \"the\" best") == "Zoe_O_Brien_the_best"
    assert safe_id("../../etc/passwd") == "etc_passwd"
    assert safe_id("日本") == "submission"


def test_kinds_of_submission(tmp_path):
    (tmp_path / "Assignment1 Ada Lovelace.ipynb").write_text("{}")
    (tmp_path / "Assignment1 Ada Lovelace.pdf").write_bytes(b"%PDF")
    (tmp_path / "Assignment1 Alan Turing.ipynb").write_text("{}")
    folder = tmp_path / "grace"
    folder.mkdir()
    (folder / "lab.ipynb").write_text("{}")
    (folder / "report.pdf").write_bytes(b"%PDF")
    two = tmp_path / "two_notebooks"
    two.mkdir()
    (two / "a.ipynb").write_text("{}")
    (two / "b.ipynb").write_text("{}")
    with zipfile.ZipFile(tmp_path / "Assignment1 Emmy Noether.zip", "w") as archive:
        archive.writestr("emmy/lab.ipynb", "{\"cells\": []}")
        archive.writestr("__MACOSX/emmy/._lab.ipynb", "junk")
    (tmp_path / "broken.zip").write_bytes(b"not a zip")
    (tmp_path / "notes.txt").write_text("ignored")

    found = {s.submission_id: s for s in discover(tmp_path)}
    assert sorted(found) == ["Ada_Lovelace", "Alan_Turing", "Emmy_Noether", "broken", "grace", "two_notebooks"]
    assert "report_pdf_present" in found["Ada_Lovelace"].flags
    assert "report_pdf_missing" in found["Alan_Turing"].flags
    assert "report_pdf_present" in found["grace"].flags and found["grace"].notebook_member == "lab.ipynb"
    assert "2 notebooks" in found["two_notebooks"].problem
    emmy = found["Emmy_Noether"]
    assert "archive_submission" in emmy.flags and emmy.notebook_member == "emmy/lab.ipynb"
    assert emmy.notebook_bytes() == b"{\"cells\": []}"
    assert "not a readable zip" in found["broken"].problem
    assert found["Ada_Lovelace"].display_name == "Ada Lovelace"


def test_same_name_twice_gets_unique_ids(tmp_path):
    (tmp_path / "Assignment1 Ada Lovelace.ipynb").write_text("{}")
    (tmp_path / "Assignment2 Ada Lovelace.ipynb").write_text("{}")
    assert [s.submission_id for s in discover(tmp_path)] == ["Ada_Lovelace", "Ada_Lovelace-2"]


def test_digest_changes_with_content(tmp_path):
    path = tmp_path / "a.ipynb"
    path.write_text("{}")
    before = discover(tmp_path)[0].content_digest()
    path.write_text("{ }")
    assert discover(tmp_path)[0].content_digest() != before


def test_missing_folder_says_what_to_pass(tmp_path):
    with pytest.raises(FileNotFoundError, match="SUBMISSIONS="):
        discover(tmp_path / "nope")
