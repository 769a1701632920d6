"""A Dask scheduler and grading workers as real processes on 127.0.0.1: for the tests (tests/distribute/), the
benchmark (bench/cluster_scaling.py) and trying a cluster run on one machine.

    with LoopbackCluster(log_dir) as cluster:        # `dask scheduler` on a free port
        cluster.start(workers=2)                       # + `python -m autograder worker --nworkers 1` each (what
        ...grade --scheduler cluster.address...        #   `make worker` runs), waits until they have joined
    # every process stopped (process groups, SIGKILL)

Each process is started from this project's .venv in its own process group, its output in log_dir/<name>.log.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from autograder import PROJECT_ROOT

HOST = "127.0.0.1"
START_TIMEOUT_S = 240       # a worker imports Dask, the grader and its preload: slow on a busy 2-core machine


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


class LoopbackCluster:
    def __init__(self, log_dir: Path):
        self.log_dir = Path(log_dir)
        self.address = f"tcp://{HOST}:{free_port()}"
        self.processes: dict[str, subprocess.Popen] = {}

    def __enter__(self) -> "LoopbackCluster":
        return self

    def __exit__(self, *exc) -> None:
        self.stop_all()

    def spawn(self, name: str, command: list[str]) -> subprocess.Popen:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_dir / f"{name}.log", "ab") as log:
            process = subprocess.Popen(command, cwd=PROJECT_ROOT, stdin=subprocess.DEVNULL, stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        self.processes[name] = process
        return process

    def start_scheduler(self) -> None:
        dask = Path(sys.executable).with_name("dask")
        self.spawn("scheduler", [str(dask), "scheduler", "--host", HOST, "--port", self.address.rsplit(":", 1)[1],
                                 "--dashboard-address", f"{HOST}:0"])

    def start_worker(self, name: str) -> None:
        self.spawn(name, [sys.executable, "-m", "autograder", "worker", "--scheduler", self.address, "--nworkers", "1",
                          "--host", HOST])

    def start(self, workers: int) -> "LoopbackCluster":
        """The scheduler and `workers` single-threaded workers, each its own process; returns once they joined."""
        self.start_scheduler()
        for number in range(workers):
            self.start_worker(f"worker{number}")
        self.wait_for_workers(workers)
        return self

    def client(self):
        from distributed import Client

        return Client(self.address, timeout=60, set_as_default=False)

    def wait_for_workers(self, count: int, timeout: float = START_TIMEOUT_S) -> None:
        with self.client() as client:
            client.wait_for_workers(count, timeout=timeout)

    def stop(self, name: str) -> None:
        process = self.processes.pop(name, None)
        if process is None:
            return
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=30)

    def stop_all(self) -> None:
        for name in list(self.processes):
            self.stop(name)

    def log_text(self, tail: int = 3000) -> str:
        return "\n".join(f"--- {path.name}\n{path.read_text(errors='replace')[-tail:]}"
                         for path in sorted(self.log_dir.glob("*.log")))
