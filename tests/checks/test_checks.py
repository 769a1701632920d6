"""Checks of the code items on hand-made artefacts: the correct answers earn full credit, each known mistake earns its
exact fraction and a message that names it. Inputs are drawn by the grader's own draw_* functions and answers are
shaped by its run_* functions from simulated student code (tests/checks/fakes.py). The figure checks are in
test_figures.py, the ties in test_ties.py, the model verdicts in test_model.py."""
import json
import math

import numpy as np
import pytest

from autograder.checks import CHECK_DEFAULTS, CHECKS, CheckResult
from tests.checks.fakes import (AE_FALLING, FALLING, INPUTS, KL_VARIANTS, Failed, artefacts, axes, decoder_calls,
                                draw_inputs, encoder_calls, figure, histories, kl_answer, line, loss_answer,
                                pca_answer, reparameterize_answer, run_probe, subplot_grid, vae_model, verified)

__all__ = ["FALLING", "INPUTS", "KL_VARIANTS", "artefacts", "axes", "figure", "histories", "kl_answer", "line",
           "subplot_grid"]      # tests/scoring/test_rubric.py and test_figure_reader.py import these from here


def run(check: str, arts: dict, inputs: dict = INPUTS, **params) -> CheckResult:
    result = CHECKS[check](arts, inputs, params)
    assert 0.0 <= result.fraction <= 1.0 and result.message
    return result


# --- encoder / decoder: a network, not only shapes ------------------------------------------------------------------

def encoder(variant="correct", inputs=INPUTS):
    return artefacts(encoder_shapes=run_probe("encoder_shapes", inputs["encoder_shapes"], encoder_calls(variant)))


def decoder(variant="correct", inputs=INPUTS):
    return artefacts(decoder_output=run_probe("decoder_output", inputs["decoder_output"], decoder_calls(variant)))


def test_encoder_shapes_correct_and_partial_per_case():
    assert run("encoder_shapes", encoder()).fraction == 1.0
    # a fixed head size of 2: the dim_latent=5 case loses its mu half
    fixed = run("encoder_shapes", encoder("fixed_head"))
    assert fixed.fraction == pytest.approx((1 + 1 + 0.5) / 3)
    assert "out_features must be dim_latent" in fixed.message
    squeezed = run("encoder_shapes", encoder("squeezed"))
    assert squeezed.fraction == pytest.approx((0.5 + 1 + 1) / 3) and "squeezed" in squeezed.message


def test_an_encoder_of_zeros_earns_nothing_despite_right_shapes():
    result = run("encoder_shapes", encoder("zeros"))
    assert all(row["ok"] for row in result.details["cases"])              # every shape is right ...
    assert result.fraction == 0.0                                          # ... and shapes alone earn nothing
    assert "no gradient reaches any parameter of VAEEncoder" in result.message
    assert "Shapes alone earn nothing" in result.message and result.details["not_a_network"]


def test_an_encoder_that_ignores_its_input_or_its_weights_earns_nothing():
    constant = run("encoder_shapes", encoder("bias_only"))
    assert constant.fraction == 0.0 and "same for every input" in constant.message
    reseeded = run("encoder_shapes", encoder("seeded_inside"))
    assert reseeded.fraction == 0.0 and "does not change when its weights are initialised" in reseeded.message


def test_identical_heads_lose_half():
    result = run("encoder_shapes", encoder("one_head"))
    assert result.fraction == pytest.approx(0.5)
    assert "same tensor" in result.message and "two separate heads" in result.message
    assert run("encoder_shapes", encoder("one_head"), identical_heads=0.25).fraction == pytest.approx(0.25)


def test_decoder_output_shape_and_range():
    assert run("decoder_output", decoder()).fraction == 1.0
    result = run("decoder_output", decoder("no_sigmoid"))
    assert result.fraction == 0.5 and "Sigmoid" in result.message


def test_a_decoder_that_ignores_z_earns_nothing():
    result = run("decoder_output", decoder("bias_only"))
    assert result.fraction == 0.0 and "same for every input" in result.message
    assert "Shapes alone earn nothing" in result.message


def test_decoder_nan_outputs_are_named():
    result = run("decoder_output", decoder("nan"))
    assert result.fraction == 0.5 and "NaN" in result.message


# --- KL ----------------------------------------------------------------------------------------------------------

def test_correct_kl_earns_every_kl_item():
    arts = artefacts(kl=kl_answer(KL_VARIANTS["correct"]))
    for name in ("kl_closed_form", "kl_sums_latent_dims", "kl_batch_average"):
        assert run(name, arts).fraction == 1.0, name


def test_kl_summed_over_batch_is_named_and_only_costs_the_batch_item():
    arts = artefacts(kl=kl_answer(KL_VARIANTS["summed_over_batch"]))
    result = run("kl_batch_average", arts)
    assert result.fraction == 0.0
    assert "grows with the batch size" in result.message and "summed over the batch" in result.message
    assert run("kl_closed_form", arts).fraction == 1.0
    assert run("kl_sums_latent_dims", arts).fraction == 1.0


def test_kl_mean_over_latent_dims_costs_only_the_latent_item():
    arts = artefacts(kl=kl_answer(KL_VARIANTS["mean_over_everything"]))
    latent = run("kl_sums_latent_dims", arts)
    assert latent.fraction == 0.0 and "AVERAGES over the latent dimensions" in latent.message
    assert run("kl_closed_form", arts).fraction == 1.0
    assert run("kl_batch_average", arts).fraction == 1.0   # consistent with its own per-row values


@pytest.mark.parametrize("variant, words", [("lv_as_std", "as a standard deviation"),
                                            ("exp_2lv", "exp(2 * log_sigma_squared)")])
def test_kl_with_log_variance_misused_is_named(variant, words):
    result = run("kl_closed_form", artefacts(kl=kl_answer(KL_VARIANTS[variant])))
    assert result.fraction == 0.0 and words in result.message
    assert result.details["identified"][0] in ("lv_as_std", "exp_2lv")


def test_a_constant_kl_computes_nothing():
    arts = artefacts(kl=kl_answer(lambda mu, lv: np.float32(0.7)))
    result = run("kl_batch_average", arts)
    assert result.fraction == 0.0 and "returns 0.7 for every row" in result.message
    assert run("kl_closed_form", arts).fraction == 0.0


def test_kl_with_an_unknown_formula_reports_a_row():
    mu = np.asarray(INPUTS["kl"]["mu"])
    answer = kl_answer(KL_VARIANTS["correct"])
    answer["single"][2] += 1.0                   # one row wrong: partial credit for the others
    result = run("kl_closed_form", artefacts(kl=answer))
    assert result.fraction == pytest.approx(5 / 6)
    assert "1 of 6 rows" in result.message and str(round(float(mu[2][0]), 4)) in result.message


def test_kl_probe_error_is_reported_with_the_hint():
    arts = artefacts(kl=Failed("ValueError: expected a scalar, got shape [6]"), names={"kl_divergence": True})
    result = run("kl_batch_average", arts)
    assert result.fraction == 0.0 and "raised ValueError: expected a scalar" in result.message
    assert "ONE number" in result.message and "Not defined" not in result.message


def test_missing_probe_names_the_function():
    # the server's answer when the notebook does not define the name (calls.lookup)
    undefined = artefacts(kl=Failed("kl_divergence is not defined by the notebook"), names={"kl_divergence": False})
    result = run("kl_closed_form", undefined)
    assert result.fraction == 0.0 and "kl_divergence" in result.message and "Not defined" in result.message
    assert "define it with exactly this name" in result.message
    absent = run("kl_closed_form", {"figures": [], "probes": {}})
    assert absent.fraction == 0.0 and "kl_divergence" in absent.message and "did not run" in absent.message


PROBE_NAMES = ("kl", "loss", "pca", "reparameterize", "histories", "encoder_shapes", "decoder_output", "sweep",
               "pca_sweep", "vae_decode", "vae_model", "gaussian_vae_model", "ae_models")


def test_malformed_answers_never_raise():
    for name, check in CHECKS.items():
        for arts in ({}, {"probes": "nonsense", "figures": "x", "names": 3},
                     {"probes": {p: {"ok": True, "value": "garbage"} for p in PROBE_NAMES},
                      "figures": [{"axes": ["bad", {"lines": [{"x": "a"}], "scatters": [{"points": "x"}]}]}]},
                     {"probes": {p: {"ok": True, "value": {"cases": 1, "figure_grids": [{"rmse": "x"}]}}
                                 for p in PROBE_NAMES}, "figures": []}):
            result = check(arts, INPUTS, {})
            assert result.check == name and result.fraction == 0.0 and result.message, name


# --- losses ------------------------------------------------------------------------------------------------------

def test_correct_losses_on_many_grader_draws():
    # the Gaussian loss is evaluated at the contract's variance 0.1 and at a variance the grader draws
    for seed in range(5):
        inputs = draw_inputs(seed)
        result = run("loss_proportions", artefacts(loss=loss_answer(inputs)), inputs)
        assert result.fraction == 1.0, (seed, result.message)
        assert result.details["gaussian"]["c"] == pytest.approx(1 / (2 * 0.1))


def test_per_pixel_mean_reconstruction_with_per_sample_kl_is_named():
    result = run("loss_proportions", artefacts(loss=loss_answer(bernoulli="recon_pixel_mean")))
    assert result.fraction == 0.5                                  # the Gaussian loss is right
    assert "784 times too much" in result.message and "averaged per pixel" in result.message
    both = run("loss_proportions", artefacts(loss=loss_answer(bernoulli="recon_pixel_mean",
                                                              gaussian="recon_pixel_mean")))
    assert both.fraction == 0.0 and both.details["gaussian"]["identified"] == ["pixel_mean", "correct"]


def test_per_pixel_recon_with_a_batch_summed_kl_is_identified():
    # kl_divergence sums over the batch (B = 4) and the BCE is a per-element mean: the KL weighs 784 * 4 too much
    result = run("loss_proportions", artefacts(loss=loss_answer(bernoulli="recon_pixel_mean", kl="batch_sum")))
    assert result.details["bernoulli"]["identified"] == ["pixel_mean", "batch_sum"]
    assert "summed over the batch" in result.message


def test_kl_mistake_inherited_from_kl_divergence_costs_half():
    arts = artefacts(loss=loss_answer(kl="batch_sum"), kl=kl_answer(KL_VARIANTS["summed_over_batch"]))
    result = run("loss_proportions", arts)
    assert result.details["student_kl"] == "batch_sum"
    assert result.fraction == pytest.approx(0.5)
    # without the kl probe telling so, the same loss is a plain KL-reduction mistake
    assert run("loss_proportions", artefacts(loss=loss_answer(kl="batch_sum"))).fraction == 0.0


def test_losses_summed_over_the_batch_get_the_partial_credit():
    result = run("loss_proportions", artefacts(loss=loss_answer(bernoulli="both_batch_sum")))
    assert result.fraction == pytest.approx(0.5 * 0.5 + 0.5)
    assert "summed over the batch" in result.message and "repeated twice" in result.message
    assert run("loss_proportions", artefacts(loss=loss_answer(bernoulli="both_batch_sum")),
               partial={}).fraction == 0.5


def test_named_loss_mistakes_survive_the_doubled_batch_check():
    pixel = run("loss_proportions", artefacts(loss=loss_answer(bernoulli="recon_pixel_mean", kl="batch_sum")))
    assert "averaged per pixel" in pixel.message and "3136 times too much" in pixel.message
    inherited = run("loss_proportions", artefacts(loss=loss_answer(kl="batch_sum"),
                                                  kl=kl_answer(KL_VARIANTS["summed_over_batch"])))
    assert "inherits the mistake of your kl_divergence" in inherited.message
    both = run("loss_proportions", artefacts(loss=loss_answer(bernoulli="both_batch_sum")))
    assert "keep their proportion" in both.message


def test_missing_kl_in_gaussian_loss_and_a_loss_that_raised():
    result = run("loss_proportions", artefacts(loss=loss_answer(gaussian="no_kl")))
    assert result.fraction == 0.5 and "KL term is missing" in result.message
    answer = loss_answer(gaussian_error="NameError: name 'gaussian_vae_loss' is not defined")
    raised = run("loss_proportions", artefacts(loss=answer))
    assert raised.fraction == 0.5 and "gaussian_vae_loss raised NameError" in raised.message


def test_a_constant_gaussian_loss_earns_nothing():
    result = run("loss_proportions", artefacts(loss=loss_answer(gaussian="constant")))
    assert result.fraction == 0.5                                  # the Bernoulli half only
    assert result.details["gaussian"]["identified"] == []
    assert "gaussian_vae_loss returns 1 on the grader's batch" in result.message


def test_the_gaussian_normaliser_is_accepted():
    result = run("loss_proportions", artefacts(loss=loss_answer(gaussian="normaliser")))
    assert result.fraction == 1.0, result.message


def test_a_loss_that_ignores_its_variance_gets_the_partial_credit_and_is_named():
    loss = loss_answer(gaussian="hard_coded")
    assert loss["gaussian"] == loss["gaussian_at_variance"]        # the same at both variances
    result = run("loss_proportions", artefacts(loss=loss))
    partial = CHECK_DEFAULTS["loss_proportions"]["partial"]["variance_ignored"]
    assert result.fraction == pytest.approx(0.5 + 0.5 * partial) and 0 < partial < 1
    assert "ignores its `variance` argument" in result.message
    assert run("loss_proportions", artefacts(loss=loss), partial={"variance_ignored": 0.0}).fraction == 0.5


def test_gaussian_weight_and_swapped_bce_mistakes_are_named():
    squared = run("loss_proportions", artefacts(loss=loss_answer(gaussian="variance_as_std")))
    assert squared.fraction == 0.5 and "the variance is squared" in squared.message
    swapped = run("loss_proportions", artefacts(loss=loss_answer(bernoulli="swapped")))
    assert swapped.fraction == 0.5 and "arguments of binary_cross_entropy are swapped" in swapped.message


# --- reparameterization ------------------------------------------------------------------------------------------

def test_reparameterization_correct_on_several_grader_draws():
    for seed in range(5):
        inputs = draw_inputs(seed)
        result = run("reparameterization", artefacts(reparameterize=reparameterize_answer(inputs)), inputs)
        assert result.fraction == 1.0, result.message


def test_z_equals_mu_is_named():
    result = run("reparameterization", artefacts(reparameterize=reparameterize_answer(variant="z_equals_mu")))
    assert result.fraction == 0.0                             # no sampling at all earns nothing, whatever the mean
    assert "no sampling" in result.message and "mu + eps * sigma" in result.message
    assert "log_sigma_squared" in result.message               # the missing gradient is named too


def test_log_variance_used_as_std_in_sampling_is_named():
    result = run("reparameterization", artefacts(reparameterize=reparameterize_answer(variant="lv_as_std")))
    assert result.fraction == pytest.approx(0.2 + 0.2 + 0.2)
    assert result.details["identified"] == "lv as std" and "standard deviation" in result.message


def test_the_same_draws_at_every_call_lose_the_new_draws_weight():
    answer = reparameterize_answer(variant="reseeds")
    assert answer["new_draws_each_call"] is False
    result = run("reparameterization", artefacts(reparameterize=answer))
    weights = CHECK_DEFAULTS["reparameterization"]["weights"]
    assert result.fraction == pytest.approx(1 - weights["new_draws"] / sum(weights.values()))
    assert "two calls on the same mu and log_sigma_squared return the same z" in result.message
    assert "do not reseed torch" in result.message


# --- PCA ---------------------------------------------------------------------------------------------------------

def test_pca_correct_and_consistent_sign_flips():
    assert run("pca_agrees_with_sklearn", artefacts(pca=pca_answer())).fraction == 1.0
    flipped = run("pca_agrees_with_sklearn", artefacts(pca=pca_answer(flip=(1, 3))))
    assert flipped.fraction == 1.0 and "opposite sign" in flipped.message and "[1, 3]" in flipped.message


def test_pca_generate_without_sqrt_lambda_is_named():
    result = run("pca_agrees_with_sklearn", artefacts(pca=pca_answer(forget_sqrt=True)))
    # encode is right; reconstruct and generate both miss sqrt(lambda)
    assert result.fraction == pytest.approx(1 / 3)
    assert "forgot sqrt(lambda)" in result.message and "WHITENED" in result.message


def test_pca_encode_without_centring_is_named():
    result = run("pca_agrees_with_sklearn", artefacts(pca=pca_answer(no_centring=True)))
    assert result.fraction == pytest.approx(2 / 3) and "does not subtract the mean" in result.message


# --- histories: falling, and agreeing with the grader's evaluation of the models -----------------------------------

def test_all_histories_falling_and_verified():
    result = run("loss_decreases", artefacts(**verified()))
    assert result.fraction == 1.0, result.message
    assert "agrees with the grader's evaluation of the model" in result.message


def test_rising_loss_and_nan_are_named_with_partial_credit():
    rising = run("loss_decreases", artefacts(**verified(histories=histories(vae_history=list(reversed(FALLING))))))
    assert rising.fraction == pytest.approx(2 / 3) and "vae_history rises" in rising.message
    nan_run = histories(ae_histories=[AE_FALLING[0], [0.07, None], AE_FALLING[2]])
    diverged = run("loss_decreases", artefacts(**verified(histories=nan_run)))
    assert diverged.fraction == pytest.approx(2 / 3 + 1 / 3 * 2 / 3) and "diverged" in diverged.message


def test_a_history_that_barely_falls_is_not_training():
    barely = histories(vae_history=[150.0, 149.5, 149.0])
    result = run("loss_decreases", artefacts(**verified(histories=barely)))
    assert result.fraction == pytest.approx(2 / 3) and "vae_history hardly changes" in result.message
    assert run("loss_decreases", artefacts(**verified(histories=barely)), min_drop=0.0).fraction == 1.0


def test_a_history_that_disagrees_with_the_model_earns_nothing():
    # the notebook reports the reference numbers, but the vae it ended with evaluates far lower
    other_model = vae_model(bce_train=90.0, kl_train=8.0, nelbo_train=98.0)
    result = run("loss_decreases", artefacts(**verified(vae_model=other_model)))
    assert result.fraction == pytest.approx(2 / 3)
    assert "vae_history ends at 149" in result.message and "does not belong to the model" in result.message
    unevaluated = run("loss_decreases", artefacts(**verified(ae_models=Failed("NotRun: the probe server did not "
                                                                              "start"))))
    assert unevaluated.fraction == pytest.approx(2 / 3) and "ae_histories[0] could not be checked" in \
        unevaluated.message


def test_a_plotted_curve_is_no_evidence_for_a_missing_history():
    curve = figure(axes(xlabel="epoch", ylabel="loss", lines=[line(FALLING)]))
    result = run("loss_decreases", artefacts([curve], **verified(histories=histories(vae_history=None))))
    assert result.fraction == pytest.approx(2 / 3) and "vae_history is missing" in result.message
    bare = run("loss_decreases", artefacts([], **verified(histories=histories(vae_history=None))))
    assert bare.fraction == pytest.approx(2 / 3)


def test_unreadable_history_says_why_and_rising_curves_are_no_fallback():
    value = histories(vae_history=None, errors={"vae_history": "TypeError: expected a scalar, got shape [3]"})
    rising = figure(axes(xlabel="epoch", ylabel="loss", lines=[line(list(reversed(FALLING)))]))
    result = run("loss_decreases", artefacts([rising], **verified(histories=value)))
    assert result.fraction == pytest.approx(2 / 3)
    assert "vae_history could not be read (TypeError: expected a scalar" in result.message


# --- against the real draw functions, many draws --------------------------------------------------------------------

def test_correct_answers_and_mistakes_are_recognised_on_grader_drawn_inputs():
    for seed in range(8):
        inputs = draw_inputs(seed)
        correct = artefacts(kl=kl_answer(KL_VARIANTS["correct"], inputs), loss=loss_answer(inputs),
                            reparameterize=reparameterize_answer(inputs), pca=pca_answer(inputs),
                            encoder_shapes=run_probe("encoder_shapes", inputs["encoder_shapes"], encoder_calls()),
                            decoder_output=run_probe("decoder_output", inputs["decoder_output"], decoder_calls()))
        for name in ("kl_closed_form", "kl_sums_latent_dims", "kl_batch_average", "loss_proportions",
                     "reparameterization", "pca_agrees_with_sklearn", "encoder_shapes", "decoder_output"):
            result = CHECKS[name](correct, inputs, {})
            assert result.fraction == 1.0, (seed, name, result.message)
        wrong = artefacts(kl=kl_answer(KL_VARIANTS["summed_over_batch"], inputs),
                          loss=loss_answer(inputs, "recon_pixel_mean", "recon_pixel_mean"),
                          reparameterize=reparameterize_answer(inputs, "z_equals_mu"),
                          pca=pca_answer(inputs, forget_sqrt=True),
                          encoder_shapes=run_probe("encoder_shapes", inputs["encoder_shapes"], encoder_calls("zeros")))
        assert CHECKS["kl_batch_average"](wrong, inputs, {}).fraction == 0.0
        assert CHECKS["loss_proportions"](wrong, inputs, {}).fraction == 0.0
        assert "no sampling" in CHECKS["reparameterization"](wrong, inputs, {}).message
        assert "forgot sqrt(lambda)" in CHECKS["pca_agrees_with_sklearn"](wrong, inputs, {}).message
        assert CHECKS["encoder_shapes"](wrong, inputs, {}).fraction == 0.0


def test_every_check_has_defaults_and_plain_details():
    assert set(CHECKS) == set(CHECK_DEFAULTS)
    arts = artefacts([figure(axes(xlabel="epoch", ylabel="loss", lines=[line(FALLING)]))],
                     pca=pca_answer(), reparameterize=reparameterize_answer(), **verified())
    for check in CHECKS.values():
        json.dumps(check(arts, INPUTS, {}).details, allow_nan=False)
    assert not math.isnan(CHECKS["kl_closed_form"](arts, INPUTS, {}).fraction)
