"""Checks: harvested plain data (Artefacts JSON, probe inputs) -> a fraction in [0, 1] and a message that teaches.

Every check is a pure function `(artefacts, probe_inputs, params) -> CheckResult`, run in the GRADER's process on
plain numbers: nothing here runs student code or unpickles anything. Expected values are computed here with numpy
and scikit-learn from the probe inputs. Known mistakes are recognised by comparing the student's numbers with
candidate WRONG formulas, so the message can name the mistake instead of printing "expected X, got Y".

A check never raises: a missing or failed probe, a missing figure or a malformed answer gives fraction 0 and a message
saying what was not found (and the error the student's code raised). Artefacts and probe names: docs/contract.md.

This module is the registry: the `@check` decorator, `CheckResult`, `ProbeMissing`, `probe()` (a probe's value or a
message naming what is missing) and the small helpers every check module shares. `CHECKS` maps a check name to its
function; `CHECK_DEFAULTS` maps it to its parameters and their defaults (the rubric may override them;
autograder/scoring/rubric.py rejects parameters a check does not know). The checks live in shapes.py, elbo.py,
pca.py, training.py, figures.py and image_quality.py; importing the package registers them all.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import wraps
from typing import Any, Callable

import numpy as np

from autograder.probing.probes import PROBE_NAMES

PIXELS = 784


@dataclass
class CheckResult:
    check: str
    fraction: float                                # in [0, 1]
    message: str                                   # names the mistake and what to do; "" never for fraction < 1
    details: dict = field(default_factory=dict)    # plain JSON data (numbers, strings, lists) for instructors


CheckFn = Callable[[dict, dict, dict], CheckResult]
CHECKS: dict[str, CheckFn] = {}
CHECK_DEFAULTS: dict[str, dict] = {}



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
                                              f"({type(error).__name__}: {short(str(error))}). Check that your "
                                              f"functions return what docs/the template describe.",
                                   {"grader_exception": f"{type(error).__name__}: {short(str(error), 500)}"})
            fraction = float(result.fraction) if math.isfinite(float(result.fraction)) else 0.0
            result.fraction = min(1.0, max(0.0, round(fraction, 6)))
            result.check = name
            result.details = plain(result.details)
            return result
        CHECKS[name] = safe
        CHECK_DEFAULTS[name] = dict(defaults)
        return safe
    return register


# --- helpers -----------------------------------------------------------------------------------------------------

def short(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def plain(value: Any) -> Any:
    """numpy scalars/arrays and tuples -> JSON-ready Python values; non-finite floats -> strings."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return plain(value.tolist())
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
        error = short(answer.get("error") or "unknown error")
        undefined = _undefined_names(artefacts, student)
        hint = (f" Not defined in your notebook: {', '.join(undefined)} — define them with exactly these names."
                if undefined else "")
        if RAISED.match(error):
            raise ProbeMissing(sentence(f"Calling {student} on the grader's inputs raised {error}{error_hint(error)}")
                               + hint)
        raise ProbeMissing(sentence(f"The grader could not check {student}: {error}{error_hint(error)}") + hint)
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


RAISED = re.compile(r"^[A-Za-z_.]*(Error|Exception|Exit|Interrupt|Warning|NotRun)\b")   # "Type: message"


def sentence(text: str) -> str:
    return text if text.rstrip().endswith((".", "?", "!")) else text + "."


def error_hint(error: str) -> str:
    return next((hint for needle, hint in ERROR_HINTS if needle in str(error)), "")


def _undefined_names(artefacts: dict, student: str) -> list[str]:
    defined = artefacts.get("names")
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


def array(value: Any, what: str) -> np.ndarray:
    array = np.asarray(value, dtype=float)
    if array.dtype == object:
        raise ValueError(f"{what} is not numeric")
    return array


def close(a, b, rtol: float, atol: float) -> bool:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return a.shape == b.shape and bool(np.all(np.isfinite(a))) and bool(np.allclose(a, b, rtol=rtol, atol=atol))


def scalar(value: Any) -> float | None:
    """A finite float from a number or a one-element (nested) list; None otherwise."""
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return None
    if array.size != 1 or not np.isfinite(array).all():
        return None
    return float(array.ravel()[0])


def fmt(x: float) -> str:
    return f"{float(x):.6g}"


def sweep_dims(artefacts: dict, params: dict) -> list | None:
    try:
        sweep = probe(artefacts, "sweep")
        dims = sweep.get("SWEEP_DIMS") if isinstance(sweep, dict) else None
        if isinstance(dims, list) and len(dims) >= 2:
            return [float(d) for d in dims]
    except ProbeMissing:
        pass
    dims = params.get("sweep_dims")
    return [float(d) for d in dims] if dims else None
