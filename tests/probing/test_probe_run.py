"""The probe stage end to end on fixture notebooks: the notebook runs sandboxed and exports its models; a fresh
sandboxed process runs its definitions and answers the grader's calls on inputs drawn for them."""
from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pytest

from autograder.execution.limits import GiB, Limits
from autograder.execution.run import execute_submission, venv
from autograder.probing.probe_run import ProbeRun

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "tests" / "fixtures" / "notebooks"
LIMITS = Limits(cell_timeout_s=30, notebook_timeout_s=90, export_timeout_s=20, export_reserve_s=20,
                interrupt_grace_s=2, startup_grace_s=60, memory_bytes=3 * GiB)
SEED = 7


def probe(name: str, tmp_path: Path, overrides: dict | None = None):
    prober = ProbeRun(data_dir=ROOT / "data_cache", limits=LIMITS, venv=venv())
    workdir = tmp_path / f"work-{uuid.uuid4().hex[:8]}"
    try:
        result = execute_submission(NOTEBOOKS / name, workdir, overrides=overrides or {}, data_dir=ROOT / "data_cache",
                                    limits=LIMITS, sandbox="auto", before_run=prober.start)
        outcome = prober.finish(workdir, SEED, overrides or {}, result.artefacts["figures"])
    finally:
        prober.stop()
    return result, outcome


def _kl(mu, log_sigma_squared):
    return float(np.mean(-0.5 * np.sum(1 + log_sigma_squared - mu ** 2 - np.exp(log_sigma_squared), axis=1)))


@pytest.fixture(scope="module")
def correct(tmp_path_factory):
    return probe("defines_contract_names.ipynb", tmp_path_factory.mktemp("probes"), {"SWEEP_DIMS": [2, 3, 4]})


def test_probes_on_a_correct_implementation_return_the_right_values(correct):
    result, outcome = correct
    assert result.status == "ok", result.reason
    assert result.layout.parameters_cell == 1, "the untagged parameters cell must be found by its content"
    probes, inputs = outcome.probes, outcome.inputs
    assert outcome.findings == [], outcome.findings
    assert outcome.names["VAE"] and outcome.names["kl_divergence"] and outcome.names["vae"]
    assert outcome.names["ae_models"] is False

    shapes = probes["encoder_shapes"]["value"]
    assert [shape["mu_shape"] for shape in shapes] == [[1, 2], [7, 2], [16, 5]]
    assert all(case["depends_on_weights"] and case["heads_differ"] and case["parameters_with_gradient"] > 0
               for case in shapes)
    assert shapes[1]["depends_on_input"] is True and shapes[0]["depends_on_input"] is None
    for decoded, spec in zip(probes["decoder_output"]["value"], inputs["decoder_output"]["cases"]):
        assert decoded["shape"] == [spec["batch"], spec["dim_output"]] and 0 <= decoded["min"] <= decoded["max"] <= 1

    mu, lss = np.array(inputs["kl"]["mu"]), np.array(inputs["kl"]["log_sigma_squared"])
    kl = probes["kl"]["value"]
    assert kl["batch"] == pytest.approx(_kl(mu, lss), rel=1e-5)
    assert kl["batch_doubled"] == pytest.approx(kl["batch"], rel=1e-6)
    assert kl["single"] == pytest.approx([_kl(mu[i:i + 1], lss[i:i + 1]) for i in range(len(mu))], rel=1e-5)

    loss = inputs["loss"]
    x, xr = np.array(loss["x"]), np.array(loss["x_reconstructed"])
    kl_loss = _kl(np.array(loss["mu"]), np.array(loss["log_sigma_squared"]))
    bce = -np.sum(x * np.log(xr) + (1 - x) * np.log(1 - xr), axis=1).mean()
    assert probes["loss"]["value"]["bernoulli"] == pytest.approx(bce + kl_loss, rel=1e-4)
    assert probes["loss"]["value"]["bernoulli_doubled"] == pytest.approx(bce + kl_loss, rel=1e-4)
    assert probes["loss"]["value"]["gaussian"] == pytest.approx(0.5 * np.sum((x - xr) ** 2, axis=1).mean() + kl_loss,
                                                                rel=1e-4)
    # the fixture's gaussian_vae_loss has no `variance` argument: the second call fails, and says why
    assert "variance" in probes["loss"]["value"]["errors"]["gaussian"]

    reparameterized = probes["reparameterize"]["value"]
    assert reparameterized["mean"] == pytest.approx(inputs["reparameterize"]["mu"], abs=0.05)
    assert reparameterized["var"] == pytest.approx(np.exp(inputs["reparameterize"]["log_sigma_squared"]), rel=0.05)
    assert reparameterized["grad_mu_nonzero"] and reparameterized["grad_log_sigma_squared_nonzero"]
    assert reparameterized["new_draws_each_call"] is True

    from sklearn.decomposition import PCA
    data = np.array(inputs["pca"]["data"])
    pca = PCA(n_components=inputs["pca"]["k"], svd_solver="full").fit(data)
    value = probes["pca"]["value"]
    assert np.allclose(value["reconstruct"], pca.inverse_transform(pca.transform(data)), atol=1e-6)
    assert np.allclose(np.abs(value["encode"]), np.abs(pca.transform(data)), atol=1e-6)
    assert np.array(value["generate"]).shape == (3, data.shape[1])

    histories = probes["histories"]["value"]
    assert histories["vae_history"] == [210.0, 180.5, 170.25]
    assert histories["ae_histories"][0] == pytest.approx([0.3, 0.2, 0.1])
    assert probes["sweep"]["value"]["SWEEP_DIMS"] == [2, 3, 4], "the grader's override must win"
    assert probes["sweep"]["value"]["reconstruction_errors"]["pca"] == pytest.approx([0.03, 0.02, 0.015])


def test_the_grader_measures_the_exported_models_itself(correct):
    _, outcome = correct
    model = outcome.probes["vae_model"]["value"]
    # the fixture's vae is untrained: the grader's negative ELBO says so, whatever the notebook reported
    assert model["nelbo_train"] == pytest.approx(model["nelbo_untrained"], rel=0.1)
    assert model["nelbo_train"] > 400 and model["latent_dims"] == 2
    assert model["decoder_reinit_change"] > 0.01 and model["decoder_parameters_with_gradient"] > 0
    assert np.asarray(model["encodings"]["centroids"]).shape == (10, 2)
    assert outcome.probes["vae_decode"]["value"]["prior"].shape == (100, 784)
    assert outcome.probes["pca_sweep"]["value"]["SWEEP_DIMS"] == [2, 3, 4]
    assert outcome.probes["ae_models"]["ok"] is False        # the fixture keeps no ae_models


def test_probes_on_missing_or_broken_names_are_errors_as_values(tmp_path):
    result, outcome = probe("lacks_contract_names.ipynb", tmp_path)
    assert result.status == "ok", result.reason
    probes = outcome.probes
    assert probes["kl"] == {"ok": False, "error": "NotImplementedError: TODO"}
    assert probes["encoder_shapes"]["error"].startswith("VAEEncoder is not defined")
    assert probes["pca"]["ok"] is True
    assert probes["pca"]["value"]["encode"] is not None and probes["pca"]["value"]["generate"] is None
    assert "pca_generate" in probes["pca"]["value"]["errors"]["generate"]
    assert outcome.names["kl_divergence"] is True and outcome.names["VAE"] is False
    assert probes["sweep"]["error"] == "NameError: reconstruction_errors is not defined by the notebook"
    assert "vae" in probes["vae_model"]["error"]


def test_a_stopped_probe_server_releases_the_worker_within_30_s(tmp_path):
    """Issue 16: a probe server that stops itself (only there: the kernel's MPLBACKEND differs) is noticed within
    seconds, not at the 90 s start timeout or the per-call limits."""
    import time

    import nbformat
    from nbformat import v4

    notebook = v4.new_notebook()
    notebook.cells = [v4.new_code_cell('SEED = 0\nDATA_DIR = "data_cache"\nDEVICE = "auto"\n'),
                      v4.new_code_cell("import os, signal\n_stop = os.kill(os.getpid(), signal.SIGSTOP) "
                                       "if os.environ.get('MPLBACKEND') == 'Agg' else None\n")]
    path = tmp_path / "stops_in_the_server.ipynb"
    nbformat.write(notebook, path)
    prober = ProbeRun(data_dir=ROOT / "data_cache", limits=LIMITS, venv=venv())
    try:
        result = execute_submission(path, tmp_path / "work", overrides={}, data_dir=ROOT / "data_cache",
                                    limits=LIMITS, sandbox="auto", before_run=prober.start)
        started = time.monotonic()
        outcome = prober.finish(tmp_path / "work", SEED, {}, result.artefacts["figures"])
        waited = time.monotonic() - started
    finally:
        prober.stop()
    assert result.status == "ok", result.reason
    assert waited < 30, f"the worker waited {waited:.0f} s for a stopped probe server"
    assert any("stalled" in note or "stopped" in note for note in outcome.notes), outcome.notes
