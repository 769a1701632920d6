"""Resource limits for running one submission, with their defaults in one place.

Why these defaults (the lab trains small MLPs on MNIST with the GRADING profile, on CPU):
- Time: a cell may run 10 minutes, the whole notebook 30 minutes (the GRADING profile is meant to finish in a few
  minutes); 1 minute of that budget is kept for the grader's export cell, so a notebook that runs out of time still
  exports what it trained, and its functions are still probed (later parts still earn credit). Probing happens
  after the notebook, in its own process: at most probe_call_s per call and probe_total_s in all.
- Memory: 4 GiB for the whole submission: every process of its sandbox together, with the pages of its /tmp,
  /dev/shm and work folder (all tmpfs), and no swap, held by a control group (execution/cgroups.py; the probe server
  has its own group with the same limits). Per process, RLIMIT_DATA (private writable memory: heap, anonymous mmap)
  3 GiB, below the group's limit so that one runaway allocation is a MemoryError in the notebook rather than the
  kernel being killed. Not RLIMIT_AS: importing torch alone maps about 3.5 GB of virtual address space (VmSize) for
  about 1 GB of data (VmData), so an address space limit either breaks `import torch` or is too loose to mean
  anything. Without control groups only RLIMIT_DATA holds (the run says so).
- Processes: RLIMIT_NPROC 256 for the kernel's uid (the kernel counts it per real uid, and never for root, so in
  the bwrap sandbox each submission runs as its own unprivileged uid, see sandbox.py); the control group allows 256 +
  64 processes and threads for the whole sandbox (the runner's own included).
- Files: RLIMIT_FSIZE 512 MiB per file; the sandbox's /tmp and /dev/shm are tmpfs capped at 1 GiB each.
- Disk: the submission's folder (the only place on disk it can write) is a tmpfs of 2 GiB and 100,000 inodes
  (execution/workspace.py), so files deleted while open count too; where the grader cannot mount one (not root) it
  measures the folder while the notebook runs and kills the kernel past that (the lab writes no files at all).
- Stalls: a process stopped or blocked, or the whole group sitting at its memory limit, is noticed within seconds
  (execution/stall.py) and the kernel killed: status kernel_died, with the reason.
- CPU: RLIMIT_CPU is only a backstop (per process); the wall-clock limits above are what stop a notebook.
- Threads: 1 BLAS/OpenMP thread per kernel by default, so `--jobs` parallel submissions don't oversubscribe cores.
- Output: text kept per cell 1 MiB, all student outputs 50 MiB; past that outputs are dropped with a note. The
  executed notebook coming back from the sandbox may be at most 200 MiB (else status "output_limit").
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

MiB = 1024 * 1024
GiB = 1024 * MiB


@dataclass(frozen=True)
class Limits:
    cell_timeout_s: float = 600.0  # one student cell
    notebook_timeout_s: float = 1800.0  # all cells, the export cell included (kernel start excluded)
    export_timeout_s: float = 60.0  # the export cell
    export_reserve_s: float = 60.0  # of notebook_timeout_s, kept for the export cell
    probe_call_s: float = 60.0  # one call of the probe server
    probe_total_s: float = 300.0  # all the probes of one submission
    interrupt_grace_s: float = 10.0  # after SIGINT, how long a cell has to stop before the kernel is killed
    startup_grace_s: float = 120.0  # kernel start and runner overhead, on top of notebook_timeout_s (hard kill)
    memory_bytes: int = 3 * GiB  # RLIMIT_DATA per process
    group_memory_bytes: int = 4 * GiB  # every process of one sandbox together, tmpfs pages included, no swap
    max_processes: int = 256  # RLIMIT_NPROC for the submission's (kernel's) uid
    runner_tasks: int = 64  # processes and threads of the runner and bwrap, on top of max_processes in the group
    max_file_bytes: int = 512 * MiB  # RLIMIT_FSIZE
    max_open_files: int = 1024  # RLIMIT_NOFILE
    tmpfs_bytes: int = 1 * GiB  # size of the sandbox's /tmp and /dev/shm
    max_workdir_bytes: int = 2 * GiB  # disk used by the submission's folder, watched while it runs
    max_workdir_files: int = 100_000  # files and folders in it
    threads: int = 1  # OMP/MKL/OpenBLAS threads in the kernel
    max_cell_output_bytes: int = 1 * MiB  # printed text kept per cell (figures count only toward the total)
    max_notebook_output_bytes: int = 50 * MiB  # all outputs of student cells
    max_result_bytes: int = 200 * MiB  # executed notebook JSON returned by the sandbox

    @property
    def cpu_seconds(self) -> int:
        """RLIMIT_CPU backstop: the whole wall budget on every thread, plus a margin."""
        wall = self.notebook_timeout_s + self.startup_grace_s + self.interrupt_grace_s
        return int(wall * max(1, self.threads) + 60)

    @property
    def group_max_tasks(self) -> int:
        """pids.max of the control group: the submission's processes and threads plus the runner's."""
        return self.max_processes + self.runner_tasks

    @property
    def hard_wall_s(self) -> float:
        """When the parent kills the whole sandbox, whatever the runner inside is doing."""
        return self.notebook_timeout_s + self.startup_grace_s + 2 * self.interrupt_grace_s

    def replace(self, **changes) -> "Limits":
        return dataclasses.replace(self, **changes)

    def describe_time(self) -> str:
        """The time limits as the log and every feedback page state them."""
        return f"{self.cell_timeout_s:g} s per cell, {self.notebook_timeout_s:g} s for the whole notebook"

    def check_time(self) -> str | None:
        """Why these time limits cannot work (None when they can): the message names the option to change."""
        if not self.cell_timeout_s > 0:
            return f"the cell time limit must be more than 0 s (got {self.cell_timeout_s:g}): pass --cell-timeout SECONDS"
        if not self.notebook_timeout_s > self.export_reserve_s:
            return (f"the notebook time limit of {self.notebook_timeout_s:g} s leaves no time for the student's cells: "
                    f"{self.export_reserve_s:g} s of it are kept for the grader's export cell, so pass "
                    f"--notebook-timeout SECONDS with more than {self.export_reserve_s:g}")
        return None


DEFAULT_LIMITS = Limits()
