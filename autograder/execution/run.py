"""Runs one submitted notebook, sandboxed, and returns what happened as a value (never raises for a bad submission).

Stages: read and validate the notebook and build the graded notebook (autograder/execution/notebook.py) -> run the
runner (runner.py) inside the sandbox (sandbox.py) under resource limits (limits.py), with a hard wall-clock limit
enforced from here -> read back ONLY the executed notebook as JSON -> harvest the artefacts and cell errors
(harvest.py) -> decide the status.

Statuses (ExecutionResult.status; the table is autograder/results.py's Status):
- "ok":           every student cell ran without an error (outputs may have been truncated: see `notes`).
- "cell_error":   at least one student cell raised; execution went on after it, so later cells and the probes ran.
- "timeout":      a cell ran past the per-cell limit (interrupted; if it ignored the interrupt the kernel was killed
                  and later cells did not run), or the notebook ran past the whole-notebook limit (remaining student
                  cells skipped, probes still run), or the grader had to kill the whole run at the hard wall limit.
- "kernel_died":  the kernel process died (os._exit, a crash, memory exhausted in native code), or the runner
                  stopped without a result; cells after that point did not run.
- "invalid":      the file is not a runnable notebook (empty, binary, truncated or non-JSON, a script saved as
                  .ipynb, no code cells); nothing was run. nbformat 3 notebooks are converted and run.
- "output_limit": the executed notebook coming back from the sandbox was larger than limits.max_result_bytes
                  (outputs beyond the per-cell and per-notebook caps are already dropped in the sandbox, with a note
                  and status unaffected, so this only happens with e.g. thousands of large figures).
Precedence when several apply: invalid, output_limit, kernel_died, timeout, cell_error, ok.

exit()/quit() in a cell do not stop the kernel (Jupyter would stop it a moment later, racing the next cells): the
rest of the notebook runs and the reason says which cell called it. sys.exit() raises SystemExit (a cell error).

Memory and processes: the whole sandbox is one control group (execution/cgroups.py): memory for all its processes
together with its tmpfs pages, no swap, processes and threads; the grader finds and kills its processes by the group
(by a token in their environment only where no control group can be made). Stalls: the grader watches the group
(execution/stall.py: a process stopped or blocked, the group sitting at its memory limit) and the runner the kernel's
heartbeat; a stalled kernel is killed within seconds (status "kernel_died", the reason says why).

Disk: the submission's folder (the only place on disk it can write) is a tmpfs of limits.max_workdir_bytes and
max_workdir_files inodes (execution/workspace.py), handed back as an ordinary folder after the run. Where the grader
cannot mount one, it watches the folder while the notebook runs; past the limits it kills the kernel and everything
it started (status "kernel_died", the reason says why).

Integrity (`integrity_flags`, for the instructor; see autograder/integrity.py): findings of the source scan, the
kernel guard (kernel_guard.py), forged outputs (harvest.integrity_findings) and files named like the grader's
outputs left in the folder. A source that reaches the grader's in-kernel code or installs input transformers gets
its automatic results (probes and figures) discarded.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from autograder.discover import reading
from autograder.execution import cgroups, integrity, workspace
from autograder.execution import sandbox as sandbox_module
from autograder.execution.harvest import GradedLayout, cell_errors as collect_cell_errors, harvest, integrity_findings
from autograder.execution.kernel.export import EXPORT_FOLDER
from autograder.execution.limits import GiB, MiB, Limits
from autograder.execution.stall import StallWatch
from autograder.execution.notebook import build_graded_notebook, load_submission
from autograder.results import EXECUTED_NOTEBOOK, Status

log = logging.getLogger(__name__)

STATUSES = tuple(status for status in Status if status is not Status.ERROR)   # what a run can end with
RUNNER_SCRIPT = Path(__file__).with_name(sandbox_module.RUNNER_NAME)
STDERR_TAIL_BYTES = 20_000
STALL_GRACE_S = 15.0   # after killing a stalled kernel, how long the runner has to report before the run is stopped
DISK_POLL_S = 0.2  # shortest interval between two scans of the workdir's disk use
MEMORY_ERROR_MARKERS = ("MemoryError", "can't allocate memory", "Cannot allocate memory", "DefaultCPUAllocator")


@dataclass
class ExecutionResult:
    status: Status
    reason: str  # for humans: what went wrong and what to do
    cell_errors: list[dict] = field(default_factory=list)
    artefacts: dict = field(default_factory=lambda: {"figures": []})
    executed_notebook_path: Path | None = None
    duration_s: float = 0.0
    sandbox: str = ""
    notes: list[str] = field(default_factory=list)
    runner_log: str = ""  # tail of the runner's stderr (kernel and nbclient logs), for the grader's logs
    layout: GradedLayout | None = None
    integrity_flags: list[str] = field(default_factory=list)  # "integrity_attempt" + "integrity: ..." findings
    findings: list = field(default_factory=list)  # integrity.Finding of the source scan, the workdir and the harvest

    def to_dict(self) -> dict:
        """Plain JSON (without the layout) for reports and logs."""
        return {"status": self.status, "reason": self.reason, "cell_errors": self.cell_errors,
                "artefacts": self.artefacts, "duration_s": round(self.duration_s, 3), "sandbox": self.sandbox,
                "executed_notebook_path": str(self.executed_notebook_path) if self.executed_notebook_path else None,
                "notes": self.notes, "integrity_flags": self.integrity_flags}


# ---------------------------------------------------------------- running

def _chown_tree(root: Path, uid: int, gid: int) -> None:
    os.lchown(root, uid, gid)
    for directory, subdirectories, files in os.walk(root):
        for name in subdirectories + files:
            try:
                os.lchown(os.path.join(directory, name), uid, gid)
            except OSError:
                pass


class _Reader(threading.Thread):
    """Drains a pipe: keeps everything up to `cap` bytes (then sets `overflow`) or only the last `tail` bytes."""

    def __init__(self, stream, *, cap: int | None = None, tail: int | None = None):
        super().__init__(daemon=True)
        self.stream, self.cap, self.tail = stream, cap, tail
        self.chunks: deque[bytes] | list[bytes] = deque() if tail else []
        self.size = 0
        self.overflow = threading.Event()

    def run(self) -> None:
        for chunk in iter(lambda: self.stream.read1(1 << 16), b""):
            self.size += len(chunk)
            if self.cap is not None and self.size > self.cap:
                self.overflow.set()
                self.chunks = []
                continue
            self.chunks.append(chunk)
            if self.tail:
                kept = sum(len(c) for c in self.chunks)
                while kept > self.tail and len(self.chunks) > 1:
                    kept -= len(self.chunks.popleft())

    def data(self) -> bytes:
        return b"".join(self.chunks)

    def take(self) -> bytes:
        """Everything kept, once: the chunks are let go, so the data is held once, not twice."""
        data = b"".join(self.chunks)
        self.chunks = deque() if self.tail else []
        return data


def runner_env(paths: sandbox_module.Paths, token: str | None, limits: Limits) -> dict:
    threads = str(max(1, limits.threads))
    return {
        "PATH": f"{Path(paths.python).parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": paths.tmp, "USER": "student", "LOGNAME": "student", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
        "TMPDIR": paths.tmp, "MPLCONFIGDIR": f"{paths.tmp}/matplotlib", "IPYTHONDIR": f"{paths.tmp}/ipython",
        "JUPYTER_RUNTIME_DIR": f"{paths.tmp}/jupyter-runtime", "JUPYTER_PLATFORM_DIRS": "1",
        "XDG_CACHE_HOME": f"{paths.tmp}/cache", "TORCH_HOME": f"{paths.tmp}/torch",
        "MPLBACKEND": "module://matplotlib_inline.backend_inline", "PYTHONHASHSEED": "0",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1", "CUDA_VISIBLE_DEVICES": "",
        "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads,
    } | ({"LABGRADER_RUN": token} if token else {})  # only without a control group: finds the run's processes


def _runner_config(paths: sandbox_module.Paths, layout: GradedLayout, limits: Limits, env: dict,
                   kernel_uid: int | None = None) -> dict:
    return {
        "kernel_uid": kernel_uid, "private_dir": f"{paths.tmp}/.labgrade-runner-{secrets.token_hex(8)}",
        "notebook": f"{paths.runner_dir}/graded.ipynb", "workdir": paths.workdir,
        "grader_cells": layout.grader_cells, "final_cells": layout.final_cells,
        "cell_timeout_s": limits.cell_timeout_s, "notebook_timeout_s": limits.notebook_timeout_s,
        "export_timeout_s": limits.export_timeout_s, "export_reserve_s": limits.export_reserve_s,
        "interrupt_grace_s": limits.interrupt_grace_s, "startup_timeout_s": limits.startup_grace_s,
        "max_cell_output_bytes": limits.max_cell_output_bytes,
        "max_notebook_output_bytes": limits.max_notebook_output_bytes, "kernel_env": env,
    }


def code_cells(graded, layout: GradedLayout) -> list[tuple[int, str]]:
    """(cell number in the student's notebook, or 0 for the grader's overrides; source) of the graded notebook's
    code cells that are the student's or the overrides, in order."""
    cells = []
    for index, cell in enumerate(graded.cells):
        if index in layout.student_cells:
            cells.append((layout.student_cells[index] + 1, cell.source))
        elif index == layout.overrides_cell:
            cells.append((0, cell.source))
    return cells


def execute_submission(notebook_path, workdir, *, overrides: dict, data_dir, limits: Limits, sandbox: str = "auto",
                       before_run=None) -> ExecutionResult:
    """Run one submission; see the module docstring for the statuses. `overrides` are assigned after the
    parameters cell, plus DATA_DIR (where the sandbox shows `data_dir`, read-only) and DEVICE = "cpu" (CUDA is
    hidden from the kernel). `sandbox`: "auto", "bwrap" (RuntimeError if unusable: a grader setup problem) or
    "none". `before_run(cells, mode)`, when given, is called once the graded notebook is built and before its kernel
    starts, with `code_cells(...)` and the sandbox mode: the pipeline starts the probe server there, so that its
    start overlaps the run. The executed notebook is written to workdir/executed.ipynb; the export cell writes the
    trained models to workdir/EXPORT_FOLDER."""
    started = time.monotonic()
    notebook_path, workdir = Path(notebook_path), Path(workdir)
    if data_dir is not None and not Path(data_dir).is_dir():
        raise ValueError(f"data_dir {data_dir} is not a directory")  # a grader setup error, not the submission's
    student, problem, notes = load_submission(notebook_path)
    if student is None:
        return ExecutionResult(Status.INVALID, problem, notes=notes, duration_s=time.monotonic() - started,
                               sandbox="not run")
    mode, why = sandbox_module.resolve_mode(sandbox)  # raises only for a grader misconfiguration
    workdir.mkdir(parents=True, exist_ok=True)
    runner_dir = Path(tempfile.mkdtemp(prefix="labgrader-run-"))
    token = secrets.token_hex(16)       # the figure recorder's token, in the graded notebook (the runner's only)
    uid = sandbox_module.allocate_uid() if mode == "bwrap" and os.geteuid() == 0 and shutil.which("setpriv") else None
    kernel_uid = sandbox_module.allocate_uid() if uid is not None else None
    group = cgroups.Group.create("run", memory_bytes=limits.group_memory_bytes, max_tasks=limits.group_max_tasks)
    env_token = None if group is not None else secrets.token_hex(16)
    folder = workspace.SizedWorkdir(workdir, limits)
    owner = os.stat(workdir)
    try:
        mounted = folder.mount()
        paths = sandbox_module.inside_paths(mode, workdir=workdir, data_dir=data_dir, venv=venv(),
                                            runner_dir=runner_dir)
        graded_overrides = {**overrides, "DATA_DIR": paths.data_dir, "DEVICE": "cpu"}  # contract.md
        graded, layout = build_graded_notebook(student, overrides=graded_overrides, token=token,
                                               export_folder=f"{paths.workdir}/{EXPORT_FOLDER}")
        env = runner_env(paths, env_token, limits)
        _prepare_runner_dir(runner_dir, graded, _runner_config(paths, layout, limits, env, kernel_uid), mode, uid)
        argv = [paths.python, "-I", f"{paths.runner_dir}/{RUNNER_SCRIPT.name}", f"{paths.runner_dir}/config.json"]
        cmd, description = sandbox_module.build_command(argv, workdir=workdir, data_dir=data_dir, venv=venv(),
                                                        mode=mode, limits=limits, runner_dir=runner_dir, uid=uid,
                                                        kernel_uid=kernel_uid, group=group)
        if mode == "none":
            description += f" ({why})"
        description += (f"; work folder a tmpfs of {_mib(limits.max_workdir_bytes)}" if mounted else
                        f"; work folder measured while running, files deleted while open not counted ({folder.why})")
        if kernel_uid is not None or uid is not None:
            _chown_tree(workdir, kernel_uid or uid, kernel_uid or uid)
        if before_run is not None:
            before_run(code_cells(graded, layout), mode)
        run = _run(cmd, env, limits, env_token or "", workdir=workdir, group=group, kernel_uid=kernel_uid,
                   workdir_sized=mounted)
    finally:
        try:
            folder.hand_back()
            if uid is not None and not folder.mounted:
                _chown_tree(workdir, owner.st_uid, owner.st_gid)
        finally:
            shutil.rmtree(runner_dir, ignore_errors=True)
            if group is not None:
                group.remove()
    findings = integrity.scan_notebook(student) + integrity.scan_workdir(workdir)  # before executed.ipynb exists
    result = _interpret(run, layout, limits, workdir, notes)
    result.findings = findings + [integrity.Finding(text, voids=True) for text in result.integrity_flags]
    result.integrity_flags = integrity.flags(result.findings)
    result.duration_s = time.monotonic() - started
    result.sandbox = description
    result.layout = layout
    return result


def venv() -> Path:
    """The venv the grader runs in (its python is what the sandbox runs)."""
    return Path(sys.prefix)


def _prepare_runner_dir(runner_dir: Path, graded, config: dict, mode: str, runner_uid: int | None = None) -> None:
    """The runner's script, the graded notebook and the config. With a runner uid (the kernel then has another),
    readable by that uid only; else readable by the sandbox's uid and writable by nobody but us."""
    shutil.copy(RUNNER_SCRIPT, runner_dir / RUNNER_SCRIPT.name)
    nbformat.write(graded, runner_dir / "graded.ipynb")
    (runner_dir / "config.json").write_text(json.dumps(config))
    if mode == "none":
        (runner_dir / "tmp").mkdir()
    private = runner_uid is not None and config.get("kernel_uid") is not None
    os.chmod(runner_dir, 0o500 if private else 0o755)
    for path in runner_dir.iterdir():
        os.chmod(path, (0o700 if path.is_dir() else 0o400) if private else (0o755 if path.is_dir() else 0o644))
        if private:
            os.chown(path, runner_uid, runner_uid)
    if private:
        os.chown(runner_dir, runner_uid, runner_uid)


@dataclass
class _Run:
    result: dict | None
    returncode: int | None
    wall_killed: bool
    overflow: bool
    stderr_tail: str
    strays_killed: int
    result_error: str = ""
    disk_exceeded: str = ""  # what the workdir held when the grader stopped the kernel for it, else ""
    stalled: str = ""        # why the grader's stall watch stopped the kernel, else ""
    refused: str = ""        # why the result was refused before parsing (it would expand too much), else ""
    memory: dict = field(default_factory=dict)   # the control group's memory state at the end (cgroups.Group.memory)


class _DiskWatch:
    """Polls the workdir's disk use while the run goes on. On its own size-limited tmpfs (`sized`), the filesystem's
    counters say when it is full (files deleted while open included); else the folder is walked, the poll interval
    growing with the cost of a walk."""

    def __init__(self, workdir: Path | None, limits: Limits, sized: bool = False):
        self.workdir, self.limits, self.sized = workdir, limits, sized
        self.next_check = 0.0
        self.exceeded = ""

    def over_limit(self) -> bool:
        if self.workdir is None or time.monotonic() < self.next_check:
            return False
        if self.sized:
            self.next_check = time.monotonic() + DISK_POLL_S
            try:
                info = os.statvfs(self.workdir)
            except OSError:
                return False
            if info.f_bavail == 0 or info.f_favail == 0:
                used, files = (info.f_blocks - info.f_bfree) * info.f_frsize, info.f_files - info.f_ffree
                self.exceeded = self.exceeded or f"{_mib(used)} in {files} file(s) and folder(s) (full)"
                return True
            return False
        began = time.monotonic()
        used, files = sandbox_module.disk_usage(self.workdir, max_entries=self.limits.max_workdir_files + 1)
        self.next_check = time.monotonic() + max(DISK_POLL_S, 20 * (time.monotonic() - began))
        if used > self.limits.max_workdir_bytes or files > self.limits.max_workdir_files:
            self.exceeded = self.exceeded or f"{_mib(used)} in {files} file(s)"
            return True
        return False


def _run(cmd: list[str], env: dict, limits: Limits, token: str, workdir: Path | None = None,
         group: cgroups.Group | None = None, kernel_uid: int | None = None, workdir_sized: bool = False) -> _Run:
    """Run the runner command; `workdir` (when given) is watched against the disk limits (`workdir_sized`: it is its
    own size-limited tmpfs); the tree's processes are those of `group`, else those carrying `token`; the kernel's
    are those of `kernel_uid` when given."""
    process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env=env, start_new_session=True)
    out = _Reader(process.stdout, cap=limits.max_result_bytes)
    err = _Reader(process.stderr, tail=STDERR_TAIL_BYTES)
    out.start()
    err.start()
    wall_killed = False
    deadline = time.monotonic() + limits.hard_wall_s
    disk = _DiskWatch(workdir, limits, workdir_sized)
    stall = StallWatch(token, group)
    stalled, stalled_at = "", 0.0
    while process.poll() is None:
        if out.overflow.is_set():
            break
        if time.monotonic() > deadline:
            wall_killed = True
            break
        if disk.over_limit():  # the runner sees a dead kernel and returns what ran
            sandbox_module.kill_submission_processes(token, group, kernel_uid)
        if not stalled and (reason := stall.check()):
            stalled, stalled_at = reason, time.monotonic()
            log.info("stalled: %s; the kernel is killed", reason)
            sandbox_module.kill_submission_processes(token, group, kernel_uid)
        elif stalled and time.monotonic() - stalled_at > STALL_GRACE_S:
            break              # the runner itself is stuck: stop everything
        time.sleep(0.05)
    memory = group.memory() if group is not None else {}
    strays = sandbox_module.kill_run(process, token, group)  # always: nothing the submission started may survive it
    process.wait()
    out.join(timeout=10)
    err.join(timeout=10)
    stderr_tail = err.data().decode("utf-8", "replace")
    result, result_error, refused = None, "", ""
    if not out.overflow.is_set() and not wall_killed:
        raw = out.take()
        try:
            reading.check_json_size(raw, MAX_RESULT_ITEMS, "the executed notebook")
            result = json.loads(raw) if raw else None
            result_error = "" if raw else "the runner returned nothing"
            if result is not None and not isinstance(result, dict):
                result, result_error = None, "the runner's result is not a JSON object"
        except reading.ReadError as error:
            refused = str(error)
            result_error = f"the runner's result is not JSON the grader accepts ({error})"
        except (json.JSONDecodeError, RecursionError, UnicodeDecodeError) as error:
            result_error = f"the runner's result is not JSON ({str(error)[:200]})"
        del raw
    return _Run(result, process.returncode, wall_killed, out.overflow.is_set(), stderr_tail, strays, result_error,
                disk.exceeded, stalled, refused, memory)


MAX_RESULT_ITEMS = 2_000_000     # JSON values in the runner's result (the executed notebook and the events)


def parse_result(raw: bytes, max_items: int = MAX_RESULT_ITEMS):
    """The runner's JSON result, refused (ValueError) before parsing when it would expand into more than `max_items`
    values: a few bytes per value can cost the grader's memory a hundred bytes each once parsed."""
    return reading.loads_bounded(raw, max_items, "the result")


# ---------------------------------------------------------------- deciding the status

def write_notebook(path: Path, notebook) -> None:
    """nbformat's JSON of a notebook, streamed into a temporary file beside `path` and renamed over it (no string of
    the whole notebook is built: it may be 200 MiB)."""
    handle = tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, prefix=f".{path.name}.",
                                         suffix=".tmp", delete=False)
    try:
        with handle:
            json.dump(notebook, handle, sort_keys=True, indent=1, ensure_ascii=False)
            handle.write("\n")
        os.chmod(handle.name, 0o644)
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise


def _describe_cell(layout: GradedLayout, graded_index: int | None, notebook=None) -> str:
    if graded_index is None:
        return "the notebook"
    student_index = layout.student_cells.get(graded_index)
    if student_index is None:
        return f"the grader's cell {graded_index}"
    head = ""
    if notebook is not None and graded_index < len(notebook.cells):
        head = next((line.strip() for line in notebook.cells[graded_index].source.splitlines() if line.strip()), "")
    return f"cell {student_index + 1}" + (f" (`{head[:60]}`)" if head else "")


def _exit_description(code) -> str:
    if code is None:
        return ""
    if code < 0:
        try:
            return f" (killed by {signal.Signals(-code).name})"
        except ValueError:
            return f" (killed by signal {-code})"
    return f" (exit code {code})"


def _mib(size: int) -> str:
    return f"{size / MiB:.1f} MiB" if size < 10 * MiB else f"{size / MiB:.0f} MiB"


def _memory_hint(limits: Limits) -> str:
    return (f" The memory limit is {limits.memory_bytes / GiB:g} GiB per process and "
            f"{limits.group_memory_bytes / GiB:g} GiB for the whole notebook (every process it starts, and the files "
            "in /tmp, /dev/shm and its folder, together): use the parameters (N_TRAIN, BATCH_SIZE) instead of fixed "
            "sizes and avoid keeping extra copies of the dataset.")


def _memory_killed(run: "_Run", limits: Limits) -> str:
    """What the control group's memory limit did, for a reason ('' when it killed nothing)."""
    kills = run.memory.get("oom_kills", 0)
    if not kills:
        return ""
    return (f" The notebook's processes together reached the memory limit of {limits.group_memory_bytes / GiB:g} GiB "
            f"for the whole notebook, and {kills} process(es) were killed for it.")


def _interpret(run: _Run, layout: GradedLayout, limits: Limits, workdir: Path, notes: list[str]) -> ExecutionResult:
    empty_artefacts = harvest(None, layout)
    if run.strays_killed:
        notes.append(f"{run.strays_killed} leftover process(es) of the submission were killed after the run.")
    if run.memory.get("oom_kills"):
        notes.append(f"The memory limit for the whole notebook ({limits.group_memory_bytes / GiB:g} GiB) killed "
                     f"{run.memory['oom_kills']} process(es).")
    if run.overflow or run.refused:
        too_much = (f"was larger than {_mib(limits.max_result_bytes)}" if run.overflow else
                    f"held too many separate values ({run.refused.split(' holds ')[-1]})")
        return ExecutionResult(Status.OUTPUT_LIMIT, (
            f"The executed notebook {too_much}, so the grader could not take it back; print less and draw fewer or "
            "smaller figures."), artefacts=empty_artefacts, notes=notes, runner_log=run.stderr_tail)
    if run.wall_killed:
        return ExecutionResult(Status.TIMEOUT, (
            f"The run did not finish within the hard limit of {limits.hard_wall_s:.0f} s and was stopped; nothing "
            "could be collected. Make sure training uses the parameters (N_TRAIN, *_EPOCHS) of the parameters cell."),
            artefacts=empty_artefacts, notes=notes, runner_log=run.stderr_tail)
    if run.stalled and (run.result is None or run.result.get("notebook") is None):
        return ExecutionResult(Status.KERNEL_DIED, (
            f"The grader stopped the notebook: {run.stalled}; nothing could be collected." + _memory_killed(run, limits)),
            artefacts=empty_artefacts, notes=notes, runner_log=run.stderr_tail)
    if run.result is None or run.result.get("notebook") is None:
        detail = ""
        if run.result:
            detail = "; ".join(event.get("detail", "") for event in run.result.get("events", []))
        detail = detail or run.result_error
        return ExecutionResult(Status.KERNEL_DIED, (
            f"The notebook runner stopped without a result{_exit_description(run.returncode)}: {detail}. This "
            "happens when the kernel cannot start or the whole run runs out of memory." + _memory_killed(run, limits)
            + _memory_hint(limits)),
            artefacts=empty_artefacts, notes=notes, runner_log=run.stderr_tail)

    executed = nbformat.from_dict(run.result.pop("notebook"))
    executed_path = workdir / EXECUTED_NOTEBOOK
    if executed_path.is_dir() and not executed_path.is_symlink():  # the submission may have put anything there
        shutil.rmtree(executed_path, ignore_errors=True)
    executed_path.unlink(missing_ok=True)  # a student-made symlink there is removed, never followed
    write_notebook(executed_path, executed)
    artefacts = harvest(executed, layout)
    errors = collect_cell_errors(executed, layout)
    events = run.result.get("events", [])
    kinds = {event["kind"]: event for event in events}
    if "truncated" in kinds:
        cells = sorted({event["cell"] for event in events if event["kind"] == "truncated"})
        notes.append(f"Output was truncated in {len(cells)} cell(s) (more than "
                     f"{_mib(limits.max_cell_output_bytes)} in a cell, or "
                     f"{_mib(limits.max_notebook_output_bytes)} in all); grading is unaffected.")
    student_errors = [error for error in errors if not error["grader_cell"] and error["ename"] != "NotRun"]
    grader_errors = [error for error in errors if error["grader_cell"] and error["cell"] in
                     (layout.setup_cell, layout.overrides_cell)]
    if grader_errors:
        notes.append(f"The grader's own cell {grader_errors[0]['cell']} failed ({grader_errors[0]['ename']}: "
                     f"{grader_errors[0]['evalue']}); this is a grader problem, please report it.")
        log.error("grader cell failed: %s", grader_errors[0])

    findings = integrity_findings(executed, layout)
    exits = [_describe_cell(layout, event["cell"], executed) for event in events
             if event["kind"] == "exit_ignored" and event["cell"] in layout.student_cells]
    exit_note = (f" {exits[0][0].upper()}{exits[0][1:]} called exit() or quit(): the grader kept the kernel running "
                 "so that the rest was graded; remove it." if exits else "")

    def result(status: Status, reason: str) -> ExecutionResult:
        return ExecutionResult(status, reason + exit_note, cell_errors=errors, artefacts=artefacts,
                               executed_notebook_path=executed_path, notes=notes, runner_log=run.stderr_tail,
                               integrity_flags=findings)

    if run.disk_exceeded:
        where = _describe_cell(layout, kinds["kernel_died"]["cell"], executed) if "kernel_died" in kinds else \
            "the notebook"
        return result(Status.KERNEL_DIED, (
            f"The grader stopped the Python kernel while it ran {where}: the notebook's folder held "
            f"{run.disk_exceeded}: it tried to hold more than the limit of {_mib(limits.max_workdir_bytes)} in "
            f"{limits.max_workdir_files} files; the cells after it could not run. Do not write large or many "
            "files: keep results in variables, and save only the figures or files the assignment asks for."))
    if run.stalled or "stalled" in kinds.get("kernel_died", {}):
        event = kinds.get("kernel_died", {})
        where = _describe_cell(layout, event.get("cell"), executed) if event.get("cell") in layout.student_cells \
            else "the notebook"
        return result(Status.KERNEL_DIED, (
            f"The grader stopped the Python kernel while it ran {where}: {run.stalled or event['stalled']}; the cells "
            "after it could not run." + _memory_killed(run, limits) + " Look for code that stops its own process "
            "(os.kill, signal.SIGSTOP), waits forever, or fills the memory."))
    if "kernel_died" in kinds:
        event = kinds["kernel_died"]
        killed = _memory_killed(run, limits)
        memory = event.get("exit_code") in (-9, -6) or "Killed" in run.stderr_tail or bool(killed)
        if event["cell"] in layout.student_cells or event["cell"] is None:
            where = _describe_cell(layout, event["cell"], executed)
            reason = (f"The Python kernel died while running {where}{_exit_description(event.get('exit_code'))}; "
                      "the cells after it could not run. Look for os._exit()/sys.exit() calls, crashes in native "
                      "code or memory exhaustion.")
        else:  # e.g. the notebook's functions crashed or ran out of memory when the grader called them
            reason = (f"The Python kernel stopped after the notebook's cells had run, while the grader was calling "
                      f"its functions{_exit_description(event.get('exit_code'))}, so those checks could not run. "
                      "Look for os._exit() calls, crashes in native code or memory exhaustion in your functions.")
        return result(Status.KERNEL_DIED, reason + killed + (_memory_hint(limits) if memory else ""))
    if "runner_error" in kinds:
        return result(Status.KERNEL_DIED, (
            f"The notebook could not be run to the end: {kinds['runner_error']['detail'][:300]}. This happens when "
            "the kernel cannot start or is killed from inside the notebook."))
    timeouts = [event for event in events if event["kind"] in ("timeout", "notebook_timeout")]
    student_timeouts = [event for event in timeouts if event["cell"] in layout.student_cells]
    if student_timeouts:
        event = student_timeouts[0]
        where = _describe_cell(layout, event["cell"], executed)
        if event["kind"] == "notebook_timeout":
            student_s = limits.notebook_timeout_s - limits.export_reserve_s
            reason = (f"The notebook did not finish within its {limits.notebook_timeout_s:.0f} s limit: it was "
                      f"stopped after {student_s:.0f} s, in {where} (the last {limits.export_reserve_s:.0f} s are "
                      "kept for the grader); the remaining cells were skipped but the grader's checks of your "
                      "functions still ran. Make sure training uses the parameters cell's values (N_TRAIN, *_EPOCHS).")
        else:
            reason = (f"{where[0].upper()}{where[1:]} ran longer than the {limits.cell_timeout_s:.0f} s limit per "
                      f"cell and was interrupted (stopped after {limits.cell_timeout_s:.0f} s); ")
            reason += ("it ignored the interrupt, so the kernel was killed and later cells did not run."
                       if event.get("kernel_killed") else "the cells after it still ran.")
            reason += " Look for an infinite loop or training that ignores the parameters cell."
        return result(Status.TIMEOUT, reason)
    if timeouts:
        notes.append(f"Probe cell(s) {[event['cell'] for event in timeouts]} ran out of time.")
    if student_errors:
        first = student_errors[0]
        where = _describe_cell(layout, first["cell"], executed)
        text = f"{first['ename']}: {first['evalue']}" if first["evalue"] else first["ename"]
        memory = any(marker in text for marker in MEMORY_ERROR_MARKERS)
        reason = (f"{len(student_errors)} cell(s) raised an error; the first was {where}: {text[:300]}. The "
                  "cells after it still ran. Fix it and run the whole notebook (Restart & Run All) before "
                  "submitting." + (_memory_hint(limits) if memory else ""))
        return result(Status.CELL_ERROR, reason)
    code_cells = len(layout.student_cells)
    return result(Status.OK, f"All {code_cells} code cells of the notebook ran without errors.")
