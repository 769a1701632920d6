"""Harness overhead per submission: the same notebook run three ways, side by side.

1. plain nbclient: the notebook executed in a temp dir, nothing else (kernel start included);
2. the harness: `python -m autograder grade` on a one-submission class (sandbox, probes, checks, reports);
3. `otter run` with the autograder zip that `otter assign` builds from the master (its public tests).

Every way runs the same work: for plain nbclient and otter the profile's values (GRADING by default) are baked into
the notebook right after its parameters cell, with DATA_DIR pointing at the cache, DEVICE "cpu" and 1 BLAS/OpenMP
thread (the harness default); the harness gets the notebook as submitted and injects the same values itself (a
baked DATA_DIR would point outside its sandbox). The harness row must be `ok` with full automatic marks.
Target (issue 3): harness - plain <= 10 % of plain + 3 s.

    .venv/bin/python bench/overhead.py                      # GRADING profile, 3 repeats
    .venv/bin/python bench/overhead.py --profile tiny --repeats 1 --no-otter   # smoke test only: `python -m
                                            # autograder grade` always injects GRADING, so only grading compares
Writes bench/results/overhead.json.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autograder.execution.notebook import find_parameters_cell, overrides_source  # noqa: E402
from autograder.lab.profiles import get_profile  # noqa: E402

SOLUTION = ROOT / "autograder" / "lab" / "demo_class" / "Assignment1 Ada Lovelace.ipynb"
PUBLIC_TESTS = ROOT / "student_template" / "tests"
RESULTS = ROOT / "bench" / "results" / "overhead.json"
THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def baked_notebook(source: Path, profile: dict, data_dir: Path) -> nbformat.NotebookNode:
    """The notebook with the profile assigned right after its parameters cell (as the harness injects it)."""
    notebook = nbformat.read(source, as_version=4)
    values = {**profile, "DATA_DIR": str(data_dir), "DEVICE": "cpu"}
    index = find_parameters_cell(notebook.cells)
    notebook.cells.insert(index + 1, nbformat.v4.new_code_cell(overrides_source(values)))
    return notebook


def run_plain(notebook: nbformat.NotebookNode) -> float:
    from nbclient import NotebookClient

    with tempfile.TemporaryDirectory(prefix="bench-plain-") as workdir:
        shutil.copytree(PUBLIC_TESTS, Path(workdir) / "tests")
        copy = nbformat.from_dict(json.loads(json.dumps(notebook)))
        started = time.perf_counter()
        NotebookClient(copy, timeout=1800, kernel_name="python3",
                       resources={"metadata": {"path": workdir}}).execute()
        return time.perf_counter() - started


def run_harness(notebook: nbformat.NotebookNode, sandbox: str) -> tuple[float, dict]:
    with tempfile.TemporaryDirectory(prefix="bench-harness-") as tmp:
        submissions, out = Path(tmp) / "class", Path(tmp) / "out"
        submissions.mkdir()
        nbformat.write(notebook, submissions / "Assignment1 Bench Student.ipynb")
        command = [sys.executable, "-m", "autograder", "grade", "--submissions", str(submissions), "--out", str(out),
                   "--jobs", "1", "--sandbox", sandbox, "--force", "--no-progress"]
        started = time.perf_counter()
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        elapsed = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"the harness failed:\n{done.stdout}\n{done.stderr}")
        row = json.loads(next(out.glob("*/row.json")).read_text())
        if row["status"] != "ok":
            raise RuntimeError(f"the harness did not grade the notebook cleanly: {row['status']}: {row['reason']}")
        return elapsed, {"status": row["status"], "score": row["score"], "max_score": row["max_score"]}


def otter_autograder_zip(workdir: Path) -> Path:
    """otter assign on a copy of the master whose config asks for the autograder zip."""
    master = nbformat.read(ROOT / "solution" / "lab.ipynb", as_version=4)
    for cell in master.cells:
        if cell.cell_type == "raw" and cell.source.startswith("# ASSIGNMENT CONFIG"):
            cell.source = re.sub(r"(?m)^generate: false$", "generate: true", cell.source)
    path = workdir / "master.ipynb"
    nbformat.write(master, path)
    otter = Path(sys.executable).with_name("otter")
    done = subprocess.run([str(otter), "assign", "--no-run-tests", "--no-pdfs", str(path), str(workdir / "dist")],
                          capture_output=True, text=True)
    zips = list((workdir / "dist" / "autograder").glob("*.zip"))
    if done.returncode != 0 or not zips:
        raise RuntimeError(f"otter assign did not build an autograder zip:\n{done.stdout}\n{done.stderr}")
    return zips[0]


def run_otter(notebook: nbformat.NotebookNode, autograder_zip: Path) -> float:
    with tempfile.TemporaryDirectory(prefix="bench-otter-") as tmp:
        submission = Path(tmp) / "lab.ipynb"
        nbformat.write(notebook, submission)
        otter = Path(sys.executable).with_name("otter")
        started = time.perf_counter()
        done = subprocess.run([str(otter), "run", "--no-logo", "-a", str(autograder_zip), "-o", tmp, str(submission)],
                              cwd=tmp, capture_output=True, text=True)
        elapsed = time.perf_counter() - started
        if done.returncode != 0 or not (Path(tmp) / "results.json").exists():
            raise RuntimeError(f"otter run failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
        return elapsed


def summary(times: list[float]) -> dict:
    return {"median_s": round(statistics.median(times), 2), "min_s": round(min(times), 2),
            "max_s": round(max(times), 2), "runs_s": [round(t, 2) for t in times]}


def atomic_write_json(path: Path, value) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(value, indent=1) + "\n")
    os.replace(tmp, path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="grading", help="full, grading or tiny (default grading)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sandbox", default="auto", choices=("auto", "bwrap", "none"))
    parser.add_argument("--no-otter", action="store_true", help="skip the `otter run` column")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    os.environ.update(THREAD_ENV)  # the plain kernel and otter's get the harness's thread count
    notebook = baked_notebook(SOLUTION, get_profile(args.profile), ROOT / "data_cache")
    submitted = nbformat.read(SOLUTION, as_version=4)
    times: dict[str, list[float]] = {"plain_nbclient": [], "harness": []}
    harness_row = None
    autograder_zip = None
    with tempfile.TemporaryDirectory(prefix="bench-otter-zip-") as zip_dir:
        if not args.no_otter:
            autograder_zip = otter_autograder_zip(Path(zip_dir))
            times["otter_run"] = []
        for repeat in range(args.repeats):  # interleaved, so load drifts hit every way alike
            times["plain_nbclient"].append(run_plain(notebook))
            elapsed, harness_row = run_harness(submitted, args.sandbox)
            times["harness"].append(elapsed)
            if autograder_zip:
                times["otter_run"].append(run_otter(notebook, autograder_zip))
            print(f"repeat {repeat + 1}/{args.repeats}: " +
                  ", ".join(f"{name} {values[-1]:.1f}s" for name, values in times.items()), flush=True)

    plain = statistics.median(times["plain_nbclient"])
    overhead = statistics.median(times["harness"]) - plain
    budget = 0.10 * plain + 3.0
    result = {
        "profile": args.profile, "repeats": args.repeats, "sandbox": args.sandbox, "cpus": os.cpu_count(),
        "load_average": os.getloadavg(), "harness_result": harness_row,
        "ways": {name: summary(values) for name, values in times.items()},
        "overhead_s": round(overhead, 2), "overhead_budget_s": round(budget, 2), "within_budget": overhead <= budget,
    }
    atomic_write_json(args.out, result)
    print(f"\n{'way':<16}{'median s':>10}{'min s':>8}{'max s':>8}")
    for name, values in result["ways"].items():
        print(f"{name:<16}{values['median_s']:>10.1f}{values['min_s']:>8.1f}{values['max_s']:>8.1f}")
    print(f"\nharness overhead {overhead:.1f}s, budget 10% + 3s = {budget:.1f}s: "
          f"{'within' if overhead <= budget else 'OVER'} budget; written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
