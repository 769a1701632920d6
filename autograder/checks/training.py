"""Checks of training: every recorded loss history falls (`loss_decreases`), and a plotted training curve (falling,
one point per epoch, labelled: `figure_training_curve`)."""
from __future__ import annotations

from typing import Any

import numpy as np

from autograder.checks.figure_reader import (OTHER_MODEL_WORDS, VAE_WORDS, all_axes, axes_text, excluded_note,
                                             figure_summary, line_xy, vae_figures)
from autograder.checks.registry import CheckResult, ProbeMissing, check, fmt, probe, short, sweep_dims


# --- training histories ------------------------------------------------------------------------------------------

def _history_problem(name: str, history: Any) -> str | None:
    """None when the history is a finite, falling list of >= 2 losses; else what is wrong and what to do."""
    if history is None:
        return f"{name} is missing (None or not defined): store the mean training loss of every epoch in {name}"
    try:
        values = np.asarray(history, dtype=float).ravel()
    except (TypeError, ValueError):
        return f"{name} is not a list of numbers: append float(epoch_loss) (not tensors) once per epoch"
    if values.size < 2:
        return f"{name} has {values.size} value(s): record one loss per epoch, for at least 2 epochs"
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        return (f"{name} becomes {values[bad[0]]} at epoch {bad[0]}: the loss diverged; lower the learning rate, "
                f"clip gradients (torch.nn.utils.clip_grad_norm_) and check log(0) in the loss")
    if not values[-1] < values[0]:
        return (f"{name} rises from {fmt(values[0])} to {fmt(values[-1])}: training does not reduce the loss; check "
                f"the loss sign (minimise the NEGATIVE ELBO), optimizer.zero_grad() before backward(), and the "
                f"learning rate")
    return None


@check("loss_decreases", weights={"vae_history": 1, "gaussian_vae_history": 1, "ae_histories": 1},
       figure_fallback=0.5)
def loss_decreases(artefacts: dict, probe_inputs: dict, params: dict) -> CheckResult:
    """Each history finite with last < first; the AE runs share their weight. A history that is missing from the
    kernel earns `figure_fallback` of its weight if a falling loss curve is plotted (one curve per missing history)."""
    try:
        histories = probe(artefacts, "histories")
        probe_error = None
    except ProbeMissing as missing:
        histories, probe_error = {}, str(missing)
    histories = histories if isinstance(histories, dict) else {}
    weights = params["weights"]
    spare_curves = sum(line["falling"] for line in _training_lines(artefacts.get("figures") or [], None))
    read_errors = histories.get("errors") if isinstance(histories.get("errors"), dict) else {}
    earned, problems, details = 0.0, [], {}
    for name, weight in weights.items():
        weight = float(weight)
        value = histories.get(name)
        if name == "ae_histories" and isinstance(value, list) and value and all(isinstance(v, list) for v in value):
            runs = [_history_problem(f"ae_histories[{i}]", run) for i, run in enumerate(value)]
            earned += weight * sum(p is None for p in runs) / len(runs)
            problems += [p for p in runs if p]
            details[name] = [p is None for p in runs]
            continue
        problem = _history_problem(name, value if not (name == "ae_histories" and value == []) else None)
        if value is None and read_errors.get(name):
            problem = (f"{name} could not be read ({short(read_errors[name])}): make it a list of floats, "
                       f"one mean training loss per epoch")
        if problem and value is None and spare_curves > 0:
            spare_curves -= 1
            earned += weight * float(params["figure_fallback"])
            problem += " (partial credit from a falling loss curve in your figures)"
        earned += weight if problem is None else 0.0
        details[name] = problem is None
        if problem:
            problems.append(problem)
    total = sum(float(w) for w in weights.values())
    fraction = earned / total if total else 0.0
    if not problems:
        return CheckResult("", fraction, "Every recorded training loss falls from the first to the last epoch.", details)
    prefix = f"{probe_error} " if probe_error else ""
    return CheckResult("", fraction, prefix + "; ".join(problems) + ".", details)



SWEEP_WORDS = ("dim", "latent size", "component", "eigen", "k ")


def _training_lines(figures: list, sweep_dims: list | None) -> list[dict]:
    """Lines that can be loss curves: >= 2 finite points, not the reconstruction sweep (x = SWEEP_DIMS, or an axes
    labelled by dimension without 'epoch'). Each with its falling flag and label credit."""
    found = []
    for _, figure, axes in all_axes(figures):
        xlabel = str(axes.get("xlabel") or "").lower()
        text = axes_text(figure, axes)
        sweep_axes = "epoch" not in text and any(word in xlabel + " " for word in SWEEP_WORDS)
        for line in axes.get("lines") or []:
            if not isinstance(line, dict):
                continue
            x, y = line_xy(line)
            if y.size < 2 or not np.all(np.isfinite(y)):
                continue
            if sweep_dims and x.size == len(sweep_dims) and np.allclose(x, sweep_dims) and "epoch" not in text:
                continue
            if sweep_axes:
                continue
            found.append({"n": int(line.get("n_points") or y.size), "first": float(y[0]), "last": float(y[-1]), "falling": bool(y[-1] < y[0]),
                          "epoch_label": "epoch" in xlabel or "iteration" in xlabel or "step" in xlabel,
                          "loss_label": any(w in text for w in ("loss", "elbo", "nll", "likelihood", "kl", "bce",
                                                                "error", "mse")),
                          "y": y})
    return found


def _history_lengths(artefacts: dict) -> set[int]:
    try:
        histories = probe(artefacts, "histories")
    except ProbeMissing:
        return set()
    lengths = set()
    for name, value in (histories or {}).items():
        runs = value if name == "ae_histories" and isinstance(value, list) else [value]
        for run in runs:
            if isinstance(run, list) and len(run) >= 2:
                lengths.add(len(run))
    return lengths


@check("figure_training_curve", falling=0.6, per_epoch=0.2, labels=0.2, rising=0.25,
       sweep_dims=list(range(2, 21)), exclude_titles=list(OTHER_MODEL_WORDS), unless_titles=list(VAE_WORDS))
def figure_training_curve(artefacts: dict, probe_inputs: dict, params: dict) -> CheckResult:
    """A plotted loss curve: falling (`falling`), one point per epoch (`per_epoch`: its length equals a recorded
    history's, or is unknown; not one point per batch) and labelled (`labels`: x mentions epoch, and the axes mention
    loss/ELBO). A curve that only rises earns `rising`. The best line in any figure counts."""
    all_figures = artefacts.get("figures") or []
    figures = vae_figures(all_figures, params)
    lines = _training_lines(figures, sweep_dims(artefacts, params))
    if not lines:
        return CheckResult("", 0.0, f"No training curve found: {figure_summary(all_figures)}"
                                    f"{excluded_note(all_figures, figures)}. Plot the loss of every epoch, e.g. "
                                    f"plt.plot(vae_history), with xlabel 'epoch' and ylabel 'loss'.", {})
    lengths = _history_lengths(artefacts)
    best, best_score, best_notes = None, -1.0, []
    for line in lines:
        notes, score = [], 0.0
        if line["falling"]:
            score += float(params["falling"])
        else:
            score += float(params["rising"])
            notes.append(f"your plotted loss rises from {fmt(line['first'])} to {fmt(line['last'])}: training "
                         f"does not reduce it (check the loss sign, optimizer.zero_grad(), the learning rate)")
        if not lengths or {line["n"], line["n"] - 1} & lengths:     # an extra point for epoch 0 is fine
            score += float(params["per_epoch"]) if line["falling"] else 0.0
        else:
            what = "one point per batch" if line["n"] > 3 * max(lengths) else f"{line['n']} points"
            notes.append(f"the curve has {what} but your histories have {sorted(lengths)} epochs: plot the mean "
                         f"loss of each epoch")
        if line["falling"]:
            score += float(params["labels"]) * 0.5 * (line["epoch_label"] + line["loss_label"])
            if not line["epoch_label"]:
                notes.append("label the x axis 'epoch' (plt.xlabel)")
            if not line["loss_label"]:
                notes.append("name the plotted quantity, e.g. plt.ylabel('loss (negative ELBO)')")
        if score > best_score:
            best, best_score, best_notes = line, score, notes
    details = {"points": best["n"], "first": best["first"], "last": best["last"], "candidates": len(lines)}
    if not best_notes:
        return CheckResult("", best_score, "Training curve found: the loss falls over the epochs.", details)
    return CheckResult("", best_score, "Training curve: " + "; ".join(best_notes) + ".", details)
