"""docs/slurm_example.py builds the Slurm job that README's Slurm recipe promises (dask-jobqueue's own job script; no
Slurm needed to build it, nothing is submitted)."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_slurm_example_asks_for_single_threaded_grading_workers_with_the_limits_memory():
    done = subprocess.run([sys.executable, str(ROOT / "docs" / "slurm_example.py"), "--cores", "8", "--walltime",
                           "01:30:00", "--queue", "normal", "--host", "127.0.0.1", "--print-job-script"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    script = done.stdout
    for line in ("#SBATCH -p normal", "#SBATCH --cpus-per-task=8", "#SBATCH --mem=32G", "#SBATCH -t 01:30:00",
                 f"export PYTHONPATH={ROOT}", f"{ROOT}/.venv/bin/python -m distributed.cli.dask_worker tcp://127.0.0.1:"):
        assert line in script, f"{line!r} missing from\n{script}"
    for option in ("--nthreads 1", "--nworkers 8", "--memory-limit 4.00GiB", "--preload autograder.distribute.worker"):
        assert option in script
