"""Grade a class: discover -> execute (sandboxed) -> harvest -> checks -> scoring -> reports.

Two stages per submission:
- `grade_submission`, the expensive one, cached: execution, harvest, the automatic items' scores (penalties
  applied), stored with the cell errors in OUT/<id>/row.json together with its cache key (grader version, the
  submission's content, the rubric without its `manual_items`, the profile's name and knobs, the sandbox). An unchanged submission is
  not executed again.
- `finalize_submission`, cheap, every run: adds the written answers' items (the TA's scores from
  OUT/review/written_answers.csv, or 0 and "awaiting review"), assesses lateness (the rubric's deadline and late
  policy against the submission's time and extension: facts kept in the row, outside the cache key) and applies the
  penalties and the late share to every item, then writes results.json and feedback.html. So a TA's scores and a new
  late policy reach the reports on the next run without re-executing anything.
`--only NAME...` (`GradeSettings.only`) regrades those submissions and keeps every other row of the last run, read back
from OUT/<id>/row.json and finished by the same cheap stage; the log says who was regraded and why. Rows of students
not in the submissions folder are kept the same way, so a folder holding one student never shrinks the gradebook.
After the batch: gradebook.csv (one column per rubric item, then per written answer: blank = awaiting review), the
review sheet OUT/review/written_answers.{html,csv} (autograder/reports/review.py), OUT/canvas_gradebook.csv
(autograder/reports/canvas.py) and the class reports. The row, the item scores and the names of these files are the
results model (autograder/results.py); the run's notes reach the row, the feedback page and grading.log, and the
runner's log reaches grading.log for a submission that was not graded. A submission that fails anywhere is a row with a status and a reason,
never an exception that stops the batch; every result file is written atomically.

The expensive stage is `evaluate_submission` (plain data in, plain data out, nothing written) + `store_evaluation`
(OUT/<id>/, atomically). The local pool runs both in its threads; with `cluster=` a Dask worker runs
`evaluate_submission` (autograder/distribute/task.py) and this process stores what comes back, so the cache, resume,
determinism and every report are the same either way.
"""
from __future__ import annotations

import hashlib
import importlib
import json
import logging
import secrets
import shutil
import tempfile
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import yaml

from autograder import GRADER_VERSION, STUDENT_TEMPLATE, scoring
from autograder.discover import Submission, discover, times
from autograder.execution import integrity, run, sandbox as sandbox_module
from autograder.execution.limits import Limits
from autograder.execution.run import ExecutionResult
from autograder.lab import classifier
from autograder.probing.probe_run import ProbeOutcome, ProbeRun
from autograder.reports import canvas, release, review, similarity, summary, written_answers
from autograder.reports.feedback import figures_from_notebook, write_feedback_html
from autograder.reports.gradebook import write_gradebook_csv
from autograder.reports.results_json import write_results_json
from autograder.reports.writing import atomic_write_bytes, atomic_write_text
from autograder.results import (CANVAS_GRADEBOOK_CSV, EXECUTED_NOTEBOOK, FEEDBACK_HTML, GRADEBOOK_CSV, MEASUREMENTS_JSON,
                                RESULTS_JSON,
                                ROW_FILE, SECRET_FILE, SIMILARITY_HTML, SUMMARY_HTML, GradeRow, ItemScore, Lateness,
                                Status, clear_output_names, is_graded, plain_json)
from autograder.scoring import late
from autograder.scoring.rubric import LATE_FLAG

log = logging.getLogger("autograder")

PUBLIC_TESTS = STUDENT_TEMPLATE / "tests"


@dataclass
class GradeSettings:
    out_dir: Path
    rubric_path: Path
    data_dir: Path
    sandbox: str
    profile_name: str           # the work profile's name ("grading", "tiny", "full"): it selects per-profile thresholds
    profile: dict               # its knobs, injected after the parameters cell (autograder/lab/profiles.py)
    limits: Limits
    force: bool = False
    canvas_assignment: str | None = None    # Canvas column header, e.g. "Lab 3 (123456)"; default: the rubric title
    canvas_roster: Path | None = None       # a Canvas gradebook export, to fill the students' Canvas ids
    extensions: Path | None = None          # CSV submission,deadline: per-student extended deadlines
    submission_times: Path | None = None    # CSV submission,submitted_at: when each was handed in (wins)
    only: tuple = ()                        # names to regrade; every other row is kept from the last run
    starter_code: tuple = ()                # more code (notebooks or .py) the similarity report excludes


# --- small helpers -----------------------------------------------------------------------------------------------

def file_digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


SCORING_ONLY_KEYS = ("points", "title", "visibility")   # of an item: arithmetic on its check's cached fraction


def rubric_digest(path: Path) -> str:
    """What the expensive stage depends on in the rubric: each item's check and parameters, nothing else. Points,
    titles, visibility, penalties and the written answers (`manual_items`) are applied to the cached fractions by
    `rescore`, so changing them re-executes nothing."""
    data = Path(path).read_bytes()
    try:
        raw = yaml.safe_load(data)
    except yaml.YAMLError:
        return hashlib.sha256(data).hexdigest()
    if isinstance(raw, dict):
        items = raw.get("items") if isinstance(raw.get("items"), list) else []
        raw = [{key: value for key, value in item.items() if key not in SCORING_ONLY_KEYS}
               if isinstance(item, dict) else item for item in items]
    return hashlib.sha256(json.dumps(raw, sort_keys=True, default=str).encode()).hexdigest()


def rescore(row: GradeRow, rubric) -> GradeRow:
    """A cached row with the rubric's current points, titles, visibility and penalties, from the checks' cached
    fractions (the cache key guarantees the same checks with the same parameters)."""
    cached = {score.item_id: score for score in row.item_scores}
    if set(cached) != set(rubric.item_ids):
        return row
    scores = []
    for item in rubric.items:
        score = cached[item.item_id]
        scores.append(replace(score, title=item.title, max_points=float(item.points), visibility=item.visibility,
                              points=round(float(item.points) * score.fraction, 4), penalties=[]))
    scores = scoring.apply_penalties(scores, set(row.flags), rubric)
    return replace(row, item_scores=scores, score=round(sum(s.points for s in scores), 4),
                   max_score=round(sum(s.max_points for s in scores), 4), items={s.item_id: s.points for s in scores})


def probe_secret(out_dir: Path) -> str:
    """A per-class secret kept in OUT/: probe inputs are unpredictable to students yet stable across re-runs."""
    path = out_dir / SECRET_FILE
    if not path.exists():
        atomic_write_text(path, secrets.token_hex(16))
    return path.read_text().strip()


def probe_seed(secret: str, submission: Submission) -> int:
    return int.from_bytes(hashlib.sha256(f"{secret}:{submission.content_digest()}".encode()).digest()[:4], "big")


def cache_key(submission: Submission, settings: GradeSettings) -> str:
    parts = [GRADER_VERSION, submission.content_digest(), rubric_digest(settings.rubric_path),
             settings.profile_name, json.dumps(settings.profile, sort_keys=True), settings.sandbox,
             json.dumps(asdict(settings.limits), sort_keys=True)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def load_cached_row(sub_out: Path, key: str) -> GradeRow | None:
    try:
        row = GradeRow.from_json((sub_out / ROW_FILE).read_text())
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return row if row.cache_key == key else None


def log_run(submission_id: str, result: ExecutionResult) -> None:
    """The run's notes, and the runner's log when the submission was not graded, in grading.log."""
    for note in result.notes:
        log.info("%s: note: %s", submission_id, note)
    if not is_graded(result.status) and result.runner_log.strip():
        log.info("%s: runner log (%s), last lines:\n%s", submission_id, result.status, result.runner_log.rstrip())


# --- one submission: the expensive, cached stage -------------------------------------------------------------------

def submission_facts(submission: Submission, extension=None, answers: dict | None = None) -> dict:
    """The facts of a submission its row carries for the cheap stage (GradeRow.FACTS): not part of the cache key, so
    a new time, extension or late policy re-executes nothing."""
    return {"source_name": submission.source.name,
            "submitted_at": submission.submitted_at.isoformat() if submission.submitted_at else "",
            "time_source": submission.time_source, "late_marker": bool(submission.late_marker),
            "extension": extension.isoformat() if extension else "",
            "answer_states": {item_id: answer.state for item_id, answer in (answers or {}).items()}}


def with_facts(row: GradeRow, facts: dict | None, sub_out: Path | None = None) -> GradeRow:
    """The row with this run's facts; row.json is rewritten when they changed (its cache key stays valid)."""
    if not facts or row.facts() == facts:
        return row
    row = replace(row, **facts)
    if sub_out is not None and (sub_out / ROW_FILE).exists():
        atomic_write_text(sub_out / ROW_FILE, row.to_json())
    return row


def grade_submission(submission: Submission, settings: GradeSettings, rubric, secret: str,
                     facts: dict | None = None, force: bool = False) -> GradeRow:
    """Execution and the automatic items for one student, cached in OUT/<id>/row.json; a failure at any stage
    becomes this row's status, never an escaped exception. The reports are written by `finalize_submission`.
    The local pool runs this in a thread; a Dask worker runs `evaluate_submission` (autograder/distribute/)."""
    sub_out = settings.out_dir / submission.submission_id
    key = cache_key(submission, settings)
    if not (settings.force or force) and (cached := load_cached_row(sub_out, key)):
        log.info("%s: unchanged since the last run, not executed again", submission.submission_id)
        return with_facts(rescore(cached, rubric), facts, sub_out)
    work = submission_work(submission, secret, facts)
    return store_evaluation(evaluate_submission(work, settings, rubric, key), sub_out)


def submission_work(submission: Submission, secret: str, facts: dict | None = None) -> dict:
    """What the expensive stage needs of one submission, as plain data (sent as is to a Dask worker): its id, name,
    flags and problem, the notebook's bytes (or why they could not be read), its probe seed and the facts its row
    carries (`submission_facts`)."""
    work = {"submission_id": submission.submission_id, "display_name": submission.display_name,
            "flags": sorted(submission.flags), "problem": submission.problem, "notebook": None, "read_error": None,
            "seed": probe_seed(secret, submission), "facts": facts or submission_facts(submission)}
    if not submission.problem:
        try:
            work["notebook"] = submission.notebook_bytes()
        except Exception as error:  # unreadable file or archive member
            work["read_error"] = str(error)
    return work


def evaluate_submission(work: dict, settings: GradeSettings, rubric, key: str) -> dict:
    """Execute, harvest, probe, check and score one submission (`submission_work`) without writing anything to
    OUT/: returns plain data, {"row": row.json's text, "executed_notebook": bytes or None, "measurements":
    measurements.json's text}, which `store_evaluation` writes. The same function runs in the local pool and on a
    Dask worker, so both give the same row."""
    submission_id = work["submission_id"]
    started = time.monotonic()
    outcome = ProbeOutcome()        # nothing probed: the notebook did not run, and its status says why
    executed_bytes = None
    with tempfile.TemporaryDirectory(prefix="labgrade-") as workdir:
        workdir = Path(workdir)
        result = None
        if work["problem"]:
            result = ExecutionResult(Status.INVALID, work["problem"], sandbox="not run")
        elif work["read_error"] is not None:
            result = ExecutionResult(Status.INVALID, f"the notebook could not be read ({work['read_error']}): "
                                                     f"resubmit it", sandbox="not run")
        else:
            notebook_path = workdir / "submission.ipynb"
            notebook_path.write_bytes(work["notebook"])
            run_dir = workdir / "run"
            run_dir.mkdir()
            # The public self-checks, so that the student's grader.check cells run as they did for them.
            shutil.copytree(PUBLIC_TESTS, run_dir / "tests")
            prober = ProbeRun(data_dir=settings.data_dir, limits=settings.limits, venv=run.venv())
            try:
                result = run.execute_submission(notebook_path, run_dir, overrides=settings.profile,
                                                data_dir=settings.data_dir, limits=settings.limits,
                                                sandbox=settings.sandbox, before_run=prober.start)
                outcome = prober.finish(run_dir, work["seed"], settings.profile,
                                        result.artefacts.get("figures") or [])
            finally:
                prober.stop()
        if result.executed_notebook_path and Path(result.executed_notebook_path).exists():
            executed_bytes = Path(result.executed_notebook_path).read_bytes()
    result.notes += outcome.notes
    log_run(submission_id, result)
    if outcome.server_log.strip() and not is_graded(result.status):
        log.info("%s: probe server log, last lines:\n%s", submission_id, outcome.server_log.rstrip())
    artefacts, findings = with_probes(result, outcome)
    measured = json.dumps(measurements(outcome), indent=1, default=plain_json)

    # Integrity findings of the run (for the instructor) join the discovery flags: row, penalties, feedback.
    flags = set(work["flags"]) | set(integrity.flags(findings))
    await_warm_up()
    item_scores = scoring.score(rubric, artefacts, outcome.inputs, status=result.status,
                                reason=result.reason, profile=settings.profile, profile_name=settings.profile_name)
    item_scores = scoring.apply_penalties(item_scores, flags, rubric)
    row = GradeRow(submission=submission_id, display_name=work["display_name"], status=result.status,
                   reason=result.reason, score=round(sum(s.points for s in item_scores), 4),
                   max_score=round(sum(s.max_points for s in item_scores), 4),
                   items={s.item_id: s.points for s in item_scores}, flags=sorted(flags),
                   duration_s=round(time.monotonic() - started, 2), sandbox=result.sandbox, cache_key=key,
                   item_scores=item_scores, cell_errors=list(result.cell_errors or []), notes=list(result.notes),
                   advice=template_advice(result, outcome), **work["facts"])
    return {"row": row.to_json(), "executed_notebook": executed_bytes, "measurements": measured}


def store_evaluation(evaluation: dict, sub_out: Path) -> GradeRow:
    """Write what `evaluate_submission` returned into OUT/<id>/, each file atomically and row.json (the cache entry)
    last; returns the row as a cached run would read it back."""
    sub_out.mkdir(parents=True, exist_ok=True)
    executed = sub_out / EXECUTED_NOTEBOOK
    if evaluation["executed_notebook"] is not None:
        atomic_write_bytes(executed, evaluation["executed_notebook"])
    else:       # a stale notebook of an earlier version must not feed this version's feedback
        executed.unlink(missing_ok=True)
    atomic_write_text(sub_out / MEASUREMENTS_JSON, evaluation["measurements"])
    atomic_write_text(sub_out / ROW_FILE, evaluation["row"])
    # Plain JSON, so the row a first run returns equals the row a cached run reads back.
    return GradeRow.from_json(evaluation["row"])


MEASURED = ("vae_model", "gaussian_vae_model", "ae_models", "pca_sweep", "pca_figures")   # the grader's measurements of the models


def measurements(outcome: ProbeOutcome) -> dict:
    """What the grader measured of the student's models, as plain JSON for the staff (and bench/calibrate.py):
    each model probe's value or error, the figure matches summarised per grid."""
    measured = {}
    for name in MEASURED:
        answer = outcome.probes.get(name) or {}
        if not answer.get("ok"):
            measured[name] = {"error": answer.get("error", "not run")}
            continue
        value = answer["value"]
        if isinstance(value, dict) and "figure_grids" in value:
            value = {**value, "figure_grids": [
                {key: grid[key] for key in ("figure", "kind", "rows", "cols")} |
                {"median_residual": float(np.median(grid["residual"])) if grid["residual"] else None}
                for grid in value["figure_grids"]]}
        measured[name] = value
    return measured


TEMPLATE_NAMES = ("VAEEncoder", "VAEDecoder", "VAE", "reparameterize", "kl_divergence", "bernoulli_vae_loss",
                  "gaussian_vae_loss", "pca_encode", "pca_generate", "pca_reconstruct", "vae", "vae_history")


def template_advice(result: ExecutionResult, outcome: ProbeOutcome) -> list[str]:
    """Lines for the top of the feedback page when the notebook does not follow the template, and what to do."""
    advice = []
    if result.layout is not None and result.layout.parameters_cell is None:
        advice.append("Your notebook has no parameters cell (the template's cell that sets SEED, DATA_DIR, N_TRAIN, "
                      "... tagged `parameters`). The grader put its values at the top instead, so any value your "
                      "notebook sets later overrides them: training may run at full size and out of time. Keep the "
                      "template's parameters cell and use its names.")
    if result.layout is not None and not any(outcome.names.get(name) for name in TEMPLATE_NAMES):
        advice.append("Your notebook defines none of the names the template asks for (VAEEncoder, kl_divergence, "
                      "vae, ...), so the grader could check almost nothing. Start from the lab's template notebook "
                      "and keep its names.")
    return advice


def with_probes(result: ExecutionResult, outcome: ProbeOutcome) -> tuple[dict, list]:
    """The artefacts the checks read (the run's figures, the probes' answers, the names the notebook defines) and
    every integrity finding. A finding that voids (the notebook reached the grader's machinery: its code, its
    hooks, its channel) leaves no figure and no probe answer to grade: attempts earn nothing."""
    findings = list(result.findings) + list(outcome.findings)
    artefacts = {**result.artefacts, "probes": outcome.probes, "names": outcome.names}
    voiding = [finding.text for finding in findings if finding.voids]
    if voiding:
        error = {"ok": False, "error": f"IntegrityError: {voiding[0]}"}
        artefacts = {"figures": [], "probes": {name: dict(error) for name in outcome.probes}, "names": outcome.names}
        result.notes.append(f"Integrity: {voiding[0]}; the automatic results could not be verified and earn nothing.")
    return artefacts, findings


def failed_row(submission: Submission, rubric, error: BaseException | str, facts: dict | None = None) -> GradeRow:
    """A grader bug on one submission (the exception, or its description from a Dask worker): the row says so and
    the batch goes on."""
    what = f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else error
    reason = f"the grader failed on this submission ({what}); tell the course staff"
    return GradeRow(submission=submission.submission_id, display_name=submission.display_name, status=Status.ERROR,
                    reason=reason, score=0.0, max_score=float(sum(item.points for item in rubric.items)),
                    items={item.item_id: 0.0 for item in rubric.items}, flags=sorted(submission.flags),
                    item_scores=[ItemScore.zero(item, reason, {"status": Status.ERROR}) for item in rubric.items],
                    **(facts or submission_facts(submission)))


# --- one submission: the cheap final stage -------------------------------------------------------------------------

def assess_lateness(row: GradeRow, rubric) -> Lateness | None:
    """The row's lateness under the rubric's deadline and late policy, from the facts the row carries."""
    return late.assess(row.submitted_at, row.time_source, row.late_marker, rubric.deadline, rubric.late_policy,
                       row.extension or None)


def final_scores(row: GradeRow, rubric, ta_scores: dict, questions=None) -> tuple[list[ItemScore], Lateness | None]:
    """Every item's final score: the automatic items (from the row), the written answers (the TA's scores, else 0
    and "awaiting review", or "not answered"), with the rubric's penalties and the late share applied to all of them
    at once; and the row's lateness. Pure: reads nothing but its arguments."""
    answers = {item_id: written_answers.Answer("", state) for item_id, state in (row.answer_states or {}).items()}
    manual = review.manual_item_scores(rubric, row.submission, ta_scores, answers or None, questions)
    lateness = assess_lateness(row, rubric)
    extra = [scoring.Penalty(LATE_FLAG, lateness.fraction, lateness.message)] \
        if lateness is not None and lateness.penalised else []
    return scoring.repenalise(list(row.item_scores) + manual, set(row.flags), rubric, extra), lateness


def final_row(row: GradeRow, item_scores: list[ItemScore], lateness: Lateness | None, rubric) -> GradeRow:
    """The row the gradebook and the class reports read: totals and item points after everything, the written
    answers awaiting review listed."""
    manual_ids = set(rubric.manual_ids)
    pending = [s.item_id for s in item_scores if s.item_id in manual_ids and s.awaiting_review]
    items = {s.item_id: s.points for s in item_scores if s.item_id not in pending}
    return replace(row, score=round(sum(s.points for s in item_scores), 4),
                   max_score=round(sum(s.max_points for s in item_scores), 4), items=items, awaiting_review=pending,
                   lateness=lateness)


def finalize_submission(row: GradeRow, settings: GradeSettings, rubric, ta_scores: dict, answers: dict | None = None,
                        questions=None) -> GradeRow:
    """The automatic items plus the written answers, lateness and penalties (`final_scores`) -> results.json and
    feedback.html. Returns the final row (row.json is left as the expensive stage wrote it). `answers` ({item id:
    Answer}), when given, replaces the answer states the row carries."""
    if answers is not None:
        row = replace(row, answer_states={item_id: answer.state for item_id, answer in answers.items()})
    sub_out = settings.out_dir / row.submission
    item_scores, lateness = final_scores(row, rubric, ta_scores, questions)
    executed = sub_out / EXECUTED_NOTEBOOK
    write_results_json(sub_out / RESULTS_JSON, item_scores, status=row.status, reason=row.reason)
    write_feedback_html(
        sub_out / FEEDBACK_HTML, submission_id=row.submission, display_name=row.display_name, status=row.status,
        reason=row.reason, item_scores=item_scores, cell_errors=row.cell_errors,
        figures_png=figures_from_notebook(executed if executed.exists() else None), sandbox=row.sandbox,
        flags=row.flags, notes=row.notes, advice=row.advice, lateness=lateness,
        time_limits=settings.limits.describe_time())
    return final_row(row, item_scores, lateness, rubric)


def _grade_one(submission: Submission, settings: GradeSettings, rubric, secret: str, ta_scores: dict,
               questions=None, extension=None, force: bool = False) -> GradeRow:
    """Both stages for one student, in a worker thread; a grader bug in either becomes an `error` row."""
    facts = None
    try:
        answers = written_answers.answers_of(submission, questions) if questions is not None else None
        facts = submission_facts(submission, extension, answers)
        row = grade_submission(submission, settings, rubric, secret, facts, force=force)
    except Exception as error:  # a grader bug must not lose the other students' grades
        log.error("%s: grader error\n%s", submission.submission_id, traceback.format_exc())
        row = failed_row(submission, rubric, error, facts)
    return finish_submission(submission, row, settings, rubric, ta_scores, questions, facts)


def finish_submission(submission: Submission, row: GradeRow, settings: GradeSettings, rubric, ta_scores: dict,
                      questions=None, facts: dict | None = None) -> GradeRow:
    """The cheap stage (`finalize_submission`) for a row from the cache, the local pool or a Dask worker; a grader
    bug becomes an `error` row."""
    try:
        return finalize_submission(row, settings, rubric, ta_scores, questions=questions)
    except Exception as error:
        log.error("%s: grader error while writing the reports\n%s", submission.submission_id, traceback.format_exc())
        return failed_row(submission, rubric, error, facts)


# --- the class ---------------------------------------------------------------------------------------------------

def grade_class(submissions_dir: Path, settings: GradeSettings, jobs: int = 1, progress: bool = True,
                cluster=None) -> list[GradeRow]:
    """Grade every submission: with a local pool of `jobs` threads, or, given `cluster` (a
    distribute.cluster.Scheduler: the address of a Dask scheduler), one task per submission on that Dask cluster.
    Either way this process alone writes OUT/. Raises distribute.ClusterError when the cluster cannot be reached or
    is lost. The caller passes the cluster, so that this module imports nothing of autograder/distribute/ (which
    imports it)."""
    settings.out_dir.mkdir(parents=True, exist_ok=True)
    clear_output_names(settings.out_dir, log.warning)
    rubric = scoring.load_rubric(settings.rubric_path)
    submissions = discover(submissions_dir)
    previous = previous_rows(settings.out_dir)
    # a CSV row may name a kept student whose notebook is not in this folder
    absent = [SimpleNamespace(submission_id=r.submission, display_name=r.display_name, source=Path(r.source_name))
              for r in previous.values() if r.submission not in {s.submission_id for s in submissions}]
    times_found = read_times(submissions + absent, settings.submission_times)
    submissions = [replace(s, submitted_at=times_found[s.submission_id], time_source=Path(
        settings.submission_times).name) if s.submission_id in times_found else s for s in submissions]
    extensions = read_extensions(submissions + absent, settings.extensions)
    secret = probe_secret(settings.out_dir)
    ta_sheet = review.load_scores(settings.out_dir, rubric)     # the TA's scores from the last review sheet
    questions = written_answers.load_questions(rubric) if rubric.manual_items else None
    to_grade = select_only(submissions, settings.only, submissions_dir) if settings.only else submissions
    where = f"on the Dask cluster at {cluster.address}" if cluster else f"with {jobs} job(s)"
    log.info("grading %d submissions from %s into %s %s, sandbox=%s",
             len(to_grade), submissions_dir, settings.out_dir, where, settings.sandbox)
    log.info("profile %s %s; time limits: %s", settings.profile_name, json.dumps(settings.profile, sort_keys=True),
             settings.limits.describe_time())
    if settings.only:
        for submission in to_grade:
            log.info("%s: regrading (--only): %s", submission.submission_id, regrade_reason(submission, settings))
    unenforced = sandbox_module.unenforced_limits(settings.sandbox) if any(not s.problem for s in to_grade) else []
    for line in unenforced:
        log.warning("limit not enforced on this machine: %s", line)

    rows: list[GradeRow] = []
    bar = _progress_bar(len(to_grade), progress)
    if cluster:
        facts = {s.submission_id: facts_of(s, extensions.get(s.submission_id), questions) for s in to_grade}
        graded = cluster.grade(to_grade, settings, rubric, secret, ta_sheet.all_scores, questions, facts=facts,
                               force=bool(settings.only))
    else:
        if any(not s.problem for s in to_grade):
            start_warm_up()
        graded = _grade_locally(to_grade, settings, rubric, secret, ta_sheet.all_scores, questions, jobs,
                                extensions)
    try:
        for submission, row in graded:
            rows.append(row)
            log.info("%s: %s, %.1f/%.1f in %.1fs%s", row.submission, row.status, row.score, row.max_score,
                     row.duration_s, f" ({row.reason})" if row.reason and row.status != Status.OK else "")
            bar.set_postfix_str(f"{row.submission}: {row.status}", refresh=False)
            bar.update(1)
    finally:
        bar.close()
    # The other rows of OUT/ are kept: those --only did not name, and those of students not in this folder (a
    # folder holding one student never shrinks the class's gradebook to one row).
    kept = kept_rows(previous, {r.submission for r in rows}, rubric, ta_sheet.all_scores, questions,
                     {s.submission_id: s for s in submissions}, extensions, times_found, settings)
    if settings.only:
        log.info("kept from the last run, not regraded (--only): %s", ", ".join(r.submission for r in kept) or "none")
        never = sorted({s.submission_id for s in submissions} - {r.submission for r in rows + kept})
        if never:
            log.warning("not in --only and never graded, so not in the gradebook: %s", ", ".join(never))
    elif kept:
        log.warning("kept %d row(s) of earlier runs whose submissions are not in %s: %s (delete OUT/<submission>/ "
                    "to drop one)", len(kept), submissions_dir, ", ".join(r.submission for r in kept))
    rows = sorted(rows + kept, key=lambda r: r.submission.lower())
    table = [r.table_row() for r in rows]
    write_gradebook_csv(settings.out_dir / GRADEBOOK_CSV, table, rubric, manual_items=rubric.manual_items)
    by_id = {s.submission_id: s for s in submissions}
    at_hand = [by_id[r.submission] for r in rows if r.submission in by_id]
    write_review_and_canvas(settings, at_hand, rows, rubric, [r for r in kept if r.submission not in by_id])
    if all(r.submission in by_id for r in rows):
        compared = [by_id[r.submission] for r in rows]
    else:       # --only with a folder that lacks some of the kept students: their code is not at hand
        compared = None
        log.info("%s is left as the last full run wrote it: the submissions folder does not hold every graded "
                 "submission", SIMILARITY_HTML)
    write_class_reports(settings.out_dir, compared, table, rubric, unenforced,
                        **({"starter_code": settings.starter_code} if settings.starter_code else {}))
    return rows


def facts_of(submission: Submission, extension, questions) -> dict | None:
    """`submission_facts` with the written answers' states, for a submission graded on the cluster (None, the
    plain facts, when its answers cannot be read: the cheap stage says so)."""
    try:
        answers = written_answers.answers_of(submission, questions) if questions is not None else None
        return submission_facts(submission, extension, answers)
    except Exception:  # an unreadable notebook: its row says why
        log.warning("%s: the written answers could not be read:\n%s", submission.submission_id,
                    traceback.format_exc())
        return None


def _grade_locally(submissions: list[Submission], settings: GradeSettings, rubric, secret: str, ta_scores: dict,
                   questions, jobs: int, extensions: dict):
    """(submission, final row) as the local pool of `jobs` threads finishes them."""
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {pool.submit(_grade_one, s, settings, rubric, secret, ta_scores, questions,
                               extensions.get(s.submission_id), bool(settings.only)): s
                   for s in submissions}
        for future in as_completed(futures):
            submission = futures[future]
            try:
                row = future.result()
            except Exception as error:  # _grade_one catches everything; this is the last line of defence
                log.error("%s: grader error\n%s", submission.submission_id, traceback.format_exc())
                row = failed_row(submission, rubric, error)
            yield submission, row


def release_class(out_dir: Path, rubric_path: Path, publish: bool = False, pdf: bool = True) -> dict:
    """OUT/release/ (autograder/reports/release.py) from the graded class: every OUT/<id>/row.json finished by the
    cheap stage with the current rubric, TA scores and late policy; no notebook runs."""
    out_dir = Path(out_dir)
    rubric = scoring.load_rubric(rubric_path)
    ta_sheet = review.load_scores(out_dir, rubric)
    questions = written_answers.load_questions(rubric) if rubric.manual_items else None
    students = []
    for path in sorted(out_dir.glob(f"*/{ROW_FILE}")):
        try:
            row = GradeRow.from_json(path.read_text())
        except (OSError, ValueError, KeyError, TypeError) as error:
            log.warning("%s: not readable (%s); not released", path, error)
            continue
        if path.parent.name != row.submission:
            continue
        row = rescore(row, rubric)
        item_scores, lateness = final_scores(row, rubric, ta_sheet.all_scores, questions)
        students.append(release.Released(final_row(row, item_scores, lateness, rubric), item_scores, lateness))
    if not students:
        raise FileNotFoundError(f"no graded submission in {out_dir} (no <submission>/{ROW_FILE}): grade the class "
                                f"first (make grade OUT={out_dir})")
    return release.write_release(out_dir, students, rubric, publish=publish, pdf=pdf)


def read_times(submissions: list, path: Path | None) -> dict:
    """submission id -> time, from a `--submission-times` CSV (it wins over timestamp.txt and Gradescope's)."""
    if path is None:
        return {}
    return times.match_table(times.read_time_table(path, "submitted_at", "submission times"), submissions, path,
                             "submission times")


def read_extensions(submissions: list[Submission], path: Path | None) -> dict:
    """submission id -> extended deadline, from an `--extensions` CSV."""
    if path is None:
        return {}
    return times.match_table(times.read_time_table(path, "deadline", "extensions"), submissions, path, "extensions")


def select_only(submissions: list[Submission], names, submissions_dir: Path) -> list[Submission]:
    """The submissions `--only` names (by id, name or file name); a name that matches none is an error that lists
    the ids."""
    chosen, unknown = [], []
    for name in dict.fromkeys(str(n).strip() for n in names if str(n).strip()):
        hits = [s for s in submissions if name.lower() in times.keys_of(s)]
        if not hits:
            unknown.append(name)
        chosen += [s for s in hits if s not in chosen]
    if unknown:
        raise ValueError(f"--only {' '.join(unknown)}: no such submission in {submissions_dir}; its submissions are: "
                         f"{', '.join(s.submission_id for s in submissions) or 'none'}")
    return chosen


def regrade_reason(submission: Submission, settings: GradeSettings) -> str:
    """Why a submission named by `--only` is regraded, against its last row (for the log)."""
    try:
        previous = GradeRow.from_json((settings.out_dir / submission.submission_id / ROW_FILE).read_text())
    except (OSError, ValueError, KeyError, TypeError):
        return "asked for by name; not graded before"
    was = f"last run: {previous.status}, {previous.score:g}/{previous.max_score:g} automatic points"
    if previous.cache_key == cache_key(submission, settings):
        return f"asked for by name; same notebook and settings as the last run, run again ({was})"
    return f"asked for by name; its notebook or the grading settings changed since the last run ({was})"


def previous_rows(out_dir: Path) -> dict[str, GradeRow]:
    """The rows of the last run, OUT/<id>/row.json, by submission id."""
    rows = {}
    for path in sorted(Path(out_dir).glob(f"*/{ROW_FILE}")):
        try:
            row = GradeRow.from_json(path.read_text())
        except (OSError, ValueError, KeyError, TypeError) as error:
            log.warning("%s: not readable (%s); that row is not kept", path, error)
            continue
        if path.parent.name == row.submission:
            rows[row.submission] = row
    return rows


def kept_rows(previous: dict[str, GradeRow], regraded: set[str], rubric, ta_scores: dict, questions, present: dict,
              extensions: dict, times_found: dict, settings: GradeSettings) -> list[GradeRow]:
    """Every other row of the last run, finished by the cheap stage with the current rubric, TA scores and late
    policy; their pages are left as they are. A kept student gets its current time (its submission in the folder,
    or the times CSV) and extension; row.json is updated when they changed."""
    kept = []
    for submission_id, row in sorted(previous.items()):
        if submission_id in regraded:
            continue
        if submission_id in present:
            facts = submission_facts(present[submission_id], extensions.get(submission_id))
        else:
            facts = row.facts() | {"extension": extensions[submission_id].isoformat()
                                   if submission_id in extensions else row.extension}
            if submission_id in times_found:
                facts |= {"submitted_at": times_found[submission_id].isoformat(),
                          "time_source": Path(settings.submission_times).name}
        facts["answer_states"] = row.answer_states
        row = with_facts(row, facts, settings.out_dir / submission_id)
        row = rescore(row, rubric)
        item_scores, lateness = final_scores(row, rubric, ta_scores, questions)
        kept.append(final_row(row, item_scores, lateness, rubric))
    return kept


# What the grader's own process needs after a notebook has run (about 3 s of imports on a 2-core machine): loaded
# while the first notebooks execute in their kernels, when this process only waits.
WARM_UP_MODULES = ("sklearn.decomposition", "matplotlib.figure", "matplotlib.backends.backend_agg", "copydetect")


_warm_up_thread: threading.Thread | None = None


def start_warm_up() -> None:
    global _warm_up_thread
    _warm_up_thread = threading.Thread(target=warm_up, name="warm-up", daemon=True)
    _warm_up_thread.start()


def await_warm_up() -> None:
    """Scoring waits for the warm-up, so that no two threads import the same libraries at once (a concurrent
    circular import can hand one of them a half-initialised module)."""
    if _warm_up_thread is not None:
        _warm_up_thread.join()


def warm_up() -> list[str]:
    """Import the checks' and reports' libraries and load the digit classifier; returns what failed, which the real
    use later reports properly (so nothing here raises)."""
    failed = []
    try:
        stale = classifier.stale_reason(classifier.classifier_dir(), classifier.DEFAULT_DATA_ROOT)
        if stale:       # training takes minutes: left to the first check that needs it, which says so
            failed.append(f"classifier: {stale}")
        else:
            classifier.shared()
    except Exception as error:
        failed.append(f"classifier: {error}")
    for name in WARM_UP_MODULES:
        try:
            importlib.import_module(name)
        except Exception as error:
            failed.append(f"{name}: {error}")
    return failed


def write_review_and_canvas(settings: GradeSettings, submissions: list[Submission], rows: list[GradeRow],
                            rubric, kept: list[GradeRow] = ()) -> None:
    """OUT/review/written_answers.{html,csv} and OUT/canvas_gradebook.csv; a failure of either is logged and never
    loses the grades written before them. `kept` rows (`--only`) keep their answers as the last sheet listed them."""
    if rubric.manual_items:
        try:
            questions = written_answers.load_questions(rubric)
            students = written_answers.review_students(submissions, questions)
            if kept:
                students += review.students_from_sheet(settings.out_dir, rubric, [(r.submission, r.display_name)
                                                                                  for r in kept])
            review.write_review_sheet(settings.out_dir, rubric, students, questions)
        except Exception:  # a review-sheet bug must not cost the grades
            log.error("the review sheet could not be written; the grades in %s are unaffected\n%s", GRADEBOOK_CSV,
                      traceback.format_exc())
    try:
        named = list(submissions) + [SimpleNamespace(submission_id=r.submission, source=Path(r.source_name))
                                     for r in kept]
        canvas.write_canvas_gradebook(settings.out_dir / CANVAS_GRADEBOOK_CSV, [r.table_row() for r in rows],
                                      named, rubric, assignment=settings.canvas_assignment,
                                      roster=settings.canvas_roster)
    except Exception:
        log.error("%s could not be written; the grades in %s are unaffected\n%s", CANVAS_GRADEBOOK_CSV, GRADEBOOK_CSV,
                  traceback.format_exc())


def write_class_reports(out_dir: Path, submissions: list[Submission] | None, rows: list[dict], rubric,
                        unenforced: list[str] = (), starter_code=()) -> None:
    """OUT/similarity.html (not rewritten when `submissions` is None) and OUT/summary.html (it links the other and
    lists the limits this machine could not enforce); a failure of either is logged and never loses the grades
    written before them. `starter_code`: more code the similarity report excludes, besides the template."""
    writers = [] if submissions is None else [
        (SIMILARITY_HTML, lambda path: similarity.write_similarity_report(submissions, path,
                                                                          starter_code=starter_code))]
    writers.append((SUMMARY_HTML, lambda path: summary.write_summary_html(path, rows, rubric, unenforced=unenforced)))
    for name, write in writers:
        try:
            write(out_dir / name)
        except Exception:  # a report bug must not cost the grades
            log.error("%s could not be written; the grades in %s are unaffected\n%s", name, GRADEBOOK_CSV,
                      traceback.format_exc())


def _progress_bar(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, unit="submission", disable=not enabled, dynamic_ncols=True,
                bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}] {postfix}")
