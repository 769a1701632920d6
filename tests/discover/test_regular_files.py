"""Issue 16, point 1: only regular files are graded. A link, device, pipe or socket anywhere in a submission makes
it invalid with a reason (flagged integrity_attempt when it points at another submission), and the grader never
blocks on it or reads it without a bound."""
from __future__ import annotations

import os
import resource
import shutil
import socket
import stat
import threading
import zipfile
from pathlib import Path

import pytest

from autograder.discover import discover
from autograder.discover.submissions import MAX_NOTEBOOK_BYTES
from autograder.execution.limits import Limits
from autograder.lab.profiles import TINY
from autograder.pipeline import GradeSettings, grade_class

ROOT = Path(__file__).resolve().parents[2]
SOLUTION = ROOT / "autograder" / "lab" / "demo_class" / "Assignment1 Ada Lovelace.ipynb"


def _discover_within(folder: Path, seconds: float = 20.0):
    """discover(folder), failing the test if it does not return in time (a FIFO read would block forever)."""
    found, errors = [], []

    def target():
        try:
            found.extend(discover(folder))
        except BaseException as error:      # reported below
            errors.append(error)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"discovery of {folder} did not return within {seconds} s"
    if errors:
        raise errors[0]
    return {s.submission_id: s for s in found}


def _link_zip(path: Path, member: str, target: str) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        info = zipfile.ZipInfo(member)
        info.create_system = 3
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(info, target)


@pytest.fixture
def hostile(tmp_path):
    folder = tmp_path / "submissions"
    folder.mkdir()
    victim = folder / "Assignment1 Victor Victim.ipynb"
    shutil.copyfile(SOLUTION, victim)
    (folder / "mallory").mkdir()
    os.symlink("../Assignment1 Victor Victim.ipynb", folder / "mallory" / "lab.ipynb")
    os.symlink(victim.name, folder / "Assignment1 Copycat.ipynb")
    _link_zip(folder / "Assignment1 Zipper.zip", "lab.ipynb", "../Assignment1 Victor Victim.ipynb")
    os.symlink("/dev/zero", folder / "Assignment1 Zero.ipynb")
    os.mkfifo(folder / "Assignment1 Pipe.ipynb")
    (folder / "deep").mkdir()
    (folder / "deep" / "sub").mkdir()
    shutil.copyfile(SOLUTION, folder / "deep" / "lab.ipynb")
    os.mkfifo(folder / "deep" / "sub" / "notes.txt")           # anywhere in the folder, not only the notebook
    (folder / "linked_pdf").mkdir()
    shutil.copyfile(SOLUTION, folder / "linked_pdf" / "lab.ipynb")
    os.symlink("/etc/passwd", folder / "linked_pdf" / "report.pdf")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(folder / "Assignment1 Socket.ipynb"))
    sock.close()
    return folder


def test_links_and_special_files_are_invalid_and_links_to_others_are_flagged(hostile):
    found = _discover_within(hostile)
    assert found["Victor_Victim"].problem is None
    flagged = {"mallory", "Copycat", "Zipper"}
    unflagged = {"Zero", "Pipe", "deep", "linked_pdf", "Socket"}
    for submission in flagged | unflagged:
        row = found[submission]
        assert row.problem and "not a regular file" in row.problem, (submission, row.problem)
        assert row.notebook_member is None, submission        # nothing of it will be read
        assert ("integrity_attempt" in row.flags) == (submission in flagged), (submission, row.flags)
    assert "Victor Victim" in found["mallory"].problem


def test_grading_such_a_folder_grades_none_of_them_and_does_not_block(hostile, tmp_path):
    settings = GradeSettings(out_dir=tmp_path / "out", rubric_path=ROOT / "autograder" / "rubric.yaml",
                             data_dir=ROOT / "data_cache", sandbox="bwrap", profile_name="tiny", profile=dict(TINY),
                             limits=Limits())
    shutil.move(str(hostile / "Assignment1 Victor Victim.ipynb"), tmp_path / "victim-elsewhere.ipynb")
    os.symlink(tmp_path / "victim-elsewhere.ipynb", hostile / "Assignment1 Victor Victim.ipynb")  # now a link too
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rows = {row.submission: row for row in grade_class(hostile, settings, progress=False)}
    assert all(row.status == "invalid" and row.score == 0 for row in rows.values()), \
        {s: (r.status, r.score) for s, r in rows.items()}
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mib < 500, f"the grader's memory grew by {grown_mib:.0f} MiB reading links and devices"
    assert "integrity_attempt" in rows["mallory"].flags


def test_a_notebook_too_large_is_refused_without_being_read_whole(tmp_path):
    big = tmp_path / "Assignment1 Big.ipynb"
    with open(big, "wb") as handle:
        handle.truncate(MAX_NOTEBOOK_BYTES + 1)              # sparse: costs no disk
    [submission] = discover(tmp_path)
    with pytest.raises(ValueError, match="more than"):
        submission.notebook_bytes()


def test_a_notebook_that_would_expand_in_memory_is_refused(tmp_path):
    path = tmp_path / "Assignment1 Dicts.ipynb"
    path.write_text('{"cells": [], "metadata": {"x": [' + "{}," * 3_000_000 + "{}]}}")
    [submission] = discover(tmp_path)
    with pytest.raises(ValueError, match="JSON values"):
        submission.notebook_bytes()


def test_an_archive_with_too_many_members_is_refused_before_listing_them(tmp_path):
    with zipfile.ZipFile(tmp_path / "Assignment1 Many.zip", "w") as archive:
        for index in range(10_001):
            archive.writestr(f"f{index}", b"")
    [submission] = discover(tmp_path)
    assert submission.problem and "more than" in submission.problem
