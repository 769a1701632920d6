"""Sandbox cost per submission: the same notebook executed through `execute_submission` with sandbox=bwrap and
sandbox=none (resource limits only), alternating, so both see the same machine load.

Each run is what the pipeline does per submission: a fresh workdir holding the public tests, the profile's
parameters (GRADING by default), the data cache read-only, the default limits; the wall time is measured around
`execute_submission` (kernel start, the notebook, the probes, harvesting). The difference of the medians is the
sandbox's cost.

    .venv/bin/python bench/sandbox_cost.py                              # demo solution, GRADING profile, 3 repeats
    .venv/bin/python bench/sandbox_cost.py --profile tiny --repeats 1   # quick check that it works
    .venv/bin/python bench/sandbox_cost.py --notebook path/to/notebook.ipynb
Writes bench/results/sandbox_cost.json (atomically).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autograder.execution.run import execute_submission  # noqa: E402
from autograder.execution.limits import DEFAULT_LIMITS  # noqa: E402
from autograder.lab.profiles import PROFILES, get_profile  # noqa: E402
from autograder.execution.sandbox import bwrap_check  # noqa: E402

SOLUTION = ROOT / "autograder" / "lab" / "demo_class" / "Assignment1 Ada Lovelace.ipynb"
PUBLIC_TESTS = ROOT / "student_template" / "tests"
DATA_DIR = ROOT / "data_cache"
RESULTS = ROOT / "bench" / "results" / "sandbox_cost.json"
MODES = ("bwrap", "none")


def run_once(notebook: Path, profile: dict, mode: str) -> tuple[float, str]:
    """(wall seconds, status) of one execution in a fresh workdir."""
    with tempfile.TemporaryDirectory(prefix="sandbox-cost-") as tmp:
        workdir = Path(tmp) / "run"
        workdir.mkdir()
        shutil.copytree(PUBLIC_TESTS, workdir / "tests")
        started = time.perf_counter()
        result = execute_submission(notebook, workdir, overrides=profile, data_dir=DATA_DIR,
                                    limits=DEFAULT_LIMITS, sandbox=mode)
        return time.perf_counter() - started, result.status


def summarise(seconds: list[float]) -> dict:
    return {"median_s": round(statistics.median(seconds), 3), "min_s": round(min(seconds), 3),
            "max_s": round(max(seconds), 3), "runs": len(seconds)}


def write_atomic(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as out:
            json.dump(data, out, indent=2)
            out.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebook", type=Path, default=SOLUTION, help="notebook to execute (default: demo solution)")
    parser.add_argument("--profile", default="grading", choices=sorted(PROFILES), help="parameters injected")
    parser.add_argument("--repeats", type=int, default=3, help="runs per mode")
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON results file")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if not args.notebook.is_file():
        parser.error(f"notebook {args.notebook} not found")
    usable, why = bwrap_check()
    if not usable:
        print(f"error: bwrap cannot run here ({why}); there is no sandbox to measure", file=sys.stderr)
        return 2

    profile = get_profile(args.profile)
    seconds: dict[str, list[float]] = {mode: [] for mode in MODES}
    statuses: dict[str, list[str]] = {mode: [] for mode in MODES}
    for repeat in range(args.repeats):
        for mode in (MODES if repeat % 2 == 0 else MODES[::-1]):  # alternate which mode goes first
            wall, status = run_once(args.notebook, profile, mode)
            seconds[mode].append(wall)
            statuses[mode].append(status)
            print(f"run {repeat + 1}/{args.repeats} sandbox={mode:5}: {wall:7.2f} s ({status})", flush=True)

    summary = {mode: summarise(values) for mode, values in seconds.items()}
    cost = summary["bwrap"]["median_s"] - summary["none"]["median_s"]
    relative = 100 * cost / summary["none"]["median_s"] if summary["none"]["median_s"] else float("nan")
    print(f"\n{'sandbox':8} {'median s':>9} {'min s':>8} {'max s':>8} {'runs':>5}")
    for mode in MODES:
        row = summary[mode]
        print(f"{mode:8} {row['median_s']:9.2f} {row['min_s']:8.2f} {row['max_s']:8.2f} {row['runs']:5d}")
    print(f"sandbox cost per submission (median bwrap - median none): {cost:+.2f} s ({relative:+.1f} %)")
    failed = {mode: [s for s in values if s != "ok"] for mode, values in statuses.items()}
    if any(failed.values()):
        print(f"warning: some runs did not finish with status ok: {failed}", file=sys.stderr)

    write_atomic(args.out, {
        "notebook": str(args.notebook.resolve().relative_to(ROOT) if args.notebook.resolve().is_relative_to(ROOT)
                        else args.notebook),
        "profile": args.profile, "repeats": args.repeats, "seconds": seconds, "statuses": statuses,
        "summary": summary, "cost_s": round(cost, 3), "cost_percent": round(relative, 1),
        "machine": {"cpus": os.cpu_count(), "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
                    "platform": platform.platform(), "python": platform.python_version()},
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    })
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
