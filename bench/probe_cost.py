"""What the out-of-kernel probe path costs per submission: the same reference notebook graded at the GRADING profile by
the grader before the change (probes in the student's kernel) and by this one, interleaved, several times.

    .venv/bin/python bench/probe_cost.py [--before REV] [--repeats 3]

REV (default: the last commit with in-kernel probes) is checked out in a temporary git worktree that shares this
checkout's .venv and data_cache/. Each repetition runs `python -m autograder grade --jobs 1 --force` once with each
grader (alternating which goes first), on a class of one notebook: the filled-in master of THIS checkout, so both
graders grade the same work. Reported per grader: the median wall time of the whole command and of the submission
(row.json's duration_s); the difference is the cost of the new path. Results in bench/results/probe_cost.json.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autograder.lab.demo import filled_in_notebook, write_notebook  # noqa: E402

BEFORE = "b58b328"          # the restructured grader, probes still in the student's kernel
RESULTS = ROOT / "bench" / "results" / "probe_cost.json"
NAME = "reference"


def grade(project: Path, submissions: Path, out: Path) -> tuple[float, float]:
    """(wall seconds of the command, the submission's duration_s) for one fresh grading."""
    started = time.monotonic()
    subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-m", "autograder", "grade", "--submissions",
                    str(submissions), "--out", str(out), "--jobs", "1", "--force", "--no-progress",
                    "--data-dir", str(ROOT / "data_cache")], cwd=project, check=True, capture_output=True)
    wall = time.monotonic() - started
    row = json.loads((out / NAME / "row.json").read_text())
    return wall, float(row["duration_s"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default=BEFORE)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    times = {"before": [], "after": []}
    with tempfile.TemporaryDirectory(prefix="labgrade-probe-cost-") as folder:
        folder = Path(folder)
        before = folder / "before"
        subprocess.run(["git", "worktree", "add", "--detach", str(before), args.before], cwd=ROOT, check=True,
                       capture_output=True)
        try:
            (before / "data_cache").mkdir(exist_ok=True)
            for part in ("MNIST", "classifier"):
                (before / "data_cache" / part).symlink_to(ROOT / "data_cache" / part)
            (before / ".venv").symlink_to(ROOT / ".venv")
            submissions = folder / "class"
            submissions.mkdir()
            write_notebook(filled_in_notebook(), submissions / f"{NAME}.ipynb")
            for repeat in range(args.repeats):
                order = [("before", before), ("after", ROOT)]
                for label, project in (order if repeat % 2 == 0 else order[::-1]):
                    wall, duration = grade(project, submissions, folder / f"out-{label}-{repeat}")
                    times[label].append({"wall_s": round(wall, 2), "submission_s": duration})
                    print(f"repeat {repeat + 1} {label:6} wall {wall:6.1f} s, submission {duration:6.1f} s", flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(before)], cwd=ROOT, capture_output=True)
    median = {label: {key: statistics.median(run[key] for run in runs) for key in ("wall_s", "submission_s")}
              for label, runs in times.items()}
    cost = {key: round(median["after"][key] - median["before"][key], 2) for key in ("wall_s", "submission_s")}
    report = {"before": args.before, "repeats": args.repeats, "runs": times, "median": median, "cost": cost}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=1) + "\n")
    print(f"median wall: before {median['before']['wall_s']:.1f} s, after {median['after']['wall_s']:.1f} s "
          f"(cost {cost['wall_s']:+.1f} s); per submission {cost['submission_s']:+.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
