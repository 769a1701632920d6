"""Inputs for the kernel-side probes, drawn by the grader at grading time (schema: docs/contract.md).

Deterministic per seed; plain JSON (nested lists of floats rounded to 6 decimals, so the values embedded in the
probe cells are exactly the values the grader recomputes its expectations from).
"""

from __future__ import annotations

import numpy as np

ENCODER_SPECS = [{"dim_input": 784, "dim_latent": 2, "batch": 1}, {"dim_input": 784, "dim_latent": 2, "batch": 7},
                 {"dim_input": 784, "dim_latent": 5, "batch": 16}]
DECODER_SPECS = [{"dim_output": 784, "dim_latent": 2, "batch": 3}, {"dim_output": 784, "dim_latent": 5, "batch": 8}]
KL_BATCH, KL_LATENT = 6, 2
LOSS_BATCH, LOSS_LATENT, PIXELS = 4, 2, 784
REPARAMETERIZE_LATENT, REPARAMETERIZE_SAMPLES = 2, 20000
PCA_ROWS, PCA_DIMS, PCA_K, PCA_COORDINATE_ROWS = 200, 30, 5, 3
DECIMALS = 6
DECODE_GRID_SIDE, DECODE_PRIOR_SAMPLES, DECODE_STREAM = 15, 100, 5   # vae_decode: 15 x 15 grid, 100 prior draws


def _rounded(array: np.ndarray) -> list:
    return np.round(np.asarray(array, dtype=np.float64), DECIMALS).tolist()


def draw_probe_inputs(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    kl = {"mu": _rounded(rng.normal(0.0, 1.0, (KL_BATCH, KL_LATENT))),
          "log_sigma_squared": _rounded(rng.uniform(-2.0, 1.0, (KL_BATCH, KL_LATENT)))}
    # x looks like MNIST: mostly 0 or near 1, some grey; reconstructions strictly inside (0, 1) so BCE is finite.
    x = np.where(rng.random((LOSS_BATCH, PIXELS)) < 0.8, 0.0, rng.uniform(0.5, 1.0, (LOSS_BATCH, PIXELS)))
    loss = {"x": _rounded(x), "x_reconstructed": _rounded(rng.uniform(0.02, 0.98, (LOSS_BATCH, PIXELS))),
            "mu": _rounded(rng.normal(0.0, 1.0, (LOSS_BATCH, LOSS_LATENT))),
            "log_sigma_squared": _rounded(rng.uniform(-2.0, 1.0, (LOSS_BATCH, LOSS_LATENT)))}
    reparameterize = {"mu": _rounded(rng.uniform(-2.0, 2.0, REPARAMETERIZE_LATENT)),
                      "log_sigma_squared": _rounded(rng.uniform(-1.5, 1.0, REPARAMETERIZE_LATENT)),
                      "n": REPARAMETERIZE_SAMPLES}
    # Anisotropic data with well separated variances, so the principal axes are well defined.
    scales = np.geomspace(5.0, 0.2, PCA_DIMS)
    data = rng.normal(0.0, 1.0, (PCA_ROWS, PCA_DIMS)) * scales
    rotation, _ = np.linalg.qr(rng.normal(size=(PCA_DIMS, PCA_DIMS)))
    data = data @ rotation + rng.uniform(-1.0, 1.0, PCA_DIMS)
    pca = {"data": _rounded(data), "k": PCA_K,
           "coordinates": _rounded(rng.normal(0.0, 1.0, (PCA_COORDINATE_ROWS, PCA_K)))}
    return {
        "encoder_shapes": [dict(spec) for spec in ENCODER_SPECS],
        "decoder_output": [dict(spec) for spec in DECODER_SPECS],
        "kl": kl,
        "loss": loss,
        "reparameterize": reparameterize,
        "pca": pca,
        "reparameterize_seed": int(rng.integers(0, 2**31 - 1)),
        "vae_decode": draw_decode_points(seed),
    }


def draw_decode_points(seed: int) -> dict:
    """z points for vae.decoder (own random stream, so the other inputs stay as they were): "grid", a 15 x 15 mesh
    over the 5 %..95 % quantiles of N(0, 1) per axis, rows from high z_2 to low, slightly shifted at random; "prior",
    100 draws of z ~ N(0, I)."""
    from statistics import NormalDist

    rng = np.random.default_rng([seed, DECODE_STREAM])
    quantiles = np.array([NormalDist().inv_cdf(p) for p in np.linspace(0.05, 0.95, DECODE_GRID_SIDE)])
    z_1, z_2 = np.meshgrid(quantiles, quantiles[::-1])
    grid = np.stack([z_1.ravel(), z_2.ravel()], axis=1) + rng.uniform(-0.05, 0.05, 2)
    return {"grid": _rounded(grid), "prior": _rounded(rng.normal(0.0, 1.0, (DECODE_PRIOR_SAMPLES, 2)))}


def inputs_for_probe(probe_inputs: dict, name: str):
    """What the kernel-side probe `name` receives."""
    if name == "reparameterize":
        return {**probe_inputs["reparameterize"], "seed": probe_inputs["reparameterize_seed"]}
    return probe_inputs.get(name)
