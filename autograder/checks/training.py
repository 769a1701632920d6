"""Checks of training: every recorded loss history falls (`loss_decreases`), and a plotted training curve (falling,
one point per epoch, labelled: `figure_training_curve`)."""
from __future__ import annotations

from typing import Any

import numpy as np

from autograder.checks.figure_reader import (OTHER_MODEL_WORDS, VAE_WORDS, all_axes, axes_text, excluded_note,
                                             figure_summary, line_xy, vae_figures)
from autograder.checks.model import ae_history_verdict, verified_history
from autograder.checks.registry import CheckResult, ProbeMissing, check, fmt, probe, short


# --- training histories ------------------------------------------------------------------------------------------

def _history_problem(name: str, history: Any, min_drop: float = 0.0) -> str | None:
    """None when the history is a finite list of >= 2 losses that falls by at least `min_drop` of its first value;
    else what is wrong and what to do."""
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
    if not values[-1] < values[0] - min_drop * abs(values[0]):
        verb = "rises" if values[-1] > values[0] else "hardly changes"
        return (f"{name} {verb} from {fmt(values[0])} to {fmt(values[-1])}: training does not reduce the loss; "
                f"check that every batch calls optimizer.zero_grad(), loss.backward() and optimizer.step(), the loss "
                f"sign (minimise the NEGATIVE ELBO) and the learning rate")
    return None


HISTORY_NAMES = ("vae_history", "gaussian_vae_history", "ae_histories")


def history_verdicts(artefacts: dict, probe_inputs: dict, params: dict) -> dict:
    """name -> [(label, values, Verdict)] for every reported history (ae_histories: one per run), each checked
    against the grader's evaluation of its model (checks/model.py)."""
    try:
        histories = probe(artefacts, "histories")
    except ProbeMissing:
        return {}
    histories = histories if isinstance(histories, dict) else {}
    profile = params.get("profile") or {}
    found = {}
    for name in ("vae_history", "gaussian_vae_history"):
        values = histories.get(name)
        if isinstance(values, list) and len(values) >= 2 and all(isinstance(v, (int, float)) for v in values):
            found[name] = [(name, values, verified_history(name, values, artefacts, probe_inputs, profile))]
    runs = histories.get("ae_histories")
    if isinstance(runs, list):
        found["ae_histories"] = [
            (f"ae_histories[{i}]", run, ae_history_verdict(i, run, artefacts)) for i, run in enumerate(runs)
            if isinstance(run, list) and len(run) >= 2 and all(isinstance(v, (int, float)) for v in run)]
    return found


@check("loss_decreases", weights={"vae_history": 1, "gaussian_vae_history": 1, "ae_histories": 1}, min_drop=0.05)
def loss_decreases(artefacts: dict, probe_inputs: dict, params: dict) -> CheckResult:
    """Each history finite, falling by at least `min_drop` of its first value, and in agreement with the grader's
    evaluation of its trained model (a list of numbers is not evidence of training); the AE runs share their
    weight."""
    try:
        histories = probe(artefacts, "histories")
        probe_error = None
    except ProbeMissing as missing:
        histories, probe_error = {}, str(missing)
    histories = histories if isinstance(histories, dict) else {}
    verdicts = history_verdicts(artefacts, probe_inputs, params)
    weights = params["weights"]
    read_errors = histories.get("errors") if isinstance(histories.get("errors"), dict) else {}
    earned, problems, details = 0.0, [], {}
    for name, weight in weights.items():
        weight = float(weight)
        value = histories.get(name)
        if name == "ae_histories" and isinstance(value, list) and value and all(isinstance(v, list) for v in value):
            checked = {label: verdict for label, _, verdict in verdicts.get(name, [])}
            runs = []
            for i, run in enumerate(value):
                label = f"ae_histories[{i}]"
                runs.append(_history_problem(label, run, float(params["min_drop"]))
                            or (None if label in checked and checked[label].ok else
                                (checked[label].message if label in checked else f"{label} could not be checked")))
            earned += weight * sum(p is None for p in runs) / len(runs)
            problems += [p for p in runs if p]
            details[name] = [p is None for p in runs]
            continue
        problem = _history_problem(name, value if not (name == "ae_histories" and value == []) else None,
                                   float(params["min_drop"]))
        if value is None and read_errors.get(name):
            problem = (f"{name} could not be read ({short(read_errors[name])}): make it a list of floats, "
                       f"one mean training loss per epoch")
        if problem is None:
            verdict = (verdicts.get(name) or [(None, None, None)])[0][2]
            if verdict is None or not verdict.ok:
                problem = verdict.message if verdict is not None else f"{name} could not be checked"
        earned += weight if problem is None else 0.0
        details[name] = problem is None
        if problem:
            problems.append(problem.rstrip("."))
    details["agreement"] = {label: {key: verdict.details.get(key) for key in ("last_ratio", "first", "model_untrained")}
                            for runs in verdicts.values() for label, _, verdict in runs}
    total = sum(float(w) for w in weights.values())
    fraction = earned / total if total else 0.0
    if not problems:
        return CheckResult("", fraction, "Every recorded training loss falls, and agrees with the grader's evaluation "
                                         "of the model it belongs to.", details)
    prefix = f"{probe_error} " if probe_error else ""
    return CheckResult("", fraction, prefix + "; ".join(problems) + ".", details)


def _matches(y: np.ndarray, history: np.ndarray) -> str | None:
    """How a plotted line is `history`: "per epoch" (the same values, or their negatives, with or without a value
    for epoch 0 in front), "per batch" (blocks of equal length whose means are the history), or None."""
    n = history.size
    for values in (y, -y):
        if values.size == n and np.allclose(values, history, rtol=1e-3, atol=1e-6):
            return "per epoch"
        if values.size == n + 1 and np.allclose(values[1:], history, rtol=1e-3, atol=1e-6):
            return "per epoch"
        if values.size >= 2 * n and values.size % n == 0:
            means = values.reshape(n, -1).mean(1)
            if np.allclose(means, history, rtol=2e-2, atol=1e-6):
                return "per batch"
    return None


LOSS_WORDS = ("loss", "elbo", "nll", "likelihood", "kl", "bce", "error", "mse", "nats")
EPOCH_WORDS = ("epoch", "iteration", "step", "batch")


@check("figure_training_curve", form=0.3, shows=0.7, min_drop=0.05, exclude_titles=list(OTHER_MODEL_WORDS),
       unless_titles=list(VAE_WORDS))
def figure_training_curve(artefacts: dict, probe_inputs: dict, params: dict) -> CheckResult:
    """A plotted line that IS a VAE's training history (vae_history or gaussian_vae_history, per epoch or per batch),
    and that history agrees with the grader's evaluation of the trained model: only then the figure counts.
    `form`: the axes say what they show (x: epoch, y: the loss), half each. `shows`: the loss falls by at least
    `min_drop`. A curve of numbers that no model of the notebook produced earns nothing."""
    all_figures = artefacts.get("figures") or []
    figures = vae_figures(all_figures, params)
    verdicts = history_verdicts(artefacts, probe_inputs, params)
    histories = [(label, np.asarray(values, float), verdict) for name in ("vae_history", "gaussian_vae_history")
                 for label, values, verdict in verdicts.get(name, [])]
    best, best_score, untied = None, -1.0, 0
    for _, figure, axes in all_axes(figures):
        text, xlabel = axes_text(figure, axes), str(axes.get("xlabel") or "").lower()
        for line in axes.get("lines") or []:
            if not isinstance(line, dict):
                continue
            _, y = line_xy(line)
            if y.size < 2 or not np.all(np.isfinite(y)):
                continue
            tied = [(label, history, verdict, how) for label, history, verdict in histories
                    if (how := _matches(y, history))]
            if not tied:
                untied += 1
                continue
            label, history, verdict, how = max(tied, key=lambda t: t[2].ok)
            form = 0.5 * any(w in xlabel for w in EPOCH_WORDS) + 0.5 * any(w in text for w in LOSS_WORDS)
            falls = _history_problem(label, list(history), float(params["min_drop"])) is None
            score = (float(params["form"]) * form + float(params["shows"]) * falls) if verdict.ok else 0.0
            if score > best_score:
                best, best_score = (label, verdict, how, form, falls, history), score
    if best is None:
        what = (f"{untied} plotted line(s), none of them your vae_history or gaussian_vae_history" if untied else
                figure_summary(all_figures))
        return CheckResult("", 0.0, f"No training curve of your VAE found: {what}{excluded_note(all_figures, figures)}. "
                                    f"Plot the history your training returned, e.g. plt.plot(vae_history), with "
                                    f"xlabel 'epoch' and ylabel 'loss'.", {"untied_lines": untied})
    label, verdict, how, form, falls, history = best
    details = {"history": label, "plotted": how, "first": float(history[0]), "last": float(history[-1]),
               **{f"model_{k}": v for k, v in verdict.details.items() if k in ("model_last", "last_ratio")}}
    if not verdict.ok:
        return CheckResult("", 0.0, f"Your training curve plots {label}, but {verdict.message[0].lower()}"
                                    f"{verdict.message[1:]} A curve earns points only when it shows the training "
                                    f"of the model your notebook ended with.", details)
    notes = []
    if not falls:
        notes.append(_history_problem(label, list(history), float(params["min_drop"])))
    if form < 1:
        notes.append("label the axes: the epoch on x (plt.xlabel('epoch')) and the loss on y "
                     "(plt.ylabel('negative ELBO (nats per image)'))")
    if not notes:
        return CheckResult("", best_score, f"Training curve of {label} found ({how}): the loss falls from "
                                           f"{fmt(history[0])} to {fmt(history[-1])}, and the grader's evaluation of "
                                           f"your model agrees.", details)
    return CheckResult("", best_score, f"Training curve of {label} ({how}): " + "; ".join(notes) + ".", details)
