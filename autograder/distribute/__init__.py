"""Grading on a Dask cluster: one task per submission (`python -m autograder grade --scheduler ADDRESS`).

- `task.py`: what a Dask worker runs for one submission: checks that its grader, rubric and data are the
  coordinator's (else it refuses, as a value), then `pipeline.evaluate_submission`, the very function of the local
  pool, and returns plain data (the row's JSON, the executed notebook's bytes, the measurements, its log lines).
- `cluster.py`: the coordinating process: connects to the scheduler, sends the tasks, stores what comes back in OUT/
  with `pipeline.store_evaluation` (so the cache, resume and every report are the local ones), logs workers lost and
  retried, and turns a lost scheduler into `ClusterError`.
- `worker.py`: `python -m autograder worker --scheduler ADDRESS` (`make worker`): starts `dask worker` with one
  single-threaded worker process per core and the memory limit of execution/limits.py; also the workers' preload.

Nothing here imports `distributed` at module level, and the pipeline imports this package only for a cluster run:
a local run neither imports Dask nor starts any of its processes.
"""


class ClusterError(RuntimeError):
    """The Dask cluster cannot be used or was lost mid-run; the message says what happened and what to do."""
