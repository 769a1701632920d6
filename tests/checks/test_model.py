"""checks/model.py: the genuine-trained-VAE gate (vae_verdict) and the verification of reported histories against
the grader's evaluation of the models (history_verdict, verified_history), one small fixture per failure mode."""
import pytest

from autograder.checks.model import (GENUINE_DEFAULTS, HISTORY_DEFAULTS, ae_history_verdict, history_verdict,
                                     vae_verdict, verified_history)
from tests.checks.fakes import (FALLING, GAUSSIAN_FALLING, INPUTS, NOT_TRAINED, Failed, ae_models, artefacts,
                                gaussian_vae_model, loss_answer, vae_model)

FRESH = 543.4           # the genuine vae_model's negative ELBO for a freshly initialised copy


def verdict(**changes):
    return vae_verdict(artefacts(vae_model=vae_model(**changes)))


# --- the gate ------------------------------------------------------------------------------------------------------

def test_a_genuine_trained_vae_passes():
    result = verdict()
    assert result.ok, result.message
    assert "negative ELBO 149 nats per image on training images" in result.message
    assert result.details["copy_fraction"] == 0.0


def test_a_decoder_that_ignores_its_weights_fails():
    result = verdict(decoder_reinit_change=0.001)
    assert not result.ok and "same images when its weights are re-initialised" in result.message


def test_a_flat_decoder_fails():
    result = verdict(decoder_jacobian_median=0.2 * GENUINE_DEFAULTS["min_jacobian"])
    assert not result.ok and "do not change when z moves a little" in result.message


def test_a_decoder_without_gradients_fails():
    result = verdict(decoder_parameters_with_gradient=0)
    assert not result.ok and "no gradient reaches the parameters of vae.decoder" in result.message


def test_a_decoder_that_copies_dataset_images_fails():
    copies = [0.0] * 60 + [0.15] * 40                      # 60 of 100 samples are MNIST images
    result = verdict(prior_copy_rmse=copies)
    assert not result.ok and "60% of the images" in result.message and "copies of MNIST images" in result.message
    assert result.details["copy_fraction"] == pytest.approx(0.6)
    few = verdict(prior_copy_rmse=[0.0] * 10 + [0.15] * 90)        # a few near-copies are allowed
    assert few.ok, few.message


def test_an_untrained_vae_fails():
    result = verdict(**NOT_TRAINED)
    assert not result.ok and "did not train" in result.message and "530.5" in result.message
    assert "optimizer.zero_grad()" in result.message
    ratio = GENUINE_DEFAULTS["max_trained_ratio"]
    assert verdict(nelbo_train=ratio * FRESH * 0.99).ok and not verdict(nelbo_train=ratio * FRESH * 1.01).ok


def test_the_problems_are_listed_together_and_a_missing_model_says_why():
    both = verdict(decoder_reinit_change=0.0, decoder_jacobian_median=0.0)
    assert not both.ok and "re-initialised" in both.message and "z moves" in both.message
    missing = vae_verdict(artefacts(vae_model=Failed("vae is not a trained torch model at the end of the notebook "
                                                     "(not defined)")))
    assert not missing.ok and "could not evaluate your trained vae" in missing.message
    assert "not a trained torch model" in missing.message and missing.details["missing"]
    nan = verdict(nelbo_train=float("nan"))
    assert not nan.ok and "could not compute your vae's negative ELBO" in nan.message


# --- histories against the model -----------------------------------------------------------------------------------

def test_a_history_that_agrees_with_the_model():
    result = history_verdict("vae_history", FALLING, (149.0, FRESH))
    assert result.ok and "agrees with the grader's evaluation" in result.message
    assert result.details["last_ratio"] == pytest.approx(1.0)


def test_a_history_whose_last_value_is_far_from_the_model():
    low, high = HISTORY_DEFAULTS["last_low"], HISTORY_DEFAULTS["last_high"]
    result = history_verdict("vae_history", FALLING, (149.0 / (high * 1.05), FRESH))
    assert not result.ok and "does not belong to the model your notebook ended with" in result.message
    assert not history_verdict("vae_history", FALLING, (149.0 / (low * 0.95), FRESH)).ok
    assert history_verdict("vae_history", FALLING, (149.0 / (high * 0.98), FRESH)).ok


def test_a_history_that_starts_above_a_fresh_model():
    result = history_verdict("vae_history", [700.0, 300.0, 149.0], (149.0, FRESH))
    assert not result.ok and "starts at 700, above the loss of a freshly initialised model" in result.message


def test_an_unidentified_loss_leaves_the_history_unverified():
    # bernoulli_vae_loss returns a number no known form explains: the history's units are unknown
    loss = {**loss_answer(), "bernoulli": 12345.0}
    arts = artefacts(vae_model=vae_model(), loss=loss)
    result = verified_history("vae_history", FALLING, arts, INPUTS, {})
    assert not result.ok and "not one of the forms the grader recognises" in result.message
    assert verified_history("vae_history", FALLING, artefacts(vae_model=vae_model(), loss=loss_answer()),
                            INPUTS, {}).ok


def test_a_history_in_the_students_own_units_is_verified():
    # both terms summed over the batch: the history is per batch of BATCH_SIZE images, the model's ELBO per image
    arts = artefacts(vae_model=vae_model(), loss=loss_answer(bernoulli="both_batch_sum"))
    per_batch = [value * 64 for value in FALLING]
    assert verified_history("vae_history", per_batch, arts, INPUTS, {"BATCH_SIZE": 64}).ok
    assert not verified_history("vae_history", per_batch, arts, INPUTS, {"BATCH_SIZE": 128}).ok
    assert not verified_history("vae_history", FALLING, arts, INPUTS, {"BATCH_SIZE": 64}).ok


def test_the_gaussian_and_autoencoder_histories_are_verified_against_their_models():
    arts = artefacts(gaussian_vae_model=gaussian_vae_model(), loss=loss_answer(), ae_models=ae_models())
    assert verified_history("gaussian_vae_history", GAUSSIAN_FALLING, arts, INPUTS, {}).ok
    wrong = artefacts(gaussian_vae_model=gaussian_vae_model(squared_error_train=3.0), loss=loss_answer())
    assert not verified_history("gaussian_vae_history", GAUSSIAN_FALLING, wrong, INPUTS, {}).ok
    assert ae_history_verdict(1, [0.07, 0.05], arts).ok
    assert not ae_history_verdict(1, [0.07, 0.02], arts).ok
    missing = ae_history_verdict(5, [0.07, 0.05], arts)
    assert not missing.ok and "ae_models[5] is not a trained autoencoder" in missing.message
