"""Issue 4's bad-input batch: every bad-input fixture graded in ONE batch (grade_class, TINY profile, 2 jobs, short
limits) together with the reference solution. Each gets its expected status, reason and score; the solution scores
exactly what it scores alone (every automatic point); nothing lands outside the sandbox; no process is left; every
student has a gradebook row and a feedback page."""

from __future__ import annotations

import csv
import ctypes
import json
import os
import shutil
import time
import uuid
from pathlib import Path

import nbformat
import pytest

from autograder.discover import discover
from autograder.execution.limits import GiB, MiB, Limits
from autograder.pipeline import GradeSettings, grade_class
from autograder.results import GRADEBOOK_CSV as GRADEBOOK
from autograder.lab.profiles import TINY
from autograder.scoring import load_rubric
from autograder.execution.sandbox import SANDBOX_UID_RANGE

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "notebooks"
SOLUTION = ROOT / "autograder" / "lab" / "demo_class" / "Assignment1 Ada Lovelace.ipynb"
RUBRIC = ROOT / "autograder" / "rubric.yaml"
UNICODE_NAME = "Assignment1 Zoë O'Brien \"Ünïcode\".ipynb"
# Short limits: the infinite loop costs one cell timeout; the solution's slowest cell (imports) takes ~8 s on a busy
# 2-core machine, so 30 s per cell keeps it safe.
LIMITS = Limits(cell_timeout_s=30, notebook_timeout_s=150, export_timeout_s=20, export_reserve_s=20, interrupt_grace_s=2,
                startup_grace_s=60, memory_bytes=2 * GiB, max_processes=64, max_workdir_bytes=64 * MiB)
PR_SET_CHILD_SUBREAPER = 36

# fixture (file or folder in tests/fixtures/notebooks) -> (submission id, status, words in the reason); score 0 each
EXPECTED = {
    "empty.ipynb": ("empty", "invalid", "file is empty"),
    "truncated.ipynb": ("truncated", "invalid", "truncated or corrupted"),
    "plain_text.ipynb": ("plain_text", "invalid", "is not a notebook"),
    "not_json.ipynb": ("not_json", "invalid", "a Python script saved with the .ipynb extension"),
    "binary.ipynb": ("binary", "invalid", "binary, not a notebook"),
    "nbformat3.ipynb": ("nbformat3", "ok", "ran without errors"),
    "zipped_notebook.zip": ("zipped_notebook", "ok", "ran without errors"),
    "corrupt_archive.zip": ("corrupt_archive", "invalid", "not a readable zip archive"),
    "two_notebooks": ("two_notebooks", "invalid", "holds 2 notebooks"),
    UNICODE_NAME: ("Zoe_O_Brien_Unicode", "ok", "ran without errors"),
    "kernel_dies.ipynb": ("kernel_dies", "kernel_died", "exit code 3"),
    "segfaults.ipynb": ("segfaults", "kernel_died", "killed by SIGSEGV"),
    "calls_sys_exit.ipynb": ("calls_sys_exit", "cell_error", "SystemExit: 3"),
    "calls_exit.ipynb": ("calls_exit", "ok", "called exit() or quit(): the grader kept the kernel running"),
    "infinite_loop.ipynb": ("infinite_loop", "timeout", "30 s limit per cell"),
    "memory_bomb.ipynb": ("memory_bomb", "cell_error", "MemoryError"),
    "fills_disk.ipynb": ("fills_disk", "kernel_died", "more than the limit of 64 MiB"),
    "floods_processes.ipynb": ("floods_processes", "ok", "ran without errors"),
    "spawns_daemon.ipynb": ("spawns_daemon", "ok", "ran without errors"),
    "prints_megabytes.ipynb": ("prints_megabytes", "ok", "ran without errors"),
    "writes_outside_workdir.ipynb": ("writes_outside_workdir", "ok", "ran without errors"),
}
SOLUTION_ID = "Ada_Lovelace"


def _processes(predicate) -> list[str]:
    """'pid cmdline' of live (not zombie) processes for which predicate(pid, uid, cmdline) holds."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as handle:
                stat = handle.read()
            with open(f"/proc/{entry.name}/cmdline", "rb") as handle:
                cmdline = handle.read().replace(b"\0", b" ").decode(errors="replace")
            uid = entry.stat().st_uid
        except OSError:
            continue
        state = stat.rpartition(")")[2].split()[0]
        if state != "Z" and predicate(int(entry.name), uid, cmdline):
            found.append(f"{entry.name} uid={uid} {cmdline[:120]}")
    return found


def _descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat") as handle:
                    ppid = int(handle.read().rpartition(")")[2].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, stack = set(), [root]
    while stack:
        for child in children.get(stack.pop(), []):
            found.add(child)
            stack.append(child)
    return found


def _settings(out_dir: Path, profile: dict) -> GradeSettings:
    return GradeSettings(out_dir=out_dir, rubric_path=RUBRIC, data_dir=ROOT / "data_cache", sandbox="auto",
                         profile_name="tiny", profile=profile, limits=LIMITS)


def _copy(source: Path, target: Path) -> None:
    if source.is_dir():
        shutil.copytree(source, target)
    else:
        shutil.copyfile(source, target)


def _project_files_touched_since(started: float, marker: str) -> list[str]:
    """Files of the project tree changed since `started` that a sandbox wrote: owned by a sandbox uid or holding
    the batch's marker (other people may edit the tree meanwhile; they write neither)."""
    skipped = {".venv", ".git", "data_cache", "__pycache__", ".pytest_cache", "node_modules"}
    touched = []
    for directory, subdirectories, files in os.walk(ROOT):
        subdirectories[:] = [name for name in subdirectories if name not in skipped]
        for name in files:
            path = Path(directory) / name
            try:
                info = path.lstat()
                if info.st_mtime < started:
                    continue
                sandboxed = SANDBOX_UID_RANGE[0] <= info.st_uid <= SANDBOX_UID_RANGE[1]
                if sandboxed or (info.st_size < 4 * MiB and marker.encode() in path.read_bytes()):
                    touched.append(str(path.relative_to(ROOT)))
            except OSError:
                continue
    return touched


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    marker = f"1000.{uuid.uuid4().int % 10**9}"  # the daemon and fork-flood fixtures sleep this many seconds
    submissions = tmp_path_factory.mktemp("bad-input-submissions")
    out_dir = tmp_path_factory.mktemp("bad-input-grades")
    for fixture in EXPECTED:
        _copy(FIXTURES / fixture, submissions / fixture)
    shutil.copyfile(SOLUTION, submissions / SOLUTION.name)
    escape_marker = f"labgrader-escape-{marker}"
    escape_targets = [str(ROOT / "tests" / escape_marker), f"/tmp/{escape_marker}", str(out_dir / escape_marker),
                      str(out_dir / SOLUTION_ID / escape_marker), str(submissions / escape_marker)]
    profile = {**TINY, "ESCAPE_TARGETS": escape_targets, "DAEMON_SECONDS": marker, "FILL_LIMIT_MIB": 512}

    alone_dir = tmp_path_factory.mktemp("solution-alone")
    shutil.copyfile(SOLUTION, alone_dir / SOLUTION.name)
    alone_out = tmp_path_factory.mktemp("solution-alone-grades")
    (alone_out / ".probe_secret").write_text("same-secret-for-both-runs")  # same probe inputs in both runs
    (out_dir / ".probe_secret").write_text("same-secret-for-both-runs")

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)  # orphans of the batch would become our children
    started = time.time()
    try:
        rows = grade_class(submissions, _settings(out_dir, profile), jobs=2, progress=False)
        elapsed = time.time() - started
        descendants = _descendants(os.getpid())
        leftovers = {
            "marker": _processes(lambda pid, uid, cmdline: marker in cmdline),
            "descendants": _processes(lambda pid, uid, cmdline: pid in descendants),
        }
        alone = grade_class(alone_dir, _settings(alone_out, profile), jobs=1, progress=False)
    finally:
        libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
    return {"rows": {row.submission: row for row in rows}, "alone": alone, "out_dir": out_dir,
            "submissions": submissions, "escape_targets": escape_targets, "marker": marker, "started": started,
            "elapsed": elapsed, "leftovers": leftovers}


def test_the_batch_holds_every_case_and_stays_fast(batch):
    assert sorted(batch["rows"]) == sorted([SOLUTION_ID, *(entry[0] for entry in EXPECTED.values())])
    assert batch["elapsed"] < 180, f"the batch took {batch['elapsed']:.0f} s"


@pytest.mark.parametrize("fixture", sorted(EXPECTED))
def test_each_bad_input_gets_its_status_reason_and_no_points(batch, fixture):
    submission, status, words = EXPECTED[fixture]
    row = batch["rows"][submission]
    assert (row.status, row.score) == (status, 0.0), (row.status, row.score, row.reason)
    assert words in row.reason, row.reason
    assert not [flag for flag in row.flags if flag.startswith("integrity")], row.flags


def test_the_solution_scores_as_when_graded_alone(batch):
    [alone] = batch["alone"]
    row = batch["rows"][SOLUTION_ID]
    rubric = load_rubric(RUBRIC)
    assert row.status == alone.status == "ok", (row.reason, alone.reason)
    assert row.score == alone.score == rubric.max_points, "every automatic point, in the batch and alone"
    assert row.items == alone.items
    assert row.flags == alone.flags and not [flag for flag in row.flags if flag.startswith("integrity")]


def test_what_the_bad_inputs_did_is_visible_in_their_executed_notebooks(batch):
    out_dir = batch["out_dir"]

    def printed(submission: str) -> str:
        notebook = nbformat.read(out_dir / submission / "executed.ipynb", as_version=4)
        return "".join(output.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                       for output in cell.get("outputs", []))

    started, refused = (int(word) for word in printed("floods_processes").split("started")[1].split()[0:3:2])
    assert refused == 1 and 0 < started < LIMITS.max_processes, "the process limit stopped the flood"
    assert "output truncated by the grader" in printed("prints_megabytes")
    assert (out_dir / "prints_megabytes" / "executed.ipynb").stat().st_size < 4 * LIMITS.max_cell_output_bytes
    assert "v3 42" in printed("nbformat3")
    assert "archive_submission" in batch["rows"]["zipped_notebook"].flags
    assert "after sys.exit" in printed("calls_sys_exit"), "SystemExit is an error in IPython, not a dead kernel"
    assert "never reached" not in printed("segfaults")


def test_nothing_was_written_outside_the_sandbox(batch):
    for target in batch["escape_targets"]:
        assert not Path(target).exists(), f"a submission wrote {target}"
    attempts = json.loads(next(
        line for cell in nbformat.read(batch["out_dir"] / "writes_outside_workdir" / "executed.ipynb",
                                       as_version=4).cells if cell.cell_type == "code"
        for output in cell.get("outputs", []) for line in output.get("text", "").splitlines()
        if line.startswith("{")))
    assert attempts["inside.txt"] == "written", "the sandbox's own folder is writable"
    assert attempts[f"/tmp/labgrader-escape-{batch['marker']}"] == "written", "its /tmp is private"
    assert _project_files_touched_since(batch["started"], batch["marker"]) == []
    for path in batch["submissions"].rglob("*"):  # the submissions folder is read, never written
        assert path.stat().st_mtime < batch["started"] or path.is_dir(), path


def test_no_process_is_left_behind(batch):
    assert batch["leftovers"] == {"marker": [], "descendants": []}
    sandboxed = _processes(lambda pid, uid, cmdline: SANDBOX_UID_RANGE[0] <= uid <= SANDBOX_UID_RANGE[1]
                           and batch["marker"] in cmdline)
    assert sandboxed == []


def test_every_student_has_a_gradebook_row_and_a_feedback_page(batch):
    out_dir, rows = batch["out_dir"], batch["rows"]
    with open(out_dir / GRADEBOOK, newline="", encoding="utf-8") as handle:
        table = list(csv.DictReader(handle))
    assert sorted(line["submission"] for line in table) == sorted(rows)
    assert {line["submission"]: line["status"] for line in table} == {s: row.status for s, row in rows.items()}
    ids = [submission.submission_id for submission in discover(batch["submissions"])]
    assert sorted(ids) == sorted(rows)
    for submission, row in rows.items():
        page = (out_dir / submission / "feedback.html").read_text(encoding="utf-8")
        assert f"<strong>{row.status}</strong>" in page, submission
        assert (out_dir / submission / "results.json").is_file()
