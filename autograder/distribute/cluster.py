"""The coordinating process of a cluster run: one Dask task per submission, OUT/ written here alone.

    rows = grade_on_cluster(address, submissions, settings, rubric, secret, ta_scores, questions)
    for submission, row in rows: ...       # as pipeline.grade_class consumes the local pool

- Connecting: `distributed.Client(address)`; an address that cannot be reached is a ClusterError naming it and what
  to do. Before the run every connected worker's identity (grader, packages, rubric, data: task.identity) is
  compared with ours: a worker that differs is named in the log and gets no task; when none can grade, the run
  stops before it starts.
- The cache is read here: an unchanged submission is re-scored from OUT/<id>/row.json and sends no task. The others
  are sent a few at a time (twice the workers' threads), so that the scheduler never holds a whole class of
  notebooks. Each task (task.grade_task) returns plain data; `pipeline.store_evaluation` writes it into OUT/ and
  `pipeline.finish_submission` writes the reports, exactly as for the local pool.
- A worker lost mid-task (killed, out of memory, machine gone): the scheduler runs the task again on another worker
  (Dask's own retry, bounded by the scheduler's `distributed.scheduler.allowed-failures`, 3 by default); the log
  names the worker and the submissions it held. Past that bound the submission is an `error` row (not cached, so a
  re-run tries again). A submission that kills its sandbox is a status from the sandbox (kernel_died), not a retry.
- A worker that refuses a task (it differs from us) is named in the log and gets no more tasks; the task goes to
  another worker (at most MAX_REFUSALS times, then an `error` row saying why).
- The scheduler lost mid-run: ClusterError. Every row finished so far is in OUT/, so running the same command again
  resumes from the cache.
"""
from __future__ import annotations

import logging
import sys
import traceback
import uuid
from collections import deque
from dataclasses import asdict, dataclass, field

from tqdm import tqdm

from autograder import pipeline
from autograder.discover import Submission
from autograder.distribute import ClusterError
from autograder.distribute.remote import RemoteCall
from autograder.distribute.task import differences, identity, portable

log = logging.getLogger("autograder")

CONNECT_TIMEOUT_S = 10      # to reach the scheduler (Dask retries within it)
MIN_IN_FLIGHT = 4           # tasks sent before any worker is known
IN_FLIGHT_PER_THREAD = 2    # then: tasks in flight per worker thread (one running, one waiting on each)
MAX_REFUSALS = 3            # of one submission by workers that differ from us, before its row says so
TASK_PREFIX = "grade"       # Dask keys: grade-<submission id>-<random>, as the dashboard shows them
# What the workers run (task.py), sent so that the scheduler needs no copy of the grader (remote.py).
GRADE_TASK = RemoteCall("autograder.distribute.task", "grade_task")
WORKER_IDENTITY = RemoteCall("autograder.distribute.task", "worker_identity")


@dataclass
class _Task:
    submission: Submission
    key: str                        # the cache key
    refusals: list = field(default_factory=list)


def connect(address: str):
    try:
        from distributed import Client
    except ImportError as error:
        raise ClusterError(f"--scheduler needs Dask's `distributed` package ({error}): install the project's "
                           f"requirements.txt (make venv)") from None
    try:
        return Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
    except Exception as error:  # OSError, TimeoutError, ValueError for a malformed address, ...
        raise ClusterError(f"cannot reach the Dask scheduler at {address} ({type(error).__name__}: {error}); start one "
                           f"with `dask scheduler` (it prints its address, e.g. tcp://10.0.0.5:8786) or check the "
                           f"address") from None


@dataclass(frozen=True)
class Scheduler:
    """The Dask cluster `pipeline.grade_class(cluster=...)` grades on: the scheduler's address (any address that
    distributed.Client accepts). Building one imports no Dask module; grading connects."""
    address: str

    def grade(self, submissions: list[Submission], settings, rubric, secret: str, ta_scores: dict, questions,
              facts: dict | None = None, force: bool = False):
        return grade_on_cluster(self.address, submissions, settings, rubric, secret, ta_scores, questions, facts,
                                force)


def grade_on_cluster(address: str, submissions: list[Submission], settings, rubric, secret: str, ta_scores: dict,
                     questions, facts: dict | None = None, force: bool = False):
    """(submission, final row) for every submission, as they finish on the cluster at `address`. `facts`: submission
    id -> the facts its row carries (pipeline.submission_facts: time, extension, answer states); `force`: run them
    even when unchanged (`--only`)."""
    # Dask's own log stays out of the run's: what matters (workers lost, the scheduler lost) is said in the grader's
    # words below, and a lost scheduler would otherwise add the client's reconnection tracebacks.
    dask_log = logging.getLogger("distributed")
    level = dask_log.level
    dask_log.setLevel(logging.CRITICAL)
    try:
        client = connect(address)
        try:
            yield from _Run(client, address, settings, rubric, secret, ta_scores, questions, facts or {},
                            force).rows(submissions)
        finally:
            try:
                client.close(timeout=5)
            except Exception:  # a lost scheduler: nothing left to close cleanly
                pass
    finally:
        dask_log.setLevel(level)


class _Run:
    def __init__(self, client, address: str, settings, rubric, secret: str, ta_scores: dict, questions,
                 facts: dict, force: bool):
        self.client, self.address, self.settings, self.rubric = client, address, settings, rubric
        self.secret, self.ta_scores, self.questions = secret, ta_scores, questions
        self.facts, self.force = facts, force
        self.identity = identity(settings.rubric_path, settings.data_dir)
        self.base = {"identity": self.identity, "rubric": portable(settings.rubric_path),
                     "data_dir": portable(settings.data_dir), "out_dir": str(settings.out_dir),
                     "sandbox": settings.sandbox, "profile_name": settings.profile_name, "profile": settings.profile,
                     "limits": asdict(settings.limits)}
        self.refusing: set[str] = set()         # worker addresses that differ from us
        self.running: dict = {}                 # Dask key -> _Task
        self.waiting: deque[_Task] = deque()
        self.done = 0

    # --- the run ---------------------------------------------------------------------------------------------

    def rows(self, submissions: list[Submission]):
        from distributed import as_completed

        self.check_workers()
        self.announce_dashboard()
        self.client.subscribe_topic("all", self.on_event)
        cached = []
        for submission in submissions:
            try:
                key = pipeline.cache_key(submission, self.settings)
                row = None if self.settings.force or self.force else pipeline.load_cached_row(
                    self.settings.out_dir / submission.submission_id, key)
            except Exception as error:  # an unreadable submission is handled like the local pool does
                cached.append((submission, self.failed(submission, error)))
                continue
            if row is None:
                self.waiting.append(_Task(submission, key))
            else:
                log.info("%s: unchanged since the last run, not executed again", submission.submission_id)
                row = pipeline.with_facts(pipeline.rescore(row, self.rubric), self.facts_of(submission),
                                         self.settings.out_dir / submission.submission_id)
                cached.append((submission, row))
        total = len(self.waiting)
        log.info("%d submission(s) to grade on the cluster, %d unchanged since the last run", total, len(cached))
        self.pending = as_completed(loop=self.client.loop)
        self.fill()
        for submission, row in cached:      # while the first tasks run
            self.done += 1
            yield submission, self.finish(submission, row)
        for future in self.pending:
            task = self.running.pop(future.key)
            row = self.outcome(future, task)
            future.release()
            if row is not None:
                self.done += 1
                yield task.submission, self.finish(task.submission, row)
            self.fill()

    def finish(self, submission: Submission, row):
        return pipeline.finish_submission(submission, row, self.settings, self.rubric, self.ta_scores, self.questions,
                                          self.facts_of(submission))

    def facts_of(self, submission: Submission) -> dict | None:
        return self.facts.get(submission.submission_id)

    def failed(self, submission: Submission, error):
        return pipeline.failed_row(submission, self.rubric, error, self.facts_of(submission))

    def fill(self) -> None:
        """Send tasks until twice the workers' threads are in flight."""
        if not self.waiting:
            return
        try:
            threads = sum(n for worker, n in self.client.nthreads().items() if worker not in self.refusing)
        except Exception as error:
            raise self.lost(error) from None
        while self.waiting and len(self.running) < max(MIN_IN_FLIGHT, IN_FLIGHT_PER_THREAD * threads):
            self.send(self.waiting.popleft())

    def send(self, task: _Task) -> None:
        submission = task.submission
        spec = {**self.base, "work": pipeline.submission_work(submission, self.secret, self.facts_of(submission)), "key": task.key}
        restrictions = {}
        if self.refusing:   # prefer the workers that can grade; any worker when none of them is left
            good = [worker for worker in self.client.scheduler_info()["workers"] if worker not in self.refusing]
            restrictions = {"workers": good, "allow_other_workers": True} if good else {}
        key = f"{TASK_PREFIX}-{submission.submission_id}-{uuid.uuid4().hex[:8]}"
        try:
            future = self.client.submit(GRADE_TASK, spec, key=key, pure=False, retries=0, **restrictions)
        except Exception as error:
            raise self.lost(error) from None
        self.running[future.key] = task
        self.pending.add(future)

    def outcome(self, future, task: _Task):
        """The row of a finished task (stored in OUT/), or None when the task was sent again."""
        submission_id = task.submission.submission_id
        if future.status == "cancelled" or self.client.status not in ("running", "newly-created"):
            raise self.lost(future.exception() if future.status == "error" else "the connection was closed")
        if future.status == "error":
            error = future.exception()
            if type(error).__name__ == "KilledWorker":
                reason = (f"the Dask workers grading it were lost each time it ran (killed, out of memory or machine "
                          f"gone), so Dask did not retry it again ({error}); look at the workers' logs, a re-run "
                          f"tries again")
                log.error("%s: %s", submission_id, reason)
                return self.failed(task.submission, reason)
            log.error("%s: the task failed on the cluster: %s: %s\n%s", submission_id, type(error).__name__, error,
                      "".join(traceback.format_tb(future.traceback())))
            return self.failed(task.submission, error)
        result = future.result()
        for level, text in result.get("log", []):
            log.log(level, "%s", text)
        if "refused" in result:
            return self.refused(task, result)
        if "error" in result:
            return self.failed(task.submission, result["error"])
        try:
            row = pipeline.store_evaluation(result, self.settings.out_dir / submission_id)
        except Exception as error:  # e.g. OUT/ full: this submission's row says so, the batch goes on
            log.error("%s: the result from %s could not be stored: %s", submission_id, result.get("worker"), error)
            return self.failed(task.submission, error)
        log.info("%s: graded on the Dask worker %s", submission_id, result.get("worker"))
        return row

    def refused(self, task: _Task, result: dict):
        log.error("%s", result["refused"])
        task.refusals.append(result["refused"])
        address = result.get("address")
        if address:
            self.refusing.add(address)
        if len(task.refusals) < MAX_REFUSALS:
            self.send(task)
            return None
        return self.failed(task.submission, f"no Dask worker could grade it: {result['refused']}")

    # --- the cluster -----------------------------------------------------------------------------------------

    def check_workers(self) -> None:
        """Every connected worker's identity against ours, before any task is sent."""
        try:
            found = self.client.run(WORKER_IDENTITY, self.base["rubric"], self.base["data_dir"], on_error="return")
        except Exception as error:
            raise self.lost(error) from None
        if not found:
            log.warning("no Dask worker is connected to %s yet: the submissions wait for one (start them with "
                        "`make worker SCHEDULER=%s` on each machine)", self.address, self.address)
            return
        problems = {}
        for worker, theirs in sorted(found.items()):
            if isinstance(theirs, BaseException):
                problems[worker] = (f"it cannot run the grader ({type(theirs).__name__}: {theirs}): start it with "
                                    f"`make worker SCHEDULER={self.address}` from a checkout of the project")
            elif found_differences := differences(self.identity, theirs, self.base["rubric"]):
                problems[worker] = "; ".join(found_differences)
        listing = "".join(f"\n  {worker}: {why}" for worker, why in problems.items())
        if problems and len(problems) == len(found):
            raise ClusterError(f"no worker of the Dask cluster at {self.address} can grade for this coordinator:"
                               f"{listing}")
        if problems:
            log.error("%d of %d Dask workers differ from this coordinator and get no submission:%s", len(problems),
                      len(found), listing)
        self.refusing |= set(problems)
        log.info("%d Dask worker(s) at %s can grade (%d thread(s))", len(found) - len(problems), self.address,
                 sum(n for worker, n in self.client.nthreads().items() if worker not in problems))

    def announce_dashboard(self) -> None:
        try:
            link = self.client.dashboard_link
        except Exception:  # no dashboard service (the scheduler's machine lacks bokeh)
            link = None
        text = (f"Dask dashboard: {link}" if link else
                "the Dask scheduler serves no dashboard (it needs bokeh on the scheduler's machine)")
        log.info("%s", text)
        tqdm.write(text, file=sys.stderr)       # above the progress bar

    def on_event(self, event) -> None:
        """The scheduler's events (in the client's event-loop thread: log only, never call the client here)."""
        _, message = event
        if not isinstance(message, dict):
            return
        worker = message.get("worker")
        if message.get("action") == "add-worker":
            log.info("Dask worker %s joined the cluster", worker)
        elif message.get("action") == "remove-worker":
            held = sorted(self.running[key].submission.submission_id for key in message.get("processing-tasks") or ()
                          if key in self.running)
            if message.get("expected"):
                log.info("Dask worker %s left the cluster (retired)%s", worker,
                         f"; {', '.join(held)} go(es) to another worker" if held else "")
            elif held:
                log.warning("Dask worker %s was lost (killed, out of memory or disconnected) while grading %s: Dask "
                            "runs it again on another worker (at most the scheduler's allowed-failures times, 3 by "
                            "default); nothing of it had been written", worker, ", ".join(held))
            else:
                log.warning("Dask worker %s was lost (killed, out of memory or disconnected); it held no submission",
                            worker)

    def lost(self, error) -> ClusterError:
        return ClusterError(
            f"lost the Dask scheduler at {self.address} mid-run ({error}): {self.done} submission(s) were graded and "
            f"saved in {self.settings.out_dir}; start the scheduler and its workers again and re-run the same command: "
            f"it resumes from the cache")
