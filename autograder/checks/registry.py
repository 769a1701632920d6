"""Checks: harvested plain data (Artefacts JSON, probe inputs) -> a fraction in [0, 1] and a message that teaches.

Every check is a pure function `(artefacts, probe_inputs, params) -> CheckResult`, run in the GRADER's process on
plain numbers: nothing here runs student code or unpickles anything. Expected values are computed here with numpy
and scikit-learn from the probe inputs. Known mistakes are recognised by comparing the student's numbers with
candidate WRONG formulas, so the message can name the mistake instead of printing "expected X, got Y".

A check never raises: a missing or failed probe, a missing figure or a malformed answer gives fraction 0 and a message
saying what was not found (and the error the student's code raised). Artefacts and probe names: docs/contract.md.

`CHECKS` maps a check name to its function; `CHECK_DEFAULTS` maps it to its parameters and their defaults (the rubric
may override them; `rubric.py` rejects parameters a check does not know).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import wraps
from typing import Any, Callable

import numpy as np

PIXELS = 784
DIGIT_SIDE = 28


@dataclass
class CheckResult:
    check: str
    fraction: float                                # in [0, 1]
    message: str                                   # names the mistake and what to do; "" never for fraction < 1
    details: dict = field(default_factory=dict)    # plain JSON data (numbers, strings, lists) for instructors


CheckFn = Callable[[dict, dict, dict], CheckResult]
CHECKS: dict[str, CheckFn] = {}
CHECK_DEFAULTS: dict[str, dict] = {}

# the student-facing names behind each probe, for messages
PROBE_NAMES = {
    "encoder_shapes": "VAEEncoder", "decoder_output": "VAEDecoder", "kl": "kl_divergence",
    "loss": "bernoulli_vae_loss / gaussian_vae_loss", "reparameterize": "reparameterize",
    "pca": "pca_encode / pca_reconstruct / pca_generate", "histories": "ae_histories / vae_history / gaussian_vae_history",
    "sweep": "SWEEP_DIMS / reconstruction_errors",
}


class ProbeMissing(Exception):
    """The probe answer is absent or failed; the message is for the student."""


def check(name: str, **defaults) -> Callable[[CheckFn], CheckFn]:
    """Register a check under `name`; it never raises and always returns a clipped fraction."""
    def register(fn: CheckFn) -> CheckFn:
        @wraps(fn)
        def safe(artefacts: dict, probe_inputs: dict, params: dict | None = None) -> CheckResult:
            merged = {**defaults, **(params or {})}
            try:
                result = fn(artefacts if isinstance(artefacts, dict) else {},
                            probe_inputs if isinstance(probe_inputs, dict) else {}, merged)
            except ProbeMissing as missing:
                return CheckResult(name, 0.0, str(missing), {"missing": True})
            except Exception as error:  # a malformed answer must never stop grading
                return CheckResult(name, 0.0, f"Could not grade this item: your answer has an unexpected form "
                                              f"({type(error).__name__}: {_short(str(error))}). Check that your "
                                              f"functions return what docs/the template describe.",
                                   {"grader_exception": f"{type(error).__name__}: {_short(str(error), 500)}"})
            fraction = float(result.fraction) if math.isfinite(float(result.fraction)) else 0.0
            result.fraction = min(1.0, max(0.0, round(fraction, 6)))
            result.check = name
            result.details = _plain(result.details)
            return result
        CHECKS[name] = safe
        CHECK_DEFAULTS[name] = dict(defaults)
        return safe
    return register


# --- helpers -----------------------------------------------------------------------------------------------------

def _short(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _plain(value: Any) -> Any:
    """numpy scalars/arrays and tuples -> JSON-ready Python values; non-finite floats -> strings."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer, int)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if math.isfinite(value) else str(value)
    if value is None or isinstance(value, str):
        return value
    return str(value)


def probe(artefacts: dict, name: str) -> Any:
    """The value of probe `name`, or ProbeMissing with a message naming what was missing and why."""
    student = PROBE_NAMES.get(name, name)
    probes = artefacts.get("probes")
    if not isinstance(probes, dict) or name not in probes:
        raise ProbeMissing(f"No answer for {student} was harvested: the probe '{name}' did not run (the notebook "
                           f"stopped before the end, or the name is not defined). Make sure every cell runs "
                           f"top to bottom in a fresh kernel.")
    answer = probes[name]
    if not isinstance(answer, dict):
        raise ProbeMissing(f"The probe '{name}' for {student} gave an unreadable answer.")
    if not answer.get("ok", False):
        error = _short(answer.get("error") or "unknown error")
        undefined = _undefined_names(artefacts, student)
        hint = (f" Not defined in your notebook: {', '.join(undefined)} — define them with exactly these names."
                if undefined else "")
        raise ProbeMissing(_sentence(f"Calling {student} on the grader's inputs raised {error}{_error_hint(error)}")
                           + hint)
    return answer.get("value")


ERROR_HINTS = (
    ("expected a scalar", ": it must return ONE number for the batch (sum over latent dimensions or pixels, then "
                          ".mean() over the batch)"),
    ("must return (mu, log_sigma_squared)", ": forward must return the tuple (mu, log_sigma_squared)"),
    ("is not defined by the notebook", ": define it with exactly this name (see the template)"),
    ("mat1 and mat2", ": a Linear layer's in_features does not match its input; use the constructor's sizes "
                      "(dim_input, dim_latent, dim_hidden) instead of fixed numbers"),
    ("returned shape", ": z must have the shape of mu"),
    ("NoneType", ": your function returned None: is it still a TODO, or is a `return` missing?"),
)


def _sentence(text: str) -> str:
    return text if text.rstrip().endswith((".", "?", "!")) else text + "."


def _error_hint(error: str) -> str:
    return next((hint for needle, hint in ERROR_HINTS if needle in str(error)), "")


def _undefined_names(artefacts: dict, student: str) -> list[str]:
    names = (artefacts.get("probes") or {}).get("names") or {}
    defined = names.get("value") if isinstance(names, dict) and names.get("ok") else None
    if not isinstance(defined, dict):
        return []
    wanted = [n.strip() for n in student.replace("/", " ").split() if n.strip()]
    return [n for n in wanted if defined.get(n) is False]


def inputs(probe_inputs: dict, name: str) -> Any:
    value = probe_inputs.get(name)
    if value is None:
        raise ProbeMissing(f"The grader has no probe inputs for '{name}' (grader configuration problem: "
                           f"tell the course staff).")
    return value


def _array(value: Any, what: str) -> np.ndarray:
    array = np.asarray(value, dtype=float)
    if array.dtype == object:
        raise ValueError(f"{what} is not numeric")
    return array


def _close(a, b, rtol: float, atol: float) -> bool:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return a.shape == b.shape and bool(np.all(np.isfinite(a))) and bool(np.allclose(a, b, rtol=rtol, atol=atol))


def _scalar(value: Any) -> float | None:
    """A finite float from a number or a one-element (nested) list; None otherwise."""
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return None
    if array.size != 1 or not np.isfinite(array).all():
        return None
    return float(array.ravel()[0])


def _fmt(x: float) -> str:
    return f"{float(x):.6g}"


# --- encoder / decoder shapes ------------------------------------------------------------------------------------

def _cases(answer: Any) -> list[dict]:
    if not isinstance(answer, list):
        raise ValueError(f"expected a list of cases, got {type(answer).__name__}")
    return [case for case in answer if isinstance(case, dict)]


def _find_case(cases: list[dict], **key) -> dict | None:
    for case in cases:
        if all(case.get(k) == v for k, v in key.items()):
            return case
    return None


@check("encoder_shapes")
def encoder_shapes(artefacts: dict, probe_inputs: dict, params: dict) -> CheckResult:
    """Each (batch, dim_latent) case: mu and log_sigma_squared both (B, K); half a case per tensor."""
    cases = _cases(probe(artefacts, "encoder_shapes"))
    wanted = inputs(probe_inputs, "encoder_shapes")
    earned, problems, rows = 0.0, [], []
    for spec in wanted:
        batch, latent = int(spec["batch"]), int(spec["dim_latent"])
        expected = [batch, latent]
        case = _find_case(cases, batch=batch, dim_latent=latent)
        if case is None or case.get("error"):
            problems.append(f"VAEEncoder({spec.get('dim_input', PIXELS)}, {latent}) on a batch of {batch} "
                            f"{'raised ' + _short(case['error']) if case else 'gave no answer'}")
            rows.append({"batch": batch, "dim_latent": latent, "ok": False})
            continue
        ok_case = 0.0
        for key, label in (("mu_shape", "mu"), ("log_sigma_squared_shape", "log_sigma_squared")):
            got = list(case.get(key) or [])
            if got == expected:
                ok_case += 0.5
            else:
                problems.append(f"{label} has shape {tuple(got)} for a batch of {batch} with dim_latent={latent}; "
                                f"expected {tuple(expected)}{_shape_hint(got, batch, latent)}")
        earned += ok_case
        rows.append({"batch": batch, "dim_latent": latent, "ok": ok_case == 1.0})
    fraction = earned / max(1, len(wanted))
    if not problems:
        return CheckResult("", fraction, "VAEEncoder returns (mu, log_sigma_squared), each (batch, dim_latent), "
                                         "for every batch and latent size tried.", {"cases": rows})
    return CheckResult("", fraction, "VAEEncoder: " + "; ".join(problems[:4]) + ".", {"cases": rows})


def _shape_hint(got: list, batch: int, latent: int) -> str:
    if got == [batch, 2 * latent]:
        return " (both heads concatenated: return two tensors from two separate Linear heads)"
    if got == [latent] or got == [batch * latent]:
        return " (the batch dimension was squeezed or flattened: keep (B, K) even when B = 1)"
    if len(got) == 2 and got[0] == batch and got[1] != latent:
        return f" (the head has {got[1]} outputs: its out_features must be dim_latent, not a fixed number)"
    if got == [latent, batch]:
        return " (transposed)"
    return ""


@check("decoder_output", range_tolerance=1e-6)
def decoder_output(artefacts: dict, probe_inputs: dict, params: dict) -> CheckResult:
    """Each case: shape (B, dim_output) (half) and values in [0, 1] (half)."""
    cases = _cases(probe(artefacts, "decoder_output"))
    wanted = inputs(probe_inputs, "decoder_output")
    tol = float(params["range_tolerance"])
    earned, problems, rows = 0.0, [], []
    for spec in wanted:
        batch, latent, out = int(spec["batch"]), int(spec["dim_latent"]), int(spec.get("dim_output", PIXELS))
        case = _find_case(cases, batch=batch, dim_latent=latent)
        if case is None or case.get("error"):
            problems.append(f"VAEDecoder({latent}, {out}) on a batch of {batch} "
                            f"{'raised ' + _short(case['error']) if case else 'gave no answer'}")
            rows.append({"batch": batch, "dim_latent": latent, "ok": False})
            continue
        got, part = list(case.get("shape") or []), 0.0
        if got == [batch, out]:
            part += 0.5
        else:
            hint = " (return flat (B, 784) vectors; reshape to 28x28 only for plotting)" if got[-2:] == [28, 28] else ""
            problems.append(f"output shape {tuple(got)} for a batch of {batch}; expected {(batch, out)}{hint}")
        low, high = _scalar(case.get("min")), _scalar(case.get("max"))
        if low is not None and high is not None and low >= -tol and high <= 1 + tol:
            part += 0.5
        elif low is None or high is None:
            problems.append("the outputs contain NaN or infinite values: check the decoder's layers and activations")
        else:
            problems.append(f"outputs range over [{_fmt(low)}, {_fmt(high)}], outside [0, 1]: end the decoder "
                            f"with a Sigmoid so it returns Bernoulli means (probabilities)")
        earned += part
        rows.append({"batch": batch, "dim_latent": latent, "ok": part == 1.0})
    fraction = earned / max(1, len(wanted))
    if not problems:
        return CheckResult("", fraction, "VAEDecoder returns (batch, 784) values in [0, 1].", {"cases": rows})
    return CheckResult("", fraction, "VAEDecoder: " + "; ".join(problems[:4]) + ".", {"cases": rows})


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


def _kl_rows(term: str, mu: np.ndarray, lv: np.ndarray, reduction: str) -> np.ndarray:
    fn = KL_TERMS[term][0]
    with np.errstate(all="ignore"):
        elements = fn(mu, lv)
        return -0.5 * (elements.sum(axis=1) if reduction == "sum" else elements.mean(axis=1))


def _kl_answer(artefacts: dict) -> dict:
    answer = probe(artefacts, "kl")
    if not isinstance(answer, dict):
        raise ValueError("the kl probe answer is not a dict")
    return answer


def _single_rows(answer: dict, batch: int) -> np.ndarray:
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
            if _close(single, _kl_rows(term, mu, lv, reduction), rtol, atol):
                return term, reduction
    return None


def _kl_inputs(probe_inputs: dict) -> tuple[np.ndarray, np.ndarray]:
    spec = inputs(probe_inputs, "kl")
    mu, lv = _array(spec["mu"], "mu"), _array(spec["log_sigma_squared"], "log_sigma_squared")
    if mu.ndim != 2 or mu.shape != lv.shape:
        raise ValueError("kl probe inputs must be two B x K arrays")
    return mu, lv


@check("kl_closed_form", rtol=1e-4, atol=1e-4)
def kl_closed_form(artefacts: dict, probe_inputs: dict, params: dict) -> CheckResult:
    """Each single-row KL equals -0.5 * sum(1 + lv - mu^2 - exp(lv)); summing vs averaging over latent dims is
    graded by `kl_sums_latent_dims`, so either reduction is accepted here. Wrong formulas are named."""
    mu, lv = _kl_inputs(probe_inputs)
    single = _single_rows(_kl_answer(artefacts), mu.shape[0])
    rtol, atol = float(params["rtol"]), float(params["atol"])
    found = identify_kl(single, mu, lv, rtol, atol)
    expected = _kl_rows("correct", mu, lv, "sum")
    details = {"single": single, "expected": expected, "identified": list(found) if found else None}
    if found and found[0] == "correct":
        return CheckResult("", 1.0, "kl_divergence uses the closed form -0.5 * (1 + lv - mu^2 - exp(lv)).", details)
    if found:
        return CheckResult("", 0.0, f"kl_divergence: {KL_TERMS[found[0]][1]}.", details)
    # no candidate explains every row: credit the rows that match the correct form (summed or averaged)
    matched = [any(_close(single[i], _kl_rows('correct', mu[i:i + 1], lv[i:i + 1], r)[0], rtol, atol)
                   for r in ("sum", "mean")) for i in range(len(single))]
    wrong = [i for i, ok in enumerate(matched) if not ok]
    row = wrong[0]
    return CheckResult(
        "", sum(matched) / len(matched),
        f"kl_divergence does not match the closed form KL = -0.5 * sum_k(1 + lv_k - mu_k^2 - exp(lv_k)) on "
        f"{len(wrong)} of {len(matched)} rows: for mu={np.round(mu[row], 4).tolist()}, "
        f"log_sigma_squared={np.round(lv[row], 4).tolist()} it should be {_fmt(expected[row])}, yours gives "
        f"{_fmt(single[row])}.", details)


@check("kl_sums_latent_dims", rtol=1e-4, atol=1e-4)
def kl_sums_latent_dims(artefacts: dict, probe_inputs: dict, params: dict) -> CheckResult:
    """The per-row KL is a SUM over latent dimensions (independent dimensions add up), not a mean."""
    mu, lv = _kl_inputs(probe_inputs)
    single = _single_rows(_kl_answer(artefacts), mu.shape[0])
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
    formula is not penalised twice."""
    mu, lv = _kl_inputs(probe_inputs)
    answer = _kl_answer(artefacts)
    rtol, atol = float(params["rtol"]), float(params["atol"])
    try:
        rows = _single_rows(answer, mu.shape[0])
    except ValueError:
        rows = _kl_rows("correct", mu, lv, "sum")
    if not np.all(np.isfinite(rows)):
        rows = _kl_rows("correct", mu, lv, "sum")
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
    mean_ok = _close(batch, rows.mean(), rtol, atol)
    stable = math.isfinite(doubled) and _close(doubled, batch, rtol, atol)
    summed = _close(batch, rows.sum(), rtol, atol) or (math.isfinite(doubled) and _close(doubled, 2 * batch, rtol, atol)
                                                       and not _close(batch, 0.0, rtol, atol))
    if mean_ok and stable:
        return CheckResult("", 1.0, "kl_divergence averages over the batch.", details)
    if summed and not mean_ok:
        return CheckResult("", 0.0, "Your KL grows with the batch size: it is summed over the batch (doubling the "
                                    "batch doubles it). Sum over latent dimensions, then average over the batch: "
                                    "kl.sum(dim=1).mean(). Otherwise the KL and reconstruction terms lose their "
                                    "proportion whenever the batch size changes.", details)
    problems = []
    if not mean_ok:
        problems.append(f"on a batch of {mu.shape[0]} rows it returns {_fmt(batch)}, but the mean of its values on "
                        f"the single rows is {_fmt(rows.mean())}")
    if not stable:
        problems.append(f"repeating the batch twice changes it from {_fmt(batch)} to {_fmt(doubled)}")
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
    x, xr = _array(spec["x"], "x"), _array(spec["x_reconstructed"], "x_reconstructed")
    mu, lv = _array(spec["mu"], "mu"), _array(spec["log_sigma_squared"], "log_sigma_squared")
    return {"x": x, "xr": xr, "B": x.shape[0], "D": x.shape[1], "K": mu.shape[1],
            "kl_rows": _kl_rows("correct", mu, lv, "sum")}


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
        mu, lv = _kl_inputs(probe_inputs)
        answer = _kl_answer(artefacts)
        rows = _single_rows(answer, mu.shape[0])
        found = identify_kl(rows, mu, lv, rtol, atol)
        batch = _scalar(answer.get("batch"))
    except Exception:
        return None
    if found is None or batch is None:
        return None
    over_batch = "mean" if _close(batch, rows.mean(), rtol, atol) else "sum" if _close(batch, rows.sum(), rtol, atol) \
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


def _grade_bernoulli(value: float, data: dict, params: dict, student_kl: str | None) -> tuple[float, str, dict]:
    rtol, atol = float(params["rtol"]), float(params["atol"])
    R = _bce(data["x"], data["xr"]).sum(axis=1)
    swapped = _bce(data["xr"], data["x"]).sum(axis=1)     # binary_cross_entropy(x, x_reconstructed)
    k, D, K = data["kl_rows"], data["D"], data["K"]
    candidates = {(r, q): float(rf(R, D) + qf(k, K)) for r, (rf, _, _) in RECON_REDUCTIONS.items()
                  for q, (qf, _, _) in KL_REDUCTIONS.items()}
    candidates.update({("swapped", q): float(swapped.mean() + qf(k, K)) for q, (qf, _, _) in KL_REDUCTIONS.items()})
    found = _nearest(value, candidates, rtol, atol)
    details = {"value": value, "expected": candidates[("correct", "correct")], "identified": list(found or [])}
    if found and found[0] == "swapped":
        return (float((params.get("partial") or {}).get("bce_arguments_swapped", 0.0)),
                "bernoulli_vae_loss: the arguments of binary_cross_entropy are swapped: it is "
                "F.binary_cross_entropy(x_reconstructed, x) (prediction first, target second).", details)
    if found:
        fraction, message = _judge_loss("bernoulli", found[0], found[1], data, params, student_kl)
        return fraction, message, details
    return 0.0, (f"bernoulli_vae_loss returns {_fmt(value)} on the grader's batch; the negative ELBO (BCE summed over "
                 f"pixels and averaged over the batch, plus the KL summed over latent dimensions and averaged over the "
                 f"batch) is {_fmt(candidates[('correct', 'correct')])}, and no known mistake explains your value."), \
        details


def _grade_gaussian(value: float, data: dict, params: dict, student_kl: str | None) -> tuple[float, str, dict]:
    """Accepts value = c * mean_b(sum_pixels (x - mean)^2) + mean_b(KL_row) for any c in [c_min, c_max]
    (c = 1 / (2 sigma^2) for a fixed variance sigma^2). One number cannot identify c, so: first the usual constants
    (0.5: sigma^2 = 1; 1: summed MSE; 5: the template's sigma^2 = 0.1) are tried on every (reconstruction, KL) pair
    (an exact match names the mistake), then any c in range with the correct pair, then any c in range with a
    mistaken pair (first in RECON_REDUCTIONS x KL_REDUCTIONS order)."""
    rtol, atol = float(params["rtol"]), float(params["atol"])
    c_min, c_max = float(params["gaussian_c_min"]), float(params["gaussian_c_max"])
    R = ((data["x"] - data["xr"]) ** 2).sum(axis=1)
    k, D, K = data["kl_rows"], data["D"], data["K"]
    pairs = {(r, q): (float(rf(R, D)), float(qf(k, K))) for r, (rf, _, _) in RECON_REDUCTIONS.items()
             for q, (qf, _, _) in KL_REDUCTIONS.items()}
    exact = {(r, q, c): c * a + b for (r, q), (a, b) in pairs.items() for c in params["gaussian_usual_c"]}
    found = _nearest(value, exact, rtol, atol)
    implied = {pair: (value - b) / a if a else float("nan") for pair, (a, b) in pairs.items()}
    correct = ("correct", "correct")
    details = {"value": value, "implied_c": implied[correct],
               "expected_sigma2_1": 0.5 * pairs[correct][0] + pairs[correct][1]}
    pair, c = (found[:2], found[2]) if found else (None, None)
    if pair is None and c_min <= implied[correct] <= c_max:
        pair, c = correct, implied[correct]
    if pair is None:
        pair = next((p for p in pairs if p != correct and c_min <= implied[p] <= c_max), None)
        c = implied[pair] if pair else None
    details["identified"] = list(pair or [])
    if pair:
        fraction, message = _judge_loss("gaussian", pair[0], pair[1], data, params, student_kl, c)
        return fraction, message, details
    return 0.0, (f"gaussian_vae_loss returns {_fmt(value)} on the grader's batch; with a fixed variance sigma^2 = 1 "
                 f"the negative ELBO is 0.5 * sum over pixels of (x - mean)^2, averaged over the batch, plus the KL = "
                 f"{_fmt(details['expected_sigma2_1'])}. Yours matches no fixed variance between "
                 f"{1 / (2 * c_max):.3g} and {1 / (2 * c_min):.3g}, nor a known mistake."), details


@check("loss_proportions", rtol=1e-4, atol=1e-3, gaussian_c_min=0.05, gaussian_c_max=50.0,
       gaussian_usual_c=[0.5, 1.0, 5.0], partial={"proportion_kept": 0.5, "kl_inherited": 0.5},
       weights={"bernoulli": 0.5, "gaussian": 0.5})
def loss_proportions(artefacts: dict, probe_inputs: dict, params: dict) -> CheckResult:
    """Both losses must weigh reconstruction and KL in the right proportion (per-sample sums, batch means). The
    reconstruction and KL reductions are identified jointly. `partial` credits named mistakes: `proportion_kept`
    (both terms scaled alike, e.g. both summed over the batch), `kl_inherited` (the reconstruction is right and the KL
    term repeats the student's own kl_divergence mistake, already costed by the KL items), `recon_pixel_mean`,
    `bce_arguments_swapped` (default 0). Optional probe fields `bernoulli_doubled` / `gaussian_doubled` (the loss on
    the batch repeated twice), when the kernel provides them, pin down batch summing for any constant."""
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
        value = _scalar(raw)
        error = (answer.get("errors") or {}).get(which) if isinstance(answer.get("errors"), dict) else None
        if error:
            part, message, info = 0.0, _sentence(f"{which}_vae_loss raised {_short(error)}{_error_hint(error)}"), {}
        elif value is None:
            part, message, info = 0.0, (f"{which}_vae_loss must return one finite scalar (a 0-d tensor averaged over "
                                        f"the batch); it returned {_short(repr(raw), 80)}."), {}
        else:
            grade = _grade_bernoulli if which == "bernoulli" else _grade_gaussian
            part, message, info = grade(value, data, params, student_kl)
            doubled = _scalar(answer.get(f"{which}_doubled"))
            if doubled is not None and not _close(doubled, value, rtol, atol):
                part = min(part, float(partial.get("proportion_kept", 0.0)))
                message = (f"{which}_vae_loss changes from {_fmt(value)} to {_fmt(doubled)} when the batch is "
                           f"repeated twice: it is summed over the batch; average over the batch instead.")
        fraction += float(weights.get(which, 0.0)) * part
        messages.append(message)
        details[which] = info
    return CheckResult("", fraction / total_weight if total_weight else 0.0, " ".join(messages), details)


# --- reparameterization ------------------------------------------------------------------------------------------

@check("reparameterization", standard_errors=5.0, weights={"mean": 0.25, "variance": 0.5, "gradients": 0.25})
def reparameterization(artefacts: dict, probe_inputs: dict, params: dict) -> CheckResult:
    """n samples of reparameterize(mu, lv): per-dimension mean within `standard_errors` SE of mu (SE = sigma/sqrt(n)),
    variance within `standard_errors` SE of exp(lv) (SE of a sample variance = var * sqrt(2/(n-1))), and non-zero
    gradients to both inputs. Wrong variances are matched against: 0 (z = mu), lv^2 (lv as std), lv (no exp),
    exp(2 lv) (lv as log sigma), 1 (eps not scaled)."""
    answer = probe(artefacts, "reparameterize")
    spec = inputs(probe_inputs, "reparameterize")
    mu, lv, n = _array(spec["mu"], "mu").ravel(), _array(spec["log_sigma_squared"], "lv").ravel(), int(spec["n"])
    mean, var = _array(answer.get("mean"), "mean").ravel(), _array(answer.get("var"), "var").ravel()
    if mean.shape != mu.shape or var.shape != mu.shape:
        return CheckResult("", 0.0, f"reparameterize returned samples with {mean.size} dimensions for a "
                                    f"{mu.size}-dimensional mu: z must have the shape of mu.", {})
    z, w = float(params["standard_errors"]), params["weights"]
    sigma2 = np.exp(lv)
    var_se = lambda v: np.abs(v) * math.sqrt(2.0 / max(1, n - 1))
    mean_ok = bool(np.all(np.abs(mean - mu) <= z * np.sqrt(sigma2 / n) + 1e-6))
    var_ok = bool(np.all(np.isfinite(var)) and np.all(np.abs(var - sigma2) <= z * var_se(sigma2) + 1e-6))
    grads = [bool(answer.get("grad_mu_nonzero")), bool(answer.get("grad_log_sigma_squared_nonzero"))]
    fraction = w["mean"] * mean_ok + w["variance"] * var_ok + w["gradients"] * 0.5 * sum(grads)
    details = {"mean": mean, "var": var, "expected_mean": mu, "expected_var": sigma2, "grads": grads}
    problems = []
    if not var_ok:
        wrong = {
            "z = mu": (np.zeros_like(var),
                       "the samples have (almost) no variance: no sampling: z must be mu + eps * sigma with "
                       "eps = torch.randn_like(mu) and sigma = exp(0.5 * log_sigma_squared)"),
            "lv as std": (lv ** 2, "the variance of z is log_sigma_squared^2: you used the log-variance as a "
                                   "standard deviation; sigma = exp(0.5 * log_sigma_squared)"),
            "lv as variance": (lv, "the variance of z is log_sigma_squared itself: you used it as a variance "
                                   "(sqrt without exp); sigma = exp(0.5 * log_sigma_squared)"),
            "exp(lv) as std": (np.exp(2 * lv), "the variance of z is exp(log_sigma_squared)^2: you used exp(lv) as "
                                               "the standard deviation; sigma = exp(0.5 * log_sigma_squared)"),
            "eps unscaled": (np.ones_like(var), "the samples have variance 1: eps is not multiplied by sigma = "
                                                "exp(0.5 * log_sigma_squared)"),
        }
        named = None
        for label, (candidate, message) in wrong.items():
            if np.all(np.isfinite(var)) and np.all(np.abs(var - candidate) <= z * var_se(candidate) + 1e-6):
                named = (label, message)
                break
        if named is None and not np.all(np.isfinite(var)) and np.any(lv < 0):
            named = ("sqrt of negative", "the samples are NaN: you take the square root of a negative "
                                         "log-variance; sigma = exp(0.5 * log_sigma_squared)")
        details["identified"] = named[0] if named else None
        problems.append(named[1] if named else
                        f"the variance of z per dimension is {np.round(var, 4).tolist()}, expected exp(lv) = "
                        f"{np.round(sigma2, 4).tolist()}: sigma = exp(0.5 * log_sigma_squared)")
    if not mean_ok:
        problems.append(f"the mean of z is {np.round(mean, 4).tolist()}, expected mu = {np.round(mu, 4).tolist()}"
                        + (" (mu is not added: z = mu + eps * sigma)" if np.allclose(mean, 0, atol=0.05) and
                           not np.allclose(mu, 0, atol=0.05) else ""))
    if not all(grads):
        missing = [name for name, ok in zip(("mu", "log_sigma_squared"), grads) if not ok]
        problems.append(f"no gradient reaches {' and '.join(missing)}: build z from the input tensors with torch "
                        f"operations (no .detach(), .item(), numpy or torch.no_grad()) so both encoder heads learn")
    if not problems:
        return CheckResult("", fraction, "reparameterize draws z = mu + eps * exp(0.5 * lv) with the right mean and "
                                         "variance, and gradients reach both heads.", details)
    return CheckResult("", fraction, "reparameterize: " + "; ".join(problems) + ".", details)


# --- PCA ---------------------------------------------------------------------------------------------------------

@check("pca_agrees_with_sklearn", rtol=1e-4, atol=1e-5, weights={"encode": 1, "reconstruct": 1, "generate": 1})
def pca_agrees_with_sklearn(artefacts: dict, probe_inputs: dict, params: dict) -> CheckResult:
    """pca_encode / pca_reconstruct / pca_generate against the grader's own PCA(k, svd_solver="full") on the same
    data. Consistent per-component sign flips (an eigenvector's sign is arbitrary) are accepted with a note; they must
    be the same in encode and generate. Named mistakes: no centring, whitened encode, generate without sqrt(lambda),
    with lambda instead of sqrt(lambda), without the mean."""
    from sklearn.decomposition import PCA

    answer = probe(artefacts, "pca")
    spec = inputs(probe_inputs, "pca")
    data, k, coords = _array(spec["data"], "data"), int(spec["k"]), _array(spec["coordinates"], "coordinates")
    pca = PCA(n_components=k, svd_solver="full").fit(data)
    mean, comps, sqrt_lam = pca.mean_, pca.components_, np.sqrt(pca.explained_variance_)
    scale = max(1.0, float(np.abs(data).max()))
    rtol, atol = float(params["rtol"]), float(params["atol"]) * scale
    w = params["weights"]
    total_w = sum(float(v) for v in w.values())
    earned, notes, problems, details = 0.0, [], [], {}
    signs = None

    errors = answer.get("errors") if isinstance(answer.get("errors"), dict) else {}
    no_answer = lambda key: (f"pca_{key} raised {_short(errors[key])}" if errors.get(key) else
                             f"pca_{key} returned None (is it still a TODO, or is a `return` missing?)")
    encode = _maybe_array(answer.get("encode"))
    expected_encode = (data - mean) @ comps.T
    if encode is None:
        problems.append(no_answer("encode"))
    elif encode.shape != expected_encode.shape:
        problems.append(f"pca_encode returned shape {encode.shape}, expected (N, K) = {expected_encode.shape}"
                        + (" (transposed)" if encode.shape == expected_encode.shape[::-1] else ""))
    else:
        signs = _column_signs(encode, expected_encode, rtol, atol)
        if signs is not None:
            earned += float(w["encode"])
            if np.any(signs < 0):
                notes.append(f"pca_encode: components {np.flatnonzero(signs < 0).tolist()} have the opposite sign "
                             f"to sklearn's pca.components_ (accepted: an eigenvector's sign is arbitrary, but using "
                             f"pca.components_ directly avoids surprises)")
        elif _close(encode, data @ comps.T, rtol, atol):
            problems.append("pca_encode does not subtract the mean: alpha = (x - pca.mean_) @ pca.components_.T "
                            "(equation 1)")
        elif _close(encode, expected_encode / sqrt_lam, rtol, atol):
            problems.append("pca_encode divides by sqrt(lambda) (whitening): equation (1) is the plain projection "
                            "(x - mean_) @ components_.T; the division belongs in pca_reconstruct")
        else:
            problems.append("pca_encode differs from (x - pca.mean_) @ pca.components_.T (equation 1)")
    details["encode_signs"] = signs

    reconstruct = _maybe_array(answer.get("reconstruct"))
    expected_reconstruct = pca.inverse_transform(pca.transform(data))
    if reconstruct is None:
        problems.append(no_answer("reconstruct"))
    elif _close(reconstruct, expected_reconstruct, rtol, atol):
        earned += float(w["reconstruct"])
    elif _close(reconstruct, mean + (expected_encode / sqrt_lam) @ comps, rtol, atol):
        problems.append("pca_reconstruct is off because pca_generate misses sqrt(lambda): encode, divide by "
                        "sqrt(lambda), then generate with equation (2), which multiplies by sqrt(lambda) again")
    elif _close(reconstruct, expected_reconstruct - mean, rtol, atol):
        problems.append("pca_reconstruct does not add the mean back: x_hat = mean_ + (alpha * ...)")
    else:
        problems.append("pca_reconstruct differs from pca.inverse_transform(pca.transform(x)): it should be "
                        "pca_generate(pca, pca_encode(pca, x) / sqrt(pca.explained_variance_))")

    generate = _maybe_array(answer.get("generate"))
    use_signs = signs if signs is not None else np.ones(k)
    expected_generate = mean + (coords * use_signs * sqrt_lam) @ comps
    if generate is None:
        problems.append(no_answer("generate"))
    elif _close(generate, expected_generate, rtol, atol):
        earned += float(w["generate"])
    elif _close(generate, mean + (coords * use_signs) @ comps, rtol, atol):
        problems.append("pca_generate forgot sqrt(lambda): the coordinates are WHITENED, so equation (2) scales "
                        "each one by sqrt(lambda_i) = np.sqrt(pca.explained_variance_[i]) before combining the "
                        "components")
    elif _close(generate, mean + (coords * use_signs * sqrt_lam ** 2) @ comps, rtol, atol):
        problems.append("pca_generate scales by lambda instead of sqrt(lambda): equation (2) uses "
                        "sqrt(pca.explained_variance_)")
    elif _close(generate, (coords * use_signs * sqrt_lam) @ comps, rtol, atol):
        problems.append("pca_generate does not add the mean: x = mean_ + sum_i a_i sqrt(lambda_i) v_i")
    elif signs is None and (flips := _column_signs(generate - mean, (coords * sqrt_lam) @ comps, rtol, atol,
                                                   basis=comps, coords=coords * sqrt_lam)) is not None:
        earned += float(w["generate"])
        notes.append("pca_generate uses components with flipped signs (accepted)")
    else:
        problems.append("pca_generate differs from mean_ + (a * sqrt(explained_variance_)) @ components_ "
                        "(equation 2)")
    fraction = earned / total_w if total_w else 0.0
    details["earned"] = earned
    if problems:
        return CheckResult("", fraction, "PCA: " + "; ".join(problems + notes) + ".", details)
    return CheckResult("", fraction, "pca_encode, pca_reconstruct and pca_generate agree with scikit-learn's PCA"
                                     + ("; " + "; ".join(notes) if notes else "") + ".", details)


def _maybe_array(value: Any) -> np.ndarray | None:
    if value is None:
        return None
    return _array(value, "pca answer")


def _column_signs(got: np.ndarray, expected: np.ndarray, rtol: float, atol: float,
                  basis: np.ndarray | None = None, coords: np.ndarray | None = None) -> np.ndarray | None:
    """Per-column signs s with got == expected * s (or, given basis/coords, got == (coords * s) @ basis)."""
    if basis is not None:
        # solve got ~ (coords * s) @ basis for s by least squares, then round to +-1
        design = np.stack([(coords[:, [j]] * basis[[j], :]).ravel() for j in range(basis.shape[0])], axis=1)
        s = np.sign(np.linalg.lstsq(design, got.ravel(), rcond=None)[0])
        s[s == 0] = 1
        return s if _close(got, (coords * s) @ basis, rtol, atol) else None
    dots = np.sum(got * expected, axis=0)
    s = np.where(dots < 0, -1.0, 1.0)
    return s if _close(got, expected * s, rtol, atol) else None


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
        return (f"{name} rises from {_fmt(values[0])} to {_fmt(values[-1])}: training does not reduce the loss; check "
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
            problem = (f"{name} could not be read ({_short(read_errors[name])}): make it a list of floats, "
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


# --- figures -----------------------------------------------------------------------------------------------------

def _axes(figures: list) -> list[tuple[int, dict, dict]]:
    """(figure index, figure, axes) for every axes of every well-formed figure description."""
    found = []
    for index, figure in enumerate(figures if isinstance(figures, list) else []):
        if isinstance(figure, dict):
            for axes in figure.get("axes") or []:
                if isinstance(axes, dict):
                    found.append((index, figure, axes))
    return found


def _text(figure: dict, axes: dict) -> str:
    parts = [figure.get("suptitle"), axes.get("title"), axes.get("xlabel"), axes.get("ylabel")]
    parts += list(axes.get("legend") or []) + [line.get("label") for line in axes.get("lines") or []
                                                if isinstance(line, dict)]
    return " ".join(str(p) for p in parts if p).lower()


OTHER_MODEL_WORDS = ("autoencoder", "auto-encoder", "pca", "principal component")
VAE_WORDS = ("vae", "variational")


def _figure_text(figure: dict) -> str:
    titles = [figure.get("suptitle")] + [a.get("title") for a in figure.get("axes") or [] if isinstance(a, dict)]
    return " ".join(str(t) for t in titles if t).lower()


def vae_figures(figures: list, params: dict) -> list:
    """The figures that may show the VAE: drops those titled as another model's (the given autoencoder runs, PCA)
    unless they also mention the VAE, so the template's working autoencoder figures never earn the VAE items."""
    other = tuple(w.lower() for w in params.get("exclude_titles", OTHER_MODEL_WORDS))
    vae = tuple(w.lower() for w in params.get("unless_titles", VAE_WORDS))
    kept = []
    for figure in figures if isinstance(figures, list) else []:
        text = _figure_text(figure) if isinstance(figure, dict) else ""
        if any(w in text for w in other) and not any(w in text for w in vae):
            continue
        kept.append(figure)
    return kept


def _excluded_note(all_figures: list, kept: list) -> str:
    dropped = len(all_figures if isinstance(all_figures, list) else []) - len(kept)
    return (f" ({dropped} figure(s) titled as autoencoder/PCA figures were not considered: give your VAE figures "
            f"titles that say VAE)" if dropped > 0 else "")


def _figure_summary(figures: list) -> str:
    if not figures:
        return "no figures were recorded (did every plotting cell run, and did it draw with matplotlib?)"
    kinds = {"images": 0, "scatters": 0, "lines": 0}
    for _, _, axes in _axes(figures):
        for kind in kinds:
            kinds[kind] += len(axes.get(kind) or [])
    return (f"{len(figures)} figure(s) were recorded, with {kinds['lines']} line(s), {kinds['scatters']} scatter(s) "
            f"and {kinds['images']} image(s)")


def _line_xy(line: dict) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(line.get("x") or [], dtype=float), np.asarray(line.get("y") or [], dtype=float)


SWEEP_WORDS = ("dim", "latent size", "component", "eigen", "k ")


def _training_lines(figures: list, sweep_dims: list | None) -> list[dict]:
    """Lines that can be loss curves: >= 2 finite points, not the reconstruction sweep (x = SWEEP_DIMS, or an axes
    labelled by dimension without 'epoch'). Each with its falling flag and label credit."""
    found = []
    for _, figure, axes in _axes(figures):
        xlabel = str(axes.get("xlabel") or "").lower()
        text = _text(figure, axes)
        sweep_axes = "epoch" not in text and any(word in xlabel + " " for word in SWEEP_WORDS)
        for line in axes.get("lines") or []:
            if not isinstance(line, dict):
                continue
            x, y = _line_xy(line)
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


def _sweep_dims(artefacts: dict, params: dict) -> list | None:
    try:
        sweep = probe(artefacts, "sweep")
        dims = sweep.get("SWEEP_DIMS") if isinstance(sweep, dict) else None
        if isinstance(dims, list) and len(dims) >= 2:
            return [float(d) for d in dims]
    except ProbeMissing:
        pass
    dims = params.get("sweep_dims")
    return [float(d) for d in dims] if dims else None


@check("figure_training_curve", falling=0.6, per_epoch=0.2, labels=0.2, rising=0.25,
       sweep_dims=list(range(2, 21)), exclude_titles=list(OTHER_MODEL_WORDS), unless_titles=list(VAE_WORDS))
def figure_training_curve(artefacts: dict, probe_inputs: dict, params: dict) -> CheckResult:
    """A plotted loss curve: falling (`falling`), one point per epoch (`per_epoch`: its length equals a recorded
    history's, or is unknown; not one point per batch) and labelled (`labels`: x mentions epoch, and the axes mention
    loss/ELBO). A curve that only rises earns `rising`. The best line in any figure counts."""
    all_figures = artefacts.get("figures") or []
    figures = vae_figures(all_figures, params)
    lines = _training_lines(figures, _sweep_dims(artefacts, params))
    if not lines:
        return CheckResult("", 0.0, f"No training curve found: {_figure_summary(all_figures)}"
                                    f"{_excluded_note(all_figures, figures)}. Plot the loss of every epoch, e.g. "
                                    f"plt.plot(vae_history), with xlabel 'epoch' and ylabel 'loss'.", {})
    lengths = _history_lengths(artefacts)
    best, best_score, best_notes = None, -1.0, []
    for line in lines:
        notes, score = [], 0.0
        if line["falling"]:
            score += float(params["falling"])
        else:
            score += float(params["rising"])
            notes.append(f"your plotted loss rises from {_fmt(line['first'])} to {_fmt(line['last'])}: training "
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


def _scatter_groups(figures: list) -> list[dict]:
    """Candidate latent scatters: every axes (its scatters summed: one scatter per digit is fine), and every
    multi-axes figure as a whole (one subplot per digit)."""
    groups = []
    by_figure: dict[int, list[dict]] = {}
    for index, figure, axes in _axes(figures):
        scatters = [s for s in axes.get("scatters") or [] if isinstance(s, dict)]
        if scatters:
            groups.append({"scatters": scatters, "text": _text(figure, axes), "figure": index})
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
        return CheckResult("", 0.0, f"No scatter plot of the VAE's z found: {_figure_summary(all_figures)}"
                                    f"{_excluded_note(all_figures, figures)}. Plot z of {expected:,} random images "
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


def _tiles(size: int, max_pad: int) -> int | None:
    """How many 28-px tiles a stitched side of `size` px holds, allowing regular padding <= max_pad px per gap
    (between tiles and optionally around them); None when no count fits."""
    for n in range(max(1, size // DIGIT_SIDE), 0, -1):
        extra = size - n * DIGIT_SIDE
        if extra == 0:
            return n
        for gaps in (n - 1, n, n + 1):
            if gaps > 0 and extra % gaps == 0 and extra // gaps <= max_pad:
                return n
    return None


def _cluster(values: list[float], tol: float = 0.01) -> int:
    """Number of distinct values, merging those closer than tol."""
    count, last = 0, None
    for v in sorted(values):
        if last is None or v - last > tol:
            count += 1
        last = v
    return count


def image_grids(figures: list, max_pad: int = 4) -> list[dict]:
    """Every grid of 28x28 digits drawn, stitched into one image or as one small image per axes:
    {"rows", "cols", "kind": "stitched"|"subplots", "figure": index}."""
    grids = []
    per_figure: dict[int, list[list[float]]] = {}
    for index, figure, axes in _axes(figures):
        images = [im for im in axes.get("images") or [] if isinstance(im, dict)]
        for image in images:
            shape = list(image.get("shape") or [])
            if len(shape) < 2:
                continue
            h, w = int(shape[0]), int(shape[1])
            if (h, w) == (DIGIT_SIDE, DIGIT_SIDE):
                if len(images) == 1:
                    per_figure.setdefault(index, []).append(list(axes.get("position") or [0, 0, 0, 0]))
                continue
            rows, cols = _tiles(h, max_pad), _tiles(w, max_pad)
            if rows and cols and rows * cols >= 2:
                grids.append({"rows": rows, "cols": cols, "kind": "stitched", "figure": index, "shape": [h, w]})
    for index, positions in per_figure.items():
        if len(positions) < 2:
            continue
        rows = _cluster([p[1] for p in positions])
        cols = _cluster([p[0] for p in positions])
        grids.append({"rows": rows, "cols": cols, "kind": "subplots", "figure": index, "axes": len(positions),
                      "complete": rows * cols == len(positions)})
    return grids


@check("figure_decoded_grid_15x15", size=15, max_padding=4, wrong_size=0.5, min_size=5,
       exclude_titles=list(OTHER_MODEL_WORDS), unless_titles=list(VAE_WORDS))
def figure_decoded_grid_15x15(artefacts: dict, probe_inputs: dict, params: dict) -> CheckResult:
    """One stitched image of size x size digits (side in [28*size, 28*size + (size+1)*max_padding] px), or size^2
    axes each showing one 28x28 image in size distinct rows and columns. Another square grid (n x n, n >= min_size)
    earns `wrong_size` with a message naming its size."""
    all_figures = artefacts.get("figures") or []
    figures = vae_figures(all_figures, params)
    size = int(params["size"])
    grids = image_grids(figures, int(params["max_padding"]))
    exact = [g for g in grids if g["rows"] == size and g["cols"] == size and g.get("complete", True)]
    if exact:
        return CheckResult("", 1.0, f"{size}x{size} grid of decoded images found ({exact[0]['kind']}).",
                           {"grid": exact[0]})
    square = [g for g in grids if g["rows"] == g["cols"] and g["rows"] >= int(params["min_size"])]
    if square:
        g = max(square, key=lambda g: g["rows"])
        return CheckResult("", float(params["wrong_size"]),
                           f"Found a {g['rows']}x{g['cols']} grid of decoded images; the seed asks for {size}x{size} "
                           f"decoded images spanning the full range of both z components (e.g. "
                           f"np.linspace over {size} values per axis).", {"grid": g})
    return CheckResult("", 0.0, f"No {size}x{size} grid of decoded digits found: {_figure_summary(all_figures)}"
                                f"{_excluded_note(all_figures, figures)}, grids seen: {_grid_names(grids)}. Decode a {size}x{size} mesh of z values and show it as one "
                                f"image ({size * 28}x{size * 28} px) or {size * size} subplots.", {"grids": grids})


def _grid_names(grids: list[dict]) -> str:
    return ", ".join(f"{g['rows']}x{g['cols']}" for g in grids) or "none"


@check("figure_digit_rows", rows=10, samples=5, wrong_samples=0.5, separate_figures=0.75, max_padding=4,
       exclude_titles=list(OTHER_MODEL_WORDS), unless_titles=list(VAE_WORDS))
def figure_digit_rows(artefacts: dict, probe_inputs: dict, params: dict) -> CheckResult:
    """A grid of `rows` digits x `samples` samples (or transposed, the seed allows row/column), stitched or subplots.
    `rows` separate figures each a 1 x samples strip earn `separate_figures`; a 10 x k grid (k != samples) earns
    `wrong_samples`."""
    all_figures = artefacts.get("figures") or []
    figures = vae_figures(all_figures, params)
    digits, samples = int(params["rows"]), int(params["samples"])
    grids = image_grids(figures, int(params["max_padding"]))
    want = {(digits, samples), (samples, digits)}
    exact = [g for g in grids if (g["rows"], g["cols"]) in want and g.get("complete", True)]
    if exact:
        return CheckResult("", 1.0, f"{digits} digits x {samples} samples grid found ({exact[0]['kind']}).",
                           {"grid": exact[0]})
    strips = {g["figure"] for g in grids if {g["rows"], g["cols"]} == {1, samples}}
    if len(strips) >= digits:
        return CheckResult("", float(params["separate_figures"]),
                           f"Found {len(strips)} separate 1x{samples} strips: draw them as ONE grid, one row per digit, "
                           f"so digits can be compared at a glance.", {"strips": len(strips)})
    near = [g for g in grids if digits in (g["rows"], g["cols"]) and
            1 < (g["cols"] if g["rows"] == digits else g["rows"]) <= 4 * samples]
    if near:
        g = near[0]
        return CheckResult("", float(params["wrong_samples"]),
                           f"Found a {g['rows']}x{g['cols']} grid; the seed asks for {samples} samples for each of "
                           f"the {digits} digits ({digits}x{samples}).", {"grid": g})
    return CheckResult("", 0.0, f"No {digits}x{samples} grid (one row per digit, {samples} samples each) found: "
                                f"{_figure_summary(all_figures)}{_excluded_note(all_figures, figures)}, grids seen: {_grid_names(grids)}. For each digit, find "
                                f"its z region (e.g. mean z of its images), vary z around it and decode {samples} "
                                f"samples.", {"grids": grids})


@check("figure_reconstruction_sweep", sweep_dims=list(range(2, 21)), one_method=0.5, separate_axes=0.75,
       no_legend=0.1)
def figure_reconstruction_sweep(artefacts: dict, probe_inputs: dict, params: dict) -> CheckResult:
    """One axes with >= 2 lines whose x covers SWEEP_DIMS (from the `sweep` probe, else `sweep_dims`): one per method.
    Missing legend costs `no_legend`; the two lines in separate axes earn `separate_axes`; one line `one_method`."""
    figures = artefacts.get("figures") or []
    dims = _sweep_dims(artefacts, params) or [float(d) for d in range(2, 21)]
    wanted = set(np.round(dims, 6))
    covering_axes = []
    for _, figure, axes in _axes(figures):
        lines = []
        for line in axes.get("lines") or []:
            if isinstance(line, dict):
                x, y = _line_xy(line)
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
                                f"{_figure_summary(figures)}. Plot reconstruction_errors['autoencoder'] and ['pca'] "
                                f"against SWEEP_DIMS in one axes.", details)

