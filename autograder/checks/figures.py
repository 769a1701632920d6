"""Checks of the figures the seed asks for, read from the recorded figure descriptions (checks/figure_reader.py):
the latent scatter, the 15x15 decoded grid, the per-digit grid and the reconstruction-error sweep."""
from __future__ import annotations

import numpy as np

from autograder.checks.figure_reader import (OTHER_MODEL_WORDS, VAE_WORDS, Grid, all_axes, axes_text, excluded_note,
                                             figure_summary, line_xy, read_grids, vae_figures)
from autograder.checks.registry import CheckResult, check, sweep_dims


def _scatter_groups(figures: list) -> list[dict]:
    """Candidate latent scatters: every axes (its scatters summed: one scatter per digit is fine), and every
    multi-axes figure as a whole (one subplot per digit)."""
    groups = []
    by_figure: dict[int, list[dict]] = {}
    for index, figure, axes in all_axes(figures):
        scatters = [s for s in axes.get("scatters") or [] if isinstance(s, dict)]
        if scatters:
            groups.append({"scatters": scatters, "text": axes_text(figure, axes), "figure": index})
            by_figure.setdefault(index, []).extend(scatters)
    for index, scatters in by_figure.items():
        if sum(1 for g in groups if g["figure"] == index) > 1:
            groups.append({"scatters": scatters, "text": "", "figure": index})
    for group in groups:
        scatters = group["scatters"]
        group["n_points"] = int(sum(int(s.get("n_points") or 0) for s in scatters))
        if len(scatters) == 1:
            group["n_classes"] = max(int(scatters[0].get("n_colors") or 0), int(scatters[0].get("n_values") or 0))
        else:   # one scatter per class: each a colour of the cycle
            group["n_classes"] = max(len(scatters), sum(int(s.get("n_colors") or 0) for s in scatters))
    return groups


@check("figure_latent_scatter", n_points=None, n_classes=10, points_weight=0.5, colours_weight=0.5,
       points_tolerance=0, exclude_titles=list(OTHER_MODEL_WORDS), unless_titles=list(VAE_WORDS))
def figure_latent_scatter(artefacts: dict, probe_inputs: dict, params: dict) -> CheckResult:
    """A scatter (or one scatter per digit) with `n_points` points in total (default: the profile's SCATTER_SIZE,
    else 5000), coloured with `n_classes` distinct colours or values. Scatters whose titles mention the VAE are
    preferred when any exist; otherwise the best scatter counts."""
    all_figures = artefacts.get("figures") or []
    figures = vae_figures(all_figures, params)
    expected = params.get("n_points") or (params.get("profile") or {}).get("SCATTER_SIZE") or 5000
    expected, classes = int(expected), int(params["n_classes"])
    groups = _scatter_groups(figures)
    if not groups:
        return CheckResult("", 0.0, f"No scatter plot of the VAE's z found: {figure_summary(all_figures)}"
                                    f"{excluded_note(all_figures, figures)}. Plot z of {expected:,} random images "
                                    f"with plt.scatter(z[:, 0], z[:, 1], c=labels, cmap='tab10').", {})
    vae_groups = [g for g in groups if "vae" in g["text"] or "variational" in g["text"]]
    groups = vae_groups or groups
    tolerance = int(params["points_tolerance"])
    best, best_score, best_notes = None, -1.0, []
    for group in groups:
        notes, score = [], 0.0
        if abs(group["n_points"] - expected) <= tolerance:
            score += float(params["points_weight"])
        else:
            notes.append(f"the seed asks for a random subset of {expected:,} images; yours has {group['n_points']:,} "
                         f"points")
        if group["n_classes"] == classes:
            score += float(params["colours_weight"])
        elif group["n_classes"] <= 1:
            notes.append("the points are not coloured by digit: pass c=labels (and a qualitative cmap such as "
                         "'tab10')")
        else:
            notes.append(f"the points have {group['n_classes']} colours; colour them by digit label ({classes} "
                         f"classes)")
        if score > best_score:
            best, best_score, best_notes = group, score, notes
    details = {"n_points": best["n_points"], "n_classes": best["n_classes"], "expected_points": expected}
    if not best_notes:
        return CheckResult("", best_score, f"Latent scatter found: {expected:,} points coloured by {classes} digits.",
                           details)
    return CheckResult("", best_score, "Latent scatter: " + "; ".join(best_notes) + ".", details)


@check("figure_decoded_grid_15x15", size=15, max_padding=4, wrong_size=0.5, min_size=5,
       exclude_titles=list(OTHER_MODEL_WORDS), unless_titles=list(VAE_WORDS))
def figure_decoded_grid_15x15(artefacts: dict, probe_inputs: dict, params: dict) -> CheckResult:
    """One stitched image of size x size digits (side in [28*size, 28*size + (size+1)*max_padding] px), or size^2
    axes each showing one 28x28 image in size distinct rows and columns. Another square grid (n x n, n >= min_size)
    earns `wrong_size` with a message naming its size."""
    all_figures = artefacts.get("figures") or []
    figures = vae_figures(all_figures, params)
    size = int(params["size"])
    grids = read_grids(figures, int(params["max_padding"]))
    exact = [g for g in grids if g.rows == size and g.cols == size and g.complete]
    if exact:
        return CheckResult("", 1.0, f"{size}x{size} grid of decoded images found ({exact[0].kind}).",
                           {"grid": exact[0].summary()})
    square = [g for g in grids if g.rows == g.cols and g.rows >= int(params["min_size"])]
    if square:
        g = max(square, key=lambda g: g.rows)
        return CheckResult("", float(params["wrong_size"]),
                           f"Found a {g.rows}x{g.cols} grid of decoded images; the seed asks for {size}x{size} "
                           f"decoded images spanning the full range of both z components (e.g. "
                           f"np.linspace over {size} values per axis).", {"grid": g.summary()})
    return CheckResult("", 0.0, f"No {size}x{size} grid of decoded digits found: {figure_summary(all_figures)}"
                                f"{excluded_note(all_figures, figures)}, grids seen: {_grid_names(grids)}. Decode a {size}x{size} mesh of z values and show it as one "
                                f"image ({size * 28}x{size * 28} px) or {size * size} subplots.",
                       {"grids": [g.summary() for g in grids]})


def _grid_names(grids: list[Grid]) -> str:
    return ", ".join(f"{g.rows}x{g.cols}" for g in grids) or "none"


@check("figure_digit_rows", rows=10, samples=5, wrong_samples=0.5, separate_figures=0.75, max_padding=4,
       exclude_titles=list(OTHER_MODEL_WORDS), unless_titles=list(VAE_WORDS))
def figure_digit_rows(artefacts: dict, probe_inputs: dict, params: dict) -> CheckResult:
    """A grid of `rows` digits x `samples` samples (or transposed, the seed allows row/column), stitched or subplots.
    `rows` separate figures each a 1 x samples strip earn `separate_figures`; a 10 x k grid (k != samples) earns
    `wrong_samples`."""
    all_figures = artefacts.get("figures") or []
    figures = vae_figures(all_figures, params)
    digits, samples = int(params["rows"]), int(params["samples"])
    grids = read_grids(figures, int(params["max_padding"]))
    want = {(digits, samples), (samples, digits)}
    exact = [g for g in grids if (g.rows, g.cols) in want and g.complete]
    if exact:
        return CheckResult("", 1.0, f"{digits} digits x {samples} samples grid found ({exact[0].kind}).",
                           {"grid": exact[0].summary()})
    strips = {g.figure for g in grids if {g.rows, g.cols} == {1, samples}}
    if len(strips) >= digits:
        return CheckResult("", float(params["separate_figures"]),
                           f"Found {len(strips)} separate 1x{samples} strips: draw them as ONE grid, one row per digit, "
                           f"so digits can be compared at a glance.", {"strips": len(strips)})
    near = [g for g in grids if digits in (g.rows, g.cols) and 1 < (g.cols if g.rows == digits else g.rows) <= 4 * samples]
    if near:
        g = near[0]
        return CheckResult("", float(params["wrong_samples"]),
                           f"Found a {g.rows}x{g.cols} grid; the seed asks for {samples} samples for each of "
                           f"the {digits} digits ({digits}x{samples}).", {"grid": g.summary()})
    return CheckResult("", 0.0, f"No {digits}x{samples} grid (one row per digit, {samples} samples each) found: "
                                f"{figure_summary(all_figures)}{excluded_note(all_figures, figures)}, grids seen: {_grid_names(grids)}. For each digit, find "
                                f"its z region (e.g. mean z of its images), vary z around it and decode {samples} "
                                f"samples.", {"grids": [g.summary() for g in grids]})


@check("figure_reconstruction_sweep", sweep_dims=list(range(2, 21)), one_method=0.5, separate_axes=0.75,
       no_legend=0.1)
def figure_reconstruction_sweep(artefacts: dict, probe_inputs: dict, params: dict) -> CheckResult:
    """One axes with >= 2 lines whose x covers SWEEP_DIMS (from the `sweep` probe, else `sweep_dims`): one per method.
    Missing legend costs `no_legend`; the two lines in separate axes earn `separate_axes`; one line `one_method`."""
    figures = artefacts.get("figures") or []
    dims = sweep_dims(artefacts, params) or [float(d) for d in range(2, 21)]
    wanted = set(np.round(dims, 6))
    covering_axes = []
    for _, figure, axes in all_axes(figures):
        lines = []
        for line in axes.get("lines") or []:
            if isinstance(line, dict):
                x, y = line_xy(line)
                if x.size and wanted <= set(np.round(x, 6)) and np.all(np.isfinite(y)):
                    lines.append(line)
        if lines:
            covering_axes.append((axes, lines))
    details = {"dims": dims, "axes_with_lines": [len(lines) for _, lines in covering_axes]}
    together = [(axes, lines) for axes, lines in covering_axes if len(lines) >= 2]
    if together:
        axes, lines = together[0]
        labelled = bool(axes.get("legend")) or sum(bool(line.get("label")) and not
                                                    str(line.get("label")).startswith("_") for line in lines) >= 2
        if labelled:
            return CheckResult("", 1.0, "Reconstruction error against latent size: autoencoder and PCA in one axes.",
                               details)
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
    return CheckResult("", 0.0, f"No plot of reconstruction error against latent size {lo}..{hi} found: "
                                f"{figure_summary(figures)}. Plot reconstruction_errors['autoencoder'] and ['pca'] "
                                f"against SWEEP_DIMS in one axes.", details)
