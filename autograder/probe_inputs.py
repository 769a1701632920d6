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
    }


def inputs_for_probe(probe_inputs: dict, name: str):
    """What the kernel-side probe `name` receives."""
    if name == "reparameterize":
        return {**probe_inputs["reparameterize"], "seed": probe_inputs["reparameterize_seed"]}
    return probe_inputs.get(name)
