"""The reparameterisation trick, from n draws of the student's reparameterize on grader-drawn mu and
log_sigma_squared: mean, variance, gradients, and new noise at every call."""
from __future__ import annotations

import math

import numpy as np

from autograder.checks.registry import CheckResult, array, check, inputs, probe


@check("reparameterization", standard_errors=5.0,
       weights={"mean": 0.2, "variance": 0.4, "gradients": 0.2, "new_draws": 0.2})
def reparameterization(artefacts: dict, probe_inputs: dict, params: dict) -> CheckResult:
    """n samples of reparameterize(mu, lv): per-dimension mean within `standard_errors` SE of mu (SE = sigma/sqrt(n)),
    variance within `standard_errors` SE of exp(lv) (SE of a sample variance = var * sqrt(2/(n-1))), and non-zero
    gradients to both inputs. Wrong variances are matched against: 0 (z = mu), lv^2 (lv as std), lv (no exp),
    exp(2 lv) (lv as log sigma), 1 (eps not scaled). `new_draws`: two consecutive calls on the same inputs draw
    different noise (a function that reseeds torch, or keeps one eps, gives the same z every time)."""
    answer = probe(artefacts, "reparameterize")
    spec = inputs(probe_inputs, "reparameterize")
    mu, lv, n = array(spec["mu"], "mu").ravel(), array(spec["log_sigma_squared"], "lv").ravel(), int(spec["n"])
    mean, var = array(answer.get("mean"), "mean").ravel(), array(answer.get("var"), "var").ravel()
    if mean.shape != mu.shape or var.shape != mu.shape:
        return CheckResult("", 0.0, f"reparameterize returned samples with {mean.size} dimensions for a "
                                    f"{mu.size}-dimensional mu: z must have the shape of mu.", {})
    z, w = float(params["standard_errors"]), params["weights"]
    sigma2 = np.exp(lv)
    var_se = lambda v: np.abs(v) * math.sqrt(2.0 / max(1, n - 1))
    mean_ok = bool(np.all(np.abs(mean - mu) <= z * np.sqrt(sigma2 / n) + 1e-6))
    var_ok = bool(np.all(np.isfinite(var)) and np.all(np.abs(var - sigma2) <= z * var_se(sigma2) + 1e-6))
    grads = [bool(answer.get("grad_mu_nonzero")), bool(answer.get("grad_log_sigma_squared_nonzero"))]
    new_draws = bool(answer.get("new_draws_each_call"))
    fraction = (w["mean"] * mean_ok + w["variance"] * var_ok + w["gradients"] * 0.5 * sum(grads)
                + w["new_draws"] * new_draws) / sum(float(v) for v in w.values())
    no_sampling = bool(np.all(np.isfinite(var)) and np.all(var <= z * var_se(sigma2)) and np.all(sigma2 > 1e-3))
    if no_sampling:     # z = mu (or a constant): no reparameterisation at all, whatever its mean and gradients
        fraction = 0.0
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
    if not new_draws and var_ok:
        problems.append("two calls on the same mu and log_sigma_squared return the same z: the noise must be new at "
                        "every call (do not reseed torch inside reparameterize, and draw eps with torch.randn_like "
                        "each time)")
    if not all(grads):
        missing = [name for name, ok in zip(("mu", "log_sigma_squared"), grads) if not ok]
        problems.append(f"no gradient reaches {' and '.join(missing)}: build z from the input tensors with torch "
                        f"operations (no .detach(), .item(), numpy or torch.no_grad()) so both encoder heads learn")
    if not problems:
        return CheckResult("", fraction, "reparameterize draws z = mu + eps * exp(0.5 * lv) with the right mean and "
                                         "variance, and gradients reach both heads.", details)
    return CheckResult("", fraction, "reparameterize: " + "; ".join(problems) + ".", details)
