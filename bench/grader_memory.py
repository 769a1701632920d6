"""The grader's own peak memory (RSS) per worker while it grades a hostile class (issue 16; target < 1.5 GB).

The class, built fresh in a temporary folder: the reference solution (a normal submission, for scale); a folder whose
notebook is a link to the solution; a link to /dev/zero; a named pipe; a notebook whose name is one of the run's
outputs; a notebook that forges thousands of blank 980x980 images into the figure channel (a few hundred bytes
each, 4.7 G pixels if decoded); one that prints close to the output caps in many cells; one whose output is 3
million tiny JSON objects; memory spread over processes and /dev/shm; a kernel that stops itself; a deleted-but-open
file; a fork flood.

Each `--jobs` value is measured in its own process (`grade_class` with that many workers, TINY profile, sandbox
auto), so the peak (ru_maxrss of the grader's process, the sandboxes excluded: they are other processes) is that
run's alone; per worker = peak / jobs.

    .venv/bin/python bench/grader_memory.py                 # JOBS=1 and JOBS=2
    .venv/bin/python bench/grader_memory.py --jobs 1
Writes bench/results/grader_memory.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SOLUTION = ROOT / "autograder" / "lab" / "demo_class" / "Assignment1 Ada Lovelace.ipynb"
RESULTS = ROOT / "bench" / "results" / "grader_memory.json"
TARGET_BYTES = 1.5e9

PARAMETERS = 'SEED = 0\nDATA_DIR = "data_cache"\nDEVICE = "auto"\n'

FORGED_PIXELS = '''
import base64, sys, zlib
from IPython.display import display
side = 980
blank = base64.b64encode(zlib.compress(bytes(side * side), 9)).decode()
token = sys.modules["labgrader_kernel_side"]._state["token"]
def axes(images, position=(0, 0, 1, 1)):
    return {"title": "", "xlabel": "", "ylabel": "", "images": images, "scatters": [], "lines": [], "legend": [],
            "position": list(position)}
image = {"shape": [side, side], "min": 0.0, "max": 1.0, "pixels": {"shape": [side, side], "zlib_base64": blank}}
for batch in range(10):
    figures = [{"suptitle": f"VAE decoded grid {batch}-{i}", "axes": [axes([image])]} for i in range(500)]
    display({"application/vnd.labgrader.figures+json": {"token": token, "figures": figures}}, raw=True)
'''
BIG_OUTPUTS = '''
from IPython.display import display
for i in range(45):
    display({"text/html": "<p>" + "x" * (1 << 20) + "</p>"}, raw=True)
'''
TINY_JSON = '''
from IPython.display import display
display({"application/json": [{}] * 3_000_000}, raw=True)
'''
SPREAD = '''
import os, time
for _ in range(3):
    if os.fork() == 0:
        block = bytearray(1500 << 20)
        for i in range(0, len(block), 4096):
            block[i] = 1
        time.sleep(60)
        os._exit(0)
try:
    with open("/dev/shm/hoard", "wb") as handle:
        for _ in range(100):
            handle.write(b"x" * (10 << 20))
except OSError:
    pass
time.sleep(10)
'''
STOPS = "import os, signal\nos.kill(os.getpid(), signal.SIGSTOP)"
DELETED_OPEN = '''
import os
handle = open("held.bin", "wb")
os.unlink("held.bin")
try:
    for _ in range(3 << 10):
        handle.write(bytes(1 << 20))
except OSError as error:
    print(error)
'''
FORK_FLOOD = '''
import os
for _ in range(5000):
    try:
        if os.fork() == 0:
            os.execvp("sleep", ["sleep", "100"])
    except OSError:
        break
'''


def notebook(*cells: str) -> str:
    import nbformat
    from nbformat import v4

    book = v4.new_notebook()
    parameters = v4.new_code_cell(PARAMETERS)
    parameters.metadata["tags"] = ["parameters"]
    book.cells = [parameters] + [v4.new_code_cell(cell) for cell in cells]
    return nbformat.writes(book)


def build_class(folder: Path) -> list[str]:
    shutil.copyfile(SOLUTION, folder / "Assignment1 Reference Solution.ipynb")
    (folder / "mallory").mkdir()
    os.symlink("../Assignment1 Reference Solution.ipynb", folder / "mallory" / "lab.ipynb")
    os.symlink("/dev/zero", folder / "Assignment1 Zero.ipynb")
    os.mkfifo(folder / "Assignment1 Pipe.ipynb")
    (folder / "Assignment1 gradebook.csv.ipynb").write_text(notebook("print('named like an output')"))
    for name, code in (("Forged Pixels", FORGED_PIXELS), ("Big Outputs", BIG_OUTPUTS), ("Tiny Json", TINY_JSON),
                       ("Spread Memory", SPREAD), ("Stops Itself", STOPS), ("Deleted Open", DELETED_OPEN),
                       ("Fork Flood", FORK_FLOOD)):
        (folder / f"Assignment1 {name}.ipynb").write_text(notebook(code, "print('after')"))
    return sorted(path.name for path in folder.iterdir())


def measure(jobs: int) -> dict:
    """Grade the hostile class in this process with `jobs` workers; the peak RSS of this process."""
    from autograder.execution.limits import DEFAULT_LIMITS
    from autograder.lab.profiles import TINY
    from autograder.pipeline import GradeSettings, grade_class

    with tempfile.TemporaryDirectory(prefix="grader-memory-") as tmp:
        folder, out_dir = Path(tmp) / "submissions", Path(tmp) / "out"
        folder.mkdir()
        entries = build_class(folder)
        settings = GradeSettings(out_dir=out_dir, rubric_path=ROOT / "autograder" / "rubric.yaml",
                                 data_dir=ROOT / "data_cache", sandbox="auto", profile_name="tiny",
                                 profile=dict(TINY), limits=DEFAULT_LIMITS)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        started = time.monotonic()
        rows = grade_class(folder, settings, jobs=jobs, progress=False)
        elapsed = time.monotonic() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"jobs": jobs, "peak_rss_bytes": peak, "peak_rss_per_worker_bytes": peak / jobs,
            "rss_before_grading_bytes": before, "seconds": round(elapsed, 1), "entries": entries,
            "rows": {row.submission: {"status": str(row.status), "score": row.score,
                                      "flags": [f for f in row.flags if f.startswith("integrity")][:2],
                                      "reason": row.reason[:160]} for row in rows}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, action="append", help="worker counts to measure (default: 1 and 2)")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.child)))
        return 0
    results = []
    for jobs in args.jobs or [1, 2]:
        done = subprocess.run([sys.executable, __file__, "--child", str(jobs)], capture_output=True, text=True)
        if done.returncode != 0:
            print(done.stderr[-3000:], file=sys.stderr)
            return 1
        result = json.loads(done.stdout.strip().splitlines()[-1])
        results.append(result)
        print(f"JOBS={jobs}: grader peak RSS {result['peak_rss_bytes'] / 1e9:.2f} GB, "
              f"{result['peak_rss_per_worker_bytes'] / 1e9:.2f} GB per worker "
              f"(before grading {result['rss_before_grading_bytes'] / 1e9:.2f} GB), {result['seconds']} s")
        for submission, row in sorted(result["rows"].items()):
            print(f"  {submission:<22} {row['status']:<13} {row['score']:6.1f}  {row['reason'][:90]}")
    summary = {"target_bytes": TARGET_BYTES, "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                                         "kernel": platform.release()},
               "date": time.strftime("%Y-%m-%d"), "results": results,
               "holds": all(r["peak_rss_per_worker_bytes"] < TARGET_BYTES for r in results)}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    tmp = RESULTS.with_suffix(".tmp")
    tmp.write_text(json.dumps(summary, indent=1))
    os.replace(tmp, RESULTS)
    print(f"{'holds' if summary['holds'] else 'FAILS'}: target {TARGET_BYTES / 1e9:.1f} GB per worker; {RESULTS}")
    return 0 if summary["holds"] else 1


if __name__ == "__main__":
    sys.exit(main())
