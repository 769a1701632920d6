"""The probes, each declared once: its name, the student's names it exercises, the inputs the grader draws for it and
what it asks the probe server (calls.py). A probe's value is plain data for the checks (autograder/checks/).

Inputs are drawn from a per-submission seed (the class secret and the notebook's content), one random stream per
probe, when the probe runs; they exist only in the grader's process and in the message that carries them to the
server. The server returns raw outputs; everything derived from them (the ELBO, the Jacobian, which figure tile is
which decoder output) is computed here, by the grader.

Adding a probe: one `Probe(...)` entry in PROBES (and, if it needs the server to do something new, one function in
calls.py); a check reads `artefacts["probes"][name]`.
"""
from __future__ import annotations

import numpy as np

from autograder.probing import model_probes as models
from autograder.probing.session import PIXELS, Context, Probe, ProbeFailed, Session, rounded

ENCODER_SPECS = ((784, 2, 1), (784, 2, 7), (784, 5, 16))          # (dim_input, dim_latent, batch)
DECODER_SPECS = ((784, 2, 3), (784, 5, 8))                          # (dim_output, dim_latent, batch)
KL_BATCH, KL_LATENT = 6, 2
LOSS_BATCH, LOSS_LATENT = 4, 2
REPARAMETERIZE_LATENT, REPARAMETERIZE_SAMPLES = 2, 20000
PCA_ROWS, PCA_DIMS, PCA_K, PCA_COORDINATE_ROWS = 200, 30, 5, 3
CHANGED = 1e-6                     # outputs further apart than this "changed"


def _seeds(rng) -> list[int]:
    return [int(rng.integers(0, 2 ** 31 - 1)) for _ in range(2)]


def draw_encoder(rng, context):
    return {"cases": [{"dim_input": i, "dim_latent": k, "batch": b, "x": rounded(rng.uniform(0, 1, (b, i))),
                       "init_seeds": _seeds(rng)} for i, k, b in ENCODER_SPECS]}


def _varies(array: np.ndarray) -> bool | None:
    """Whether rows differ; None when the output is not finite (its own problem, said by the check)."""
    if not np.all(np.isfinite(array)):
        return None
    return array.ndim >= 1 and len(array) > 1 and float(np.max(np.ptp(array.reshape(len(array), -1), axis=0))) > CHANGED


def _differs(a: np.ndarray, b: np.ndarray) -> bool | None:
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return None
    return a.shape == b.shape and float(np.max(np.abs(a - b), initial=0.0)) > CHANGED


def run_encoder(session, inputs, context):
    answers = session("encoder", cases=[{k: case[k] for k in ("dim_input", "dim_latent", "x", "init_seeds")}
                                        for case in inputs["cases"]])
    results = []
    for case, (first, second) in zip(inputs["cases"], answers):
        mu, lss = np.asarray(first["mu"]), np.asarray(first["log_sigma_squared"])
        results.append({
            "dim_latent": case["dim_latent"], "batch": case["batch"], "mu_shape": list(mu.shape),
            "log_sigma_squared_shape": list(lss.shape),
            "depends_on_input": _either(_varies(mu), _varies(lss)) if case["batch"] > 1 else None,
            "depends_on_weights": _either(_differs(mu, np.asarray(second["mu"])),
                                          _differs(lss, np.asarray(second["log_sigma_squared"]))),
            "heads_differ": not (mu.shape == lss.shape and np.allclose(mu, lss)),
            "parameters": first["parameters"], "parameters_with_gradient": first["parameters_with_gradient"]})
    return results


def _either(a: bool | None, b: bool | None) -> bool | None:
    return None if a is None and b is None else bool(a or b)


def draw_decoder(rng, context):
    return {"cases": [{"dim_output": o, "dim_latent": k, "batch": b, "z": rounded(rng.normal(0, 1, (b, k))),
                       "init_seeds": _seeds(rng)} for o, k, b in DECODER_SPECS]}


def run_decoder(session, inputs, context):
    answers = session("decoder", cases=[{k: case[k] for k in ("dim_output", "dim_latent", "z", "init_seeds")}
                                        for case in inputs["cases"]])
    results = []
    for case, (first, second) in zip(inputs["cases"], answers):
        output = np.asarray(first["output"], np.float64)
        finite = output.size > 0 and bool(np.all(np.isfinite(output)))
        results.append({
            "dim_latent": case["dim_latent"], "batch": case["batch"], "shape": list(output.shape),
            "min": float(output.min()) if finite else None, "max": float(output.max()) if finite else None,
            "depends_on_input": _varies(output), "depends_on_weights": _differs(output, np.asarray(second["output"])),
            "parameters": first["parameters"], "parameters_with_gradient": first["parameters_with_gradient"]})
    return results


# --- small functions ------------------------------------------------------------------------------------------------

def draw_kl(rng, context):
    return {"mu": rounded(rng.normal(0.0, 1.0, (KL_BATCH, KL_LATENT))),
            "log_sigma_squared": rounded(rng.uniform(-2.0, 1.0, (KL_BATCH, KL_LATENT)))}


def draw_loss(rng, context):
    # x looks like MNIST: mostly 0 or near 1, some grey; reconstructions strictly inside (0, 1) so BCE is finite.
    x = np.where(rng.random((LOSS_BATCH, PIXELS)) < 0.8, 0.0, rng.uniform(0.5, 1.0, (LOSS_BATCH, PIXELS)))
    return {"x": rounded(x), "x_reconstructed": rounded(rng.uniform(0.02, 0.98, (LOSS_BATCH, PIXELS))),
            "mu": rounded(rng.normal(0.0, 1.0, (LOSS_BATCH, LOSS_LATENT))),
            "log_sigma_squared": rounded(rng.uniform(-2.0, 1.0, (LOSS_BATCH, LOSS_LATENT))),
            "variance": float(np.round(rng.uniform(0.03, 0.6), 6))}


def draw_reparameterize(rng, context):
    return {"mu": rounded(rng.uniform(-2.0, 2.0, REPARAMETERIZE_LATENT)),
            "log_sigma_squared": rounded(rng.uniform(-1.5, 1.0, REPARAMETERIZE_LATENT)),
            "n": REPARAMETERIZE_SAMPLES, "seed": int(rng.integers(0, 2 ** 31 - 1))}


def run_reparameterize(session, inputs, context):
    value = session("reparameterize", **inputs)
    samples = np.asarray(value["samples"], np.float64)
    first, second = np.asarray(value["repeat_first"]), np.asarray(value["repeat_second"])
    return {"mean": samples.mean(0).tolist(), "var": samples.var(0, ddof=1).tolist(),
            "grad_mu_nonzero": bool(value["grad_mu_nonzero"]),
            "grad_log_sigma_squared_nonzero": bool(value["grad_log_sigma_squared_nonzero"]),
            "new_draws_each_call": _differs(first, second)}


def draw_pca(rng, context):
    # Anisotropic data with well separated variances, so the principal axes are well defined.
    scales = np.geomspace(5.0, 0.2, PCA_DIMS)
    data = rng.normal(0.0, 1.0, (PCA_ROWS, PCA_DIMS)) * scales
    rotation, _ = np.linalg.qr(rng.normal(size=(PCA_DIMS, PCA_DIMS)))
    data = data @ rotation + rng.uniform(-1.0, 1.0, PCA_DIMS)
    return {"data": rounded(data), "k": PCA_K, "coordinates": rounded(rng.normal(0.0, 1.0, (PCA_COORDINATE_ROWS,
                                                                                            PCA_K)))}


def _call_as_is(call_name):
    def run(session, inputs, context):
        value = session(call_name, **inputs)
        return {key: (item.tolist() if isinstance(item, np.ndarray) else item) for key, item in value.items()}
    return run


# --- what the notebook reported (checked against the models by the checks) ----------------------------------------

def _no_inputs(rng, context):
    return {}


def run_histories(session, inputs, context):
    values = context.reported.get("values") or {}
    errors = {key: text for key, text in (context.reported.get("errors") or {}).items()
              if key in ("ae_histories", "vae_history", "gaussian_vae_history")}
    value = {name: values.get(name) for name in ("ae_histories", "vae_history", "gaussian_vae_history")}
    if errors:
        value["errors"] = errors
    return value


def run_sweep(session, inputs, context):
    values = context.reported.get("values") or {}
    names = context.reported.get("names") or {}
    for name in ("SWEEP_DIMS", "reconstruction_errors"):
        if not names.get(name):
            raise ProbeFailed(f"NameError: {name} is not defined by the notebook")
    if values.get("SWEEP_DIMS") is None:
        raise ProbeFailed("TypeError: SWEEP_DIMS must be a list of latent sizes")
    if not isinstance(values.get("reconstruction_errors"), dict):
        raise ProbeFailed("TypeError: reconstruction_errors must be a dict of lists, {'autoencoder': [...], "
                          "'pca': [...]}")
    return {"SWEEP_DIMS": values["SWEEP_DIMS"], "reconstruction_errors": values["reconstruction_errors"]}


# --- the trained models ---------------------------------------------------------------------------------------------

def run_pca_sweep(session, inputs, context):
    """The held-out mean squared error of PCA with k components, for every k of the sweep, computed by the grader on
    the data the parameters cell names (the first N_TRAIN training images for the fit, the first N_TEST test images
    for the error): what the notebook's PCA line should show."""
    values = context.reported.get("values") or {}
    dims = values.get("SWEEP_DIMS") or context.profile.get("SWEEP_DIMS") or []
    dims = [int(d) for d in dims if isinstance(d, (int, float)) and 1 <= d <= PIXELS][:100]
    if not dims:
        raise ProbeFailed("SWEEP_DIMS holds no latent size")
    n_train = int(context.profile.get("N_TRAIN") or 60000)
    n_test = int(context.profile.get("N_TEST") or 10000)
    errors = context.data.pca_errors(n_train, n_test, max(dims))
    return {"SWEEP_DIMS": dims, "pca": [float(errors[d - 1]) for d in dims],
            "mean_image": context.data.mean_image_error(n_train, n_test)}


PROBES = (
    Probe("encoder_shapes", ("VAEEncoder",), draw_encoder, run_encoder),
    Probe("decoder_output", ("VAEDecoder",), draw_decoder, run_decoder),
    Probe("kl", ("kl_divergence",), draw_kl, _call_as_is("kl")),
    Probe("loss", ("bernoulli_vae_loss", "gaussian_vae_loss"), draw_loss, _call_as_is("losses")),
    Probe("reparameterize", ("reparameterize",), draw_reparameterize, run_reparameterize),
    Probe("pca", ("pca_encode", "pca_reconstruct", "pca_generate"), draw_pca, _call_as_is("pca")),
    Probe("histories", ("ae_histories", "vae_history", "gaussian_vae_history"), _no_inputs, run_histories,
          needs_server=False),
    Probe("sweep", ("SWEEP_DIMS", "reconstruction_errors"), _no_inputs, run_sweep, needs_server=False),
    Probe("pca_sweep", ("reconstruction_errors",), _no_inputs, run_pca_sweep, needs_server=False),
    Probe("vae_decode", ("vae",), models.draw_vae_decode, models.run_vae_decode),
    Probe("vae_model", ("vae",), models.draw_model, models.run_vae_model),
    Probe("gaussian_vae_model", ("gaussian_vae",), models.draw_model, models.run_gaussian_vae_model),
    Probe("ae_models", ("ae_models",), models.draw_model, models.run_ae_models),
    Probe("pca_figures", ("pca_encode", "pca_generate"), models.draw_pca_figures, models.run_pca_figures,
          needs_server=False),
)
PROBE_NAMES = {probe.name: " / ".join(probe.student_names) for probe in PROBES}


def run_all(server, context: Context, seed: int) -> tuple[dict, dict]:
    """({probe name: {"ok": True, "value": ...} | {"ok": False, "error": ...}}, {probe name: inputs}). Never
    raises for what the notebook does."""
    session = Session(server)
    answers, drawn = {}, {}
    for number, probe in enumerate(PROBES):
        rng = np.random.default_rng([seed, number])
        inputs = probe.draw(rng, context)
        drawn[probe.name] = inputs
        if probe.needs_server and server is None:
            answers[probe.name] = {"ok": False, "error": "NotRun: the probe server did not start"}
            continue
        try:
            answers[probe.name] = {"ok": True, "value": probe.run(session, inputs, context)}
        except ProbeFailed as failed:
            answers[probe.name] = {"ok": False, "error": str(failed)[:500]}
    return answers, drawn
