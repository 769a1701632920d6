"""Checks of the VAE's modules, built fresh by the grader (probes encoder_shapes, decoder_output): VAEEncoder returns
(mu, log_sigma_squared), each (batch, dim_latent); VAEDecoder returns (batch, 784) values in [0, 1]. Shapes alone
can be faked with tensors of zeros, so a module earns its item only when it is a network: its outputs change with
its input and with its weights (two fresh copies built with different seeds differ) and gradients reach its
parameters; an encoder's two heads must differ."""
from __future__ import annotations

from typing import Any

from autograder.checks.registry import PIXELS, CheckResult, check, fmt, inputs, probe, scalar, short


def _cases(answer: Any) -> list[dict]:
    if not isinstance(answer, list):
        raise ValueError(f"expected a list of cases, got {type(answer).__name__}")
    return [case for case in answer if isinstance(case, dict)]


def _find_case(cases: list[dict], **key) -> dict | None:
    for case in cases:
        if all(case.get(k) == v for k, v in key.items()):
            return case
    return None


def _not_a_network(name: str, cases: list[dict]) -> str | None:
    """Why the module is not a network of its input, or None (also when its outputs are not finite: that is said by
    the item's own message)."""
    if any(case.get("depends_on_weights") is None for case in cases):
        return None
    if not any(case.get("parameters_with_gradient") for case in cases):
        return (f"no gradient reaches any parameter of {name} from its output: build the output from layers "
                f"(nn.Linear ...) applied to the input, without .detach(), numpy or constants")
    if not any(case.get("depends_on_weights") for case in cases):
        return (f"{name}'s output does not change when its weights are initialised differently: it must come from "
                f"its layers")
    if not any(case.get("depends_on_input") for case in cases if case.get("depends_on_input") is not None):
        return f"{name}'s output is the same for every input: it must be computed from the input"
    return None


def _shapes_fraction(name: str, cases: list[dict], earned: float, wanted: int, problems: list, rows: list,
                     summary: str, extra_problem: str | None = None, extra_weight: float = 0.5) -> CheckResult:
    fraction = earned / max(1, wanted)
    fake = _not_a_network(name, cases)
    details = {"cases": rows}
    if fake:
        return CheckResult("", 0.0, f"{name}: {fake}. (Shapes alone earn nothing here.)", {**details,
                                                                                            "not_a_network": fake})
    if extra_problem:
        fraction *= extra_weight
        problems = problems + [extra_problem]
    if not problems:
        return CheckResult("", fraction, summary, details)
    return CheckResult("", fraction, f"{name}: " + "; ".join(problems[:4]) + ".", details)


@check("encoder_shapes", identical_heads=0.5)
def encoder_shapes(artefacts: dict, probe_inputs: dict, params: dict) -> CheckResult:
    """Each (batch, dim_latent) case: mu and log_sigma_squared both (B, K); half a case per tensor. Nothing when the
    encoder is not a network of its input (_not_a_network); `identical_heads` of it when mu and log_sigma_squared
    are the same tensor (one head used twice)."""
    cases = _cases(probe(artefacts, "encoder_shapes"))
    wanted = inputs(probe_inputs, "encoder_shapes")["cases"]
    earned, problems, rows = 0.0, [], []
    for spec in wanted:
        batch, latent = int(spec["batch"]), int(spec["dim_latent"])
        expected = [batch, latent]
        case = _find_case(cases, batch=batch, dim_latent=latent)
        if case is None or case.get("error"):
            problems.append(f"VAEEncoder({spec.get('dim_input', PIXELS)}, {latent}) on a batch of {batch} "
                            f"{'raised ' + short(case['error']) if case else 'gave no answer'}")
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
    same_heads = cases and all(case.get("heads_differ") is False for case in cases)
    return _shapes_fraction(
        "VAEEncoder", cases, earned, len(wanted), problems, rows,
        "VAEEncoder returns (mu, log_sigma_squared), each (batch, dim_latent), for every batch and latent size tried.",
        "mu and log_sigma_squared are the same tensor: compute them with two separate heads (two nn.Linear layers "
        "on the shared hidden layer)" if same_heads else None, float(params["identical_heads"]))


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
    """Each case: shape (B, dim_output) (half) and values in [0, 1] (half); nothing when the decoder is not a
    network of its input (_not_a_network)."""
    cases = _cases(probe(artefacts, "decoder_output"))
    wanted = inputs(probe_inputs, "decoder_output")["cases"]
    tol = float(params["range_tolerance"])
    earned, problems, rows = 0.0, [], []
    for spec in wanted:
        batch, latent, out = int(spec["batch"]), int(spec["dim_latent"]), int(spec.get("dim_output", PIXELS))
        case = _find_case(cases, batch=batch, dim_latent=latent)
        if case is None or case.get("error"):
            problems.append(f"VAEDecoder({latent}, {out}) on a batch of {batch} "
                            f"{'raised ' + short(case['error']) if case else 'gave no answer'}")
            rows.append({"batch": batch, "dim_latent": latent, "ok": False})
            continue
        got, part = list(case.get("shape") or []), 0.0
        if got == [batch, out]:
            part += 0.5
        else:
            hint = " (return flat (B, 784) vectors; reshape to 28x28 only for plotting)" if got[-2:] == [28, 28] else ""
            problems.append(f"output shape {tuple(got)} for a batch of {batch}; expected {(batch, out)}{hint}")
        low, high = scalar(case.get("min")), scalar(case.get("max"))
        if low is not None and high is not None and low >= -tol and high <= 1 + tol:
            part += 0.5
        elif low is None or high is None:
            problems.append("the outputs contain NaN or infinite values: check the decoder's layers and activations")
        else:
            problems.append(f"outputs range over [{fmt(low)}, {fmt(high)}], outside [0, 1]: end the decoder "
                            f"with a Sigmoid so it returns Bernoulli means (probabilities)")
        earned += part
        rows.append({"batch": batch, "dim_latent": latent, "ok": part == 1.0})
    return _shapes_fraction("VAEDecoder", cases, earned, len(wanted), problems, rows,
                            "VAEDecoder returns (batch, 784) values in [0, 1].")
