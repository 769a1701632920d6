"""`python -m autograder grade [--submissions DIR] [--out DIR] [--jobs N] [--sandbox auto|bwrap|none]`.

Canvas export options: `[--canvas-assignment "NAME (ID)"] [--canvas-roster CANVAS_GRADEBOOK_EXPORT.csv]`.

Every default is declared here, once; the Makefile passes only what the user set.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from autograder import DATA_CACHE
from autograder.execution.limits import Limits
from autograder.lab.data import MnistCacheError, check_cache
from autograder.lab.demo import DEMO_DIR
from autograder.lab.profiles import GRADING_PROFILE, get_profile
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
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    grade = commands.add_parser("grade", help="grade every submission in a folder")
    grade.add_argument("--submissions", type=Path, default=DEFAULTS["submissions"],
                       help="folder of .ipynb files, student folders or .zip archives (default: the demo class)")
    grade.add_argument("--out", type=Path, default=DEFAULTS["out"], help="where grades go (default: grades/)")
    grade.add_argument("--jobs", type=int, default=DEFAULTS["jobs"], help="submissions graded at once")
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
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
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
    settings = GradeSettings(out_dir=args.out, rubric_path=args.rubric, data_dir=args.data_dir.resolve(),
                             sandbox=args.sandbox, profile_name=GRADING_PROFILE,
                             profile=get_profile(GRADING_PROFILE), limits=Limits(), force=args.force,
                             canvas_assignment=args.canvas_assignment, canvas_roster=args.canvas_roster)
    try:
        rows = grade_class(args.submissions, settings, jobs=args.jobs, progress=not args.no_progress)
    except (FileNotFoundError, ValueError) as error:  # no such folder, a rubric that does not validate
        print(f"error: {error}", file=sys.stderr)
        return 2
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
