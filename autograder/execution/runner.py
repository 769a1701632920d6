"""Runner that executes the graded notebook inside the sandbox; a standalone script (copied alone into the sandbox).

Usage: python -I runner.py CONFIG_JSON
       python -I runner.py --kernel UID CONNECTION_FILE     (the kernel's launcher, started by the runner itself)

It executes the notebook cell by cell with nbclient (errors allowed, so later cells still run), enforces the
per-cell timeout (interrupt, then kill the kernel if the cell ignores the interrupt) and the notebook deadline
(student cells stop there; the grader's export cell still gets its reserved time), caps the outputs kept, and
writes ONE JSON object to its original stdout: {"events": [...], "kernel_exit_code": ..., "notebook": {...}}.
Nothing else comes out. The kernel inherits /dev/null as stdout and this process is made non-dumpable, so code in
the kernel can neither write into the result channel nor open it through /proc.

The kernel runs as another uid than the runner when the config names one (`kernel_uid`: the grader runs as root):
the runner keeps CAP_SETUID/CAP_SETGID/CAP_KILL only for this, and starts the kernel through its own `--kernel`
mode, which reads the connection file, becomes `kernel_uid` with no capability left (or exits), writes the connection
file again where that uid can read it, and execs ipykernel. The runner's files (this script, the graded notebook, the
config; /grader is readable by the runner's uid only) and its private folder in /tmp are then out of the kernel's
reach, and the kernel cannot signal or trace the runner. A kernel whose heartbeat stays silent for STALL_S while a
cell runs (stopped, frozen) is killed and reported as dead, with the reason.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import sys
import tempfile
import time
from queue import Empty

PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
LINUX_CAPABILITY_VERSION_3 = 0x20080522


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _capabilities() -> dict[str, int]:
    with open("/proc/self/status") as handle:
        return {line.split(":")[0]: int(line.split()[1], 16) for line in handle if line.startswith("Cap")}


def launch_kernel(uid: int, connection_file: str) -> int:
    """The kernel's launcher (runs as the runner's uid): become `uid` without any capability, then exec ipykernel
    with a copy of the connection file that uid can read. Exits (the kernel never starts) if anything fails."""
    with open(connection_file, "rb") as handle:
        connection = handle.read()
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    data = (_CapData * 2)()
    if libc.capset(ctypes.byref(_CapHeader(LINUX_CAPABILITY_VERSION_3, 0)), data) != 0:
        return 1
    caps = _capabilities()
    if os.getresuid() != (uid, uid, uid) or any(caps.get(name) for name in ("CapEff", "CapPrm", "CapAmb", "CapInh")):
        return 1
    private = tempfile.mkdtemp(prefix=".labgrade-kernel-", dir=os.environ.get("TMPDIR") or "/tmp")
    path = os.path.join(private, "connection.json")
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as handle:
        handle.write(connection)
    try:
        with open("/proc/self/oom_score_adj", "w") as handle:
            handle.write("1000")            # the memory limit's first victim: the kernel, not the runner
    except OSError:
        pass
    os.execv(sys.executable, [sys.executable, "-m", "ipykernel_launcher", "-f", path])
    return 1


if __name__ == "__main__" and len(sys.argv) == 4 and sys.argv[1] == "--kernel":    # before the heavy imports
    sys.exit(launch_kernel(int(sys.argv[2]), sys.argv[3]))

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

PR_SET_DUMPABLE = 4
KERNEL_NAME = "labgrade"
STALL_S = 20.0             # a cell's kernel without a heartbeat for this long is killed
TRUNCATION_NOTE = "\n[output truncated by the grader: more than {limit} bytes of output in this cell]\n"
TOTAL_TRUNCATION_NOTE = "\n[output dropped by the grader: the notebook printed more than {limit} bytes in total]\n"


def make_private() -> int:
    """Keep the result channel for ourselves: returns a private fd of the original stdout, points fd 1 at
    /dev/null (inherited by the kernel) and makes this process non-dumpable (its /proc/PID/fd closed to same-uid
    processes)."""
    result_fd = os.dup(1)  # non-inheritable by default
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    sys.stdout = open(os.devnull, "w")
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    return result_fd


def prepare_private(config: dict) -> str | None:
    """The runner's own folder (0700) for Jupyter's runtime files and the kernel spec that starts the kernel as
    config["kernel_uid"]; returns the kernel name to use, None for the default one (no second uid)."""
    private = config.get("private_dir")
    if not private:
        return None
    os.mkdir(private, 0o700)            # fails if anything is there already: nothing else may own it
    for name, sub in (("JUPYTER_RUNTIME_DIR", "runtime"), ("JUPYTER_DATA_DIR", "data"),
                      ("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_PATH", "share")):
        os.environ[name] = os.path.join(private, sub)
    os.environ["HOME"] = private
    if config.get("kernel_uid") is None:
        return None
    spec_dir = os.path.join(private, "share", "kernels", KERNEL_NAME)
    os.makedirs(spec_dir)
    spec = {"argv": [sys.executable, "-I", os.path.abspath(__file__), "--kernel", str(int(config["kernel_uid"])),
                     "{connection_file}"],
            "display_name": "Python 3 (graded)", "language": "python", "interrupt_mode": "signal"}
    with open(os.path.join(spec_dir, "kernel.json"), "w") as handle:
        json.dump(spec, handle)
    return KERNEL_NAME


class CappedNotebookClient(NotebookClient):
    """NotebookClient that merges consecutive stream outputs and stops keeping output past the caps (outputs of
    the grader's cells are never dropped)."""

    def __init__(self, nb, *, grader_cells: set[int], max_cell_bytes: int, max_total_bytes: int, **kwargs):
        super().__init__(nb, **kwargs)
        self.grader_cells = grader_cells
        self.max_cell_bytes = max_cell_bytes
        self.max_total_bytes = max_total_bytes
        self.cell_bytes: dict[int, int] = {}
        self.total_bytes = 0
        self.truncated_cells: set[int] = set()
        self.total_truncated = False

    @staticmethod
    def _size(msg) -> int:
        content = msg.get("content", {})
        if msg["msg_type"] == "stream":
            return len(content.get("text", ""))
        return len(json.dumps(content.get("data", {}))) + len(json.dumps(content.get("traceback", [])))

    def output(self, outs, msg, display_id, cell_index):
        if cell_index in self.grader_cells or msg["msg_type"] == "error":
            return super().output(outs, msg, display_id, cell_index)
        size = self._size(msg)
        used = self.cell_bytes.get(cell_index, 0)
        if self.total_bytes + size > self.max_total_bytes:
            if not self.total_truncated:
                self.total_truncated = True
                outs.append(nbformat.v4.new_output(
                    "stream", name="stderr", text=TOTAL_TRUNCATION_NOTE.format(limit=self.max_total_bytes)))
            self.truncated_cells.add(cell_index)
            return None
        # The per-cell cap is for printed text; figures (PNGs and the grader's figure descriptions, which a
        # high-dpi cell of three 5000-point scatters already pushes past 1 MiB) count only toward the total.
        per_cell = msg["msg_type"] not in ("display_data", "execute_result", "update_display_data")
        if per_cell and used + size > self.max_cell_bytes:
            room = self.max_cell_bytes - used
            if msg["msg_type"] == "stream" and room > 0 and cell_index not in self.truncated_cells:
                self.cell_bytes[cell_index] = self.max_cell_bytes  # keep the part of this chunk that fits
                self.total_bytes += room
                text = msg["content"].get("text", "")[:room]
                super().output(outs, {**msg, "content": {**msg["content"], "text": text}}, display_id, cell_index)
            if cell_index not in self.truncated_cells:
                self.truncated_cells.add(cell_index)
                outs.append(nbformat.v4.new_output(
                    "stream", name="stderr", text=TRUNCATION_NOTE.format(limit=self.max_cell_bytes)))
            return None
        self.cell_bytes[cell_index] = used + size
        self.total_bytes += size
        if (msg["msg_type"] == "stream" and outs and outs[-1].get("output_type") == "stream"
                and outs[-1].get("name") == msg["content"].get("name") and not self.clear_before_next_output):
            outs[-1]["text"] += msg["content"].get("text", "")  # merge: a million prints make one output
            return outs[-1]
        return super().output(outs, msg, display_id, cell_index)


def error_output(ename: str, evalue: str):
    return nbformat.v4.new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


async def kernel_responds(client: NotebookClient, grace_s: float) -> bool:
    """After an interrupt: does the kernel answer a trivial request within grace_s? (Shell requests are served in
    order, so the answer comes only once the interrupted cell has stopped.) Drains the interrupted cell's
    messages on the way."""
    msg_id = client.kc.execute("", silent=True, store_history=False)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        try:
            msg = await client.kc.shell_channel.get_msg(timeout=max(0.05, deadline - time.monotonic()))
        except Empty:
            continue
        if msg["parent_header"].get("msg_id") == msg_id:
            while True:  # drop the leftover iopub traffic of the interrupted cell
                try:
                    await client.kc.iopub_channel.get_msg(timeout=0.2)
                except Empty:
                    break
            return True
    return False


class KernelStalled(Exception):
    """The kernel stopped answering its heartbeat while a cell ran; it was killed."""


async def execute_watched(client: NotebookClient, cell, index: int, execution_count: int) -> None:
    """client.async_execute_cell, killing the kernel when its heartbeat stays silent for STALL_S (KernelStalled)."""
    task = asyncio.ensure_future(client.async_execute_cell(cell, index, execution_count=execution_count))
    heart = getattr(client.kc, "_hb_channel", None)
    silent_since = None
    while True:
        done, _ = await asyncio.wait({task}, timeout=1.0)
        if done:
            task.result()
            return
        if heart is None or not heart.is_alive():
            continue
        if heart.is_beating():
            silent_since = None
            continue
        silent_since = silent_since or time.monotonic()
        if time.monotonic() - silent_since >= STALL_S:
            await client.km.shutdown_kernel(now=True)
            task.cancel()
            try:
                await task
            except BaseException:
                pass
            raise KernelStalled(f"the kernel did not answer its heartbeat for {time.monotonic() - silent_since:.0f} s "
                                "(stopped or frozen), so it was killed")


async def run(config: dict, kernel_name: str = "python3") -> dict:
    nb = nbformat.read(config["notebook"], as_version=4)
    grader_cells = set(config["grader_cells"])
    events: list[dict] = []
    client = CappedNotebookClient(
        nb, grader_cells=grader_cells, max_cell_bytes=config["max_cell_output_bytes"],
        max_total_bytes=config["max_notebook_output_bytes"], kernel_name=kernel_name, allow_errors=True,
        interrupt_on_timeout=False, timeout=int(config["cell_timeout_s"]), iopub_timeout=5,
        startup_timeout=int(config["startup_timeout_s"]), resources={"metadata": {"path": config["workdir"]}})

    def note_exit_requests(cell, cell_index, execute_reply):
        """exit()/quit() (kept from stopping the kernel by the setup cell) leave an ask_exit payload."""
        payloads = ((execute_reply or {}).get("content") or {}).get("payload") or []
        if any(isinstance(payload, dict) and payload.get("source") == "ask_exit" for payload in payloads):
            events.append({"cell": cell_index, "kind": "exit_ignored", "detail": "the cell called exit() or quit()"})

    client.on_cell_executed = note_exit_requests
    try:
        await run_cells(client, nb, config, events)
    except Exception as error:  # e.g. the kernel could not start: still return what ran
        events.append({"cell": None, "kind": "runner_error", "detail": f"{type(error).__name__}: {error}"})
    for index in sorted(client.truncated_cells):
        events.append({"cell": index, "kind": "truncated", "detail": "output truncated"})
    return {"events": events, "kernel_exit_code": exit_code(client), "notebook": nb}


async def run_cells(client: "CappedNotebookClient", nb, config: dict, events: list) -> None:
    final_cells = set(config["final_cells"])
    started = time.monotonic()
    student_deadline = started + config["notebook_timeout_s"] - config["export_reserve_s"]
    notebook_deadline = started + config["notebook_timeout_s"]
    stop_all = False  # kernel dead or killed: nothing more can run
    student_stopped = False  # notebook deadline passed: student cells are skipped, the export cell still runs
    async with client.async_setup_kernel(cwd=config["workdir"], env=config["kernel_env"]):
        await client.async_wait_for_reply(client.kc.kernel_info())
        execution_count = 0
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            is_final = index in final_cells
            if stop_all or (student_stopped and not is_final):
                cell.outputs = [error_output("NotRun", "not run: " + ("the kernel had stopped" if stop_all
                                                                       else "the notebook time limit was reached"))]
                continue
            now = time.monotonic()
            if is_final:
                budget = min(config["export_timeout_s"], notebook_deadline - now)
                deadline_kind = "timeout"
            else:
                to_deadline = student_deadline - now
                budget = min(config["cell_timeout_s"], to_deadline)
                deadline_kind = "notebook_timeout" if to_deadline < config["cell_timeout_s"] else "timeout"
            if budget <= 0:
                student_stopped = student_stopped or not is_final
                cell.outputs = [error_output("NotRun", "not run: the notebook time limit was reached")]
                continue
            client.timeout = max(1, int(budget))
            execution_count += 1
            try:
                await execute_watched(client, cell, index, execution_count)
            except KernelStalled as stalled:
                cell.outputs.append(error_output("KernelDied", str(stalled)))
                events.append({"cell": index, "kind": "kernel_died", "exit_code": exit_code(client),
                               "detail": str(stalled), "stalled": str(stalled)})
                stop_all = True
            except CellTimeoutError:
                await client.km.interrupt_kernel()
                stopped = await kernel_responds(client, config["interrupt_grace_s"])
                limit = int(budget)
                if deadline_kind == "notebook_timeout":
                    student_stopped = True
                    text = f"the notebook time limit was reached during this cell (stopped after {limit} s)"
                else:
                    text = f"the cell ran longer than its time limit of {limit} s and was interrupted"
                if not stopped:
                    text += f"; it ignored the interrupt for {config['interrupt_grace_s']:g} s so the kernel was killed"
                    await client.km.shutdown_kernel(now=True)
                    stop_all = True
                cell.outputs.append(error_output("CellTimeout", text))
                events.append({"cell": index, "kind": deadline_kind, "kernel_killed": not stopped, "detail": text})
            except DeadKernelError:
                kernel_exit_code = exit_code(client)
                text = "the kernel died while running this cell" + (
                    f" (exit code {kernel_exit_code})" if kernel_exit_code is not None else "")
                cell.outputs.append(error_output("KernelDied", text))
                events.append({"cell": index, "kind": "kernel_died", "exit_code": kernel_exit_code, "detail": text})
                stop_all = True
            if time.monotonic() >= student_deadline and not is_final and not student_stopped:
                student_stopped = True
                events.append({"cell": index, "kind": "notebook_timeout",
                               "detail": "the notebook time limit was reached after this cell"})


def exit_code(client: NotebookClient):
    try:
        process = client.km.provisioner.process
        return process.poll() if process is not None else None
    except AttributeError:
        return None


def main() -> int:
    result_fd = make_private()
    with open(sys.argv[1]) as handle:
        config = json.load(handle)
    try:
        kernel_name = prepare_private(config) or "python3"
        result = asyncio.run(run(config, kernel_name))
    except Exception as error:  # reported as a value; the parent turns it into a status
        result = {"events": [{"cell": None, "kind": "runner_error", "detail": f"{type(error).__name__}: {error}"}],
                  "kernel_exit_code": None, "notebook": None}
    with os.fdopen(result_fd, "w") as out:
        json.dump(result, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
