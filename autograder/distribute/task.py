"""What a Dask worker runs for one submission: `grade_task(spec) -> dict` (plain data both ways).

The worker's grader code runs outside the sandbox, as in the local pool's threads, and calls the local pool's own
`pipeline.evaluate_submission`: the notebook runs in the worker's sandbox, the probes, checks and scores are computed
on the worker from plain data, and what comes back is plain data built exactly as the local path builds it (the row's
JSON text, the executed notebook's bytes, the measurements' JSON text), plus the log lines the task wrote. Nothing
that came out of a sandbox is unpickled; the coordinator alone writes OUT/.

Before grading, the worker compares its identity with the coordinator's (`identity`): the grader (GRADER_VERSION and
a digest of its code), the Python packages that can change a score, the rubric file and the data (the MNIST cache
and the grader's digit classifier). When any differs it refuses the task, as a value that says what differs and what
to do: scores are identical to a local run only when all of these are.

Paths travel relative to the project when they are inside it (`portable`), so a worker's checkout may live anywhere.
This module imports `distributed` only to name the worker in messages.
"""
from __future__ import annotations

import hashlib
import logging
import platform
import socket
import threading
import traceback
from contextlib import contextmanager
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from autograder import GRADER_VERSION, PROJECT_ROOT, STUDENT_TEMPLATE, pipeline, scoring
from autograder.execution.limits import Limits
from autograder.lab import classifier
from autograder.lab.data import MnistCacheError, check_cache, stamp_path

log = logging.getLogger("autograder")

PROJECT_PREFIX = "project:"     # a portable path inside the project: relative to each machine's checkout
CODE_SUFFIXES = (".py", ".j2")  # the grader's code: autograder/**; plus the public tests each run is given
# The packages whose version can change what a notebook computes or how it is judged.
SCORED_PACKAGES = ("torch", "numpy", "scipy", "scikit-learn", "matplotlib", "nbclient", "nbformat", "ipykernel",
                   "jupyter_client", "PyYAML", "pillow")

WHAT_TO_DO = {
    "grader": "check out the coordinator's commit on the worker and restart it (make worker SCHEDULER=...)",
    "environment": "install the same requirements.txt on the worker (make venv) and restart it",
    "rubric": "copy the coordinator's rubric file to {rubric} on the worker",
    "data": "give the worker the coordinator's data_cache/ (copy it, or make data && make classifier there) and "
            "restart it",
}


# --- paths -------------------------------------------------------------------------------------------------------

def portable(path: str | Path) -> str:
    """A path as it travels to a worker: relative to the project when inside it, else absolute."""
    path = Path(path).resolve()
    try:
        return PROJECT_PREFIX + path.relative_to(PROJECT_ROOT).as_posix()
    except ValueError:
        return str(path)


def local_path(travelled: str) -> Path:
    """The path `portable` made, on this machine."""
    if travelled.startswith(PROJECT_PREFIX):
        return PROJECT_ROOT / travelled[len(PROJECT_PREFIX):]
    return Path(travelled)


def shown(travelled: str) -> str:
    """The path `portable` made, for messages read on any machine."""
    if travelled.startswith(PROJECT_PREFIX):
        return f"{travelled[len(PROJECT_PREFIX):]} in the project's checkout"
    return travelled


# --- identity ----------------------------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def code_identity() -> str:
    """GRADER_VERSION and a digest of the grader's code as this process loaded it (computed once per process)."""
    digest = hashlib.sha256()
    files = [p for p in (PROJECT_ROOT / "autograder").rglob("*") if p.suffix in CODE_SUFFIXES and p.is_file()]
    files += [p for p in (STUDENT_TEMPLATE / "tests").rglob("*") if p.is_file()]
    for path in sorted(files):
        digest.update(path.relative_to(PROJECT_ROOT).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return f"{GRADER_VERSION} (code {digest.hexdigest()[:12]})"


@lru_cache(maxsize=1)
def environment_identity() -> str:
    versions = [f"python {platform.python_version()}"]
    for name in SCORED_PACKAGES:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name} missing")
    return ", ".join(versions)


@lru_cache(maxsize=8)
def data_identity(data_dir: str) -> str:
    """The MNIST cache (its stamp of sha256s, checked against the files once per process) and the grader's digit
    classifier (its recorded weights and recipe); a description of the problem when either is unusable."""
    try:
        check_cache(data_dir)
    except MnistCacheError as error:
        return f"unusable MNIST cache ({error})"
    stale = classifier.stale_reason(classifier.classifier_dir(), classifier.DEFAULT_DATA_ROOT)
    if stale:
        return f"unusable digit classifier ({stale})"
    sidecar = classifier.read_sidecar(classifier.classifier_dir())
    digest = hashlib.sha256(stamp_path(data_dir).read_bytes())
    digest.update(f"{sidecar.get('weights_sha256')}:{sidecar.get('recipe_sha256')}".encode())
    return f"data {digest.hexdigest()[:12]}"


def rubric_identity(rubric_path: Path) -> str:
    try:
        return f"rubric {pipeline.file_digest(rubric_path)[:12]}"
    except OSError:
        return f"no rubric file at {rubric_path}"


def identity(rubric_path: Path, data_dir: Path) -> dict:
    """What must be the same on the coordinator and every worker for the scores to be the same."""
    return {"grader": code_identity(), "environment": environment_identity(),
            "rubric": rubric_identity(Path(rubric_path)), "data": data_identity(str(data_dir))}


def differences(coordinator: dict, worker: dict, rubric: str) -> list[str]:
    """One sentence per difference: what the worker has, what the coordinator has, what to do (`rubric`: the
    rubric's path as it travels, `portable`)."""
    return [f"its {name} is {worker.get(name)!s} where the coordinator's is {coordinator.get(name)!s}: "
            f"{WHAT_TO_DO[name].format(rubric=shown(rubric))}"
            for name in WHAT_TO_DO if coordinator.get(name) != worker.get(name)]


def worker_identity(rubric: str, data_dir: str) -> dict:
    """For the coordinator's check of every worker before the run (Client.run): this worker's identity."""
    return identity(local_path(rubric), local_path(data_dir))


# --- the task ----------------------------------------------------------------------------------------------------

def worker_address() -> str | None:
    """This Dask worker's address, or None outside a worker."""
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return None


def grade_task(spec: dict) -> dict:
    """One submission on a worker. `spec` (from cluster.task_spec): "work" (pipeline.submission_work), "key" (the
    coordinator's cache key), "identity", "rubric" and "data_dir" (portable), "out_dir", "sandbox", "profile_name",
    "profile", "limits". Returns {"refused": message, "worker"} or {"row", "executed_notebook", "measurements"} (as
    pipeline.evaluate_submission) or {"error", "traceback"}, each with "log" and "worker"."""
    address = worker_address()
    where = f"{address} ({socket.gethostname()})" if address else f"{socket.gethostname()} (not a Dask worker)"
    rubric_path, data_dir = local_path(spec["rubric"]), local_path(spec["data_dir"])
    problems = differences(spec["identity"], identity(rubric_path, data_dir), spec["rubric"])
    if problems:
        return {"refused": f"the Dask worker {where} refused to grade {spec['work']['submission_id']}: "
                           + "; ".join(problems), "worker": where, "address": address, "log": []}
    settings = pipeline.GradeSettings(out_dir=Path(spec["out_dir"]), rubric_path=rubric_path, data_dir=data_dir,
                                      sandbox=spec["sandbox"], profile_name=spec["profile_name"],
                                      profile=spec["profile"], limits=Limits(**spec["limits"]))
    start_warm_up_once()
    with captured_log() as lines:
        try:
            evaluation = pipeline.evaluate_submission(spec["work"], settings, load_rubric(str(rubric_path)),
                                                      spec["key"])
        except Exception as error:  # a grader bug: the coordinator makes it this submission's `error` row
            log.error("%s: grader error on %s\n%s", spec["work"]["submission_id"], where, traceback.format_exc())
            evaluation = {"error": f"{type(error).__name__}: {error}"}
    return {**evaluation, "log": lines, "worker": where, "address": address}


@lru_cache(maxsize=4)
def load_rubric(path: str):
    return scoring.load_rubric(path)


_warm_up_lock = threading.Lock()
_warm_up_started = False


def start_warm_up_once() -> None:
    """The checks' libraries and the digit classifier load in the background on a worker's first task (or at its
    start, from the preload), while the notebook runs, as in the local pool."""
    global _warm_up_started
    with _warm_up_lock:
        if not _warm_up_started:
            _warm_up_started = True
            pipeline.start_warm_up()


class _Lines(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.INFO)
        self.lines: list[list] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append([record.levelno, record.getMessage()])
        except Exception:  # a bad format string must not cost the grade
            self.lines.append([record.levelno, str(record.msg)])


@contextmanager
def captured_log():
    """The grader's log lines written during the task ([level, text]), for the coordinator's grading.log. A worker
    runs one task at a time (one thread), so the lines are this task's (its background threads' included)."""
    logger = logging.getLogger("autograder")
    handler = _Lines()
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield handler.lines
    finally:
        logger.removeHandler(handler)

