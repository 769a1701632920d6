"""`python -m autograder grade|release|gradescope`: grade a class, release its feedback, grade one Gradescope submission.

    grade       [--submissions DIR] [--out DIR] [--jobs N] [--sandbox auto|bwrap|none] [--rubric FILE] [--force]
                [--only NAME ...] [--extensions CSV] [--submission-times CSV] [--starter-code PATH ...]
                [--canvas-assignment "NAME (ID)"] [--canvas-roster CANVAS_GRADEBOOK_EXPORT.csv] [--profile NAME]
    release     [--out DIR] [--rubric FILE] [--publish] [--no-pdf]
    gradescope  [--root /autograder] [--profile NAME] [--sandbox MODE]   (run_autograder calls it on Gradescope)

Every default is declared here, once, in DEFAULTS; the Makefile passes only what the user set.
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
from autograder.lab.profiles import GRADING_PROFILE, PROFILES, get_profile
from autograder.pipeline import GradeSettings, grade_class, release_class
from autograder.results import (CANVAS_GRADEBOOK_CSV, GRADEBOOK_CSV, GRADING_LOG, RELEASE_DIR, RELEASE_INDEX,
                                REVIEW_CSV, REVIEW_DIR, REVIEW_HTML, Status)
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
    grade.add_argument("--jobs", type=int, default=DEFAULTS["jobs"], help="submissions graded at once")
    grade.add_argument("--sandbox", choices=("auto", "bwrap", "none"), default=DEFAULTS["sandbox"])
    grade.add_argument("--rubric", type=Path, default=DEFAULTS["rubric"])
    grade.add_argument("--data-dir", type=Path, default=DEFAULTS["data_dir"])
    grade.add_argument("--profile", choices=sorted(PROFILES), default=DEFAULTS["profile"],
                       help="work profile injected into the notebooks (default: grading)")
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
    if args.command == "release":
        return release(args)
    if args.command == "gradescope":
        from autograder.gradescope import run_gradescope
        return run_gradescope(args.gradescope_root, profile_name=args.profile, sandbox=args.sandbox,
                              rubric_path=args.rubric, data_dir=args.data_dir)
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
    settings = GradeSettings(out_dir=args.out, rubric_path=args.rubric, data_dir=args.data_dir.resolve(),
                             sandbox=args.sandbox, profile_name=args.profile,
                             profile=get_profile(args.profile), limits=Limits(), force=args.force,
                             canvas_assignment=args.canvas_assignment, canvas_roster=args.canvas_roster,
                             extensions=args.extensions, submission_times=args.submission_times,
                             only=tuple(args.only or ()), starter_code=tuple(args.starter_code or ()))
    try:
        rows = grade_class(args.submissions, settings, jobs=args.jobs, progress=not args.no_progress)
    except (FileNotFoundError, ValueError) as failure:  # no such folder, a rubric or a CSV (TimeError) that fails
        return error(str(failure))
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
