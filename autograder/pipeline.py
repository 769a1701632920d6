"""Grade a class: discover -> execute (sandboxed) -> harvest -> checks -> rubric -> reports.

Each stage takes the previous stage's value. A submission that fails anywhere is a row with a status and a reason,
never an exception that stops the batch; every result file is written atomically, and a finished submission is
skipped on the next run while its content, the rubric and the grader version are unchanged.
"""
from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import secrets
import shutil
import tempfile
import time
import traceback
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

from autograder import GRADER_VERSION
from autograder.discover import Submission, discover

log = logging.getLogger("autograder")

ROW_FILE = "row.json"                 # the gradebook row and the cache key of one graded submission
EXECUTED_NOTEBOOK = "executed.ipynb"
SECRET_FILE = ".probe_secret"         # seeds the probe inputs; never visible to a submission
PUBLIC_TESTS = Path(__file__).resolve().parents[1] / "student_template" / "tests"


@dataclass
class GradeSettings:
    out_dir: Path
    rubric_path: Path
    data_dir: Path
    sandbox: str
    profile: dict
    limits: object
    force: bool = False


@dataclass
class GradeRow:
    submission: str
    display_name: str
    status: str
    reason: str
    score: float
    max_score: float
    items: dict = field(default_factory=dict)     # rubric item id -> points
    flags: list = field(default_factory=list)
    duration_s: float = 0.0
    sandbox: str = ""
    cache_key: str = ""


# --- small helpers -----------------------------------------------------------------------------------------------

def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=path.name + ".", suffix=".tmp",
                                     delete=False, encoding="utf-8") as tmp:
        tmp.write(text)
    os.replace(tmp.name, path)


def file_digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def probe_secret(out_dir: Path) -> str:
    """A per-class secret kept in OUT/: probe inputs are unpredictable to students yet stable across re-runs."""
    path = out_dir / SECRET_FILE
    if not path.exists():
        atomic_write_text(path, secrets.token_hex(16))
    return path.read_text().strip()


def probe_seed(secret: str, submission: Submission) -> int:
    return int.from_bytes(hashlib.sha256(f"{secret}:{submission.content_digest()}".encode()).digest()[:4], "big")


def cache_key(submission: Submission, settings: GradeSettings) -> str:
    parts = [GRADER_VERSION, submission.content_digest(), file_digest(settings.rubric_path),
             json.dumps(settings.profile, sort_keys=True), settings.sandbox]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def load_cached_row(sub_out: Path, key: str) -> GradeRow | None:
    try:
        row = GradeRow(**json.loads((sub_out / ROW_FILE).read_text()))
    except (OSError, ValueError, TypeError):
        return None
    return row if row.cache_key == key else None


def figures_from_notebook(executed_notebook: Path | None, max_figures: int = 40) -> list[tuple[str, bytes]]:
    """(caption, PNG bytes) of every image the student's cells displayed, for the feedback thumbnails."""
    if not executed_notebook or not Path(executed_notebook).exists():
        return []
    try:
        notebook = json.loads(Path(executed_notebook).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    figures = []
    for index, cell in enumerate(notebook.get("cells", [])):
        for output in cell.get("outputs", []) or []:
            data = output.get("data", {}) if isinstance(output, dict) else {}
            png = data.get("image/png") if isinstance(data, dict) else None
            if isinstance(png, str) and len(figures) < max_figures:
                try:
                    figures.append((f"cell {index}", base64.b64decode(png)))
                except ValueError:
                    continue
    return figures


# --- one submission ----------------------------------------------------------------------------------------------

def grade_submission(submission: Submission, settings: GradeSettings, rubric, secret: str) -> GradeRow:
    """Every stage for one student; a failure at any stage becomes this row's status, never an escaped exception."""
    from autograder.execute import ExecutionResult, execute_submission
    from autograder.probe_inputs import draw_probe_inputs
    from autograder import report
    from autograder.rubric import apply_penalties, score

    sub_out = settings.out_dir / submission.submission_id
    key = cache_key(submission, settings)
    if not settings.force and (cached := load_cached_row(sub_out, key)):
        log.info("%s: unchanged since the last run, skipped", submission.submission_id)
        return cached

    started = time.monotonic()
    probe_inputs = draw_probe_inputs(probe_seed(secret, submission))
    with tempfile.TemporaryDirectory(prefix="labgrade-") as workdir:
        workdir = Path(workdir)
        result = None
        if submission.problem:
            result = ExecutionResult("invalid", submission.problem, sandbox="not run")
        else:
            try:
                notebook_path = workdir / "submission.ipynb"
                notebook_path.write_bytes(submission.notebook_bytes())
            except Exception as error:  # unreadable file or archive member
                result = ExecutionResult("invalid", f"the notebook could not be read ({error}): resubmit it",
                                         sandbox="not run")
        if result is None:
            run_dir = workdir / "run"
            run_dir.mkdir()
            # The public self-checks, so that the student's grader.check cells run as they did for them.
            shutil.copytree(PUBLIC_TESTS, run_dir / "tests")
            result = execute_submission(notebook_path, run_dir, overrides=settings.profile,
                                        probe_inputs=probe_inputs, data_dir=settings.data_dir,
                                        limits=settings.limits, sandbox=settings.sandbox)
        executed = None
        if result.executed_notebook_path and Path(result.executed_notebook_path).exists():
            executed = sub_out / EXECUTED_NOTEBOOK
            sub_out.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(result.executed_notebook_path, executed.with_suffix(".tmp"))
            os.replace(executed.with_suffix(".tmp"), executed)

    item_scores = score(rubric, result.artefacts or {}, probe_inputs, status=result.status, reason=result.reason,
                        profile=settings.profile)
    item_scores = apply_penalties(item_scores, set(submission.flags), rubric)
    total = round(sum(s.points for s in item_scores), 4)
    max_total = round(sum(s.max_points for s in item_scores), 4)

    report.write_results_json(sub_out / "results.json", item_scores, status=result.status, reason=result.reason)
    report.write_feedback_html(
        sub_out / "feedback.html", submission_id=submission.submission_id, display_name=submission.display_name,
        status=result.status, reason=result.reason, item_scores=item_scores, cell_errors=result.cell_errors,
        figures_png=figures_from_notebook(executed), sandbox=result.sandbox, flags=sorted(submission.flags))
    row = GradeRow(submission=submission.submission_id, display_name=submission.display_name, status=result.status,
                   reason=result.reason, score=total, max_score=max_total,
                   items={s.item_id: s.points for s in item_scores}, flags=sorted(submission.flags),
                   duration_s=round(time.monotonic() - started, 2), sandbox=result.sandbox, cache_key=key)
    atomic_write_text(sub_out / ROW_FILE, json.dumps(asdict(row), indent=1))
    return row


def failed_row(submission: Submission, rubric, error: BaseException) -> GradeRow:
    """A grader bug on one submission: the row says so and the batch goes on."""
    reason = f"the grader failed on this submission ({type(error).__name__}: {error}); tell the course staff"
    return GradeRow(submission=submission.submission_id, display_name=submission.display_name, status="error",
                    reason=reason, score=0.0, max_score=float(sum(item.points for item in rubric.items)),
                    items={item.item_id: 0.0 for item in rubric.items}, flags=sorted(submission.flags))


# --- the class ---------------------------------------------------------------------------------------------------

def grade_class(submissions_dir: Path, settings: GradeSettings, jobs: int = 1, progress: bool = True) -> list[GradeRow]:
    from autograder import report
    from autograder.rubric import load_rubric

    settings.out_dir.mkdir(parents=True, exist_ok=True)
    rubric = load_rubric(settings.rubric_path)
    submissions = discover(submissions_dir)
    secret = probe_secret(settings.out_dir)
    log.info("grading %d submissions from %s into %s with %d job(s), sandbox=%s",
             len(submissions), submissions_dir, settings.out_dir, jobs, settings.sandbox)

    rows: list[GradeRow] = []
    bar = _progress_bar(len(submissions), progress)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {pool.submit(grade_submission, s, settings, rubric, secret): s for s in submissions}
        for future in as_completed(futures):
            submission = futures[future]
            try:
                row = future.result()
            except Exception as error:  # a grader bug must not lose the other students' grades
                log.error("%s: grader error\n%s", submission.submission_id, traceback.format_exc())
                row = failed_row(submission, rubric, error)
            rows.append(row)
            log.info("%s: %s, %.1f/%.1f in %.1fs%s", row.submission, row.status, row.score, row.max_score,
                     row.duration_s, f" ({row.reason})" if row.reason and row.status != "ok" else "")
            bar.set_postfix_str(f"{row.submission}: {row.status}", refresh=False)
            bar.update(1)
    bar.close()
    rows.sort(key=lambda r: r.submission.lower())
    report.write_gradebook_csv(settings.out_dir / "gradebook.csv", [asdict(r) for r in rows], rubric)
    return rows


def _progress_bar(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, unit="submission", disable=not enabled, dynamic_ncols=True,
                bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}] {postfix}")
