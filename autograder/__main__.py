"""`python -m autograder grade [--submissions DIR] [--out DIR] [--jobs N] [--sandbox auto|bwrap|none]`.

Time and work: `[--cell-timeout SECONDS] [--notebook-timeout SECONDS] [--profile grading|full|tiny|FILE.yaml]`.
On a Dask cluster: `[--scheduler ADDRESS]`; a worker for it: `python -m autograder worker --scheduler ADDRESS`.
Canvas export options: `[--canvas-assignment "NAME (ID)"] [--canvas-roster CANVAS_GRADEBOOK_EXPORT.csv]`.

Every default is declared here, once (the limits' in execution/limits.py); the Makefile passes only what the user set.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from autograder import DATA_CACHE
from autograder.distribute import ClusterError
from autograder.execution.limits import DEFAULT_LIMITS
from autograder.lab.data import MnistCacheError, check_cache
from autograder.lab.demo import DEMO_DIR
from autograder.lab.profiles import GRADING_PROFILE, PROFILES, resolve_profile
from autograder.pipeline import GradeSettings, grade_class
from autograder.results import (CANVAS_GRADEBOOK_CSV, GRADEBOOK_CSV, GRADING_LOG, REVIEW_CSV, REVIEW_DIR, REVIEW_HTML,
                                Status, clear_output_names)
from autograder.scoring import DEFAULT_RUBRIC

DEFAULTS = {
    "submissions": DEMO_DIR,                  # the bundled demo class
    "out": Path("grades"),
    "jobs": 2,
    "sandbox": "auto",
    "rubric": DEFAULT_RUBRIC,                 # autograder/rubric.yaml
    "data_dir": DATA_CACHE,
    "canvas_assignment": None,   # None: the rubric's title (Canvas imports it as a new assignment)
    "canvas_roster": None,       # None: Canvas ids come from the submissions' file names only
    "scheduler": None,           # None: the local pool of --jobs threads (no Dask process is started)
    "cell_timeout": DEFAULT_LIMITS.cell_timeout_s,           # execution/limits.py
    "notebook_timeout": DEFAULT_LIMITS.notebook_timeout_s,
    "profile": GRADING_PROFILE,  # autograder/lab/profiles.py
}

WORKER_DEFAULTS = {
    "scheduler": None,           # required: the address `dask scheduler` prints
    "nworkers": None,            # None: one single-threaded worker process per core
    "host": None,                # None: Dask's choice of this machine's address
    "data_dir": DATA_CACHE,
}


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
    worker.add_argument("--scheduler", default=WORKER_DEFAULTS["scheduler"], metavar="ADDRESS",
                        help="the scheduler's address, as `dask scheduler` prints it (tcp://HOST:8786)")
    worker.add_argument("--nworkers", type=int, default=WORKER_DEFAULTS["nworkers"],
                        help="single-threaded worker processes (default: one per core)")
    worker.add_argument("--host", default=WORKER_DEFAULTS["host"],
                        help="the address the workers listen on (default: Dask's choice)")
    worker.add_argument("--data-dir", type=Path, default=WORKER_DEFAULTS["data_dir"])
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "worker":
        return start_worker(args)
    return grade(args)


def start_worker(args: argparse.Namespace) -> int:
    from autograder.distribute import worker     # the worker's own checks and command line

    if not args.scheduler:
        print("error: a worker needs the scheduler's address: make worker SCHEDULER=tcp://HOST:8786 (the address "
              "`dask scheduler` prints)", file=sys.stderr)
        return 2
    nworkers = args.nworkers if args.nworkers is not None else (os.cpu_count() or 1)
    if nworkers < 1:
        print("error: --nworkers must be at least 1", file=sys.stderr)
        return 2
    return worker.start(args.scheduler, nworkers, args.host, args.data_dir)


def grade(args: argparse.Namespace) -> int:
    args.out.mkdir(parents=True, exist_ok=True)
    clear_output_names(args.out, warn=lambda message: print(f"warning: {message}", file=sys.stderr))
    handlers = [logging.FileHandler(args.out / GRADING_LOG, encoding="utf-8")]
    console = logging.StreamHandler(sys.stderr)    # warnings (e.g. a bad score in the review sheet) reach the user
    console.setLevel(logging.WARNING)
    console.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    handlers.append(console)
    logging.basicConfig(level=logging.INFO, handlers=handlers, format="%(asctime)s %(levelname)s %(message)s")
    try:
        check_cache(args.data_dir, full_hash=False)
    except MnistCacheError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.jobs < 1:
        print("error: --jobs must be at least 1", file=sys.stderr)
        return 2
    if args.canvas_roster is not None and not args.canvas_roster.is_file():
        print(f"error: --canvas-roster {args.canvas_roster} is not a file: pass the CSV exported from the Canvas "
              f"gradebook", file=sys.stderr)
        return 2
    limits = DEFAULT_LIMITS.replace(cell_timeout_s=args.cell_timeout, notebook_timeout_s=args.notebook_timeout)
    if problem := limits.check_time():
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        profile_name, profile = resolve_profile(args.profile)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    settings = GradeSettings(out_dir=args.out, rubric_path=args.rubric, data_dir=args.data_dir.resolve(),
                             sandbox=args.sandbox, profile_name=profile_name, profile=profile, limits=limits,
                             force=args.force, canvas_assignment=args.canvas_assignment,
                             canvas_roster=args.canvas_roster)
    try:
        rows = grade_class(args.submissions, settings, jobs=args.jobs, progress=not args.no_progress,
                           scheduler=args.scheduler)
    except (FileNotFoundError, ValueError) as error:  # no such folder, a rubric that does not validate
        print(f"error: {error}", file=sys.stderr)
        return 2
    except ClusterError as error:     # the scheduler unreachable or lost: what is done is saved, a re-run resumes
        logging.getLogger("autograder").error("%s", error)
        return 1
    width = max([len(r.submission) for r in rows] + [10])
    for row in rows:
        note = "" if row.status == Status.OK else f"  {row.reason}"
        print(f"{row.submission:<{width}}  {row.status:<12} {row.score:6.1f} / {row.max_score:.0f}{note}")
    print(f"\n{len(rows)} submissions graded: {args.out / GRADEBOOK_CSV}, feedback in {args.out}/<submission>/")
    awaiting = sum(len(row.awaiting_review) for row in rows)
    print(f"written answers: {args.out / REVIEW_DIR / REVIEW_HTML}; score them in "
          f"{args.out / REVIEW_DIR / REVIEW_CSV} ({awaiting} awaiting review, counted 0 until scored)")
    print(f"Canvas import: {args.out / CANVAS_GRADEBOOK_CSV}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
