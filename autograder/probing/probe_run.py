"""One submission's probe server, from its start (while the notebook still runs) to its stop.

    run = ProbeRun(data_dir=..., limits=...)
    run.start(cells, mode)           # (execute_submission's before_run) a sandboxed server executes the
                                     # notebook's definitions while the notebook runs
    ... the notebook runs, its export cell writes the trained models to its folder ...
    outcome = run.finish(workdir, seed, profile, figures)   # load the models, run every probe, stop the server

The server runs in its own sandbox (sandbox.build_command, like the kernel's runner: seccomp filter, its own control
group with the same memory and process limits, found and killed by that group) as a fresh unprivileged uid, with an
empty private tmpfs as its folder: it sees neither the submission's folder nor anything the kernel left behind, and
the kernel never sees it. Everything it is sent is in the pipe: no input is written to disk. A server that stalls
(stopped, blocked, held at its memory limit) fails its call within seconds (execution/stall.py).
"""
from __future__ import annotations

import logging
import os
import secrets
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from autograder.checks.figure_reader import read_grids
from autograder.execution import cgroups, sandbox
from autograder.execution.integrity import Finding
from autograder.execution.stall import StallWatch
from autograder.execution.limits import Limits
from autograder.probing import client, definitions, probes
from autograder.probing.session import Context
from autograder.probing.exported import read_export
from autograder.probing.reference_data import reference_data

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
CONTRACT_NAMES = ("FF", "Autoencoder", "VAEEncoder", "VAEDecoder", "VAE", "reparameterize", "kl_divergence",
                  "bernoulli_vae_loss", "gaussian_vae_loss", "pca_encode", "pca_generate", "pca_reconstruct")


@dataclass
class ProbeOutcome:
    probes: dict = field(default_factory=dict)        # probe name -> {"ok", "value" | "error"}
    inputs: dict = field(default_factory=dict)        # probe name -> what the grader drew for it
    findings: list = field(default_factory=list)      # integrity.Finding: the kernel watch's, the channel's, tampering
    notes: list = field(default_factory=list)         # for the feedback (what could not be probed and why)
    names: dict = field(default_factory=dict)         # contract name -> defined
    server_log: str = ""


def server_env(limits: Limits, token: str | None, tmp: str) -> dict:
    """The server's environment; `token` only where no control group finds its processes."""
    threads = str(max(1, limits.threads))
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": tmp, "TMPDIR": tmp, "LANG": "C.UTF-8",
            "MPLBACKEND": "Agg", "MPLCONFIGDIR": f"{tmp}/matplotlib", "PYTHONHASHSEED": "0",
            "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads,
            "OPENBLAS_NUM_THREADS": threads} | ({"LABGRADER_RUN": token} if token else {})


class ProbeRun:
    def __init__(self, *, data_dir: Path | None, limits: Limits, venv: Path):
        self.data_dir, self.limits, self.venv = data_dir, limits, venv
        self.cells: list = []
        self.statements: list = []
        self.mode = "none"
        self.server: client.ProbeServer | None = None
        self.defined: dict = {}
        self.error = ""
        self.token = secrets.token_hex(16)
        self.group: cgroups.Group | None = None
        self._folder = Path(tempfile.mkdtemp(prefix="labgrader-probe-"))
        self._thread = threading.Thread(target=self._define, name="probe-definitions", daemon=True)

    def start(self, cells: list[tuple[int, str]], mode: str) -> None:
        """`cells`: (cell number, source) of the notebook's code cells as graded, overrides included; `mode`: the
        sandbox mode of the run. Starts the server from this thread (bwrap's --die-with-parent follows the thread
        that started it, so it must be one that lives until finish()) and sends it the definitions from a
        background thread: returns at once."""
        self.cells, self.mode = cells, mode
        self.statements = definitions.extract(cells)
        try:
            self.server = self._spawn()
        except (OSError, ValueError, RuntimeError) as error:
            self.error = f"the probe server could not start ({error})"
            return
        self._thread.start()

    def _spawn(self) -> client.ProbeServer:
        code, workdir = self._folder / "server", self._folder / "work"
        code.mkdir()
        workdir.mkdir()
        for name in client.SERVER_FILES:
            shutil.copy(HERE / name, code / name)
        os.chmod(self._folder, 0o755)
        os.chmod(code, 0o755)
        for path in code.iterdir():
            os.chmod(path, 0o644)
        uid = sandbox.allocate_uid() if self.mode == "bwrap" and os.geteuid() == 0 else None
        if uid is not None:
            os.chown(workdir, uid, uid)
        paths = sandbox.inside_paths(self.mode, workdir=workdir, data_dir=self.data_dir, venv=self.venv,
                                     runner_dir=code)
        if self.mode == "none":
            (code / "tmp").mkdir(exist_ok=True)
            os.chmod(code / "tmp", 0o777)
        argv = [paths.python, "-I", f"{paths.runner_dir}/server.py"]
        self.group = cgroups.Group.create("probe", memory_bytes=self.limits.group_memory_bytes,
                                          max_tasks=self.limits.group_max_tasks)
        command, _ = sandbox.build_command(argv, workdir=workdir, data_dir=self.data_dir, venv=self.venv,
                                           mode=self.mode, limits=self.limits, runner_dir=code, uid=uid,
                                           group=self.group, private_workdir=self.mode == "bwrap")
        server = client.spawn(command, server_env(self.limits, None if self.group else self.token, paths.tmp))
        server.watch = StallWatch(self.token, self.group).check
        return server

    def _define(self) -> None:
        try:
            self.defined = self.server.request("define", {"statements": [s.to_wire() for s in self.statements],
                                                          "names": list(CONTRACT_NAMES)})
        except client.ProbeChannelError as error:
            self.error = f"the probe server could not run the notebook's definitions ({error})"

    def finish(self, workdir: Path, seed: int, profile: dict, figures: list) -> ProbeOutcome:
        """Load the exported models, run every probe, stop the server. Never raises for what the submission does."""
        outcome = ProbeOutcome()
        if self._thread.ident is None and not self.error:     # the notebook never ran: its status says why
            self.stop()
            return outcome
        if self._thread.ident is not None:
            self._thread.join(timeout=client.START_TIMEOUT_S)
        exported = read_export(workdir)
        outcome.notes += exported.problems
        outcome.findings += [Finding(f"in the kernel, {text}", voids=True)
                             for text in (exported.report.get("kernel") or []) if isinstance(text, str)][:20]
        server = self.server if not self.error and self.server is not None and not self.server.dead else None
        if self.error:
            outcome.notes.append(self.error)
        loaded = {}
        try:
            if server is not None:
                specs = model_specs(exported, self.cells)
                reply = server.request("load", {"models": specs, "weights": {n: exported.weights[n] for n in specs}})
                loaded = reply.get("models") or {}
        except client.ProbeChannelError as error:
            outcome.notes.append(f"the trained models could not be loaded for probing ({error})")
            server = None
        outcome.names = {**{name: bool(value) for name, value in (exported.report.get("names") or {}).items()},
                         **{name: bool(value) for name, value in (self.defined.get("defined") or {}).items()}}
        grids = [(grid.figure, grid.kind, grid.tiles.reshape(grid.rows, grid.cols, -1))
                 for grid in read_grids(figures) if grid.pixels is not None]
        context = Context(data=reference_data(self.data_dir), profile=dict(profile),
                          reported=exported.report, models=loaded, figure_grids=grids)
        try:
            outcome.probes, outcome.inputs = probes.run_all(server, context, seed)
        finally:
            self.stop()
        if self.server is not None:
            outcome.findings += [Finding(text, voids=True) for text in self.server.findings]
            outcome.findings += [Finding(f"in the grader's probe process, the notebook's code {what}; its answers "
                                         "were not trusted", voids=True) for what in self.server.tamper]
            outcome.server_log = self.server.stderr_tail
        return outcome

    def stop(self) -> None:
        try:
            if self.server is not None:
                self.server.stop()
                sandbox.kill_run(self.server.process, self.token, self.group)
        finally:
            if self.group is not None:
                self.group.remove()
                self.group = None
            shutil.rmtree(self._folder, ignore_errors=True)


def model_specs(exported, cells: list[tuple[int, str]]) -> dict:
    """For each exported model with weights: its class, how the notebook built it, the sizes of its layers."""
    specs = {}
    for name, info in (exported.report.get("models") or {}).items():
        weights = exported.weights.get(name)
        if not isinstance(info, dict) or not weights or not isinstance(info.get("class"), str):
            continue
        sizes = sorted({int(d) for array in weights.values() for d in array.shape if d > 1}, reverse=True)
        specs[name] = {"class": info["class"][:100], "sizes": sizes[:6],
                       "constructor": definitions.constructor_source(cells, name.split(".")[0], {info["class"]})}
    return specs
