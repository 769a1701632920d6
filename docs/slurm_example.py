"""Grade a class on a Slurm cluster through dask-jobqueue (README: "Classes larger than one machine").

Run it on the cluster's login node, from a checkout of the project that the compute nodes see at the same path (a
shared home or project folder), after `make data classifier` there; the nodes need bubblewrap (else grading runs
with resource limits only, and every feedback page says so):

    .venv/bin/python docs/slurm_example.py --submissions /shared/lab3/submissions --out /shared/lab3/grades \\
        --jobs 4 --cores 16 --walltime 02:00:00 [--queue normal] [--account lab3] [-- --cell-timeout 900 ...]

What it does: starts a Dask scheduler in this process; asks Slurm for JOBS batch jobs of CORES cores each, every job
running one single-threaded Dask worker per core (the grading unit: one submission at a time, its kernel on one BLAS
thread) with limits.py's memory per worker (so a job asks for CORES x 4 GiB), PYTHONPATH on this checkout and the
grader's preload, exactly what `make worker` starts on a lab machine; then grades the class through it
(`python -m autograder grade --scheduler ADDRESS` in this process, arguments after `--` passed on) and gives the
jobs back. A job that reaches its walltime takes its workers with it: Dask re-runs what they held elsewhere, so give
the jobs a walltime longer than the class needs (about 30 s per submission per core at the GRADING profile), or more
jobs. Nothing is written on the nodes: the coordinating process writes OUT/ alone.

`--print-job-script` prints the sbatch script Slurm would get, and submits nothing.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autograder.distribute.worker import PRELOAD  # noqa: E402
from autograder.execution.limits import DEFAULT_LIMITS, GiB  # noqa: E402


def make_cluster(cores: int, walltime: str, queue: str | None = None, account: str | None = None,
                 host: str | None = None):
    """A SLURMCluster whose jobs each run `cores` single-threaded grading workers."""
    from dask_jobqueue import SLURMCluster

    memory_gib = cores * DEFAULT_LIMITS.group_memory_bytes / GiB    # limits.py's memory for one submission, per worker
    return SLURMCluster(
        cores=cores, processes=cores,                                # one worker process per core, 1 thread each
        memory=f"{memory_gib:g}GiB", walltime=walltime, queue=queue, account=account, job_name="labgrade",
        python=str(ROOT / ".venv" / "bin" / "python"),               # the project's .venv, as on a lab machine
        job_script_prologue=[f"cd {ROOT}", f"export PYTHONPATH={ROOT}"],   # the workers import this checkout
        worker_extra_args=["--preload", PRELOAD],                    # the grader's log and warm-up on each worker
        scheduler_options={"host": host} if host else {},
    )


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    passed_on = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=Path)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--jobs", type=int, default=2, help="Slurm jobs (default 2)")
    parser.add_argument("--cores", type=int, default=16, help="cores per job = grading workers per job (default 16)")
    parser.add_argument("--walltime", default="02:00:00", help="per job, HH:MM:SS (default 02:00:00)")
    parser.add_argument("--queue", help="Slurm partition")
    parser.add_argument("--account", help="Slurm account")
    parser.add_argument("--host", help="the scheduler's address as the nodes reach it (default: Dask's choice)")
    parser.add_argument("--print-job-script", action="store_true")
    args = parser.parse_args(argv)

    cluster = make_cluster(args.cores, args.walltime, args.queue, args.account, args.host)
    try:
        if args.print_job_script:
            print(cluster.job_script())
            return 0
        if not (args.submissions and args.out):
            parser.error("--submissions and --out are needed to grade")
        cluster.scale(jobs=args.jobs)
        from autograder.__main__ import main as autograder_main

        return autograder_main(["grade", "--submissions", str(args.submissions), "--out", str(args.out),
                                "--scheduler", cluster.scheduler_address, *passed_on])
    finally:
        cluster.close()


if __name__ == "__main__":
    sys.exit(main())
