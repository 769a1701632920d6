"""The probes of the trained models: the grader measures them itself from their raw outputs on inputs it draws (the
negative ELBO with its own formula and noise, a fresh copy of the class, finite differences, nearest dataset images,
where the encoder puts each digit) and matches every grid of the student's figures against the decoders (which
decoder output each tile is). Declared in probes.py's catalogue."""
from __future__ import annotations

from statistics import NormalDist

import numpy as np

from autograder.probing import measures
from autograder.probing.session import PIXELS, ProbeFailed, rounded

GRID_SIDE, PRIOR_SAMPLES = 15, 100
EVAL_PER_CLASS = 50                # images per digit for the model measurements (500 in all)
JACOBIAN_POINTS, JACOBIAN_STEP = 50, 0.05
MESH_SIDE, REFINE_STEPS = 64, 7
REFINE_ABOVE, REFINE_BELOW = 0.02, 0.5    # refine tiles fitted worse than 2 % of their spread that may still fit
PRIOR_BOX = 3.0                    # the VAE's mesh always covers [-3, 3]^2 besides the encodings
AE_BOX_MARGIN = 0.25
PCA_PER_CLASS = 1000               # images per digit for where PCA puts each digit (numpy only: cheap)
PCA_SPAN = 6                       # a PCA-generated image lies in the span of the mean and this many components


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
    return {"grid": rounded(grid), "prior": rounded(rng.normal(0.0, 1.0, (PRIOR_SAMPLES, 2)))}


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


def vae_mesh_box(box_99) -> tuple[np.ndarray, np.ndarray]:
    """Where the VAE's figure tiles are looked for: the encodings' 99 % box widened by 0.5 and the prior's range."""
    return (np.minimum(np.asarray(box_99[0], np.float64) - 0.5, -PRIOR_BOX),
            np.maximum(np.asarray(box_99[1], np.float64) + 0.5, PRIOR_BOX))


def ae_mesh_box(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where an autoencoder's figure tiles are looked for: its codes' 99 % box widened by AE_BOX_MARGIN of its width
    on each side (an autoencoder has no prior; a figure decodes a grid over where its codes lie)."""
    low, high = np.percentile(codes, 0.5, 0), np.percentile(codes, 99.5, 0)
    margin = AE_BOX_MARGIN * (high - low)
    return low - margin, high + margin


def match_grids(session, grids: list, low, high, model: str = "vae") -> list[dict]:
    """Each figure grid's tiles against `model`'s decoder (2-D latent): the best z for every tile on a dense mesh
    over the box [low, high], refined around the best point; the residual of the best affine fit relative to the
    tile's spread (measures.tile_residuals)."""
    if not grids:
        return []
    axis_1, axis_2 = np.linspace(low[0], high[0], MESH_SIDE), np.linspace(low[1], high[1], MESH_SIDE)
    m_1, m_2 = np.meshgrid(axis_1, axis_2)
    mesh = np.stack([m_1.ravel(), m_2.ravel()], axis=1)
    dense = np.asarray(session("decode", model=model, z=mesh, as_uint8=True)["images"], np.float32) / 255.0
    spacing = float(max(axis_1[1] - axis_1[0], axis_2[1] - axis_2[0]))
    results = []
    all_tiles = [(index, np.asarray(tiles, np.float32).reshape(-1, PIXELS)) for index, (_, _, tiles) in
                 enumerate(grids)]
    matches = [measures.tile_residuals(tiles, dense) for _, tiles in all_tiles]
    refine = [(g, t) for g, (_, residual) in enumerate(matches)
              for t in np.flatnonzero((residual > REFINE_ABOVE) & (residual < REFINE_BELOW))]
    refined = {}
    if refine:
        centres = np.stack([mesh[matches[g][0][t]] for g, t in refine])
        local = measures.local_mesh(centres, spacing / (REFINE_STEPS - 1) * 2, REFINE_STEPS)
        decoded = np.asarray(session("decode", model=model, z=local, as_uint8=True)["images"], np.float32) / 255.0
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
    value["figure_grids"] = match_grids(session, context.figure_grids, *vae_mesh_box(value["encodings"]["box_99"])) \
        if k == 2 else []
    return value


def run_gaussian_vae_model(session, inputs, context):
    _require(context, "gaussian_vae")
    train = _evaluate(session, "gaussian_vae", inputs["x_train"], inputs["eps_train"])
    fresh = _evaluate(session, "gaussian_vae", inputs["x_train"], inputs["eps_train"], "fresh", inputs["fresh_seed"])
    return {"squared_error_train": _mean(train["squared_error"]), "kl_train": _mean(train["kl"]),
            "squared_error_untrained": _mean(fresh["squared_error"]), "kl_untrained": _mean(fresh["kl"])}


def run_ae_models(session, inputs, context):
    """Each trained autoencoder of part 1, measured by the grader: its reconstruction error on grader-drawn training
    images against a fresh copy's, where its encoder puts each digit, and which of its decoder's outputs the
    figures' tiles are."""
    runs = sorted((name for name in context.models if name.startswith("ae_models.")),
                  key=lambda name: int(name.split(".")[1]))
    if not runs:
        raise ProbeFailed("ae_models (the trained autoencoders of part 1) is not a list of torch models at the end "
                          "of the notebook")
    results = []
    x, labels = inputs["x_train"], inputs["y_train"]
    for name in runs:
        if not context.models[name].get("ok"):
            results.append({"error": context.models[name].get("error")})
            continue
        trained = session("autoencode", model=name, x=x)
        fresh = session("autoencode", model=name, x=x, variant="fresh", seed=inputs["fresh_seed"])
        codes = np.asarray(trained["codes"], np.float64)
        value = {"mse_train": float(np.mean((np.asarray(trained["reconstructions"], np.float64) - x) ** 2)),
                 "mse_untrained": float(np.mean((np.asarray(fresh["reconstructions"], np.float64) - x) ** 2)),
                 "latent_dims": int(codes.shape[1]), "encodings": None, "figure_grids": []}
        if codes.shape[1] == 2 and np.all(np.isfinite(codes)):
            value["encodings"] = _encodings_summary(codes, codes, labels)
            value["figure_grids"] = match_grids(session, context.figure_grids, *ae_mesh_box(codes), model=name)
        results.append(value)
    return results


def draw_pca_figures(rng, context):
    x_train, y_train = context.data.stratified(rng, "train", PCA_PER_CLASS)
    return {"x_train": x_train, "y_train": y_train}


def run_pca_figures(session, inputs, context):
    """The grader's own PCA of the training images the parameters cell names (the first SWEEP_TRAIN, or N_TRAIN):
    where the first two coordinates (equation 1) put each digit, and for every figure grid whether its tiles are
    images of equation (2): each tile fitted by mean_ + the leading PCA_SPAN components (affine in colour, clipped
    pixels left out of the fit), with the tile's first two coordinates in units of sqrt(explained_variance_)."""
    n_train = int(context.profile.get("N_TRAIN") or 60000)
    n_fit = min(int(context.profile.get("SWEEP_TRAIN") or n_train), n_train)
    mean, components, variances = context.data.pca_basis(n_fit, PCA_SPAN)
    coordinates = (inputs["x_train"] - mean) @ components[:2].T
    labels = inputs["y_train"]
    centroids = np.stack([coordinates[labels == digit].mean(0) for digit in range(10)])
    grids = []
    for figure, kind, tiles in context.figure_grids:
        rows, cols = np.asarray(tiles).shape[:2]
        residual, coefficients = measures.span_residuals(np.asarray(tiles).reshape(-1, PIXELS), mean, components)
        whitened = coefficients[:, :2] / np.sqrt(variances[:2])
        grids.append({"figure": figure, "kind": kind, "rows": int(rows), "cols": int(cols),
                      "residual": np.round(residual, 5).tolist(),
                      "coordinates": np.round(np.nan_to_num(whitened, nan=0.0, posinf=0.0, neginf=0.0), 4).tolist()})
    return {"fitted_on": n_fit, "variances": np.round(variances[:2], 6).tolist(),
            "encodings": {"dims": 2, "centroids": centroids.tolist(),
                          "within_class_rms": _within_class_rms(coordinates, labels, centroids),
                          "within_class_rms_z": _within_class_rms(coordinates, labels, centroids)},
            "figure_grids": grids}
