"""`python -m autograder grade|worker|release|gradescope`: grade a class, lend a machine to a cluster that grades one,
release the class's feedback, grade one Gradescope submission.

    grade       [--submissions DIR] [--out DIR] [--jobs N] [--sandbox auto|bwrap|none] [--rubric FILE] [--force]
                [--only NAME ...] [--extensions CSV] [--submission-times CSV] [--starter-code PATH ...]
                [--canvas-assignment "NAME (ID)"] [--canvas-roster CANVAS_GRADEBOOK_EXPORT.csv]
                [--cell-timeout SECONDS] [--notebook-timeout SECONDS] [--profile grading|full|tiny|FILE.yaml]
                [--scheduler ADDRESS]     (on a Dask cluster)
    worker      --scheduler ADDRESS [--nworkers N] [--host IP]
    release     [--out DIR] [--rubric FILE] [--publish] [--no-pdf]
    gradescope  [--root /autograder] [--profile NAME] [--sandbox MODE]   (run_autograder calls it on Gradescope)

Every default is declared here, once, in DEFAULTS (the limits' in execution/limits.py); the Makefile passes only what
the user set.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from autograder import DATA_CACHE
from autograder.distribute import ClusterError
from autograder.distribute.cluster import Scheduler
from autograder.execution.limits import DEFAULT_LIMITS
from autograder.lab.data import MnistCacheError, check_cache
from autograder.lab.demo import DEMO_DIR
from autograder.lab.profiles import GRADING_PROFILE, PROFILES, resolve_profile
from autograder.pipeline import GradeSettings, grade_class, release_class
from autograder.results import (CANVAS_GRADEBOOK_CSV, GRADEBOOK_CSV, GRADING_LOG, RELEASE_DIR, RELEASE_INDEX,
                                REVIEW_CSV, REVIEW_DIR, REVIEW_HTML, Status, clear_output_names)
from autograder.scoring import DEFAULT_RUBRIC

DEFAULTS = {
    "submissions": DEMO_DIR,                  # the bundled demo class
    "out": Path("grades"),
    "jobs": 2,
    "sandbox": "auto",
    "rubric": DEFAULT_RUBRIC,                 # autograder/rubric.yaml
    "data_dir": DATA_CACHE,
    "profile": GRADING_PROFILE,               # the work profile injected into every notebook (lab/profiles.py)
    "canvas_assignment": None,   # None: the rubric's title (Canvas imports it as a new assignment)
    "canvas_roster": None,       # None: Canvas ids come from the submissions' file names only
    "scheduler": None,           # grade: the local pool of --jobs threads (no Dask process is started); worker: required
    "cell_timeout": DEFAULT_LIMITS.cell_timeout_s,           # execution/limits.py
    "notebook_timeout": DEFAULT_LIMITS.notebook_timeout_s,
    "nworkers": None,            # worker: one single-threaded worker process per core
    "host": None,                # worker: Dask's choice of this machine's address
    "only": None,                # None: grade every submission; NAME ...: regrade those, keep the other rows
    "extensions": None,          # None: nobody has an extension; CSV submission,deadline
    "submission_times": None,    # None: times from timestamp.txt / Gradescope's export only; CSV submission,submitted_at
    "starter_code": None,        # None: only the student template is excluded from the similarity report
    "gradescope_root": Path("/autograder"),   # Gradescope's layout: submission/, results/, source/
}
SWITCHES = {"force", "no_progress", "publish", "no_pdf"}     # off unless given


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    grade = commands.add_parser("grade", help="grade every submission in a folder")
    grade.add_argument("--submissions", type=Path, default=DEFAULTS["submissions"],
                       help="folder of .ipynb files, student folders or .zip archives (default: the demo class)")
    grade.add_argument("--out", type=Path, default=DEFAULTS["out"], help="where grades go (default: grades/)")
    grade.add_argument("--jobs", type=int, default=DEFAULTS["jobs"], help="submissions graded at once by the local pool")
    grade.add_argument("--sandbox", choices=("auto", "bwrap", "none"), default=DEFAULTS["sandbox"])
    grade.add_argument("--rubric", type=Path, default=DEFAULTS["rubric"])
    grade.add_argument("--data-dir", type=Path, default=DEFAULTS["data_dir"])
    grade.add_argument("--force", action="store_true", help="regrade even unchanged submissions")
    grade.add_argument("--no-progress", action="store_true")
    grade.add_argument("--only", nargs="+", metavar="NAME", default=DEFAULTS["only"],
                       help="regrade only these submissions (id, name or file name); every other row of the last "
                            "run is kept")
    grade.add_argument("--extensions", type=Path, default=DEFAULTS["extensions"],
                       help="CSV with columns submission,deadline: per-student extended deadlines")
    grade.add_argument("--submission-times", type=Path, default=DEFAULTS["submission_times"],
                       help="CSV with columns submission,submitted_at: when each submission was handed in")
    grade.add_argument("--starter-code", type=Path, nargs="+", metavar="PATH", default=DEFAULTS["starter_code"],
                       help="more code given to students (notebooks, .py files, folders) that the similarity "
                            "report does not count as shared")
    grade.add_argument("--canvas-assignment", default=DEFAULTS["canvas_assignment"],
                       help='column of OUT/canvas_gradebook.csv, e.g. "Lab 3 (123456)" with the Canvas assignment '
                            "id (default: the rubric's title, which Canvas imports as a new assignment)")
    grade.add_argument("--canvas-roster", type=Path, default=DEFAULTS["canvas_roster"],
                       help="the course's gradebook exported from Canvas, to fill the Canvas ids of students whose "
                            "file names do not carry them")
    grade.add_argument("--scheduler", default=DEFAULTS["scheduler"], metavar="ADDRESS",
                       help="grade on the Dask cluster whose scheduler is at ADDRESS (e.g. tcp://10.0.0.5:8786), one "
                            "task per submission; --jobs is then ignored (default: the local pool)")
    grade.add_argument("--cell-timeout", type=float, default=DEFAULTS["cell_timeout"], metavar="SECONDS",
                       help=f"time limit of one cell (default {DEFAULTS['cell_timeout']:g})")
    grade.add_argument("--notebook-timeout", type=float, default=DEFAULTS["notebook_timeout"], metavar="SECONDS",
                       help=f"time limit of the whole notebook (default {DEFAULTS['notebook_timeout']:g}; "
                            f"{DEFAULT_LIMITS.export_reserve_s:g} s of it are kept for the grader's export cell)")
    grade.add_argument("--profile", default=DEFAULTS["profile"], metavar="|".join([*PROFILES, "FILE.yaml"]),
                       help="the work each notebook does: a profile's name (grading: the default, about half a minute "
                            "per notebook on one core; full: the lab as students run it, for a final run) or a YAML file of knobs (base: "
                            "PROFILE, then e.g. VAE_EPOCHS: 20)")

    worker = commands.add_parser("worker", help="start Dask workers on this machine for `grade --scheduler`")
    worker.add_argument("--scheduler", default=DEFAULTS["scheduler"], metavar="ADDRESS",
                        help="the scheduler's address, as `dask scheduler` prints it (tcp://HOST:8786)")
    worker.add_argument("--nworkers", type=int, default=DEFAULTS["nworkers"],
                        help="single-threaded worker processes (default: one per core)")
    worker.add_argument("--host", default=DEFAULTS["host"],
                        help="the address the workers listen on (default: Dask's choice)")
    worker.add_argument("--data-dir", type=Path, default=DEFAULTS["data_dir"])

    release = commands.add_parser("release", help="write the student-facing pages, a PDF and a zip per student "
                                                  "into OUT/release/")
    release.add_argument("--out", type=Path, default=DEFAULTS["out"], help="the graded class (default: grades/)")
    release.add_argument("--rubric", type=Path, default=DEFAULTS["rubric"])
    release.add_argument("--publish", action="store_true",
                         help="show the items released with the grades (visibility after_published); without it "
                              "they show as 'released later'")
    release.add_argument("--no-pdf", action="store_true", help="skip the PDFs (they need Debian's chromium)")

    gradescope = commands.add_parser("gradescope", help="grade the one submission of a Gradescope run "
                                                        "(ROOT/submission -> ROOT/results/results.json)")
    gradescope.add_argument("--root", dest="gradescope_root", type=Path, default=DEFAULTS["gradescope_root"])
    gradescope.add_argument("--profile", choices=sorted(PROFILES), default=DEFAULTS["profile"])
    gradescope.add_argument("--sandbox", choices=("auto", "bwrap", "none"), default=DEFAULTS["sandbox"])
    gradescope.add_argument("--rubric", type=Path, default=DEFAULTS["rubric"])
    gradescope.add_argument("--data-dir", type=Path, default=DEFAULTS["data_dir"])
    return parser.parse_args(argv)


def setup_logging(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    handlers = [logging.FileHandler(out / GRADING_LOG, encoding="utf-8")]
    console = logging.StreamHandler(sys.stderr)    # warnings (e.g. a bad score in the review sheet) reach the user
    console.setLevel(logging.WARNING)
    console.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    handlers.append(console)
    logging.basicConfig(level=logging.INFO, handlers=handlers, format="%(asctime)s %(levelname)s %(message)s")


def error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "worker":
        return start_worker(args)
    if args.command == "release":
        return release(args)
    if args.command == "gradescope":
        from autograder.gradescope import run_gradescope
        return run_gradescope(args.gradescope_root, profile_name=args.profile, sandbox=args.sandbox,
                              rubric_path=args.rubric, data_dir=args.data_dir)
    args.out.mkdir(parents=True, exist_ok=True)
    clear_output_names(args.out, warn=lambda message: print(f"warning: {message}", file=sys.stderr))
    setup_logging(args.out)
    try:
        check_cache(args.data_dir, full_hash=False)
    except MnistCacheError as failure:
        return error(str(failure))
    if args.jobs < 1:
        return error("--jobs must be at least 1")
    for option, path in (("--canvas-roster", args.canvas_roster), ("--extensions", args.extensions),
                         ("--submission-times", args.submission_times)):
        if path is not None and not path.is_file():
            return error(f"{option} {path} is not a file" + (": pass the CSV exported from the Canvas gradebook"
                                                             if option == "--canvas-roster" else ""))
    for path in args.starter_code or ():
        if not path.exists():
            return error(f"--starter-code {path} does not exist")
    limits = DEFAULT_LIMITS.replace(cell_timeout_s=args.cell_timeout, notebook_timeout_s=args.notebook_timeout)
    if problem := limits.check_time():
        return error(problem)
    try:
        profile_name, profile = resolve_profile(args.profile)
    except ValueError as failure:
        return error(str(failure))
    settings = GradeSettings(out_dir=args.out, rubric_path=args.rubric, data_dir=args.data_dir.resolve(),
                             sandbox=args.sandbox, profile_name=profile_name, profile=profile, limits=limits,
                             force=args.force, canvas_assignment=args.canvas_assignment,
                             canvas_roster=args.canvas_roster, extensions=args.extensions,
                             submission_times=args.submission_times, only=tuple(args.only or ()),
                             starter_code=tuple(args.starter_code or ()))
    try:
        rows = grade_class(args.submissions, settings, jobs=args.jobs, progress=not args.no_progress,
                           cluster=Scheduler(args.scheduler) if args.scheduler else None)
    except (FileNotFoundError, ValueError) as failure:  # no such folder, a rubric or a CSV (TimeError) that fails
        return error(str(failure))
    except ClusterError as failure:   # the scheduler unreachable or lost: what is done is saved, a re-run resumes
        logging.getLogger("autograder").error("%s", failure)
        return 1
    width = max([len(r.submission) for r in rows] + [10])
    for row in rows:
        note = "" if row.status == Status.OK else f"  {row.reason}"
        late = f"  [{row.lateness.label}]" if row.lateness is not None and row.lateness.state == "late" else ""
        print(f"{row.submission:<{width}}  {row.status:<12} {row.score:6.1f} / {row.max_score:.0f}{late}{note}")
    if args.only:
        print(f"\nregraded: {', '.join(args.only)}; every other row kept from the last run (why: {args.out / GRADING_LOG})")
    print(f"\n{len(rows)} submissions in {args.out / GRADEBOOK_CSV}, feedback in {args.out}/<submission>/")
    awaiting = sum(len(row.awaiting_review) for row in rows)
    print(f"written answers: {args.out / REVIEW_DIR / REVIEW_HTML}; score them in "
          f"{args.out / REVIEW_DIR / REVIEW_CSV} ({awaiting} awaiting review, counted 0 until scored)")
    print(f"Canvas import: {args.out / CANVAS_GRADEBOOK_CSV}")
    return 0


def start_worker(args: argparse.Namespace) -> int:
    from autograder.distribute import worker     # the worker's own checks and command line

    if not args.scheduler:
        return error("a worker needs the scheduler's address: make worker SCHEDULER=tcp://HOST:8786 (the address "
                     "`dask scheduler` prints)")
    nworkers = args.nworkers if args.nworkers is not None else (os.cpu_count() or 1)
    if nworkers < 1:
        return error("--nworkers must be at least 1")
    return worker.start(args.scheduler, nworkers, args.host, args.data_dir)


def release(args: argparse.Namespace) -> int:
    if not args.out.is_dir():
        return error(f"{args.out} does not exist: grade the class first (make grade OUT={args.out})")
    setup_logging(args.out)
    try:
        done = release_class(args.out, args.rubric, publish=args.publish, pdf=not args.no_pdf)
    except (FileNotFoundError, ValueError, RuntimeError) as failure:
        return error(str(failure))
    state = "published: every item shown" if args.publish else \
        "not published: items released with the grades show as 'released later' (run again with --publish)"
    print(f"{done['students']} students released into {args.out / RELEASE_DIR}/ ({state}); "
          f"{done['pdfs']} PDFs, {done['zips']} zips; index: {args.out / RELEASE_DIR / RELEASE_INDEX}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
