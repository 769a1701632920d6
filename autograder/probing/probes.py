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

from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any, Callable

import numpy as np

from autograder.probing import measures
from autograder.probing.reference_data import ReferenceData

PIXELS = 784
ENCODER_SPECS = ((784, 2, 1), (784, 2, 7), (784, 5, 16))          # (dim_input, dim_latent, batch)
DECODER_SPECS = ((784, 2, 3), (784, 5, 8))                          # (dim_output, dim_latent, batch)
KL_BATCH, KL_LATENT = 6, 2
LOSS_BATCH, LOSS_LATENT = 4, 2
REPARAMETERIZE_LATENT, REPARAMETERIZE_SAMPLES = 2, 20000
PCA_ROWS, PCA_DIMS, PCA_K, PCA_COORDINATE_ROWS = 200, 30, 5, 3
GRID_SIDE, PRIOR_SAMPLES = 15, 100
EVAL_PER_CLASS = 50                # images per digit for the model measurements (500 in all)
JACOBIAN_POINTS, JACOBIAN_STEP = 50, 0.05
MESH_SIDE, REFINE_STEPS, REFINE_ABOVE = 64, 7, 0.02     # refine tiles fitted worse than 2 % of their spread
PRIOR_BOX = 3.0                    # the dense mesh always covers [-3, 3]^2 besides the encodings
CHANGED = 1e-6                     # outputs further apart than this "changed"


class ProbeFailed(Exception):
    """The notebook's code failed on the grader's inputs, or the server could not answer; message for students."""


@dataclass
class Context:
    """What a probe may use besides the server."""
    data: ReferenceData
    profile: dict
    reported: dict                        # the export's report (names, values, models, errors)
    models: dict                          # server's load report: name -> {"ok", "built_as" | "error"}
    figure_grids: list = field(default_factory=list)   # [(figure index, kind, tiles (rows, cols, 784) in [0, 1])]


class Session:
    def __init__(self, server):
        self.server = server

    def __call__(self, name: str, **args) -> Any:
        result = self.server.call(name, args)
        if not result.ok:
            raise ProbeFailed(result.error)
        return result.value


@dataclass(frozen=True)
class Probe:
    name: str
    student_names: tuple[str, ...]          # for messages
    draw: Callable[[np.random.Generator, Context], dict]
    run: Callable[[Session, dict, Context], Any]
    needs_server: bool = True


def _rounded(array) -> np.ndarray:
    return np.round(np.asarray(array, np.float64), 6)


# --- the contract's classes, built fresh ----------------------------------------------------------------------------

def _seeds(rng) -> list[int]:
    return [int(rng.integers(0, 2 ** 31 - 1)) for _ in range(2)]


def draw_encoder(rng, context):
    return {"cases": [{"dim_input": i, "dim_latent": k, "batch": b, "x": _rounded(rng.uniform(0, 1, (b, i))),
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
    return {"cases": [{"dim_output": o, "dim_latent": k, "batch": b, "z": _rounded(rng.normal(0, 1, (b, k))),
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
    return {"mu": _rounded(rng.normal(0.0, 1.0, (KL_BATCH, KL_LATENT))),
            "log_sigma_squared": _rounded(rng.uniform(-2.0, 1.0, (KL_BATCH, KL_LATENT)))}


def draw_loss(rng, context):
    # x looks like MNIST: mostly 0 or near 1, some grey; reconstructions strictly inside (0, 1) so BCE is finite.
    x = np.where(rng.random((LOSS_BATCH, PIXELS)) < 0.8, 0.0, rng.uniform(0.5, 1.0, (LOSS_BATCH, PIXELS)))
    return {"x": _rounded(x), "x_reconstructed": _rounded(rng.uniform(0.02, 0.98, (LOSS_BATCH, PIXELS))),
            "mu": _rounded(rng.normal(0.0, 1.0, (LOSS_BATCH, LOSS_LATENT))),
            "log_sigma_squared": _rounded(rng.uniform(-2.0, 1.0, (LOSS_BATCH, LOSS_LATENT))),
            "variance": float(np.round(rng.uniform(0.03, 0.6), 6))}


def draw_reparameterize(rng, context):
    return {"mu": _rounded(rng.uniform(-2.0, 2.0, REPARAMETERIZE_LATENT)),
            "log_sigma_squared": _rounded(rng.uniform(-1.5, 1.0, REPARAMETERIZE_LATENT)),
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
    return {"data": _rounded(data), "k": PCA_K, "coordinates": _rounded(rng.normal(0.0, 1.0, (PCA_COORDINATE_ROWS,
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

def _require(context, name: str) -> None:
    loaded = context.models.get(name)
    if loaded is None:
        error = (context.reported.get("errors") or {}).get(name)
        raise ProbeFailed(f"{name} is not a trained torch model at the end of the notebook"
                          + (f" ({error})" if error else " (not defined)"))
    if not loaded.get("ok"):
        raise ProbeFailed(loaded.get("error") or f"{name} could not be rebuilt")


def draw_vae_decode(rng, context):
    quantiles = np.array([NormalDist().inv_cdf(p) for p in np.linspace(0.05, 0.95, GRID_SIDE)])
    z_1, z_2 = np.meshgrid(quantiles, quantiles[::-1])
    grid = np.stack([z_1.ravel(), z_2.ravel()], axis=1) + rng.uniform(-0.05, 0.05, 2)
    return {"grid": _rounded(grid), "prior": _rounded(rng.normal(0.0, 1.0, (PRIOR_SAMPLES, 2)))}


def run_vae_decode(session, inputs, context):
    _require(context, "vae")
    return {key: session("decode", model="vae", z=inputs[key], as_uint8=True)["images"] for key in ("grid", "prior")}


def draw_model(rng, context):
    x_train, y_train = context.data.stratified(rng, "train", EVAL_PER_CLASS)
    x_test, y_test = context.data.stratified(rng, "test", EVAL_PER_CLASS)
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test,
            "eps_train": rng.normal(size=(len(x_train), 64)), "eps_test": rng.normal(size=(len(x_test), 64)),
            "fresh_seed": int(rng.integers(0, 2 ** 31 - 1)), "prior": rng.normal(size=(PRIOR_SAMPLES, 64)),
            "jacobian_at": rng.normal(size=(JACOBIAN_POINTS, 64))}


def _evaluate(session, model: str, x, eps, variant: str = "trained", seed: int = 0) -> dict:
    """Encode x, draw z = mu + eps * sigma with the grader's eps, decode: per-image reconstruction terms and KL."""
    encoded = session("encode", model=model, x=x, variant=variant, seed=seed)
    mu, lss = np.asarray(encoded["mu"], np.float64), np.asarray(encoded["log_sigma_squared"], np.float64)
    if mu.ndim != 2 or mu.shape != lss.shape or len(mu) != len(x):
        raise ProbeFailed(f"{model}.encoder returned mu of shape {list(mu.shape)} and log_sigma_squared of shape "
                          f"{list(lss.shape)} for {len(x)} images")
    k = mu.shape[1]
    if k > eps.shape[1]:
        raise ProbeFailed(f"{model} has a {k}-dimensional latent space; the grader handles at most {eps.shape[1]}")
    with np.errstate(over="ignore", invalid="ignore"):
        z = mu + eps[:, :k] * np.exp(0.5 * lss)
    decoded = np.asarray(session("decode", model=model, z=z, variant=variant, seed=seed)["images"], np.float64)
    if decoded.shape != (len(x), PIXELS):
        raise ProbeFailed(f"{model}.decoder returned shape {list(decoded.shape)} for {len(x)} points; expected "
                          f"({len(x)}, {PIXELS})")
    return {"mu": mu, "log_sigma_squared": lss, "z": z, "kl": measures.kl_rows(mu, lss),
            "bce": measures.bce_rows(x, decoded), "squared_error": measures.squared_error_rows(x, decoded)}


def _mean(values) -> float | None:
    return measures.finite_mean(values)


def _within_class_rms(points: np.ndarray, labels: np.ndarray, centroids: np.ndarray) -> float:
    return float(np.sqrt(np.mean([np.mean((points[labels == d] - centroids[d]) ** 2) for d in range(10)])))


def _encodings_summary(mu: np.ndarray, z: np.ndarray, labels: np.ndarray) -> dict:
    """Where the encoder puts each digit: per-digit centroids of mu, how far images of a digit lie from their
    centroid (for mu, and for z = mu + eps * sigma, which the scatter of the seed shows), and the boxes holding 90 %
    and 99 % of the means."""
    centroids = np.stack([mu[labels == digit].mean(0) for digit in range(10)])
    return {"dims": int(mu.shape[1]), "centroids": centroids.tolist(),
            "within_class_rms": _within_class_rms(mu, labels, centroids),
            "within_class_rms_z": _within_class_rms(z, labels, centroids),
            "box_90": [np.percentile(mu, 5, 0).tolist(), np.percentile(mu, 95, 0).tolist()],
            "box_99": [np.percentile(mu, 0.5, 0).tolist(), np.percentile(mu, 99.5, 0).tolist()]}


def _match_grids(session, grids: list, box_99) -> list[dict]:
    """Each figure grid's tiles against the decoder: the best z for every tile on a dense mesh over the encodings
    and the prior's range, refined around the best point; the residual of the best affine fit relative to the
    tile's spread (measures.tile_residuals)."""
    if not grids:
        return []
    low = np.minimum(np.asarray(box_99[0]) - 0.5, -PRIOR_BOX)
    high = np.maximum(np.asarray(box_99[1]) + 0.5, PRIOR_BOX)
    axis_1, axis_2 = np.linspace(low[0], high[0], MESH_SIDE), np.linspace(low[1], high[1], MESH_SIDE)
    m_1, m_2 = np.meshgrid(axis_1, axis_2)
    mesh = np.stack([m_1.ravel(), m_2.ravel()], axis=1)
    dense = np.asarray(session("decode", model="vae", z=mesh, as_uint8=True)["images"], np.float32) / 255.0
    spacing = float(max(axis_1[1] - axis_1[0], axis_2[1] - axis_2[0]))
    results = []
    all_tiles = [(index, np.asarray(tiles, np.float32).reshape(-1, PIXELS)) for index, (_, _, tiles) in
                 enumerate(grids)]
    matches = [measures.tile_residuals(tiles, dense) for _, tiles in all_tiles]
    refine = [(g, t) for g, (_, residual) in enumerate(matches)
              for t in np.flatnonzero(np.isfinite(residual) & (residual > REFINE_ABOVE))]
    refined = {}
    if refine:
        centres = np.stack([mesh[matches[g][0][t]] for g, t in refine])
        local = measures.local_mesh(centres, spacing / (REFINE_STEPS - 1) * 2, REFINE_STEPS)
        decoded = np.asarray(session("decode", model="vae", z=local, as_uint8=True)["images"], np.float32) / 255.0
        per = REFINE_STEPS ** 2
        for n, (g, t) in enumerate(refine):
            index, residual = measures.tile_residuals(all_tiles[g][1][t:t + 1], decoded[n * per:(n + 1) * per])
            refined[(g, t)] = (local[n * per + index[0]], float(residual[0]))
    for g, ((figure, kind, tiles), (index, residual)) in enumerate(zip(grids, matches)):
        z = mesh[index].copy()
        residual = residual.astype(np.float64).copy()
        for t in range(len(residual)):
            if (g, t) in refined and refined[(g, t)][1] < residual[t]:
                z[t], residual[t] = refined[(g, t)]
        rows, cols = np.asarray(tiles).shape[:2]
        results.append({"figure": figure, "kind": kind, "rows": int(rows), "cols": int(cols),
                        "residual": np.round(residual, 5).tolist(), "z": np.round(z, 4).tolist()})
    return results


def run_vae_model(session, inputs, context):
    """The trained Bernoulli VAE, measured by the grader: negative ELBO on grader-drawn training and test images
    (its own formula, one z per image), the same for a freshly initialised copy (what training started from), how
    much the decoder's output depends on its weights and on z, how close its samples come to dataset images, where
    the encoder puts each digit, and which decoder outputs the figures' tiles are."""
    _require(context, "vae")
    train = _evaluate(session, "vae", inputs["x_train"], inputs["eps_train"])
    test = _evaluate(session, "vae", inputs["x_test"], inputs["eps_test"])
    fresh = _evaluate(session, "vae", inputs["x_train"], inputs["eps_train"], "fresh", inputs["fresh_seed"])
    k = train["mu"].shape[1]
    prior = inputs["prior"][:, :k]
    samples = np.asarray(session("decode", model="vae", z=prior)["images"], np.float64)
    fresh_samples = np.asarray(session("decode", model="vae", z=prior, variant="fresh",
                                       seed=inputs["fresh_seed"])["images"], np.float64)
    at = inputs["jacobian_at"][:, :k]
    moved = [np.asarray(session("decode", model="vae", z=at + JACOBIAN_STEP * np.eye(k)[axis])["images"], np.float64)
             for axis in range(k)]
    base = np.asarray(session("decode", model="vae", z=at)["images"], np.float64)
    jacobian = measures.jacobian_norms(base, moved, JACOBIAN_STEP)
    gradients = session("decoder_gradients", model="vae", z=prior)
    copies = context.data.copy_distances(np.clip(np.nan_to_num(samples), 0, 1))
    value = {
        "latent_dims": k,
        "bce_train": _mean(train["bce"]), "kl_train": _mean(train["kl"]),
        "nelbo_train": _mean(train["bce"] + train["kl"]), "nelbo_test": _mean(test["bce"] + test["kl"]),
        "bce_untrained": _mean(fresh["bce"]), "kl_untrained": _mean(fresh["kl"]),
        "nelbo_untrained": _mean(fresh["bce"] + fresh["kl"]),
        "decoder_reinit_change": float(np.mean(np.abs(samples - fresh_samples))),
        "decoder_jacobian_median": float(np.median(jacobian)),
        "decoder_flat_fraction": float(np.mean(jacobian < 1e-3)),
        "decoder_parameters": gradients["parameters"],
        "decoder_parameters_with_gradient": gradients["parameters_with_gradient"],
        "prior_copy_rmse_median": float(np.median(copies)), "prior_copy_rmse_min": float(np.min(copies)),
        "prior_copy_rmse": np.round(copies, 5).tolist(),
        "encodings": _encodings_summary(train["mu"], train["z"], inputs["y_train"]),
    }
    value["figure_grids"] = _match_grids(session, context.figure_grids, value["encodings"]["box_99"]) \
        if k == 2 else []
    return value


def run_gaussian_vae_model(session, inputs, context):
    _require(context, "gaussian_vae")
    train = _evaluate(session, "gaussian_vae", inputs["x_train"], inputs["eps_train"])
    fresh = _evaluate(session, "gaussian_vae", inputs["x_train"], inputs["eps_train"], "fresh", inputs["fresh_seed"])
    return {"squared_error_train": _mean(train["squared_error"]), "kl_train": _mean(train["kl"]),
            "squared_error_untrained": _mean(fresh["squared_error"]), "kl_untrained": _mean(fresh["kl"])}


def run_ae_models(session, inputs, context):
    runs = sorted((name for name in context.models if name.startswith("ae_models.")),
                  key=lambda name: int(name.split(".")[1]))
    if not runs:
        raise ProbeFailed("ae_models (the trained autoencoders of part 1) is not a list of torch models at the end "
                          "of the notebook")
    results = []
    for name in runs:
        if not context.models[name].get("ok"):
            results.append({"error": context.models[name].get("error")})
            continue
        x = inputs["x_train"]
        trained = session("autoencode", model=name, x=x)
        fresh = session("autoencode", model=name, x=x, variant="fresh", seed=inputs["fresh_seed"])
        results.append({"mse_train": float(np.mean((np.asarray(trained["reconstructions"], np.float64) - x) ** 2)),
                        "mse_untrained": float(np.mean((np.asarray(fresh["reconstructions"], np.float64) - x) ** 2))})
    return results


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
    Probe("vae_decode", ("vae",), draw_vae_decode, run_vae_decode),
    Probe("vae_model", ("vae",), draw_model, run_vae_model),
    Probe("gaussian_vae_model", ("gaussian_vae",), draw_model, run_gaussian_vae_model),
    Probe("ae_models", ("ae_models",), draw_model, run_ae_models),
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
