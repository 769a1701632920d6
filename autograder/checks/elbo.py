"""Checks of the ELBO's parts on the grader's inputs: the KL divergence (closed form, summed over latent dimensions,
averaged over the batch), the two VAE losses (reconstruction and KL in the right proportion) and the
reparameterization trick. Known mistakes are recognised by comparing the student's numbers with candidate WRONG
formulas, so the message can name the mistake."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from autograder.checks.registry import (CHECK_DEFAULTS, CheckResult, ProbeMissing, array, check, close, error_hint, fmt, inputs, probe,
                                        scalar, sentence, short)


# --- KL divergence -----------------------------------------------------------------------------------------------

def _log_abs(x: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(np.abs(x))


def _log(x: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(x)


# Per-element bracket of the KL, term(mu, lv) with KL_row = -0.5 * reduce(term): the correct one and known mistakes.
KL_TERMS: dict[str, tuple[Callable[[np.ndarray, np.ndarray], np.ndarray], str]] = {
    "correct": (lambda mu, lv: 1 + lv - mu ** 2 - np.exp(lv), ""),
    "exp_2lv": (lambda mu, lv: 1 + lv - mu ** 2 - np.exp(2 * lv),
                "you use exp(2 * log_sigma_squared) as the variance, i.e. you treat log_sigma_squared as log(sigma): "
                "it is already log(sigma^2), so the variance is exp(log_sigma_squared)"),
    "lv_as_log_sigma": (lambda mu, lv: 1 + 2 * lv - mu ** 2 - np.exp(2 * lv),
                        "you treat log_sigma_squared as log(sigma) (2*lv and exp(2*lv)): it is already the "
                        "log-variance; use 1 + lv - mu^2 - exp(lv)"),
    "lv_squared": (lambda mu, lv: 1 + lv - mu ** 2 - lv ** 2,
                   "you use the log-variance as a standard deviation (lv**2 in place of exp(lv)): the variance is "
                   "exp(log_sigma_squared)"),
    "lv_as_std": (lambda mu, lv: 1 + _log_abs(lv ** 2) - mu ** 2 - lv ** 2,
                  "you use log_sigma_squared as a standard deviation (log(lv^2) and lv^2): it is the log-variance, "
                  "so log sigma^2 = lv and sigma^2 = exp(lv)"),
    "lv_as_variance": (lambda mu, lv: 1 + lv - mu ** 2 - lv,
                       "you use log_sigma_squared itself as the variance: exponentiate it, sigma^2 = exp(lv)"),
    "log_of_lv": (lambda mu, lv: 1 + _log(lv) - mu ** 2 - lv,
                  "you take log(log_sigma_squared) and use lv as the variance: lv already is log(sigma^2); "
                  "the variance is exp(lv)"),
    "mu_not_squared": (lambda mu, lv: 1 + lv - mu - np.exp(lv),
                       "mu is not squared: the term is mu**2 (mu.pow(2))"),
    "sign_flipped": (lambda mu, lv: -(1 + lv - mu ** 2 - np.exp(lv)),
                     "the sign is flipped: KL = -0.5 * sum(1 + lv - mu^2 - exp(lv)) is never negative"),
    "no_half": (lambda mu, lv: 2 * (1 + lv - mu ** 2 - np.exp(lv)),
                "the factor is -1 instead of -0.5: KL = -0.5 * sum(1 + lv - mu^2 - exp(lv))"),
}


def kl_rows(term: str, mu: np.ndarray, lv: np.ndarray, reduction: str) -> np.ndarray:
    fn = KL_TERMS[term][0]
    with np.errstate(all="ignore"):
        elements = fn(mu, lv)
        return -0.5 * (elements.sum(axis=1) if reduction == "sum" else elements.mean(axis=1))


def kl_answer(artefacts: dict) -> dict:
    answer = probe(artefacts, "kl")
    if not isinstance(answer, dict):
        raise ValueError("the kl probe answer is not a dict")
    return answer


def single_rows(answer: dict, batch: int) -> np.ndarray:
    """The per-row values; rejects a KL that returns a vector for one row (should be a scalar)."""
    single = answer.get("single")
    if not isinstance(single, list) or len(single) != batch:
        raise ValueError(f"'single' should hold {batch} values, one per row")
    values = []
    for value in single:
        if isinstance(value, list):
            flat = np.asarray(value, dtype=float).ravel()
            if flat.size != 1:
                raise ProbeMissing(f"kl_divergence returned {flat.size} values for a single row: it must return "
                                   f"one scalar (sum over latent dimensions, then mean over the batch).")
            value = flat[0]
        values.append(float(value) if value is not None else float("nan"))
    return np.asarray(values, dtype=float)


def identify_kl(single: np.ndarray, mu: np.ndarray, lv: np.ndarray, rtol: float, atol: float) -> tuple[str, str] | None:
    """(term, reduction over latent dims) whose per-row values match ALL of `single`, correct candidates first."""
    reductions = ("sum", "mean") if mu.shape[1] > 1 else ("sum",)
    for term in KL_TERMS:
        for reduction in reductions:
            if close(single, kl_rows(term, mu, lv, reduction), rtol, atol):
                return term, reduction
    return None


def kl_inputs(probe_inputs: dict) -> tuple[np.ndarray, np.ndarray]:
    spec = inputs(probe_inputs, "kl")
    mu, lv = array(spec["mu"], "mu"), array(spec["log_sigma_squared"], "log_sigma_squared")
    if mu.ndim != 2 or mu.shape != lv.shape:
        raise ValueError("kl probe inputs must be two B x K arrays")
    return mu, lv


@check("kl_closed_form", rtol=1e-4, atol=1e-4)
def kl_closed_form(artefacts: dict, probe_inputs: dict, params: dict) -> CheckResult:
    """Each single-row KL equals -0.5 * sum(1 + lv - mu^2 - exp(lv)); summing vs averaging over latent dims is
    graded by `kl_sums_latent_dims`, so either reduction is accepted here. Wrong formulas are named."""
    mu, lv = kl_inputs(probe_inputs)
    single = single_rows(kl_answer(artefacts), mu.shape[0])
    rtol, atol = float(params["rtol"]), float(params["atol"])
    found = identify_kl(single, mu, lv, rtol, atol)
    expected = kl_rows("correct", mu, lv, "sum")
    details = {"single": single, "expected": expected, "identified": list(found) if found else None}
    if found and found[0] == "correct":
        return CheckResult("", 1.0, "kl_divergence uses the closed form -0.5 * (1 + lv - mu^2 - exp(lv)).", details)
    if found:
        return CheckResult("", 0.0, f"kl_divergence: {KL_TERMS[found[0]][1]}.", details)
    # no candidate explains every row: credit the rows that match the correct form (summed or averaged)
    matched = [any(close(single[i], kl_rows('correct', mu[i:i + 1], lv[i:i + 1], r)[0], rtol, atol)
                   for r in ("sum", "mean")) for i in range(len(single))]
    wrong = [i for i, ok in enumerate(matched) if not ok]
    row = wrong[0]
    return CheckResult(
        "", sum(matched) / len(matched),
        f"kl_divergence does not match the closed form KL = -0.5 * sum_k(1 + lv_k - mu_k^2 - exp(lv_k)) on "
        f"{len(wrong)} of {len(matched)} rows: for mu={np.round(mu[row], 4).tolist()}, "
        f"log_sigma_squared={np.round(lv[row], 4).tolist()} it should be {fmt(expected[row])}, yours gives "
        f"{fmt(single[row])}.", details)


@check("kl_sums_latent_dims", rtol=1e-4, atol=1e-4)
def kl_sums_latent_dims(artefacts: dict, probe_inputs: dict, params: dict) -> CheckResult:
    """The per-row KL is a SUM over latent dimensions (independent dimensions add up), not a mean."""
    mu, lv = kl_inputs(probe_inputs)
    single = single_rows(kl_answer(artefacts), mu.shape[0])
    found = identify_kl(single, mu, lv, float(params["rtol"]), float(params["atol"]))
    details = {"identified": list(found) if found else None, "latent_dims": mu.shape[1]}
    if found is None:
        return CheckResult("", 0.0, "Cannot tell how kl_divergence reduces over the latent dimensions because its "
                                    "values match no known form (see the KL formula item); it should sum the K "
                                    "terms of each row.", details)
    if found[1] == "sum":
        return CheckResult("", 1.0, "kl_divergence sums over the latent dimensions.", details)
    return CheckResult("", 0.0, f"kl_divergence AVERAGES over the latent dimensions (torch.mean over dim=1 or over "
                                f"everything): the KL of independent dimensions adds up, so yours is "
                                f"{mu.shape[1]} times too small. Use .sum(dim=1), then .mean() over the batch.", details)


@check("kl_batch_average", rtol=1e-4, atol=1e-4)
def kl_batch_average(artefacts: dict, probe_inputs: dict, params: dict) -> CheckResult:
    """The batch value is the mean of the per-row values (half) and does not change when the batch is doubled by
    repeating it (half). Summing over the batch is named. Compared with the student's OWN per-row values, so a wrong
    formula is not penalised twice; but a function whose value does not depend on its inputs (the same number for
    every row) computes no KL at all and earns nothing."""
    mu, lv = kl_inputs(probe_inputs)
    answer = kl_answer(artefacts)
    rtol, atol = float(params["rtol"]), float(params["atol"])
    try:
        rows = single_rows(answer, mu.shape[0])
    except ValueError:
        rows = kl_rows("correct", mu, lv, "sum")
    if np.all(np.isfinite(rows)) and np.ptp(rows) <= atol and np.ptp(kl_rows("correct", mu, lv, "sum")) > 10 * atol:
        return CheckResult("", 0.0, f"kl_divergence returns {fmt(rows[0])} for every row of the grader's batch, "
                                    f"whatever mu and log_sigma_squared are: it must compute the KL from its inputs.",
                           {"single": rows})
    if not np.all(np.isfinite(rows)):
        rows = kl_rows("correct", mu, lv, "sum")
    batch, doubled = answer.get("batch"), answer.get("batch_doubled")
    if isinstance(batch, list):
        n = np.asarray(batch, dtype=float).size
        if n != 1:
            return CheckResult("", 0.0, f"kl_divergence returns {n} values for a batch: it must return one scalar, "
                                        f"the per-sample KL (summed over latent dimensions) averaged over the batch.",
                               {"batch_size": mu.shape[0]})
        batch = float(np.asarray(batch, dtype=float).ravel()[0])
    if isinstance(doubled, list):
        doubled = float(np.asarray(doubled, dtype=float).ravel()[0]) if np.asarray(doubled).size == 1 else None
    batch = float(batch) if batch is not None else float("nan")
    doubled = float(doubled) if doubled is not None else float("nan")
    details = {"batch": batch, "batch_doubled": doubled, "row_mean": rows.mean(), "row_sum": rows.sum()}
    if not math.isfinite(batch):
        return CheckResult("", 0.0, f"kl_divergence on a batch of {mu.shape[0]} returned {batch}: it should be a "
                                    f"finite scalar.", details)
    mean_ok = close(batch, rows.mean(), rtol, atol)
    stable = math.isfinite(doubled) and close(doubled, batch, rtol, atol)
    summed = close(batch, rows.sum(), rtol, atol) or (math.isfinite(doubled) and close(doubled, 2 * batch, rtol, atol)
                                                       and not close(batch, 0.0, rtol, atol))
    if mean_ok and stable:
        return CheckResult("", 1.0, "kl_divergence averages over the batch.", details)
    if summed and not mean_ok:
        return CheckResult("", 0.0, "Your KL grows with the batch size: it is summed over the batch (doubling the "
                                    "batch doubles it). Sum over latent dimensions, then average over the batch: "
                                    "kl.sum(dim=1).mean(). Otherwise the KL and reconstruction terms lose their "
                                    "proportion whenever the batch size changes.", details)
    problems = []
    if not mean_ok:
        problems.append(f"on a batch of {mu.shape[0]} rows it returns {fmt(batch)}, but the mean of its values on "
                        f"the single rows is {fmt(rows.mean())}")
    if not stable:
        problems.append(f"repeating the batch twice changes it from {fmt(batch)} to {fmt(doubled)}")
    return CheckResult("", 0.5 * mean_ok + 0.5 * stable,
                       "kl_divergence is not an average over the batch: " + "; ".join(problems) +
                       ". Reduce with .sum(dim=1) over latent dimensions, then .mean() over the batch.", details)


# --- VAE losses --------------------------------------------------------------------------------------------------

def _bce(target: np.ndarray, prediction: np.ndarray) -> np.ndarray:
    """Element-wise binary cross-entropy with torch's clamp of log at -100."""
    with np.errstate(divide="ignore", invalid="ignore"):
        log_p = np.maximum(np.log(prediction), -100.0)
        log_q = np.maximum(np.log(1 - prediction), -100.0)
    return -(target * log_p + (1 - target) * log_q)


# A loss is (reconstruction reduction) + (KL reduction), identified jointly. R: per-row reconstruction summed over
# the D pixels, k: per-row KL summed over the K latent dims. `scale` is each term's weight relative to the correct
# reduction (B = batch size), so a mismatch tells how many times too much the KL weighs.
RECON_REDUCTIONS = {
    "correct": (lambda R, D: R.mean(), lambda B, D: 1.0, ""),
    "pixel_mean": (lambda R, D: R.mean() / D, lambda B, D: 1.0 / D,
                   "the reconstruction is averaged per pixel (a mean over all elements): sum it over the 784 pixels, "
                   "then average over the batch"),
    "batch_sum": (lambda R, D: R.sum(), lambda B, D: float(B),
                  "the reconstruction is summed over the batch: average it over the batch"),
    "pixel_mean_batch_sum": (lambda R, D: R.sum() / D, lambda B, D: B / D,
                             "the reconstruction is averaged over pixels and summed over the batch: sum over pixels, "
                             "average over the batch"),
}
KL_REDUCTIONS = {
    "correct": (lambda k, K: k.mean(), lambda B, K: 1.0, ""),
    "batch_sum": (lambda k, K: k.sum(), lambda B, K: float(B),
                  "the KL is summed over the batch: average it over the batch"),
    "element_mean": (lambda k, K: k.mean() / K, lambda B, K: 1.0 / K,
                     "the KL is averaged over the latent dimensions: sum over them"),
    "latent_mean_batch_sum": (lambda k, K: k.sum() / K, lambda B, K: B / K,
                              "the KL is averaged over latent dimensions and summed over the batch: sum over latent "
                              "dimensions, average over the batch"),
    "missing": (lambda k, K: 0.0 * k.sum(), lambda B, K: 0.0,
                "the KL term is missing: the negative ELBO is reconstruction + KL"),
    "subtracted": (lambda k, K: -k.mean(), lambda B, K: -1.0,
                   "the KL is subtracted: the negative ELBO ADDS the KL to the reconstruction"),
}
# the student's kl_divergence reductions (latent dims, batch), as identified from the `kl` probe -> KL structure
KL_PROBE_STRUCTURES = {("sum", "mean"): "correct", ("sum", "sum"): "batch_sum", ("mean", "mean"): "element_mean",
                       ("mean", "sum"): "latent_mean_batch_sum"}


def _loss_inputs(probe_inputs: dict) -> dict:
    spec = inputs(probe_inputs, "loss")
    x, xr = array(spec["x"], "x"), array(spec["x_reconstructed"], "x_reconstructed")
    mu, lv = array(spec["mu"], "mu"), array(spec["log_sigma_squared"], "log_sigma_squared")
    return {"x": x, "xr": xr, "B": x.shape[0], "D": x.shape[1], "K": mu.shape[1],
            "kl_rows": kl_rows("correct", mu, lv, "sum")}


def _nearest(value: float, candidates: dict, rtol: float, atol: float):
    """The key of the candidate closest to `value` among those within tolerance, or None."""
    best, best_err = None, math.inf
    for key, expected in candidates.items():
        if not math.isfinite(expected):
            continue
        err = abs(value - expected)
        if err <= atol + rtol * abs(expected) and err < best_err:
            best, best_err = key, err
    return best


def _student_kl_structure(artefacts: dict, probe_inputs: dict, rtol: float, atol: float) -> str | None:
    """How the student's own kl_divergence reduces (from the `kl` probe), as a KL_REDUCTIONS name."""
    try:
        mu, lv = kl_inputs(probe_inputs)
        answer = kl_answer(artefacts)
        rows = single_rows(answer, mu.shape[0])
        found = identify_kl(rows, mu, lv, rtol, atol)
        batch = scalar(answer.get("batch"))
    except Exception:
        return None
    if found is None or batch is None:
        return None
    over_batch = "mean" if close(batch, rows.mean(), rtol, atol) else "sum" if close(batch, rows.sum(), rtol, atol) \
        else None
    return KL_PROBE_STRUCTURES.get((found[1], over_batch))


def _judge_loss(which: str, recon: str, kl: str, data: dict, params: dict, student_kl: str | None,
                c: float | None = None) -> tuple[float, str]:
    """Fraction and message for an identified (reconstruction, KL) pair."""
    partial = params.get("partial") or {}
    function = f"{which}_vae_loss"
    if recon == "correct" and kl == "correct":
        what = ("BCE summed over pixels, averaged over the batch, plus the KL" if which == "bernoulli" else
                f"c * (squared error summed over pixels) averaged over the batch plus the KL (c = {c:.4g}, i.e. a "
                f"fixed variance sigma^2 = {1 / (2 * c):.4g})")
        return 1.0, f"{function} is {what}."
    r_scale = RECON_REDUCTIONS[recon][1](data["B"], data["D"])
    k_scale = KL_REDUCTIONS[kl][1](data["B"], data["K"])
    if recon == "pixel_mean" and kl == "correct":
        return float(partial.get("recon_pixel_mean", 0.0)), (
            f"{function}: the reconstruction is averaged per pixel while the KL is summed per sample: the KL then "
            f"weighs 784 times too much (blurry, collapsed samples). Sum the reconstruction over the 784 pixels, then "
            f"average both terms over the batch.")
    parts = [RECON_REDUCTIONS[recon][2], KL_REDUCTIONS[kl][2]]
    message = f"{function}: " + "; ".join(p for p in parts if p)
    if k_scale > 0 and r_scale > 0:
        ratio = k_scale / r_scale
        if math.isclose(ratio, 1.0):
            return float(partial.get("proportion_kept", 0.0)), (
                message + ". The two terms keep their proportion, but the loss (and the step size) changes with the "
                          "batch size.")
        message += (f". Together the KL weighs {ratio:.4g} times too much" if ratio > 1 else
                    f". Together the KL weighs {1 / ratio:.4g} times too little") + " relative to the reconstruction."
    else:
        message += "."
    if recon == "correct" and kl == student_kl:
        return float(partial.get("kl_inherited", 0.0)), (
            f"{function}: the reconstruction term is right; the KL term inherits the mistake of your kl_divergence "
            f"({KL_REDUCTIONS[kl][2]}); fix kl_divergence (see the KL items).")
    return 0.0, message


@dataclass(frozen=True)
class Identified:
    """A loss identified on the grader's batch: its (reconstruction, KL) reductions (RECON_REDUCTIONS x
    KL_REDUCTIONS names, or "swapped" for the reconstruction), and for the Gaussian loss the weight c of the summed
    squared error and a constant per image (the Gaussian normaliser D/2 log(2 pi variance), when included)."""
    structure: tuple
    c: float = 1.0
    offset: float = 0.0
    variance_ignored: bool = False


def identify_bernoulli(value: float, data: dict, rtol: float, atol: float) -> Identified | None:
    R = _bce(data["x"], data["xr"]).sum(axis=1)
    swapped = _bce(data["xr"], data["x"]).sum(axis=1)     # binary_cross_entropy(x, x_reconstructed)
    k, D, K = data["kl_rows"], data["D"], data["K"]
    candidates = {(r, q): float(rf(R, D) + qf(k, K)) for r, (rf, _, _) in RECON_REDUCTIONS.items()
                  for q, (qf, _, _) in KL_REDUCTIONS.items()}
    candidates.update({("swapped", q): float(swapped.mean() + qf(k, K)) for q, (qf, _, _) in KL_REDUCTIONS.items()})
    found = _nearest(value, candidates, rtol, atol)
    return Identified(found) if found else None


def _grade_bernoulli(value: float, data: dict, params: dict, student_kl: str | None) -> tuple[float, str, dict]:
    rtol, atol = float(params["rtol"]), float(params["atol"])
    found = identify_bernoulli(value, data, rtol, atol)
    expected = float(RECON_REDUCTIONS["correct"][0](_bce(data["x"], data["xr"]).sum(axis=1), data["D"])
                     + data["kl_rows"].mean())
    details = {"value": value, "expected": expected, "identified": list(found.structure) if found else []}
    if found and found.structure[0] == "swapped":
        return (float((params.get("partial") or {}).get("bce_arguments_swapped", 0.0)),
                "bernoulli_vae_loss: the arguments of binary_cross_entropy are swapped: it is "
                "F.binary_cross_entropy(x_reconstructed, x) (prediction first, target second).", details)
    if found:
        fraction, message = _judge_loss("bernoulli", *found.structure, data, params, student_kl)
        return fraction, message, details
    return 0.0, (f"bernoulli_vae_loss returns {fmt(value)} on the grader's batch; the negative ELBO (BCE summed over "
                 f"pixels and averaged over the batch, plus the KL summed over latent dimensions and averaged over the "
                 f"batch) is {fmt(expected)}, and no known mistake explains your value."), details


# Gaussian reconstruction weights c(variance) for the summed squared error: the right one, 1 / (2 variance), and
# the mistakes seen with it (the variance used as a standard deviation, the factor 2 forgotten).
GAUSSIAN_WEIGHTS = {
    "correct": (lambda v: 1.0 / (2.0 * v), ""),
    "variance_as_std": (lambda v: 1.0 / (2.0 * v * v), "the variance is squared: `variance` already is sigma^2, so "
                                                        "divide the squared error by 2 * variance"),
    "no_half": (lambda v: 1.0 / v, "the factor 1/2 is missing: the Gaussian log-likelihood is -(x - mean)^2 / "
                                   "(2 variance)"),
}


def identify_gaussian(values: dict, data: dict, params: dict) -> Identified | None:
    """From the loss at the contract's variance (0.1) and at a second variance the grader drew: which reductions,
    which weight c(variance), with or without the normaliser; or a loss that ignores its `variance` argument with
    one of the usual constants. The constant is pinned: two variances leave no freedom."""
    rtol, atol = float(params["rtol"]), float(params["atol"])
    first, second = scalar(values.get("gaussian")), scalar(values.get("gaussian_at_variance"))
    v1, v2 = float(params["gaussian_variance"]), scalar(values.get("gaussian_variance"))
    if first is None or second is None or v2 is None:
        return None
    R = ((data["x"] - data["xr"]) ** 2).sum(axis=1)
    k, D, K = data["kl_rows"], data["D"], data["K"]
    for (r, (rf, rscale, _)), (q, (qf, _, _)) in ((a, b) for a in RECON_REDUCTIONS.items()
                                                  for b in KL_REDUCTIONS.items()):
        a, b = float(rf(R, D)), float(qf(k, K))
        scale = rscale(data["B"], D)
        for weight, (c_of, _) in GAUSSIAN_WEIGHTS.items():
            for normalised in (False, True):
                def predicted(v):
                    offset = 0.5 * D * math.log(2 * math.pi * v) * scale if normalised else 0.0
                    return c_of(v) * a + b + offset
                if close(first, predicted(v1), rtol, atol) and close(second, predicted(v2), rtol, atol):
                    offset = 0.5 * D * math.log(2 * math.pi * v1) if normalised else 0.0
                    return Identified((r, q), c_of(v1), offset, False) if weight == "correct" else \
                        Identified((r, q, weight), c_of(v1), offset, False)
        if close(first, second, rtol, atol):
            for c in params["gaussian_usual_c"]:
                if close(first, c * a + b, rtol, atol):
                    return Identified((r, q), float(c), 0.0, True)
    return None


def _grade_gaussian(values: dict, data: dict, params: dict, student_kl: str | None) -> tuple[float, str, dict]:
    found = identify_gaussian(values, data, params)
    v1 = float(params["gaussian_variance"])
    R = ((data["x"] - data["xr"]) ** 2).sum(axis=1)
    expected = float(R.mean() / (2 * v1) + data["kl_rows"].mean())
    details = {"value": scalar(values.get("gaussian")), "expected": expected,
               "identified": list(found.structure) if found else [], "c": found.c if found else None}
    if found is None:
        return 0.0, (f"gaussian_vae_loss returns {fmt(details['value'])} on the grader's batch with the default "
                     f"variance {v1:g}; the negative ELBO (squared error summed over pixels / (2 * variance), averaged "
                     f"over the batch, plus the KL) is {fmt(expected)}, and neither that, nor the same with the "
                     f"Gaussian's constant, nor a known mistake explains your values at variance {v1:g} and "
                     f"{fmt(values.get('gaussian_variance'))}."), details
    if len(found.structure) == 3:
        return 0.0, f"gaussian_vae_loss: {GAUSSIAN_WEIGHTS[found.structure[2]][1]}.", details
    fraction, message = _judge_loss("gaussian", *found.structure, data, params, student_kl, found.c)
    if found.variance_ignored:
        fraction *= float((params.get("partial") or {}).get("variance_ignored", 0.0))
        message = (f"gaussian_vae_loss ignores its `variance` argument (it gives the same value for variance "
                   f"{v1:g} and {fmt(values.get('gaussian_variance'))}): use it, squared error / (2 * variance). "
                   + ("" if fraction == 0 else message))
    return fraction, message, details


def identify_loss(which: str, artefacts: dict, probe_inputs: dict,
                  params: dict | None = None) -> Identified | None:
    """How the student's `which` ("bernoulli" or "gaussian") loss is built, from the loss probe; None when no known
    form matches (for the history checks, which compare a training history with the trained model)."""
    params = {**CHECK_DEFAULTS["loss_proportions"], **(params or {})}
    try:
        answer = probe(artefacts, "loss")
        data = _loss_inputs(probe_inputs)
    except (ProbeMissing, KeyError, TypeError, ValueError):
        return None
    if not isinstance(answer, dict):
        return None
    if which == "bernoulli":
        value = scalar(answer.get("bernoulli"))
        found = identify_bernoulli(value, data, float(params["rtol"]), float(params["atol"])) \
            if value is not None else None
        return found if found and found.structure[0] != "swapped" else None
    found = identify_gaussian(answer, data, params)
    return found if found and len(found.structure) == 2 else None


@check("loss_proportions", rtol=1e-4, atol=1e-3, gaussian_variance=0.1, gaussian_usual_c=[0.5, 1.0, 5.0],
       partial={"proportion_kept": 0.5, "kl_inherited": 0.5, "variance_ignored": 0.5},
       weights={"bernoulli": 0.5, "gaussian": 0.5})
def loss_proportions(artefacts: dict, probe_inputs: dict, params: dict) -> CheckResult:
    """Both losses must weigh reconstruction and KL in the right proportion (per-sample sums, batch means). The
    reconstruction and KL reductions are identified jointly. `partial` credits named mistakes: `proportion_kept`
    (both terms scaled alike, e.g. both summed over the batch), `kl_inherited` (the reconstruction is right and the KL
    term repeats the student's own kl_divergence mistake, already costed by the KL items), `recon_pixel_mean`,
    `bce_arguments_swapped` (default 0), `variance_ignored` (the Gaussian loss gives the right value at the
    default variance but ignores its argument). The Gaussian loss is evaluated at the default `gaussian_variance`
    and at a second variance drawn by the grader, which pins its constant. `bernoulli_doubled` / `gaussian_doubled`
    (the loss on the batch repeated twice) pin down batch summing."""
    answer = probe(artefacts, "loss")
    if not isinstance(answer, dict):
        raise ValueError("the loss probe answer is not a dict")
    data = _loss_inputs(probe_inputs)
    rtol, atol, partial = float(params["rtol"]), float(params["atol"]), params.get("partial") or {}
    student_kl = _student_kl_structure(artefacts, probe_inputs, 1e-4, 1e-4)
    weights = params["weights"]
    total_weight = sum(float(w) for w in weights.values())
    fraction, messages, details = 0.0, [], {"student_kl": student_kl}
    for which in ("bernoulli", "gaussian"):
        raw = answer.get(which)
        value = scalar(raw)
        error = (answer.get("errors") or {}).get(which) if isinstance(answer.get("errors"), dict) else None
        if error:
            part, message, info = 0.0, sentence(f"{which}_vae_loss raised {short(error)}{error_hint(error)}"), {}
        elif value is None:
            part, message, info = 0.0, (f"{which}_vae_loss must return one finite scalar (a 0-d tensor averaged over "
                                        f"the batch); it returned {short(repr(raw), 80)}."), {}
        else:
            if which == "bernoulli":
                part, message, info = _grade_bernoulli(value, data, params, student_kl)
            else:
                part, message, info = _grade_gaussian(answer, data, params, student_kl)
            doubled = scalar(answer.get(f"{which}_doubled"))
            if doubled is not None and not close(doubled, value, rtol, atol):
                part = min(part, float(partial.get("proportion_kept", 0.0)))
                message = (f"{message} {which}_vae_loss changes from {fmt(value)} to {fmt(doubled)} when the batch "
                           f"is repeated twice: it is summed over the batch; average over the batch instead.")
        fraction += float(weights.get(which, 0.0)) * part
        messages.append(message)
        details[which] = info
    return CheckResult("", fraction / total_weight if total_weight else 0.0, " ".join(messages), details)
