"""The demo class through a Dask scheduler with 1 and with 2 single-threaded workers, against the local pool.

Every way grades the bundled demo class (8 submissions) from scratch (`--force`) with `python -m autograder grade`,
timed from the command's start to its end (the CLI, every report):
- local pool, --jobs 1 and --jobs 2;
- cluster: a `dask scheduler` and N workers (`python -m autograder worker --nworkers 1` each, what `make worker`
  runs) on 127.0.0.1, started before the clock and given WORKER_SETTLE_S to finish their start-up warm-up, as a
  cluster's workers would have long before a run; `--scheduler ADDRESS`.
Runs are interleaved (local 1, cluster 1, local 2, cluster 2, per repeat) so that load drifts on a shared machine hit
every way alike.

Targets (issue 11): 2 workers >= 1.8x one; Dask's cost per submission against the local pool (cluster with 1 worker
minus --jobs 1, per submission, as a share of the local time per submission) <= 2 %.

    .venv/bin/python bench/cluster_scaling.py                       # GRADING profile, 1 repeat (about 13 minutes)
    .venv/bin/python bench/cluster_scaling.py --profile tiny --repeats 2
Writes bench/results/cluster_scaling.json.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autograder.distribute.loopback import LoopbackCluster  # noqa: E402

DEMO_CLASS = ROOT / "autograder" / "lab" / "demo_class"
RESULTS = ROOT / "bench" / "results" / "cluster_scaling.json"
WORKER_SETTLE_S = 30


def grade(submissions: Path, out: Path, profile: str, sandbox: str, *options: str) -> tuple[float, list[dict]]:
    command = [sys.executable, "-m", "autograder", "grade", "--submissions", str(submissions), "--out", str(out),
               "--profile", profile, "--sandbox", sandbox, "--force", "--no-progress", *options]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(options)} failed:\n{done.stdout}\n{done.stderr}")
    rows = [json.loads(path.read_text()) for path in sorted(out.glob("*/row.json"))]
    return elapsed, [{key: row[key] for key in ("submission", "status", "score", "duration_s")} for row in rows]


def on_cluster(workers: int, submissions: Path, out: Path, profile: str, sandbox: str, logs: Path):
    with LoopbackCluster(logs / f"workers{workers}") as cluster:
        cluster.start(workers=workers)
        time.sleep(WORKER_SETTLE_S)
        return grade(submissions, out, profile, sandbox, "--scheduler", cluster.address)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=Path, default=DEMO_CLASS)
    parser.add_argument("--profile", default="grading")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--sandbox", default="auto", choices=("auto", "bwrap", "none"))
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    ways = {"local_jobs1": [], "cluster_workers1": [], "local_jobs2": [], "cluster_workers2": []}
    scores = {}
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        tmp = Path(tmp)
        for repeat in range(args.repeats):
            for way in ways:
                out = tmp / f"{way}-{repeat}"
                out.mkdir()
                if repeat or way != "local_jobs1":     # one class secret for every run: the same probe inputs
                    (out / ".probe_secret").write_text((tmp / "local_jobs1-0" / ".probe_secret").read_text())
                count = int(way[-1])
                if way.startswith("local"):
                    elapsed, rows = grade(args.submissions, out, args.profile, args.sandbox, "--jobs", str(count))
                else:
                    elapsed, rows = on_cluster(count, args.submissions, out, args.profile, args.sandbox, tmp / "logs")
                ways[way].append(round(elapsed, 1))
                scores[way] = [(row["submission"], row["status"], row["score"]) for row in rows]
                print(f"repeat {repeat + 1}/{args.repeats} {way}: {len(rows)} submissions in {elapsed:.1f}s",
                      flush=True)

    median = {way: statistics.median(times) for way, times in ways.items()}
    count = len(scores["local_jobs1"])
    per_submission_local = median["local_jobs1"] / count
    dask_cost = (median["cluster_workers1"] - median["local_jobs1"]) / count
    speedup = median["cluster_workers1"] / median["cluster_workers2"]
    result = {
        "submissions": str(args.submissions), "count": count, "profile": args.profile, "repeats": args.repeats,
        "cpus": os.cpu_count(), "load_average_after": os.getloadavg(), "worker_settle_s": WORKER_SETTLE_S,
        "wall_s": ways, "median_wall_s": {way: round(value, 1) for way, value in median.items()},
        "speedup_2_workers_over_1": round(speedup, 2), "speedup_target": 1.8, "speedup_met": speedup >= 1.8,
        "dask_cost_per_submission_s": round(dask_cost, 2),
        "dask_cost_share": round(dask_cost / per_submission_local, 4), "dask_cost_target": 0.02,
        "dask_cost_met": dask_cost / per_submission_local <= 0.02,
        "local_jobs2_over_cluster_workers2": round(median["local_jobs2"] / median["cluster_workers2"], 3),
        "same_scores": len({json.dumps(value) for value in scores.values()}) == 1, "scores": scores["local_jobs1"],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp_file = args.out.with_suffix(".tmp")
    tmp_file.write_text(json.dumps(result, indent=1) + "\n")
    os.replace(tmp_file, args.out)
    print(f"\n2 workers over 1: {speedup:.2f}x (target 1.8x); Dask's cost per submission {dask_cost:+.2f}s = "
          f"{100 * dask_cost / per_submission_local:+.1f} % of the local pool's {per_submission_local:.1f}s "
          f"(target <= 2 %); same scores: {result['same_scores']}; written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
