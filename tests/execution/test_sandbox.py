"""The sandbox holds: no network, no writes outside the workdir, no process left behind, process limits.

Each behaviour is also checked WITHOUT the sandbox where that is cheap, to show the test can fail."""

from __future__ import annotations

import os
import socket
import threading
import uuid
from pathlib import Path

import nbformat

from autograder.execution import sandbox
from autograder.execution.run import execute_submission
from autograder.execution.limits import GiB, Limits

NOTEBOOKS = Path(__file__).resolve().parents[1] / "fixtures" / "notebooks"
PROJECT = Path(__file__).resolve().parents[2]
LIMITS = Limits(cell_timeout_s=10, notebook_timeout_s=40, export_timeout_s=15, export_reserve_s=15,
                interrupt_grace_s=2, startup_grace_s=40, memory_bytes=2 * GiB)


def run(name, tmp_path, *, overrides=None, mode="bwrap", limits=LIMITS):
    return execute_submission(NOTEBOOKS / name, tmp_path / f"work-{uuid.uuid4().hex[:8]}", overrides=overrides or {},
                              data_dir=None, limits=limits, sandbox=mode)


def printed(result) -> str:
    notebook = nbformat.read(result.executed_notebook_path, as_version=4)
    return "".join(output.get("text", "") for cell in notebook.cells for output in cell.get("outputs", []))


class LoopbackServer:
    """A TCP server on the HOST's 127.0.0.1 that records what connects to it."""

    def __init__(self):
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.socket.settimeout(0.2)
        self.port = self.socket.getsockname()[1]
        self.received: list[bytes] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stop.is_set():
            try:
                connection, _ = self.socket.accept()
            except OSError:
                continue
            with connection:
                connection.settimeout(2)
                try:
                    self.received.append(connection.recv(100))
                except OSError:
                    self.received.append(b"")

    def close(self):
        self.stop.set()
        self.thread.join()
        self.socket.close()


def test_network_is_cut_in_the_sandbox_and_open_without_it(tmp_path):
    server = LoopbackServer()
    try:
        sandboxed = run("opens_network.ipynb", tmp_path, overrides={"SERVER_PORT": server.port})
        assert sandboxed.status == "ok", sandboxed.reason
        assert "BLOCKED" in printed(sandboxed)
        assert server.received == []
        unsandboxed = run("opens_network.ipynb", tmp_path, overrides={"SERVER_PORT": server.port}, mode="none")
        assert "CONNECTED" in printed(unsandboxed)
        assert server.received == [b"hello from the sandbox"]
        assert "NO SANDBOX" in unsandboxed.sandbox
    finally:
        server.close()


def test_writes_outside_the_workdir_do_not_land(tmp_path):
    marker = f"labgrader-escape-{uuid.uuid4().hex}"
    targets = [str(PROJECT / "tests" / marker), f"/tmp/{marker}", str(tmp_path / marker)]
    result = run("writes_outside_workdir.ipynb", tmp_path, overrides={"ESCAPE_TARGETS": targets})
    assert result.status == "ok", result.reason
    for target in targets:
        assert not Path(target).exists(), f"the submission wrote {target} outside its workdir"
    workdir = result.executed_notebook_path.parent
    assert (workdir / "inside.txt").read_text() == "escaped"
    assert f'"/tmp/{marker}": "written"' in printed(result), "writes to /tmp go to the sandbox's private tmpfs"
    assert os.stat(workdir / "inside.txt").st_uid == os.getuid(), "the workdir is handed back to the grader"


def _sleepers(seconds: str) -> list[int]:
    pids = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/cmdline", "rb") as handle:
                    if handle.read().split(b"\0")[:2] == [b"sleep", seconds.encode()]:
                        pids.append(int(entry.name))
            except OSError:
                pass
    return pids


def test_no_process_survives_a_daemon_spawning_notebook(tmp_path):
    for mode in ("bwrap", "none"):
        seconds = f"1000.{uuid.uuid4().int % 10**9}"  # identifies this run's daemons
        result = run("spawns_daemon.ipynb", tmp_path, overrides={"DAEMON_SECONDS": seconds}, mode=mode)
        assert result.status == "ok", result.reason
        assert "spawned" in printed(result)
        assert _sleepers(seconds) == [], f"daemons of the submission survived (mode {mode})"


def test_process_limit_applies_to_the_submission(tmp_path):
    result = run("forks_many.ipynb", tmp_path, limits=LIMITS.replace(max_processes=64))
    assert result.status == "ok", result.reason
    [line] = [line for line in printed(result).splitlines() if line.startswith("started")]
    started, refused = (int(word) for word in line.split()[1::2])
    assert refused > 0 and started < 64, printed(result)


def test_bwrap_command_shows_no_project_and_drops_root(tmp_path):
    runner, workdir, data = tmp_path / "runner", tmp_path / "work", tmp_path / "data"
    for path in (runner, workdir, data):
        path.mkdir()
    venv = PROJECT / ".venv"
    cmd, description = sandbox.build_command(["/venv/bin/python", "-c", "pass"], workdir=workdir, data_dir=data,
                                             venv=venv, mode="bwrap", limits=LIMITS, runner_dir=runner, uid=250000)
    sources = [cmd[i + 1] for i, arg in enumerate(cmd) if arg in ("--bind", "--ro-bind")]
    assert str(PROJECT) not in [s for s in sources if s != str(venv.resolve())]
    assert not any(s.startswith(str(PROJECT)) and s != str(venv.resolve()) for s in sources)
    writable = [cmd[i + 1] for i, arg in enumerate(cmd) if arg == "--bind"]
    assert writable == [str(workdir.resolve())]
    assert "--unshare-net" in cmd or "--unshare-all" in cmd
    assert "--die-with-parent" in cmd
    if os.geteuid() == 0:
        assert "--reuid=250000" in cmd and "uid 250000" in description
    values = dict(zip(cmd[3].split(","), cmd[4].split(",")))
    assert values["RLIMIT_DATA"] == str(LIMITS.memory_bytes) and values["RLIMIT_FSIZE"] == str(LIMITS.max_file_bytes)


def test_mode_none_is_described_loudly():
    cmd, description = sandbox.build_command(["python", "-c", "pass"], workdir=Path("/w"), data_dir=None,
                                             venv=Path("/v"), mode="none", limits=LIMITS, runner_dir=Path("/r"))
    assert description.startswith("none: NO SANDBOX")
    assert "bwrap" not in " ".join(cmd)
    assert sandbox.resolve_mode("none")[0] == "none"


def test_hard_wall_limit_kills_the_whole_run_and_reports_a_timeout(tmp_path):
    from autograder.execution.run import _interpret, _run
    from autograder.execution.harvest import GradedLayout
    seconds = f"300.{uuid.uuid4().int % 10**9}"
    limits = LIMITS.replace(notebook_timeout_s=0.5, startup_grace_s=0.5, interrupt_grace_s=0.25)
    token = uuid.uuid4().hex
    script = f"import subprocess, time; subprocess.Popen(['sleep', '{seconds}'], start_new_session=True); time.sleep(60)"
    run_ = _run(["python3", "-c", script], {"PATH": os.environ["PATH"], "LABGRADER_RUN": token}, limits, token)
    assert run_.wall_killed and _sleepers(seconds) == []
    result = _interpret(run_, GradedLayout(token=token, setup_cell=0, overrides_cell=1, parameters_cell=None),
                        limits, tmp_path, [])
    assert result.status == "timeout" and "hard limit of 2 s" in result.reason


def test_oversized_result_is_output_limit(tmp_path):
    from autograder.execution.run import _interpret, _run
    from autograder.execution.harvest import GradedLayout
    limits = LIMITS.replace(max_result_bytes=100_000)
    run_ = _run(["python3", "-c", "print('x' * 300_000)"], {"PATH": os.environ["PATH"]}, limits, "t")
    assert run_.overflow
    result = _interpret(run_, GradedLayout(token="t", setup_cell=0, overrides_cell=1, parameters_cell=None),
                        limits, tmp_path, [])
    assert result.status == "output_limit" and "larger than 0.1 MiB" in result.reason


def test_submission_cannot_write_into_the_runner_or_its_result_channel(tmp_path):
    result = run("tampers_with_runner.ipynb", tmp_path)
    assert result.status == "ok", result.reason
    text = printed(result)  # the fd-1 write lands in the cell's output (ipykernel captures it), not the result
    assert "opened" in text and text.rstrip().endswith(" []"), text
