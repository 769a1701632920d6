"""One submission's probe server, from its start (while the notebook still runs) to its stop.

    run = ProbeRun(statements, mode=..., data_dir=..., limits=...)
    run.start()                      # a sandboxed server executes the notebook's definitions meanwhile
    ... the notebook runs, its kernel exports the trained models ...
    outcome = run.finish(workdir, seed, context_for)   # load the models, run every probe, stop the server

The server runs in its own sandbox (sandbox.build_command, like the kernel's runner) as a fresh unprivileged uid,
with an empty private folder: it sees neither the submission's folder nor anything the kernel left behind, and the
kernel never sees it. Everything it is sent is in the pipe: no input is written to disk.
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

from autograder.execution import sandbox
from autograder.execution.limits import Limits
from autograder.probing import client, definitions, probes
from autograder.probing.exported import read_export

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
CONTRACT_NAMES = ("FF", "Autoencoder", "VAEEncoder", "VAEDecoder", "VAE", "reparameterize", "kl_divergence",
                  "bernoulli_vae_loss", "gaussian_vae_loss", "pca_encode", "pca_generate", "pca_reconstruct")


@dataclass
class ProbeOutcome:
    probes: dict = field(default_factory=dict)        # probe name -> {"ok", "value" | "error"}
    inputs: dict = field(default_factory=dict)        # probe name -> what the grader drew for it
    findings: list = field(default_factory=list)      # integrity findings (channel, tampering)
    notes: list = field(default_factory=list)         # for the feedback (what could not be probed and why)
    names: dict = field(default_factory=dict)         # contract name -> defined
    server_log: str = ""


def server_env(limits: Limits, token: str, tmp: str) -> dict:
    threads = str(max(1, limits.threads))
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": tmp, "TMPDIR": tmp, "LANG": "C.UTF-8",
            "MPLBACKEND": "Agg", "MPLCONFIGDIR": f"{tmp}/matplotlib", "PYTHONHASHSEED": "0",
            "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads,
            "OPENBLAS_NUM_THREADS": threads, "LABGRADER_RUN": token}


class ProbeRun:
    def __init__(self, cells: list[tuple[int, str]], *, mode: str, data_dir: Path | None, limits: Limits,
                 venv: Path):
        """`cells`: (cell number, source) of the notebook's code cells as graded, overrides included."""
        self.cells = cells
        self.statements = definitions.extract(cells)
        self.mode, self.data_dir, self.limits, self.venv = mode, data_dir, limits, venv
        self.server: client.ProbeServer | None = None
        self.defined: dict = {}
        self.error = ""
        self.token = secrets.token_hex(16)
        self._folder = Path(tempfile.mkdtemp(prefix="labgrader-probe-"))
        self._thread = threading.Thread(target=self._start, name="probe-server", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _start(self) -> None:
        try:
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
            command, _ = sandbox.build_command(argv, workdir=workdir, data_dir=self.data_dir, venv=self.venv,
                                               mode=self.mode, limits=self.limits, runner_dir=code, uid=uid)
            self.server = client.spawn(command, server_env(self.limits, self.token, paths.tmp))
            self.defined = self.server.request("define", {"statements": [s.to_wire() for s in self.statements],
                                                          "names": list(CONTRACT_NAMES)})
        except (client.ProbeChannelError, OSError, ValueError, RuntimeError) as error:
            self.error = f"the probe server could not start ({error})"

    def finish(self, workdir: Path, seed: int, context_for) -> ProbeOutcome:
        """Load the exported models, run every probe, stop the server. `context_for(exported, loaded)` builds the
        probes' Context. Never raises for what the submission does."""
        self._thread.join(timeout=client.START_TIMEOUT_S)
        outcome = ProbeOutcome()
        exported = read_export(workdir)
        outcome.notes += exported.problems
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
        try:
            outcome.probes, outcome.inputs = probes.run_all(server, context_for(exported, loaded), seed)
        finally:
            self.stop()
        if self.server is not None:
            outcome.findings += self.server.findings
            outcome.findings += [f"the notebook's definitions changed the probe process's {what}; its answers were "
                                 "not trusted" for what in self.server.tamper]
            outcome.server_log = self.server.stderr_tail
        return outcome

    def stop(self) -> None:
        try:
            if self.server is not None:
                self.server.stop()
                sandbox.kill_run(self.server.process, self.token)
        finally:
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
