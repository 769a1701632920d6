"""Checks of the figures the seed asks for: the latent scatter, the 15x15 decoded grid, the per-digit grid and the
reconstruction-error sweep. A figure earns points only for what it shows of the student's own work:

- it must be tied to the model (checks/ties.py: the grid's tiles are vae.decoder's outputs, the scatter's colour
  groups sit where vae.encoder puts each digit, the sweep's PCA line is what the grader's own PCA gives) and the
  model must be a genuine trained VAE (checks/model.py); otherwise nothing, with the reason;
- then `form` of the item (rubric.yaml) for a well-formed figure (the asked size, colours, legend) and `shows` for
  showing what it should (the scatter separates the digits; the grid spans the range of z and shows many digits;
  each row of the per-digit grid is its digit), each judged from the grader's own measurements.
"""
from __future__ import annotations

import numpy as np

from autograder.checks.figure_reader import all_axes, figure_summary, line_xy, read_grids
from autograder.checks.image_quality import (ClassifierUnavailable, TileGrid, _best_assignment, _digit_grid, _grid,
                                             _unavailable, classify, not_genuine, ramp, resolve_params)
from autograder.checks.registry import CheckResult, ProbeMissing, check, fmt, probe, sweep_dims
from autograder.checks.ties import TiedGrid, decoder_grids, scatter_tie, scatters, separation, untied_note

PRIOR_BOX = 1.6449          # the prior's 5 %..95 % quantiles on each axis


def _split(params: dict, form: float, shows: float) -> float:
    return float(params["form"]) * form + float(params["shows"]) * shows


# --- the latent scatter ------------------------------------------------------------------------------------------

# Nearest-neighbour separation of the plotted z at GRADING (`make grade`, 2026-12-02): the reference 0.542 (its
# SCATTER_SIZE training images, sampled z); collapsed VAEs (demo kl_summed_over_batch, recon_per_pixel_mean) 0.297 and
# 0.096. Full credit from 0.45, 0.09 below the reference; none of the "shows" part at or below 0.30.
SEPARATION_ZERO_AT, SEPARATION_FULL_AT = 0.3, 0.45


@check("figure_latent_scatter", n_points=None, n_classes=10, form=0.3, shows=0.7, tie_max=0.35,
       separation_zero_at=SEPARATION_ZERO_AT, separation_full_at=SEPARATION_FULL_AT, by_profile={})
def figure_latent_scatter(artefacts: dict, probe_inputs: dict, params: dict) -> CheckResult:
    """A scatter whose colour groups sit where the grader's encoding of MNIST digits with the student's vae.encoder
    puts each digit (median centroid distance <= `tie_max` of the digits' spread). `form`: `n_points` points (the
    profile's SCATTER_SIZE) coloured by `n_classes` digits, half each. `shows`: how well the plotted points separate
    the digits (leave-one-out 10-nearest-neighbour accuracy against the colours), on a ramp from
    `separation_zero_at` to `separation_full_at`."""
    params, _, problem = resolve_params(params)
    if problem:
        return CheckResult("", 0.0, f"grader configuration problem: {problem}", {"grader_error": problem})
    figures = artefacts.get("figures") or []
    expected = int(params.get("n_points") or (params.get("profile") or {}).get("SCATTER_SIZE") or 5000)
    classes = int(params["n_classes"])
    if (gate := not_genuine(artefacts)) is not None:
        return gate
    encodings = probe(artefacts, "vae_model").get("encodings") or {}
    candidates = scatters(figures)
    if not candidates:
        return CheckResult("", 0.0, f"No scatter plot of the VAE's z found: {figure_summary(figures)}. Plot z of "
                                    f"{expected:,} random images with plt.scatter(z[:, 0], z[:, 1], c=labels, "
                                    f"cmap='tab10').", {})
    judged = []
    for scatter in candidates:
        error, tie = scatter_tie(scatter, encodings)
        judged.append((error, scatter, tie))
    error, scatter, tie = min(judged, key=lambda item: item[0])
    details = {"n_points": scatter.n_points, "colours": scatter.n_groups, "expected_points": expected, **tie}
    if not error <= float(params["tie_max"]):
        return CheckResult("", 0.0, f"No scatter shows where your vae.encoder puts the digits: the grader encoded "
                                    f"MNIST images with your encoder, and the colour groups of your closest scatter "
                                    f"(figure {scatter.figure + 1}) lie {error:.2f} digit-spreads away from where "
                                    f"the digits are (at most {float(params['tie_max']):g} is expected). Plot "
                                    f"z = reparameterize(*vae.encoder(x)) of the images, coloured by their labels.",
                           details)
    notes = []
    form = 0.5 * (scatter.n_points == expected) + 0.5 * (scatter.n_groups == classes)
    if scatter.n_points != expected:
        notes.append(f"plot z for a random subset of {expected:,} images; yours has {scatter.n_points:,} points")
    if scatter.n_groups != classes:
        notes.append("colour the points by digit (c=labels with a qualitative colour map such as 'tab10')"
                     if scatter.n_groups <= 1 else f"the points have {scatter.n_groups} colours; colour them by digit "
                                                   f"label ({classes} classes)")
    accuracy = separation(scatter) if scatter.n_groups >= 2 else 0.0
    shows = ramp(accuracy, float(params["separation_zero_at"]), float(params["separation_full_at"]))
    details["separation"] = round(accuracy, 4)
    if shows < 1:
        notes.append(f"the digits overlap: a point's 10 nearest neighbours share its colour {accuracy:.0%} of the "
                     f"time (full credit from {float(params['separation_full_at']):.0%}); a VAE whose KL term "
                     f"outweighs the reconstruction, or that has not trained long enough, mixes the digits")
    score = _split(params, form, shows)
    if not notes:
        return CheckResult("", score, f"Latent scatter of your encoder found: {expected:,} points coloured by "
                                      f"{classes} digits, which it separates ({accuracy:.0%} nearest-neighbour "
                                      f"agreement).", details)
    return CheckResult("", score, "Latent scatter: " + "; ".join(notes) + ".", details)


# --- the 15x15 decoded grid --------------------------------------------------------------------------------------

def _range_coverage(tied: TiedGrid, encodings: dict) -> float:
    """How much of the range of z the grid spans: the box of its tiles' z over the prior's 90 % box or the box of
    90 % of the encodings, whichever it covers better."""
    points = tied.z.reshape(-1, tied.z.shape[-1])[:, :2]
    if points.size == 0:
        return 0.0
    low, high = points.min(0), points.max(0)
    boxes = [(np.full(2, -PRIOR_BOX), np.full(2, PRIOR_BOX))]
    box = encodings.get("box_90")
    if isinstance(box, list) and len(box) == 2:
        boxes.append((np.asarray(box[0], float)[:2], np.asarray(box[1], float)[:2]))
    best = 0.0
    for box_low, box_high in boxes:
        overlap = np.clip(np.minimum(high, box_high) - np.maximum(low, box_low), 0, None)
        area = float(np.prod(box_high - box_low))
        best = max(best, float(np.prod(overlap)) / area if area > 0 else 0.0)
    return best


def _digits_seen(grid: TileGrid, min_confidence: float, min_tiles: int) -> list[int]:
    labels, confidence, _ = classify(grid.tiles[grid.filled])
    counts = np.bincount(labels[confidence >= min_confidence], minlength=10)
    return [d for d in range(10) if counts[d] >= min_tiles]


@check("figure_decoded_grid_15x15", size=15, min_size=5, wrong_size=0.5, max_padding=4, form=0.3, shows=0.7,
       range_zero_at=0.3, range_full_at=0.75, digits_full_at=5, min_confidence=0.5, min_tiles=2, by_profile={})
def figure_decoded_grid_15x15(artefacts: dict, probe_inputs: dict, params: dict) -> CheckResult:
    """A square grid of images made by the student's vae.decoder (checks/ties.py). `form`: size x size (another n x n
    with n >= `min_size` earns `wrong_size` of it). `shows`, half each: the z of its tiles span the range of z (the
    prior's 90 % box or 90 % of the encodings, ramp `range_zero_at`..`range_full_at`), and it shows many digits
    (distinct digits the grader's classifier reads confidently, ramp 1..`digits_full_at`)."""
    params, _, problem = resolve_params(params)
    if problem:
        return CheckResult("", 0.0, f"grader configuration problem: {problem}", {"grader_error": problem})
    if (gate := not_genuine(artefacts)) is not None:
        return gate
    size = int(params["size"])
    grids, why = decoder_grids(artefacts, int(params["max_padding"]))
    square = [g for g in grids if g.grid.rows == g.grid.cols and g.grid.rows >= int(params["min_size"])]
    tied = [g for g in square if g.tied]
    if not tied:
        seen = ", ".join(f"{g.rows}x{g.cols}" for g in read_grids(artefacts.get("figures") or [])) or "none"
        return CheckResult("", 0.0, f"No {size}x{size} grid of images made by your vae.decoder found (grids seen: "
                                    f"{seen}).{untied_note(square)} Decode a {size}x{size} mesh of z values and show "
                                    f"it as one image ({size * 28}x{size * 28} px) or {size * size} subplots.",
                           {"grids": [g.grid.summary() for g in grids]})
    best = max(tied, key=lambda g: (g.grid.rows == size, g.grid.rows))
    form = 1.0 if best.grid.rows == size else float(params["wrong_size"])
    encodings = probe(artefacts, "vae_model").get("encodings") or {}
    coverage = _range_coverage(best, encodings)
    tile_grid = _grid(best.grid.tiles, best.grid.kind, best.grid.figure, best.grid.title, best.grid.filled)
    try:
        digits = _digits_seen(tile_grid, float(params["min_confidence"]), int(params["min_tiles"]))
    except ClassifierUnavailable as error:
        return _unavailable(error)
    shows = 0.5 * ramp(coverage, float(params["range_zero_at"]), float(params["range_full_at"])) + \
        0.5 * ramp(len(digits), 1, float(params["digits_full_at"]))
    details = {"grid": best.grid.summary(), "tiles_from_decoder": best.tied_fraction,
               "range_coverage": round(coverage, 3), "digits": digits}
    notes = []
    if form < 1:
        notes.append(f"the grid is {best.grid.rows}x{best.grid.cols}; the assignment asks for {size}x{size}")
    if coverage < float(params["range_full_at"]):
        notes.append(f"its z cover {coverage:.0%} of the range where z lives (the prior's 5%..95% quantiles, "
                     f"-1.64..1.64 on each axis, or where 90% of your encodings lie): span the whole range")
    if len(digits) < float(params["digits_full_at"]):
        notes.append(f"the grader's classifier reads only {len(digits)} different digit(s) in it "
                     f"({', '.join(map(str, digits)) or 'none'}): a VAE that separates the digits shows most of them "
                     f"across its latent space")
    score = _split(params, form, shows)
    if not notes:
        return CheckResult("", score, f"{size}x{size} grid of your decoder's images found: it spans the range of z "
                                      f"and shows {len(digits)} different digits.", details)
    return CheckResult("", score, "Decoded grid: " + "; ".join(notes) + ".", details)


# --- the per-digit grid ------------------------------------------------------------------------------------------

@check("figure_digit_rows", rows=10, samples=5, wrong_samples=0.5, max_padding=4, form=0.3, shows=0.7,
       min_confidence=0.4, rows_zero_at=0.2, rows_full_at=0.7, by_profile={})
def figure_digit_rows(artefacts: dict, probe_inputs: dict, params: dict) -> CheckResult:
    """A grid of images made by the student's vae.decoder, `rows` digits x `samples` samples (or transposed).
    `form`: that shape (a `rows` x k grid earns `wrong_samples`). `shows`: each row is its digit: the share of rows
    whose samples the grader's classifier reads mostly as one digit, a different digit per row (ramp
    `rows_zero_at`..`rows_full_at`)."""
    params, _, problem = resolve_params(params)
    if problem:
        return CheckResult("", 0.0, f"grader configuration problem: {problem}", {"grader_error": problem})
    if (gate := not_genuine(artefacts)) is not None:
        return gate
    digits, samples = int(params["rows"]), int(params["samples"])
    grids, _ = decoder_grids(artefacts, int(params["max_padding"]))
    shaped = [g for g in grids if digits in (g.grid.rows, g.grid.cols) and
              1 < (g.grid.cols if g.grid.rows == digits else g.grid.rows) <= 4 * samples]
    tied = [g for g in shaped if g.tied]
    if not tied:
        seen = ", ".join(f"{g.rows}x{g.cols}" for g in read_grids(artefacts.get("figures") or [])) or "none"
        return CheckResult("", 0.0, f"No {digits}x{samples} grid (one row per digit, {samples} samples each) of "
                                    f"images made by your vae.decoder found (grids seen: {seen}).{untied_note(shaped)} "
                                    f"For each digit, find the z region where the encoder puts it and decode "
                                    f"{samples} samples from it.", {"grids": [g.grid.summary() for g in grids]})
    best = max(tied, key=lambda g: {g.grid.rows, g.grid.cols} == {digits, samples})
    exact = {best.grid.rows, best.grid.cols} == {digits, samples}
    form = 1.0 if exact else float(params["wrong_samples"])
    shows, details = 0.0, {"grid": best.grid.summary(), "tiles_from_decoder": best.tied_fraction}
    if exact:
        tile_grid = _grid(best.grid.tiles, best.grid.kind, best.grid.figure, best.grid.title, best.grid.filled)
        tiles, filled = _digit_grid(tile_grid, digits, samples)
        try:
            labels, confidence, _ = classify(tiles)
        except ClassifierUnavailable as error:
            return _unavailable(error)
        sure = (confidence.reshape(digits, samples) >= float(params["min_confidence"])) & filled
        labels = labels.reshape(digits, samples)
        counts = np.zeros((digits, 10))
        for row in range(digits):
            counts[row] = np.bincount(labels[row][sure[row]], minlength=10)[:10]
        _, order = _best_assignment(counts)
        rows_ok = sum(counts[row, order[row]] > samples / 2 for row in range(digits))
        shows = ramp(rows_ok / digits, float(params["rows_zero_at"]), float(params["rows_full_at"]))
        details.update({"rows_of_one_digit": int(rows_ok), "row_digits": order})
    notes = []
    if not exact:
        notes.append(f"the grid is {best.grid.rows}x{best.grid.cols}; the assignment asks for {samples} samples of each of "
                     f"the {digits} digits ({digits}x{samples})")
    elif shows < 1:
        notes.append(f"only {details['rows_of_one_digit']} of {digits} rows show mostly one digit to the grader's "
                     f"classifier: draw the z of each row from the region where the encoder puts that digit (see the "
                     f"per-digit quality item for what it read)")
    score = _split(params, form, shows)
    if not notes:
        return CheckResult("", score, f"{digits}x{samples} grid of your decoder's images found: each row shows one "
                                      f"digit.", details)
    return CheckResult("", score, "Per-digit grid: " + "; ".join(notes) + ".", details)


# --- the reconstruction-error sweep ------------------------------------------------------------------------------

def _sweep_verdict(artefacts: dict, rtol: float) -> tuple[bool, str, dict]:
    """Whether the reported PCA errors are PCA's (the grader's own PCA on the same data) and the autoencoder's are
    plausible reconstruction errors; (ok, what is wrong, details)."""
    try:
        reported = probe(artefacts, "sweep")
        reference = probe(artefacts, "pca_sweep")
    except ProbeMissing as missing:
        return False, str(missing), {}
    errors = reported.get("reconstruction_errors") or {}
    pca = np.asarray(errors.get("pca") or errors.get("PCA") or [], float)
    ae = np.asarray(errors.get("autoencoder") or errors.get("ae") or [], float)
    expected = np.asarray(reference["pca"], float)
    details = {"pca": pca.tolist(), "grader_pca": np.round(expected, 6).tolist()}
    if pca.shape != expected.shape or not np.all(np.isfinite(pca)):
        return False, (f"reconstruction_errors['pca'] holds {pca.size} value(s) for {expected.size} latent sizes"), \
            details
    if not np.allclose(pca, expected, rtol=rtol, atol=0):
        worst = int(np.argmax(np.abs(pca - expected) / expected))
        return False, (f"reconstruction_errors['pca'] is not PCA's held-out error: at {reference['SWEEP_DIMS'][worst]} "
                       f"components the grader's PCA (fitted on the first N_TRAIN training images, measured on the "
                       f"first N_TEST test images) gives {fmt(expected[worst])}, yours {fmt(pca[worst])}"), details
    baseline = float(reference["mean_image"])
    if ae.shape != expected.shape or not np.all(np.isfinite(ae)) or np.any(ae <= 0) or np.any(ae > 2.5 * baseline):
        return False, (f"reconstruction_errors['autoencoder'] is not a list of held-out errors, one per latent size, "
                       f"each between 0 and 2.5 times the error of predicting the mean image ({fmt(baseline)}); an untrained autoencoder does worse"), details
    return True, "", details


@check("figure_reconstruction_sweep", sweep_dims=list(range(2, 21)), one_method=0.5, separate_axes=0.75,
       no_legend=0.1, pca_rtol=0.1)
def figure_reconstruction_sweep(artefacts: dict, probe_inputs: dict, params: dict) -> CheckResult:
    """reconstruction_errors must hold PCA's held-out errors (within `pca_rtol` of the grader's own PCA on the same
    data) and plausible autoencoder errors; then one axes with both lines (the plotted values ARE those lists) over
    SWEEP_DIMS. Missing legend costs `no_legend`; the two lines in separate axes earn `separate_axes`; one line
    `one_method`."""
    figures = artefacts.get("figures") or []
    dims = sweep_dims(artefacts, params) or [float(d) for d in range(2, 21)]
    ok, problem, details = _sweep_verdict(artefacts, float(params["pca_rtol"]))
    if not ok:
        return CheckResult("", 0.0, f"Reconstruction-error sweep: {problem}. The figure counts only with the errors "
                                    f"your models really have.", details)
    errors = probe(artefacts, "sweep")["reconstruction_errors"]
    reported = [np.asarray(values, float) for values in errors.values() if isinstance(values, list)]
    wanted = np.asarray(dims, float)
    covering_axes = []
    for _, figure, axes in all_axes(figures):
        lines = []
        for line in axes.get("lines") or []:
            if isinstance(line, dict):
                x, y = line_xy(line)
                if x.shape == wanted.shape and np.allclose(x, wanted) and any(
                        y.shape == r.shape and np.allclose(y, r, rtol=1e-4) for r in reported):
                    lines.append(line)
        if lines:
            covering_axes.append((axes, lines))
    details["axes_with_lines"] = [len(lines) for _, lines in covering_axes]
    together = [(axes, lines) for axes, lines in covering_axes if len(lines) >= 2]
    if together:
        axes, lines = together[0]
        labelled = bool(axes.get("legend")) or sum(bool(line.get("label")) and not
                                                    str(line.get("label")).startswith("_") for line in lines) >= 2
        if labelled:
            return CheckResult("", 1.0, "Reconstruction error against latent size: your autoencoder's and PCA's "
                                        "errors (PCA's agree with the grader's) in one axes.", details)
        return CheckResult("", 1.0 - float(params["no_legend"]),
                           "Reconstruction-error sweep found, but the lines are not named: add a legend "
                           "(label='autoencoder' / 'PCA', then plt.legend()).", details)
    if len(covering_axes) >= 2:
        return CheckResult("", float(params["separate_axes"]),
                           "The autoencoder and PCA errors are in separate plots: draw both lines in one axes so the "
                           "methods can be compared at each latent size.", details)
    if covering_axes:
        return CheckResult("", float(params["one_method"]),
                           "Only one method's reconstruction error is plotted against the latent size: plot both the "
                           "autoencoder and PCA.", details)
    lo, hi = int(min(dims)), int(max(dims))
    return CheckResult("", 0.0, f"No plot of reconstruction_errors against latent size {lo}..{hi} found: "
                                f"{figure_summary(figures)}. Plot reconstruction_errors['autoencoder'] and ['pca'] "
                                f"against SWEEP_DIMS in one axes.", details)
