"""Issue 16, points 4 to 6: the host holds. Limits hold for the whole submission (memory spread over processes and
/dev/shm, disk held by deleted-but-open files), a stalled kernel is released within 30 s, no user namespace and no
ptrace/keyring/bpf/io_uring inside the sandbox, and the grader's files and the run's secret are out of the kernel's
reach. Each test asserts what the submission managed to do, not how the grader stopped it; where this machine
cannot enforce a limit, the test asserts that the grader says so instead (sandbox.unenforced_limits)."""
from __future__ import annotations

import json
import platform
import uuid
from pathlib import Path

import nbformat
import pytest
from nbformat import v4

from autograder.execution import sandbox
from autograder.execution.limits import GiB, MiB, Limits
from autograder.execution.run import execute_submission

LIMITS = Limits(cell_timeout_s=300, notebook_timeout_s=400, export_timeout_s=15, export_reserve_s=15,
                interrupt_grace_s=2, startup_grace_s=60, memory_bytes=2 * GiB, group_memory_bytes=1 * GiB,
                max_workdir_bytes=64 * MiB, tmpfs_bytes=1 * GiB)
STALL_RELEASE_S = 30


def unenforced(word: str) -> bool:
    return any(word in line for line in sandbox.unenforced_limits("bwrap"))


def run_cells(tmp_path: Path, *cells: str, limits: Limits = LIMITS):
    notebook = v4.new_notebook()
    parameters = v4.new_code_cell('SEED = 0\nDATA_DIR = "data_cache"\nDEVICE = "auto"\n')
    parameters.metadata["tags"] = ["parameters"]
    notebook.cells = [parameters] + [v4.new_code_cell(cell) for cell in cells]
    path = tmp_path / f"notebook-{uuid.uuid4().hex[:8]}.ipynb"
    nbformat.write(notebook, path)
    return execute_submission(path, tmp_path / f"work-{uuid.uuid4().hex[:8]}", overrides={}, data_dir=None,
                              limits=limits, sandbox="bwrap")


def printed(result) -> str:
    if result.executed_notebook_path is None:
        return ""
    notebook = nbformat.read(result.executed_notebook_path, as_version=4)
    return "".join(output.get("text", "") for cell in notebook.cells for output in cell.get("outputs", []))


def reported(result, key: str):
    """The JSON a cell printed on a line starting with `key=`."""
    line = next(line for line in printed(result).splitlines() if line.startswith(f"{key}="))
    return json.loads(line[len(key) + 1:])


# --- memory for the whole submission -------------------------------------------------------------------------------

SPREAD = '''
import json, os, time
HOLD_MIB = 400
def hold(mib):
    block = bytearray(mib << 20)
    for i in range(0, len(block), 4096):
        block[i] = 1
    return block
children = []
for _ in range(3):
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        block = hold(HOLD_MIB)
        os.write(write_end, b"1")
        time.sleep(120)
        os._exit(0)
    os.close(write_end)
    children.append((pid, read_end))
time.sleep(4)
shm_mib = 0
try:
    with open("/dev/shm/hoard", "wb") as handle:
        for _ in range(40):
            handle.write(b"x" * (10 << 20))
            handle.flush()
            shm_mib += 10
except OSError:
    pass
time.sleep(4)
holding = 0
for pid, read_end in children:
    os.set_blocking(read_end, False)
    try:
        allocated = os.read(read_end, 1) == b"1"
    except BlockingIOError:
        allocated = False
    if allocated and os.waitpid(pid, os.WNOHANG) == (0, 0):
        holding += 1
print("held=" + json.dumps({"children_mib": holding * HOLD_MIB, "shm_mib": os.path.getsize("/dev/shm/hoard") >> 20}))
'''


def test_memory_spread_over_processes_and_dev_shm_stays_under_the_limit(tmp_path):
    if unenforced("memory for the whole submission"):
        pytest.skip("this machine cannot enforce it, and the grader says so (checked in test_unenforced_is_said)")
    result = run_cells(tmp_path, SPREAD)
    limit_mib = LIMITS.group_memory_bytes >> 20
    if result.status == "kernel_died":                     # the limit may take the notebook's own process
        assert "memory limit" in result.reason, result.reason
        return
    held = reported(result, "held")
    assert held["children_mib"] + held["shm_mib"] <= limit_mib, (held, result.notes)


def test_disk_held_by_a_deleted_but_open_file_stays_under_the_limit(tmp_path):
    if unenforced("disk:"):
        pytest.skip("this machine cannot enforce it, and the grader says so (checked in test_unenforced_is_said)")
    result = run_cells(tmp_path, '''
import os
handle = open("held.bin", "wb")
os.unlink("held.bin")
written = 0
try:
    while written < 256:
        handle.write(b"\\1" * (1 << 20))
        handle.flush()
        written += 1
        print(f"wrote={written}", flush=True)
except OSError:
    pass
''')
    held = max(int(line[6:]) for line in printed(result).splitlines() if line.startswith("wrote="))
    assert held <= LIMITS.max_workdir_bytes >> 20, held
    assert result.status in ("ok", "kernel_died"), result.reason


# --- a stalled kernel ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("stall", [
    "import os, signal\nos.kill(os.getpid(), signal.SIGSTOP)",
    "import os, signal, time\npid = os.fork()\nif pid == 0:\n    os.kill(os.getpid(), signal.SIGSTOP)\n"
    "    os._exit(0)\nos.waitpid(pid, 0)",
])
def test_a_stopped_kernel_is_released_within_30_s(tmp_path, stall):
    result = run_cells(tmp_path, "import time\nprint('started')", stall, "print('never reached')")
    assert result.status == "kernel_died", result.reason
    assert "stopped" in result.reason
    # kernel start and the first cell included; the cell time limit is 300 s
    assert result.duration_s < STALL_RELEASE_S + 30, result.duration_s


def test_a_kernel_at_its_memory_limit_is_released_within_30_s(tmp_path):
    if unenforced("memory for the whole submission"):
        pytest.skip("this machine cannot enforce it, and the grader says so (checked in test_unenforced_is_said)")
    limits = LIMITS.replace(group_memory_bytes=768 * MiB)
    result = run_cells(tmp_path, '''
import time
try:
    with open("/dev/shm/fill", "wb") as handle:
        for _ in range(70):
            handle.write(b"x" * (10 << 20))
except OSError:
    pass
blocks = []
while True:
    blocks.append(bytearray(1 << 20))
    for i in range(0, 1 << 20, 4096):
        blocks[-1][i] = 1
''', "print('never reached')", limits=limits)
    assert result.status == "kernel_died", result.reason
    assert "memory" in result.reason
    assert result.duration_s < STALL_RELEASE_S + 30, result.duration_s


# --- inside the sandbox --------------------------------------------------------------------------------------------

ESCAPES = '''
import ctypes, errno, json, os, subprocess
libc = ctypes.CDLL(None, use_errno=True)
def call(function, *args):
    ctypes.set_errno(0)
    value = function(*args)
    return [value, errno.errorcode.get(ctypes.get_errno(), "")]
found = {"unshare_command": subprocess.run(["unshare", "-Ur", "id", "-u"], capture_output=True).returncode,
         "unshare_user": call(libc.unshare, 0x10000000),
         "unshare_mount": call(libc.unshare, 0x00020000),
         "ptrace_attach_1": call(libc.ptrace, 16, 1, 0, 0)}
NUMBERS = {"keyctl": 250, "add_key": 248, "request_key": 249, "bpf": 321, "perf_event_open": 298,
           "userfaultfd": 323, "io_uring_setup": 425, "setns": 308, "kexec_load": 246}
if os.uname().machine == "x86_64":
    for name, number in NUMBERS.items():
        found[name] = call(libc.syscall, number, 0, 0, 0, 0, 0)
print("found=" + json.dumps(found))
'''


def test_no_user_namespace_and_no_unfiltered_system_calls(tmp_path):
    result = run_cells(tmp_path, ESCAPES)
    found = reported(result, "found")
    assert found.pop("unshare_command") != 0, "unshare -Ur worked inside the sandbox"
    if unenforced("seccomp"):
        assert found["unshare_user"][0] == -1
        return
    for name, (value, error) in found.items():
        assert value == -1 and error == "EPERM", (name, value, error)
    if platform.machine() == "x86_64":
        assert "io_uring_setup" in found and "keyctl" in found


def test_the_kernel_cannot_read_the_graders_files_or_the_runs_secret(tmp_path):
    result = run_cells(tmp_path, '''
import json, os
found = {"environment": sorted(key for key in os.environ if "LABGRADER" in key)}
for path in ("/grader/graded.ipynb", "/grader/config.json", "/grader/runner.py", "/grader"):
    try:
        found[path] = len(os.listdir(path)) if os.path.isdir(path) else len(open(path, "rb").read())
    except OSError as error:
        found[path] = error.strerror
secrets = []
for pid in os.listdir("/proc"):
    if pid.isdigit():
        try:
            with open(f"/proc/{pid}/environ", "rb") as handle:
                if b"LABGRADER" in handle.read():
                    secrets.append(pid)
        except OSError:
            pass
found["environ_with_token"] = secrets
print("found=" + json.dumps(found))
''')
    found = reported(result, "found")
    if unenforced("separate uids"):
        return                                             # said: the kernel runs as the runner's uid
    assert found.pop("environment") == [] and found.pop("environ_with_token") == [], found
    for path, outcome in found.items():
        assert outcome == "Permission denied", (path, outcome)


def test_unenforced_is_said():
    """What this machine cannot enforce is a list of sentences (empty here: root, cgroups, seccomp, tmpfs)."""
    lines = sandbox.unenforced_limits("bwrap")
    assert all(isinstance(line, str) and line for line in lines)
    none = sandbox.unenforced_limits("none")
    assert any(line.startswith("sandbox: none") for line in none)
