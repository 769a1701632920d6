"""The probe server, run as its own process: definitions, rebuilt models, calls, and what it notices."""
import sys
from pathlib import Path

import numpy as np
import pytest

from autograder.probing import client, wire
from autograder.probing.definitions import extract

SERVER = Path(__file__).resolve().parents[2] / "autograder" / "probing" / "server.py"

KL = ("import torch\n"
      "def kl_divergence(mu, log_sigma_squared):\n"
      "    return (-0.5 * torch.sum(1 + log_sigma_squared - mu ** 2 - log_sigma_squared.exp(), dim=1)).mean()\n")
MODEL = ("from torch import nn\n"
         "class Tiny(nn.Module):\n"
         "    def __init__(self, dim_input, dim_latent):\n"
         "        super().__init__()\n"
         "        self.encoder = nn.Linear(dim_input, dim_latent)\n"
         "        self.decoder = nn.Sequential(nn.Linear(dim_latent, dim_input), nn.Sigmoid())\n")


def start(*cells: str) -> client.ProbeServer:
    server = client.spawn([sys.executable, "-I", str(SERVER)], {"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"})
    server.defined = server.request("define", {"statements": [s.to_wire() for s in extract(list(enumerate(cells, 1)))],
                                               "names": ["kl_divergence", "Tiny"]})
    return server


@pytest.fixture
def kl_inputs():
    rng = np.random.default_rng(0)
    return {"mu": rng.normal(size=(4, 2)), "log_sigma_squared": rng.uniform(-1, 1, (4, 2))}


def expected_kl(mu, log_sigma_squared):
    return -0.5 * np.sum(1 + log_sigma_squared - mu ** 2 - np.exp(log_sigma_squared), axis=1)


def test_a_call_answers_with_plain_values(kl_inputs):
    server = start(KL)
    try:
        assert server.defined["defined"] == {"kl_divergence": True, "Tiny": False}
        answer = server.call("kl", kl_inputs)
        assert answer.ok, answer.error
        assert np.allclose(answer.value["single"], expected_kl(**kl_inputs), rtol=1e-5)
        assert server.findings == [] and server.tamper == []
    finally:
        server.stop()


def test_printing_definitions_do_not_reach_the_channel(kl_inputs):
    server = start("print('hello ' * 1000)\nimport sys\nsys.stdout.write('x' * 100)\n" + KL)
    try:
        assert server.call("kl", kl_inputs).ok and server.findings == []
    finally:
        server.stop()


def test_hooks_installed_by_definitions_are_reported():
    server = start("import sys\ndef tracer(*args):\n    return None\n\nHOOK = sys.settrace(tracer)\n" + KL)
    try:
        assert "changed trace function" in server.tamper
    finally:
        server.stop()


def test_a_forged_frame_on_the_channel_voids_the_call_and_is_flagged(kl_inputs):
    forger = (KL.replace("def kl_divergence", "def honest_kl") +
              "import os, json, struct\n"
              "def kl_divergence(mu, log_sigma_squared):\n"
              "    body = json.dumps({'id': 'forged', 'ok': True, 'value': {'single': [0.0]}}).encode()\n"
              "    for fd in range(3, 12):\n"
              "        try:\n"
              "            os.write(fd, struct.pack('>I', len(body)) + body)\n"
              "        except OSError:\n"
              "            pass\n"
              "    return honest_kl(mu, log_sigma_squared)\n")
    server = start(forger)
    try:
        answer = server.call("kl", kl_inputs)
        assert not answer.ok and "IntegrityError" in answer.error
        assert server.findings and "did not belong" in server.findings[0]
        assert not server.call("kl", kl_inputs).ok      # the channel is no longer trusted
    finally:
        server.stop()


def test_models_are_rebuilt_from_the_notebooks_class_and_exported_weights():
    import torch
    torch.manual_seed(3)
    namespace = {}
    exec(MODEL, namespace)
    trained = namespace["Tiny"](6, 2)
    weights = {key: value.detach().numpy() for key, value in trained.state_dict().items()}
    server = start(MODEL)
    try:
        loaded = server.request("load", {"models": {"vae": {"class": "Tiny", "constructor": None, "sizes": [6, 2]}},
                                         "weights": {"vae": weights}})
        assert loaded["models"]["vae"] == {"ok": True, "built_as": "Tiny(6, 2)"}
        z = np.random.default_rng(1).normal(size=(5, 2))
        decoded = server.call("decode", {"model": "vae", "z": z})
        with torch.no_grad():
            expected = trained.decoder(torch.tensor(z, dtype=torch.float32)).numpy()
        assert decoded.ok and np.allclose(decoded.value["images"], expected, atol=1e-6)
        fresh = server.call("decode", {"model": "vae", "z": z, "variant": "fresh", "seed": 11})
        assert fresh.ok and not np.allclose(fresh.value["images"], expected)
    finally:
        server.stop()


def test_the_server_stops_a_hanging_statement_and_answers():
    server = client.spawn([sys.executable, "-I", str(SERVER)], {"PATH": "/usr/bin:/bin"})
    try:
        reply = server.request("define", {"statements": [{"cell": 1, "line": 1, "source": "while True:\n    pass\n"},
                                                         {"cell": 2, "line": 1, "source": "X = 1\n"}],
                                          "names": ["X"]}, timeout=30)
        assert reply["defined"] == {"X": True}
        assert "time limit" in reply["failed_statements"][0]["error"]
    finally:
        server.stop()


def test_frames_are_plain_data_only():
    with pytest.raises(TypeError):
        wire.dumps({"call": object()})
