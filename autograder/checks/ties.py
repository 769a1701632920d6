"""What ties a figure to the student's model: the grader's own measurements, never the figure's presence.

- A grid of digits is tied to `vae` when its tiles are outputs of `vae.decoder`: the probe vae_model (probing/
  model_probes.py) found, for every tile, the z whose decoded image fits it best (RMS residual of an affine fit, so the
  figure's colour scale does not matter, relative to the tile's own spread, so a faint or blank tile matches
  nothing) and where that z lies. Real MNIST digits pasted into a figure, or another model's images, fit no decoder
  output.
- A latent scatter is tied to `vae.encoder` when the centroid of each of its colour groups lies where the grader's
  own encoding of MNIST images puts one digit (one group per digit, matched by the Hungarian method, axes possibly
  swapped), within a fraction of how far the digits lie apart.
Both are judged only for a genuine trained VAE (model.vae_verdict).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from autograder.checks.figure_reader import Budget, Grid, all_axes, decode_array, read_grids
from autograder.checks.registry import ProbeMissing, probe

TILE_RESIDUAL_MAX = 0.1        # a tile fitted by a decoder output within this fraction of its spread is that output
TIED_FRACTION = 0.9            # of a grid's tiles
SCATTER_TIE_MAX = 0.35         # median centroid distance / spread of the digits (calibrated)
MIN_GROUP_POINTS = 5


@dataclass
class TiedGrid:
    grid: Grid
    residual: np.ndarray       # per tile, rows x cols: unexplained fraction of its spread
    z: np.ndarray              # per tile, the decoder's z that fits it best
    tied_fraction: float

    @property
    def tied(self) -> bool:
        return self.tied_fraction >= TIED_FRACTION


def decoder_grids(artefacts: dict, max_pad: int = 4) -> tuple[list[TiedGrid], str]:
    """Every grid of the figures whose tiles were matched against vae.decoder, with how many of its tiles are its
    outputs; ([], why not) when the decoder could not be probed."""
    try:
        model = probe(artefacts, "vae_model")
    except ProbeMissing as missing:
        return [], str(missing)
    return tied_grids(artefacts.get("figures") or [], model.get("figure_grids"), "z", max_pad), ""


def tied_grids(figures: list, matches, where: str, max_pad: int = 4) -> list[TiedGrid]:
    """The figures' grids with a probe's per-tile match (`residual`, and the tile's place `where`: a decoder's z, a
    PCA tile's coordinates)."""
    by_grid = {(m["figure"], m["kind"], m["rows"], m["cols"]): m for m in matches or [] if isinstance(m, dict)}
    tied = []
    for grid in read_grids(figures, max_pad):
        match = by_grid.get((grid.figure, grid.kind, grid.rows, grid.cols))
        if grid.pixels is None or match is None:
            continue
        residual = np.asarray(match["residual"], np.float64).reshape(grid.rows, grid.cols)
        place = np.asarray(match[where], np.float64).reshape(grid.rows, grid.cols, -1)
        filled = grid.filled if grid.filled is not None else np.ones((grid.rows, grid.cols), bool)
        fraction = float(np.mean(residual[filled] <= TILE_RESIDUAL_MAX)) if filled.any() else 0.0
        tied.append(TiedGrid(grid, residual, place, fraction))
    return tied


def untied_note(grids: list[TiedGrid]) -> str:
    untied = [g for g in grids if not g.tied]
    if not untied:
        return ""
    g = max(untied, key=lambda g: g.grid.rows * g.grid.cols)
    return (f" The {g.grid.rows}x{g.grid.cols} grid in figure {g.grid.figure + 1} is not made of your vae.decoder's "
            f"images (only {g.tied_fraction:.0%} of its tiles are outputs of it): figures must show what your model "
            f"produces.")


# --- scatters ----------------------------------------------------------------------------------------------------

def _decoded(entry, dtype, budget: Budget, figure=None) -> np.ndarray | None:
    """The array, or None when it is not one or the reading's budget is spent (checked before decoding)."""
    if not isinstance(entry, dict):
        return None
    try:
        count = int(np.prod([int(d) for d in entry.get("shape") or []], dtype=np.int64))
    except (TypeError, ValueError, OverflowError):
        return None
    if count <= 0 or not budget.take(count, figure):
        return None
    return decode_array(entry.get("zlib_base64"), entry.get("shape"), dtype)


@dataclass
class Scatter:
    figure: int
    points: np.ndarray         # (n, 2)
    labels: np.ndarray         # (n,) colour group
    n_points: int
    n_groups: int
    text: str


def scatters(figures: list) -> list[Scatter]:
    """Candidate latent scatters with their points: every axes (its scatters together: one scatter per digit is
    fine), and every figure whose axes each hold scatters, as a whole (one subplot per digit)."""
    per_axes, per_figure = [], {}
    budget = Budget()
    for index, figure, axes in all_axes(figures):
        parts = []
        for number, scatter in enumerate(s for s in axes.get("scatters") or [] if isinstance(s, dict)):
            points = _decoded(scatter.get("points"), np.float32, budget, index)
            groups = _decoded(scatter.get("groups"), np.uint8, budget, index)
            if points is None or groups is None or len(points) != len(groups):
                continue
            parts.append((points.reshape(-1, 2).astype(np.float64), number * 256 + groups.astype(np.int64)))
        if parts:
            per_axes.append((index, parts, str(axes.get("title") or "")))
            per_figure.setdefault(index, []).append(parts)
    found = [_scatter(index, parts, text) for index, parts, text in per_axes]
    for index, axes_parts in per_figure.items():
        if len(axes_parts) > 1:
            found.append(_scatter(index, [(p, np.full(len(p), n, np.int64)) for n, parts in enumerate(axes_parts)
                                          for p, _ in parts], ""))
    return found


def _scatter(index: int, parts: list, text: str) -> Scatter:
    points = np.concatenate([p for p, _ in parts])
    labels = np.concatenate([g for _, g in parts])
    _, labels = np.unique(labels, return_inverse=True)
    return Scatter(index, points, labels, len(points), int(labels.max()) + 1 if len(labels) else 0, text)


def _standardized(points: np.ndarray) -> np.ndarray:
    centred = points - points.mean(0)
    return centred / np.maximum(centred.std(0), 1e-12)


def scatter_tie(scatter: Scatter, encodings: dict, free_axes: bool = False) -> tuple[float, dict]:
    """(distance of the scatter's colour groups to the grader's per-digit centroids, relative to the digits' spread;
    details). Small means the scatter shows where the student's encoder puts each digit. Axes may be swapped; with
    `free_axes` (PCA coordinates) each axis's sign and scale are free too (flipped components, whitened or raw
    coordinates), and both sets of centroids are standardised per axis before they are compared."""
    centroids = np.asarray(encodings["centroids"], np.float64)
    if centroids.shape[1] != 2:
        return float("inf"), {"reason": "the latent space is not 2-D"}
    groups = [g for g in range(scatter.n_groups) if np.sum(scatter.labels == g) >= MIN_GROUP_POINTS]
    if len(groups) < 2:     # one colour: nothing to compare with where the encoder puts each digit
        return float("inf"), {"groups": len(groups), "reason": "the points are not coloured by digit"}
    means = np.stack([scatter.points[scatter.labels == g].mean(0) for g in groups])
    if free_axes:
        centroids, means = _standardized(centroids), _standardized(means)
        signs = [np.array([a, b]) for a in (1, -1) for b in (1, -1)]
        spread = float(np.sqrt(2.0))
    else:
        signs = [np.ones(2)]
        spread = max(float(np.sqrt(np.mean(np.sum((centroids - centroids.mean(0)) ** 2, 1)))),
                     float(encodings.get("within_class_rms_z") or 0.0), 1e-6)
    from scipy.optimize import linear_sum_assignment
    best = (float("inf"), None, False)
    for swapped in (False, True):
        for sign in signs:
            candidate = (means[:, ::-1] if swapped else means) * sign
            cost = np.linalg.norm(candidate[:, None, :] - centroids[None, :, :], axis=2)
            rows, cols = linear_sum_assignment(cost)
            error = float(np.median(cost[rows, cols])) / spread
            if error < best[0]:
                best = (error, cols.tolist(), swapped)
    return best[0], {"groups": len(groups), "centroid_error": best[0], "axes_swapped": best[2], "spread": spread}


def separation(scatter: Scatter, neighbours: int = 10) -> float:
    """Leave-one-out accuracy of a k-nearest-neighbour vote on the plotted points against their colours: how well
    the scatter separates the digits (chance: the largest colour's share)."""
    from sklearn.neighbors import NearestNeighbors
    count = len(scatter.points)
    if count <= neighbours or scatter.n_groups < 2:
        return 0.0
    k = min(neighbours + 1, count)
    _, index = NearestNeighbors(n_neighbors=k).fit(scatter.points).kneighbors(scatter.points)
    votes = scatter.labels[index[:, 1:]]
    predicted = np.array([np.bincount(row, minlength=scatter.n_groups).argmax() for row in votes])
    return float(np.mean(predicted == scatter.labels))
