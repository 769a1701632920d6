"""Checks of the trained models, from what the grader measured itself (probes vae_model, gaussian_vae_model,
ae_models: autograder/probing/model_probes.py), and the verification of what the notebook reported about them.

- `vae_verdict`: is `vae` a trained neural VAE? Its decoder's output must depend on its weights (re-initialising
  them changes it) and vary smoothly with z (a finite-difference Jacobian of a trained decoder's size), gradients
  must reach its parameters, its samples must not be copies of dataset images, and training must have lowered its
  negative ELBO well below that of a fresh copy. The figure and image items are judged only for a genuine VAE.
- `history_verdict`: does a reported training history agree with the model? Its last value must match the
  grader's evaluation of the trained model (in the units of the student's own loss, identified by the loss item),
  its first value must not exceed the evaluation of a freshly initialised copy. Histories that do not agree earn
  nothing: a list of numbers is not evidence of training.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from autograder.checks.elbo import KL_REDUCTIONS, RECON_REDUCTIONS, identify_loss
from autograder.checks.registry import ProbeMissing, fmt, probe

PIXELS = 784

# The defaults of the gate; calibrated by bench/calibrate.py (numbers in rubric.yaml and the README).
GENUINE_DEFAULTS = {"min_reinit_change": 0.02, "min_jacobian": 0.05, "copy_rmse": 0.03,
                    "max_copy_fraction": 0.2, "max_trained_ratio": 0.85}
HISTORY_DEFAULTS = {"last_low": 0.8, "last_high": 1.3, "first_slack": 1.1}


@dataclass(frozen=True)
class Verdict:
    ok: bool
    message: str          # for the student: why not (or a one-line summary when ok)
    details: dict


def _model(artefacts: dict, name: str) -> dict:
    value = probe(artefacts, name)
    if not isinstance(value, dict):
        raise ValueError(f"the {name} probe answer is not a dict")
    return value


def vae_verdict(artefacts: dict, params: dict | None = None) -> Verdict:
    """Whether `vae` is a genuine trained VAE, with the reason when not."""
    p = {**GENUINE_DEFAULTS, **(params or {})}
    try:
        m = _model(artefacts, "vae_model")
    except ProbeMissing as missing:
        return Verdict(False, f"The grader could not evaluate your trained vae: {missing}", {"missing": True})
    details = {key: m.get(key) for key in ("nelbo_train", "nelbo_test", "nelbo_untrained", "decoder_reinit_change",
                                           "decoder_jacobian_median", "prior_copy_rmse_median",
                                           "decoder_parameters_with_gradient")}
    copies = np.asarray(m.get("prior_copy_rmse") or [], np.float64)
    copy_fraction = float(np.mean(copies < p["copy_rmse"])) if copies.size else 0.0
    details["copy_fraction"] = copy_fraction
    problems = []
    if (m.get("decoder_parameters_with_gradient") or 0) < 1:
        problems.append("no gradient reaches the parameters of vae.decoder from its output: it is not a neural "
                        "network of its input z")
    if (m.get("decoder_reinit_change") or 0.0) < p["min_reinit_change"]:
        problems.append("vae.decoder gives the same images when its weights are re-initialised: its output does "
                        "not come from its weights")
    if (m.get("decoder_jacobian_median") or 0.0) < p["min_jacobian"]:
        problems.append("vae.decoder's images do not change when z moves a little: a decoder is a smooth function "
                        "of z")
    if copy_fraction > p["max_copy_fraction"]:
        problems.append(f"{copy_fraction:.0%} of the images vae.decoder generates from z ~ N(0, I) are copies of "
                        f"MNIST images: a VAE generates new images")
    if problems:
        return Verdict(False, "Your vae is not a trained neural VAE as the grader sees it: " + "; ".join(problems)
                       + ".", details)
    trained, untrained = m.get("nelbo_train"), m.get("nelbo_untrained")
    if trained is None or untrained is None or not math.isfinite(trained):
        return Verdict(False, "The grader could not compute your vae's negative ELBO (its outputs are not finite "
                              "probabilities).", details)
    if trained > p["max_trained_ratio"] * untrained:
        return Verdict(False, f"Your vae did not train: its negative ELBO on MNIST training images is "
                              f"{fmt(trained)} nats per image, about that of a freshly initialised copy "
                              f"({fmt(untrained)}). Check that the training loop calls optimizer.zero_grad(), "
                              f"loss.backward() and optimizer.step() on every batch.", details)
    return Verdict(True, f"Your vae was evaluated by the grader: negative ELBO {fmt(trained)} nats per image on "
                         f"training images, {fmt(m.get('nelbo_test'))} on test images (a fresh copy: "
                         f"{fmt(untrained)}).", details)


def _scaled(found, recon: float, kl: float, batch: int, latent: int) -> float:
    """The student's loss (an elbo.Identified form) for per-image means `recon` (BCE or summed squared error) and
    `kl`, on batches of `batch` images."""
    r_name, k_name = found.structure
    return ((found.c * recon + found.offset) * RECON_REDUCTIONS[r_name][1](batch, PIXELS)
            + kl * KL_REDUCTIONS[k_name][1](batch, latent))


def _expected(name: str, artefacts: dict, probe_inputs: dict, profile: dict) -> tuple[float, float] | str:
    """(expected last value, value of a fresh model) of history `name` in the student's units, or why unknown."""
    batch = int((profile or {}).get("BATCH_SIZE") or 128)
    if name == "vae_history":
        m = _model(artefacts, "vae_model")
        found = identify_loss("bernoulli", artefacts, probe_inputs)
        if found is None:
            return ("your bernoulli_vae_loss is not one of the forms the grader recognises (see the loss item), "
                    "so your history cannot be compared with your model")
        latent = int(m.get("latent_dims") or 2)
        return (_scaled(found, m["bce_train"], m["kl_train"], batch, latent),
                _scaled(found, m["bce_untrained"], m["kl_untrained"], batch, latent))
    if name == "gaussian_vae_history":
        m = _model(artefacts, "gaussian_vae_model")
        found = identify_loss("gaussian", artefacts, probe_inputs)
        if found is None:
            return ("your gaussian_vae_loss is not one of the forms the grader recognises (see the loss item), so "
                    "your history cannot be compared with your model")
        return (_scaled(found, m["squared_error_train"], m["kl_train"], batch, 2),
                _scaled(found, m["squared_error_untrained"], m["kl_untrained"], batch, 2))
    raise KeyError(name)


def history_verdict(name: str, history, expected, params: dict | None = None) -> Verdict:
    """`expected`: (last value the model gives, value of a fresh copy) or the reason it is unknown."""
    p = {**HISTORY_DEFAULTS, **(params or {})}
    if isinstance(expected, str):
        return Verdict(False, f"{name} could not be checked: {expected}.", {"reason": expected})
    last_expected, fresh = expected
    values = np.asarray(history, np.float64).ravel()
    details = {"first": float(values[0]), "last": float(values[-1]), "model_last": last_expected,
               "model_untrained": fresh}
    if not (math.isfinite(last_expected) and math.isfinite(fresh)) or last_expected <= 0:
        return Verdict(False, f"{name} could not be checked: the grader's evaluation of your model is not a positive "
                              f"finite number ({fmt(last_expected)}).", details)
    ratio = values[-1] / last_expected
    details["last_ratio"] = float(ratio)
    if not p["last_low"] <= ratio <= p["last_high"]:
        return Verdict(False, f"{name} ends at {fmt(values[-1])}, but the grader's evaluation of your trained model "
                              f"gives {fmt(last_expected)} (a freshly initialised one: {fmt(fresh)}): the recorded "
                              f"history does not belong to the model your notebook ended with.", details)
    if values[0] > p["first_slack"] * fresh:
        return Verdict(False, f"{name} starts at {fmt(values[0])}, above the loss of a freshly initialised model "
                              f"({fmt(fresh)}): training cannot start higher than that.", details)
    return Verdict(True, f"{name} agrees with the grader's evaluation of your model ({fmt(values[-1])} vs "
                         f"{fmt(last_expected)}).", details)


def ae_history_verdict(index: int, history, artefacts: dict, params: dict | None = None) -> Verdict:
    try:
        runs = probe(artefacts, "ae_models")
    except ProbeMissing as missing:
        return Verdict(False, f"ae_histories[{index}] could not be checked: {missing}", {})
    if not isinstance(runs, list) or index >= len(runs) or "mse_train" not in (runs[index] or {}):
        return Verdict(False, f"ae_histories[{index}] could not be checked: ae_models[{index}] is not a trained "
                              "autoencoder the grader could evaluate.", {})
    run = runs[index]
    return history_verdict(f"ae_histories[{index}]", history, (run["mse_train"], run["mse_untrained"]), params)


def verified_history(name: str, history, artefacts: dict, probe_inputs: dict, profile: dict,
                     params: dict | None = None) -> Verdict:
    try:
        expected = _expected(name, artefacts, probe_inputs, profile)
    except ProbeMissing as missing:
        expected = str(missing).rstrip(".")
    except (KeyError, TypeError, ValueError) as error:
        expected = f"the grader's evaluation of your model is incomplete ({type(error).__name__})"
    return history_verdict(name, history, expected, params)
