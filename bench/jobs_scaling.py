"""Class grading wall time with JOBS=1 and JOBS=2: the bundled demo class (8 submissions) graded from scratch.

Targets (issue 3): JOBS=2 at least 1.8 times as fast as JOBS=1 on 2 cores; the demo class in under 4 minutes.

    .venv/bin/python bench/jobs_scaling.py                 # demo class, GRADING profile, jobs 1 and 2
    .venv/bin/python bench/jobs_scaling.py --jobs 2 4
Writes bench/results/jobs_scaling.json.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO_CLASS = ROOT / "autograder" / "lab" / "demo_class"
RESULTS = ROOT / "bench" / "results" / "jobs_scaling.json"


def grade(submissions: Path, jobs: int, sandbox: str) -> tuple[float, list[dict]]:
    with tempfile.TemporaryDirectory(prefix=f"bench-jobs{jobs}-") as out:
        command = [sys.executable, "-m", "autograder", "grade", "--submissions", str(submissions), "--out", out,
                   "--jobs", str(jobs), "--sandbox", sandbox, "--force", "--no-progress"]
        started = time.perf_counter()
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        elapsed = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"grading with --jobs {jobs} failed:\n{done.stdout}\n{done.stderr}")
        rows = [json.loads(path.read_text()) for path in sorted(Path(out).glob("*/row.json"))]
        return elapsed, [{key: row[key] for key in ("submission", "status", "score", "duration_s")} for row in rows]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=Path, default=DEMO_CLASS)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--sandbox", default="auto", choices=("auto", "bwrap", "none"))
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    runs = {}
    for jobs in args.jobs:
        elapsed, rows = grade(args.submissions, jobs, args.sandbox)
        runs[str(jobs)] = {"wall_s": round(elapsed, 1), "rows": rows}
        print(f"--jobs {jobs}: {len(rows)} submissions in {elapsed:.1f}s", flush=True)
    result = {"submissions": str(args.submissions), "cpus": os.cpu_count(), "load_average_after": os.getloadavg(),
              "runs": runs}
    if "1" in runs and "2" in runs:
        speedup = runs["1"]["wall_s"] / runs["2"]["wall_s"]
        result |= {"speedup_2_over_1": round(speedup, 2), "speedup_target": 1.8, "speedup_met": speedup >= 1.8}
        same = [(a["submission"], a["score"]) for a in runs["1"]["rows"]] == \
               [(b["submission"], b["score"]) for b in runs["2"]["rows"]]
        result["same_scores"] = same
        print(f"speedup JOBS=2 over JOBS=1: {speedup:.2f}x (target 1.8x); same scores: {same}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1) + "\n")
    os.replace(tmp, args.out)
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
