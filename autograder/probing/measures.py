"""Pure numpy measurements the grader makes from the raw outputs of the student's models (no student code here).

Formulas, per image (rows), with x in [0, 1]:
- Bernoulli negative ELBO = BCE(x, x_hat) summed over pixels + KL;  BCE clamps log at -100 like torch.
- KL(N(mu, sigma^2) || N(0, I)) = -0.5 * sum_k (1 + log_sigma_squared_k - mu_k^2 - exp(log_sigma_squared_k)).
- Gaussian negative ELBO (fixed variance, constant dropped) = sum over pixels (x - x_mean)^2 / (2 variance) + KL.
- Tile match: a figure tile t against candidate images c: the root mean square residual of the best fit
  t ~ a * c + b (so a figure drawn with its own colour scale, or inverted, still matches), over the pixels,
  relative to the tile's own spread (so a faint or blank tile matches nothing: it shows no image).
"""
from __future__ import annotations

import numpy as np

LOG_CLAMP = -100.0
FLAT_TILE_VARIANCE = 1e-3     # a tile whose pixels vary less than this shows no image


def kl_rows(mu: np.ndarray, log_sigma_squared: np.ndarray) -> np.ndarray:
    mu, lss = np.asarray(mu, np.float64), np.asarray(log_sigma_squared, np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        return -0.5 * np.sum(1.0 + lss - mu ** 2 - np.exp(lss), axis=1)


def bce_rows(x: np.ndarray, x_hat: np.ndarray) -> np.ndarray:
    x, x_hat = np.asarray(x, np.float64), np.asarray(x_hat, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_p = np.maximum(np.log(x_hat), LOG_CLAMP)
        log_q = np.maximum(np.log(1.0 - x_hat), LOG_CLAMP)
    return -np.sum(x * log_p + (1.0 - x) * log_q, axis=1)


def squared_error_rows(x: np.ndarray, x_mean: np.ndarray) -> np.ndarray:
    return np.sum((np.asarray(x, np.float64) - np.asarray(x_mean, np.float64)) ** 2, axis=1)


def finite_mean(values: np.ndarray) -> float | None:
    values = np.asarray(values, np.float64)
    if values.size == 0 or not np.all(np.isfinite(values)):
        return None
    return float(values.mean())


def tile_residuals(tiles: np.ndarray, candidates: np.ndarray, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """For each tile (T, P) the index of the best candidate (N, P) and its residual after the best affine fit, as a
    fraction of the tile's standard deviation (1: the candidate explains nothing; inf for a flat tile). Pixels in
    [0, 1]."""
    tiles = np.asarray(tiles, np.float32).reshape(len(tiles), -1)
    candidates = np.asarray(candidates, np.float32).reshape(len(candidates), -1)
    pixels = tiles.shape[1]
    t_centred = tiles - tiles.mean(1, keepdims=True)
    t_var = np.mean(t_centred ** 2, axis=1)
    best = np.full(len(tiles), np.inf, np.float64)
    best_index = np.zeros(len(tiles), np.int64)
    for start in range(0, len(candidates), chunk):
        block = candidates[start:start + chunk]
        c_centred = block - block.mean(1, keepdims=True)
        c_var = np.mean(c_centred ** 2, axis=1)
        cov = (t_centred @ c_centred.T) / pixels                       # (T, N)
        with np.errstate(divide="ignore", invalid="ignore"):
            explained = np.where(c_var[None, :] > 1e-10, cov ** 2 / c_var[None, :], 0.0)
        residual = np.maximum(t_var[:, None] - explained, 0.0)
        index = residual.argmin(1)
        value = residual[np.arange(len(tiles)), index]
        better = value < best
        best[better] = value[better]
        best_index[better] = index[better] + start
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = np.where(t_var > FLAT_TILE_VARIANCE, np.sqrt(best / t_var), np.inf)
    return best_index, relative


def span_residuals(tiles: np.ndarray, mean: np.ndarray, components: np.ndarray,
                   clip_margin: float = 0.02) -> tuple[np.ndarray, np.ndarray]:
    """For each tile (T, P): how well mean + sum_i c_i components_i explains it, as a fraction of the tile's spread
    (inf for a flat tile), and the c_i. The fit is affine in colour, t ~ a * (mean + sum_i c_i v_i) + b, on the
    tile's pixels strictly inside its range (a clipped pixel says only that the image went beyond the range there);
    the residual is over all pixels, the prediction clipped to the tile's range."""
    tiles = np.asarray(tiles, np.float64).reshape(len(tiles), -1)
    basis = np.column_stack([np.ones(tiles.shape[1]), np.asarray(mean, np.float64),
                             np.asarray(components, np.float64).T])           # (P, 2 + k)
    residuals = np.full(len(tiles), np.inf)
    coefficients = np.full((len(tiles), len(components)), np.nan)
    for n, tile in enumerate(tiles):
        low, high = float(tile.min()), float(tile.max())
        spread = high - low
        variance = float(np.var(tile))
        if variance <= FLAT_TILE_VARIANCE:
            continue
        inside = (tile > low + clip_margin * spread) & (tile < high - clip_margin * spread)
        if inside.sum() < 2 * basis.shape[1]:
            continue
        w, *_ = np.linalg.lstsq(basis[inside], tile[inside], rcond=None)
        predicted = np.clip(basis @ w, low, high)
        residuals[n] = float(np.sqrt(np.mean((predicted - tile) ** 2) / variance))
        if abs(w[1]) > 1e-3:
            coefficients[n] = w[2:] / w[1]
    return residuals, coefficients


def local_mesh(centres: np.ndarray, spacing: float, steps: int) -> np.ndarray:
    """(len(centres) * steps^2, 2) points: a steps x steps mesh of the given spacing around each centre."""
    offsets = (np.arange(steps) - (steps - 1) / 2.0) * spacing
    dx, dy = np.meshgrid(offsets, offsets)
    mesh = np.stack([dx.ravel(), dy.ravel()], axis=1)
    return (np.asarray(centres, np.float64)[:, None, :] + mesh[None, :, :]).reshape(-1, 2)


def box_coverage(points: np.ndarray, low: np.ndarray, high: np.ndarray) -> float:
    """Fraction of the box [low, high] covered by the bounding box of `points` (2-D)."""
    points = np.asarray(points, np.float64)
    if points.size == 0:
        return 0.0
    p_low, p_high = points.min(0), points.max(0)
    overlap = np.clip(np.minimum(p_high, high) - np.maximum(p_low, low), 0.0, None)
    area = float(np.prod(np.asarray(high) - np.asarray(low)))
    return float(np.prod(overlap) / area) if area > 0 else 0.0


def jacobian_norms(at: np.ndarray, moved: list[np.ndarray], step: float) -> np.ndarray:
    """Per point: the Frobenius norm of the finite-difference Jacobian d x_hat / d z (images (n, P), one moved copy
    per latent axis)."""
    squares = sum(np.sum(((np.asarray(m, np.float64) - at) / step) ** 2, axis=1) for m in moved)
    return np.sqrt(squares)


def nearest_distances(images: np.ndarray, reference: np.ndarray, projected_reference: np.ndarray,
                      basis: np.ndarray, mean: np.ndarray, shortlist: int = 8) -> np.ndarray:
    """RMS pixel distance of each image to its nearest reference image: candidates from a projection on `basis`
    (k, P) (`projected_reference` = (reference - mean) @ basis.T, computed once), then exact distances to the
    `shortlist` nearest candidates."""
    images = np.asarray(images, np.float32).reshape(len(images), -1)
    projected = (images - mean) @ basis.T
    d2 = (np.sum(projected ** 2, 1)[:, None] + np.sum(projected_reference ** 2, 1)[None, :]
          - 2.0 * projected @ projected_reference.T)
    shortlist = min(shortlist, d2.shape[1])
    candidates = np.argpartition(d2, shortlist - 1, axis=1)[:, :shortlist]
    exact = np.sqrt(np.mean((reference[candidates] - images[:, None, :]) ** 2, axis=2))
    return exact.min(1)
