"""Check of pca_encode / pca_reconstruct / pca_generate (equations 1 and 2) against scikit-learn's PCA on the
grader's data."""
from __future__ import annotations

from typing import Any

import numpy as np

from autograder.checks.registry import CheckResult, array, check, close, inputs, probe, short


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
    data, k, coords = array(spec["data"], "data"), int(spec["k"]), array(spec["coordinates"], "coordinates")
    pca = PCA(n_components=k, svd_solver="full").fit(data)
    mean, comps, sqrt_lam = pca.mean_, pca.components_, np.sqrt(pca.explained_variance_)
    scale = max(1.0, float(np.abs(data).max()))
    rtol, atol = float(params["rtol"]), float(params["atol"]) * scale
    w = params["weights"]
    total_w = sum(float(v) for v in w.values())
    earned, notes, problems, details = 0.0, [], [], {}
    signs = None

    errors = answer.get("errors") if isinstance(answer.get("errors"), dict) else {}
    no_answer = lambda key: (f"pca_{key} raised {short(errors[key])}" if errors.get(key) else
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
        elif close(encode, data @ comps.T, rtol, atol):
            problems.append("pca_encode does not subtract the mean: alpha = (x - pca.mean_) @ pca.components_.T "
                            "(equation 1)")
        elif close(encode, expected_encode / sqrt_lam, rtol, atol):
            problems.append("pca_encode divides by sqrt(lambda) (whitening): equation (1) is the plain projection "
                            "(x - mean_) @ components_.T; the division belongs in pca_reconstruct")
        else:
            problems.append("pca_encode differs from (x - pca.mean_) @ pca.components_.T (equation 1)")
    details["encode_signs"] = signs

    reconstruct = _maybe_array(answer.get("reconstruct"))
    expected_reconstruct = pca.inverse_transform(pca.transform(data))
    if reconstruct is None:
        problems.append(no_answer("reconstruct"))
    elif close(reconstruct, expected_reconstruct, rtol, atol):
        earned += float(w["reconstruct"])
    elif close(reconstruct, mean + (expected_encode / sqrt_lam) @ comps, rtol, atol):
        problems.append("pca_reconstruct is off because pca_generate misses sqrt(lambda): encode, divide by "
                        "sqrt(lambda), then generate with equation (2), which multiplies by sqrt(lambda) again")
    elif close(reconstruct, expected_reconstruct - mean, rtol, atol):
        problems.append("pca_reconstruct does not add the mean back: x_hat = mean_ + (alpha * ...)")
    else:
        problems.append("pca_reconstruct differs from pca.inverse_transform(pca.transform(x)): it should be "
                        "pca_generate(pca, pca_encode(pca, x) / sqrt(pca.explained_variance_))")

    generate = _maybe_array(answer.get("generate"))
    use_signs = signs if signs is not None else np.ones(k)
    expected_generate = mean + (coords * use_signs * sqrt_lam) @ comps
    if generate is None:
        problems.append(no_answer("generate"))
    elif close(generate, expected_generate, rtol, atol):
        earned += float(w["generate"])
    elif close(generate, mean + (coords * use_signs) @ comps, rtol, atol):
        problems.append("pca_generate forgot sqrt(lambda): the coordinates are WHITENED, so equation (2) scales "
                        "each one by sqrt(lambda_i) = np.sqrt(pca.explained_variance_[i]) before combining the "
                        "components")
    elif close(generate, mean + (coords * use_signs * sqrt_lam ** 2) @ comps, rtol, atol):
        problems.append("pca_generate scales by lambda instead of sqrt(lambda): equation (2) uses "
                        "sqrt(pca.explained_variance_)")
    elif close(generate, (coords * use_signs * sqrt_lam) @ comps, rtol, atol):
        problems.append("pca_generate does not add the mean: x = mean_ + sum_i a_i sqrt(lambda_i) v_i")
    elif signs is None and _column_signs(generate - mean, (coords * sqrt_lam) @ comps, rtol, atol,
                                         basis=comps, coords=coords * sqrt_lam) is not None:
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
    return array(value, "pca answer")


def _column_signs(got: np.ndarray, expected: np.ndarray, rtol: float, atol: float,
                  basis: np.ndarray | None = None, coords: np.ndarray | None = None) -> np.ndarray | None:
    """Per-column signs s with got == expected * s (or, given basis/coords, got == (coords * s) @ basis)."""
    if basis is not None:
        # solve got ~ (coords * s) @ basis for s by least squares, then round to +-1
        design = np.stack([(coords[:, [j]] * basis[[j], :]).ravel() for j in range(basis.shape[0])], axis=1)
        s = np.sign(np.linalg.lstsq(design, got.ravel(), rcond=None)[0])
        s[s == 0] = 1
        return s if close(got, (coords * s) @ basis, rtol, atol) else None
    dots = np.sum(got * expected, axis=0)
    s = np.where(dots < 0, -1.0, 1.0)
    return s if close(got, expected * s, rtol, atol) else None
