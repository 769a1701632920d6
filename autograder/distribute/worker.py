"""A grading worker on this machine: `python -m autograder worker --scheduler ADDRESS` (`make worker SCHEDULER=...`).

It checks what grading needs here (the MNIST cache and the grader's digit classifier, which `make worker` builds
like `make grade` does, and bubblewrap), then becomes `dask worker ADDRESS` from this project's .venv (exec: same
process id), with:
- one worker process per core (`--nworkers`, default: every core), each running one task at a time (`--nthreads 1`):
  a submission's kernel runs with 1 BLAS thread (execution/limits.py), like one job of the local pool;
- each process's memory limit set to limits.py's group_memory_bytes (what the sandbox allows one submission);
- PYTHONPATH set to this checkout, so the tasks run this grader (a worker whose grader, packages, rubric or data
  differ from the coordinator's refuses the tasks: task.py);
- this module as the workers' preload (`dask_setup`): the grader's log at INFO on the worker's stderr, and the
  checks' libraries and classifier loaded in the background before the first task.
"""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from autograder import PROJECT_ROOT
from autograder.execution import sandbox
from autograder.execution.limits import DEFAULT_LIMITS, Limits
from autograder.lab import classifier
from autograder.lab.data import MnistCacheError, check_cache

PRELOAD = __name__      # autograder.distribute.worker


def worker_command(scheduler: str, nworkers: int, host: str | None = None, limits: Limits = DEFAULT_LIMITS) -> list:
    """The `dask worker` command line, from the .venv this process runs in."""
    dask = Path(sys.executable).with_name("dask")
    command = [str(dask), "worker", scheduler, "--nworkers", str(nworkers), "--nthreads", "1",
               "--memory-limit", str(limits.group_memory_bytes), "--preload", PRELOAD]
    return command + (["--host", host] if host else [])


def worker_env(environ: dict | None = None) -> dict:
    environ = dict(os.environ if environ is None else environ)
    paths = [str(PROJECT_ROOT)] + [p for p in environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return {**environ, "PYTHONPATH": os.pathsep.join(paths)}


def setup_problems(data_dir: Path) -> tuple[list[str], list[str]]:
    """(what stops grading here, what grading here would lack): the data and classifier; the sandbox."""
    errors, warnings = [], []
    try:
        check_cache(data_dir)
    except MnistCacheError as error:
        errors.append(str(error))
    stale = classifier.stale_reason(classifier.classifier_dir(), classifier.DEFAULT_DATA_ROOT)
    if stale:
        errors.append(f"the grader's digit classifier can't be used: {stale}; run `make classifier`")
    usable, why = sandbox.bwrap_check()
    if not usable:
        warnings.append(f"bubblewrap is not usable here ({why}): submissions graded on this worker run with "
                        f"resource limits only (their feedback says so); install bubblewrap (make sandbox-tools)")
    return errors, warnings


def start(scheduler: str, nworkers: int, host: str | None, data_dir: Path) -> int:
    """Check this machine, then exec `dask worker`; returns only on a setup error."""
    errors, warnings = setup_problems(data_dir)
    for text in warnings:
        print(f"warning: {text}", file=sys.stderr)
    if errors:
        for text in errors:
            print(f"error: {text}", file=sys.stderr)
        return 2
    command = worker_command(scheduler, nworkers, host)
    if not Path(command[0]).is_file():
        print(f"error: {command[0]} is missing: install the project's requirements.txt (make venv)", file=sys.stderr)
        return 2
    print(f"starting {nworkers} single-threaded Dask worker process(es) for {scheduler}: {' '.join(command)}",
          file=sys.stderr, flush=True)
    os.execve(command[0], command, worker_env())
    return 0  # not reached


def dask_setup(worker) -> None:
    """`dask worker --preload autograder.distribute.worker`: the grader's log on the worker's stderr, and the
    warm-up started while the worker waits for its first task."""
    from autograder.distribute import task

    logger = logging.getLogger("autograder")
    logger.setLevel(logging.INFO)
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s autograder %(levelname)s %(message)s"))
        logger.addHandler(handler)
    task.start_warm_up_once()
