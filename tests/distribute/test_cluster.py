"""Issue 11: grading on a real Dask cluster on loopback: a `dask scheduler` and `dask worker` processes started from the
project's .venv (through `python -m autograder worker`, what `make worker` runs), never an in-process stand-in.

A small class (the reference solution, a wrong implementation, a slow notebook) at the TINY profile is graded once by
the local pool (`python -m autograder grade`, the reference) and then through `--scheduler`: the same gradebook; the
same with one worker killed (by its pid) while it runs a submission; a scheduler stopped mid-run fails with a clear
message and the re-run resumes from the cache. The time-limit flags reach the workers. Every process started here is
stopped by the fixtures (process groups, SIGKILL).
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from autograder.distribute import task
from autograder.distribute.loopback import LoopbackCluster, free_port
from autograder.execution.limits import DEFAULT_LIMITS
from autograder.lab.profiles import get_profile
from autograder.results import FEEDBACK_HTML, GRADEBOOK_CSV, GRADING_LOG, ROW_FILE, SECRET_FILE

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "notebooks"
SOLUTION = ROOT / "autograder" / "lab" / "demo_class" / "Assignment1 Ada Lovelace.ipynb"
SOLUTION_ID = "Ada_Lovelace"
RUN_TIMEOUT_S = 900


def grade(submissions: Path, out: Path, *options: str, timeout: float = RUN_TIMEOUT_S) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "autograder", "grade", "--submissions", str(submissions), "--out", str(out),
               "--profile", "tiny", "--no-progress", *options]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def start_grading(submissions: Path, out: Path, *options: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "autograder", "grade", "--submissions", str(submissions), "--out", str(out),
               "--profile", "tiny", "--no-progress", *options]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def out_with_secret(path: Path, reference: Path) -> Path:
    """A fresh OUT/ holding the reference run's class secret: the same probe inputs, so the same scores."""
    path.mkdir(parents=True)
    shutil.copyfile(reference / SECRET_FILE, path / SECRET_FILE)
    return path


def gradebook(out: Path) -> str:
    return (out / GRADEBOOK_CSV).read_text()


@pytest.fixture(scope="module")
def small_class(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("class")
    shutil.copyfile(SOLUTION, folder / SOLUTION.name)
    for name in ("wrong_implementation.ipynb", "slow_notebook.ipynb"):
        shutil.copyfile(FIXTURES / name, folder / name)
    return folder


@pytest.fixture(scope="module")
def local_reference(small_class, tmp_path_factory) -> Path:
    """The class graded by the local pool, as `make grade` does."""
    out = tmp_path_factory.mktemp("local")
    done = grade(small_class, out, "--jobs", "2")
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with LoopbackCluster(tmp_path_factory.mktemp("dask-logs")) as dask_cluster:
        yield dask_cluster.start(workers=2)


def test_a_local_run_imports_no_dask_and_starts_no_dask_process(tmp_path):
    submissions = tmp_path / "class"
    submissions.mkdir()
    (submissions / "empty.ipynb").write_text("")
    script = ("import sys\nfrom autograder.__main__ import main\n"
              f"code = main(['grade', '--submissions', {str(submissions)!r}, '--out', {str(tmp_path / 'out')!r}, "
              "'--no-progress'])\n"
              "print(code, sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.stdout.strip().splitlines()[-1] == "0 []", done.stdout + done.stderr


def test_a_cluster_gives_the_local_gradebook(cluster, small_class, local_reference, tmp_path):
    out = out_with_secret(tmp_path / "out", local_reference)
    done = grade(small_class, out, "--scheduler", cluster.address)
    assert done.returncode == 0, done.stderr + cluster.log_text()
    assert gradebook(out) == gradebook(local_reference)
    log = (out / GRADING_LOG).read_text()
    assert f"on the Dask cluster at {cluster.address}" in log
    assert "Dask dashboard: http://127.0.0.1:" in log
    assert log.count("graded on the Dask worker tcp://127.0.0.1:") == 3
    for submission in (SOLUTION_ID, "wrong_implementation", "slow_notebook"):
        assert (out / submission / FEEDBACK_HTML).is_file() and (out / submission / "executed.ipynb").is_file()
    # Resume: nothing changed, so the re-run sends no task and gives the same gradebook.
    again = grade(small_class, out, "--scheduler", cluster.address)
    assert again.returncode == 0, again.stderr
    assert gradebook(out) == gradebook(local_reference)
    assert "3 unchanged since the last run" in (out / GRADING_LOG).read_text()


def executing(dask_worker) -> list:
    return sorted(str(state.key) for state in dask_worker.state.executing)


def test_a_worker_killed_mid_task_loses_nothing(cluster, small_class, local_reference, tmp_path):
    out = out_with_secret(tmp_path / "out", local_reference)
    run = start_grading(small_class, out, "--scheduler", cluster.address)
    try:
        with cluster.client() as client:
            deadline = time.monotonic() + RUN_TIMEOUT_S
            victim = None
            while victim is None and time.monotonic() < deadline and run.poll() is None:
                for worker, keys in client.run(executing).items():
                    if any(key.startswith(f"grade-{SOLUTION_ID}-") for key in keys):
                        victim = worker
                time.sleep(0.5)
            assert victim, "the solution's task was never seen running"
            time.sleep(3)       # well into its run: the notebook executes in the worker's sandbox
            pid = client.run(os.getpid, workers=[victim])[victim]
            os.kill(pid, signal.SIGKILL)
        stdout, stderr = run.communicate(timeout=RUN_TIMEOUT_S)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    assert run.returncode == 0, stderr + cluster.log_text()
    table = gradebook(out)
    assert table == gradebook(local_reference)
    assert [line.split(",")[0] for line in table.splitlines()[1:]] == [SOLUTION_ID, "slow_notebook",
                                                                       "wrong_implementation"]
    log = (out / GRADING_LOG).read_text()
    assert f"Dask worker {victim} was lost (killed, out of memory or disconnected) while grading {SOLUTION_ID}" in log
    assert f"{SOLUTION_ID}: graded on the Dask worker" in log and victim not in log.split("was lost")[-1]
    cluster.wait_for_workers(2)     # the killed worker's nanny starts a new one, for the tests after this one


def test_a_lost_scheduler_fails_clearly_and_the_rerun_resumes(cluster, small_class, local_reference, tmp_path):
    first = LoopbackCluster(tmp_path / "first")
    out = out_with_secret(tmp_path / "out", local_reference)
    try:
        first.start(workers=2)
        run = start_grading(small_class, out, "--scheduler", first.address)
        try:
            deadline = time.monotonic() + RUN_TIMEOUT_S
            while not list(out.glob(f"*/{ROW_FILE}")) and time.monotonic() < deadline and run.poll() is None:
                time.sleep(0.2)
            first.stop("scheduler")
            stdout, stderr = run.communicate(timeout=120)
        finally:
            if run.poll() is None:
                os.killpg(run.pid, signal.SIGKILL)
    finally:
        first.stop_all()
    finished = sorted(path.parent.name for path in out.glob(f"*/{ROW_FILE}"))
    assert run.returncode == 1, stdout + stderr
    assert f"lost the Dask scheduler at {first.address} mid-run" in stderr
    assert "re-run the same command: it resumes from the cache" in stderr
    assert 1 <= len(finished) < 3, finished
    assert not (out / GRADEBOOK_CSV).exists()

    # The scheduler back (here: the module's cluster, another address): the same command resumes.
    done = grade(small_class, out, "--scheduler", cluster.address)
    assert done.returncode == 0, done.stderr
    assert gradebook(out) == gradebook(local_reference)
    log = (out / GRADING_LOG).read_text().split(f"on the Dask cluster at {cluster.address}")[-1]
    for submission in finished:
        assert f"{submission}: unchanged since the last run, not executed again" in log
    assert log.count("graded on the Dask worker") == 3 - len(finished)


def test_the_cell_time_limit_reaches_the_workers(cluster, tmp_path):
    submissions = tmp_path / "class"
    submissions.mkdir()
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import time\ntime.sleep(120)"),
                                                   nbformat.v4.new_code_cell("after = 1")]),
                   submissions / "sleeper.ipynb")
    # A notebook that kills its kernel in the worker's sandbox: a status, not a lost worker and a retry.
    shutil.copyfile(FIXTURES / "kernel_dies.ipynb", submissions / "kernel_dies.ipynb")
    out = tmp_path / "out"
    done = grade(submissions, out, "--scheduler", cluster.address, "--cell-timeout", "5")
    assert done.returncode == 0, done.stderr
    statuses = {line.split()[0]: line.split()[1] for line in done.stdout.splitlines()[:2]}
    assert statuses == {"kernel_dies": "kernel_died", "sleeper": "timeout"}, done.stdout
    assert "was lost" not in (out / GRADING_LOG).read_text()
    page = (out / "sleeper" / FEEDBACK_HTML).read_text()
    assert "stopped after 5 s" in page
    limits = f"5 s per cell, {DEFAULT_LIMITS.notebook_timeout_s:g} s for the whole notebook"
    assert f"Time limits of this run: {limits}" in page
    assert f"time limits: {limits}" in (out / GRADING_LOG).read_text()


def test_an_unreachable_scheduler_is_a_clear_error(tmp_path, small_class):
    address = f"tcp://127.0.0.1:{free_port()}"      # nothing listens there
    done = grade(small_class, tmp_path / "out", "--scheduler", address, timeout=120)
    assert done.returncode == 1
    assert f"cannot reach the Dask scheduler at {address}" in done.stderr
    assert "start one with `dask scheduler`" in done.stderr


# --- the worker's refusal, called directly (the task function is plain Python) -------------------------------------

def spec_for(identity: dict, tmp_path: Path) -> dict:
    return {"identity": identity, "rubric": task.portable(ROOT / "autograder" / "rubric.yaml"),
            "data_dir": task.portable(ROOT / "data_cache"), "out_dir": str(tmp_path), "sandbox": "none",
            "profile_name": "tiny", "profile": get_profile("tiny"), "limits": {}, "key": "",
            "work": {"submission_id": "amy", "display_name": "amy", "flags": [], "problem": None, "notebook": b"{}",
                     "read_error": None, "seed": 1}}


@pytest.mark.parametrize("what, theirs, advice", [
    ("grader", "9.9.9 (code 0123456789ab)", "check out the coordinator's commit on the worker"),
    ("rubric", "rubric 0123456789ab",
     "copy the coordinator's rubric file to autograder/rubric.yaml in the project's checkout on the worker"),
    ("data", "data 0123456789ab", "give the worker the coordinator's data_cache/"),
])
def test_a_worker_that_differs_refuses_the_task(what, theirs, advice, tmp_path):
    mine = task.identity(ROOT / "autograder" / "rubric.yaml", ROOT / "data_cache")
    result = task.grade_task(spec_for({**mine, what: theirs}, tmp_path))
    assert set(result) == {"refused", "worker", "address", "log"}
    assert result["refused"].startswith("the Dask worker ") and "refused to grade amy" in result["refused"]
    assert f"its {what} is {mine[what]} where the coordinator's is {theirs}: {advice}" in result["refused"]
    assert not list(tmp_path.iterdir()), "a refusal writes nothing"


def test_paths_travel_relative_to_the_project():
    assert task.portable(ROOT / "data_cache") == "project:data_cache"
    assert task.local_path("project:data_cache") == ROOT / "data_cache"
    assert task.local_path(task.portable("/srv/mnist")) == Path("/srv/mnist")
