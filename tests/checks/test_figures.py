"""The figure items of seed 003 and the sweep (checks/figures.py, checks/training.py): a figure earns points only when
it is tied to the student's own trained VAE (tests/checks/test_ties.py), then `form` and `shows`. Figures are
described by the kernel's recorder from real matplotlib figures; the grader's measurements of the model come from
tests/checks/fakes.py."""
import numpy as np
import pytest

from autograder.checks import CHECKS, CheckResult
from tests.checks.fakes import (FALLING, GAUSSIAN_FALLING, INPUTS, NOT_TRAINED, SWEEP_DIMS, Failed, LookupDecoder, artefacts,
                                axes, figure, grader_pca, histories, latent_points, line, pca_sweep_answer, picture_figure,
                                scatter_figure, stitch, subplots_figure, sweep_answer, vae_model, verified)


def run(check: str, arts: dict, **params) -> CheckResult:
    result = CHECKS[check](arts, INPUTS, params)
    assert 0.0 <= result.fraction <= 1.0 and result.message
    return result


def digit_tiles(mnist, rows, cols, offset=0, digits=range(10)) -> np.ndarray:
    digits = list(digits)
    return np.stack([mnist[digits[i % len(digits)]][offset + i // len(digits)]
                     for i in range(rows * cols)]).reshape(rows, cols, 28, 28)


def digit_rows(mnist, rows=10, samples=5) -> np.ndarray:
    """Row r holds `samples` test images of digit r."""
    return np.stack([mnist[r % 10][7 * r: 7 * r + samples] for r in range(rows)])


def genuine(figures, decoder_images=None, **changes) -> dict:
    """The artefacts of a notebook with these figures whose genuine trained VAE's decoder draws `decoder_images`."""
    decoder = LookupDecoder(decoder_images) if decoder_images is not None else None
    return artefacts(figures, **verified(figures, decoder, **changes))


# --- the latent scatter --------------------------------------------------------------------------------------------

def test_latent_scatter_one_or_per_digit():
    points, labels = latent_points()
    for per_digit in (False, True):
        result = run("figure_latent_scatter", genuine([scatter_figure(points, labels, per_digit=per_digit)]))
        assert result.fraction == 1.0, result.message
        assert result.details["separation"] > 0.9


def test_latent_scatter_with_500_points_and_uncoloured():
    points, labels = latent_points(500)
    result = run("figure_latent_scatter", genuine([scatter_figure(points, labels)]))
    assert result.fraction == pytest.approx(0.3 * 0.5 + 0.7)
    assert "random subset of 5,000 images; yours has 500" in result.message
    points, labels = latent_points()
    grey = run("figure_latent_scatter", genuine([scatter_figure(points, np.zeros_like(labels))]))
    # one colour: nothing to compare with where the encoder puts each digit, so the scatter is not tied
    assert grey.fraction == 0.0 and "coloured by their labels" in grey.message
    missing = run("figure_latent_scatter", genuine([]))
    assert missing.fraction == 0.0 and "No scatter plot of the VAE's z found" in missing.message


def test_latent_scatter_size_follows_the_profile():
    arts = genuine([scatter_figure(*latent_points(1000))])
    assert run("figure_latent_scatter", arts, profile={"SCATTER_SIZE": 1000}).fraction == 1.0
    assert run("figure_latent_scatter", arts).fraction < 1.0


def test_overlapping_digits_show_less():
    result = run("figure_latent_scatter", genuine([scatter_figure(*latent_points(spread=1.2))]))
    assert 0.3 < result.fraction < 1.0 and "the digits overlap" in result.message
    tiny = run("figure_latent_scatter", genuine([scatter_figure(*latent_points(spread=1.2))]),
               profile_name="tiny", by_profile={"tiny": {"separation_zero_at": 0.0, "separation_full_at": 0.0}})
    assert tiny.fraction == 1.0


def test_a_scatter_of_a_vae_that_did_not_train_is_not_judged():
    arts = artefacts([scatter_figure(*latent_points())], vae_model=vae_model(**NOT_TRAINED))
    result = run("figure_latent_scatter", arts)
    assert result.fraction == 0.0 and "did not train" in result.message and "not judged" in result.message


# --- the 15x15 decoded grid -----------------------------------------------------------------------------------------

def test_decoded_grid_stitched_padded_and_subplots(trained, mnist):
    tiles = digit_tiles(mnist, 15, 15)
    decoded = tiles.reshape(-1, 28, 28)
    for pad in (0, 2, 4):                # sides of 420, 452 and 484 px: no padding, make_grid's 2 px, 4 px
        result = run("figure_decoded_grid_15x15", genuine([picture_figure(stitch(tiles, pad=pad))], decoded))
        assert result.fraction == 1.0, (pad, result.message)
    rgb = np.repeat(stitch(tiles, pad=2)[..., None], 3, axis=2)
    assert run("figure_decoded_grid_15x15", genuine([picture_figure(rgb)], decoded)).fraction == 1.0
    subplots = run("figure_decoded_grid_15x15", genuine([subplots_figure(tiles)], decoded))
    assert subplots.fraction == 1.0 and subplots.details["tiles_from_decoder"] == 1.0


def test_decoded_grid_10x10_is_partial_and_named(trained, mnist):
    tiles = digit_tiles(mnist, 10, 10)
    result = run("figure_decoded_grid_15x15", genuine([picture_figure(stitch(tiles))], tiles.reshape(-1, 28, 28)))
    assert result.fraction == pytest.approx(0.3 * 0.5 + 0.7) and "10x10" in result.message
    assert "15x15" in result.message
    missing = run("figure_decoded_grid_15x15", genuine([scatter_figure(*latent_points())]))
    assert missing.fraction == 0.0 and "No 15x15 grid" in missing.message and "grids seen: none" in missing.message


def test_a_grid_over_a_narrow_range_of_z_shows_less(trained, mnist):
    # the decoder draws 900 images on a 30x30 lattice over [-2.4, 2.4]^2; the grid shows the central 15x15 only
    decoded = digit_tiles(mnist, 30, 30).reshape(900, 28, 28)
    central = decoded.reshape(30, 30, 28, 28)[8:23, 8:23]
    result = run("figure_decoded_grid_15x15", genuine([picture_figure(stitch(central))], decoded))
    assert result.details["range_coverage"] < 0.75 and 0.3 < result.fraction < 1.0
    assert "its z cover" in result.message and "span the whole range" in result.message


def test_a_grid_of_one_digit_shows_less(trained, mnist):
    tiles = digit_tiles(mnist, 15, 15, digits=[1])
    result = run("figure_decoded_grid_15x15", genuine([picture_figure(stitch(tiles))], tiles.reshape(-1, 28, 28)))
    assert result.fraction == pytest.approx(0.3 + 0.7 * 0.5)
    assert "reads only 1 different digit" in result.message


# --- the per-digit grid ---------------------------------------------------------------------------------------------

def test_digit_rows_in_every_layout(trained, mnist):
    tiles = digit_rows(mnist)
    decoded = tiles.reshape(-1, 28, 28)
    for fig in (subplots_figure(tiles), subplots_figure(tiles.transpose(1, 0, 2, 3)),
                picture_figure(stitch(tiles)), picture_figure(stitch(tiles.transpose(1, 0, 2, 3)))):
        result = run("figure_digit_rows", genuine([fig], decoded))
        assert result.fraction == 1.0, result.message
    wrong = digit_rows(mnist, samples=3)
    result = run("figure_digit_rows", genuine([subplots_figure(wrong)], wrong.reshape(-1, 28, 28)))
    assert result.fraction == pytest.approx(0.3 * 0.5) and "10x3" in result.message


def test_rows_of_mixed_digits_show_nothing(trained, mnist):
    mixed = np.stack([np.stack([mnist[(r + s) % 10][r] for s in range(5)]) for r in range(10)])
    result = run("figure_digit_rows", genuine([subplots_figure(mixed)], mixed.reshape(-1, 28, 28)))
    assert result.fraction == pytest.approx(0.3) and "rows show mostly one digit" in result.message


def test_grids_not_made_by_the_decoder_earn_nothing_with_a_message(mnist):
    shown, made = digit_tiles(mnist, 15, 15), digit_tiles(mnist, 15, 15, offset=40)
    pasted = run("figure_decoded_grid_15x15", genuine([picture_figure(stitch(shown))], made.reshape(-1, 28, 28)))
    assert pasted.fraction == 0.0 and "grader_exception" not in pasted.details
    assert "No 15x15 grid of images made by your vae.decoder found (grids seen: 15x15)" in pasted.message
    assert "not made of your vae.decoder's images" in pasted.message
    strips = [subplots_figure(digit_rows(mnist)[r:r + 1]) for r in range(10)]     # ten 1x5 figures, not one grid
    separate = run("figure_digit_rows", genuine(strips, digit_rows(mnist).reshape(-1, 28, 28)))
    assert separate.fraction == 0.0 and "grids seen: 1x5" in separate.message
    prior_row = digit_tiles(mnist, 1, 10)                                          # a 1x10 row of prior samples
    row = run("figure_digit_rows", genuine([subplots_figure(prior_row)], prior_row.reshape(-1, 28, 28)))
    assert row.fraction == 0.0 and "No 10x5 grid" in row.message


def test_the_given_autoencoder_figures_never_earn_the_vae_items(mnist):
    # the template's working AE cell: a scatter of its codes and a grid decoded by the autoencoder; titles do not
    # matter any more, the tie does
    codes = scatter_figure(*latent_points(centroids=np.random.default_rng(3).normal(0, 5, (10, 2))),
                           title="Autoencoder run 1 of 3 (seed 0): codes of test images")
    ae_grid = digit_tiles(mnist, 15, 15)
    vae_images = digit_tiles(mnist, 15, 15, offset=40).reshape(-1, 28, 28)
    arts = genuine([codes, picture_figure(stitch(ae_grid), title="Autoencoder: decoded from a grid of codes")],
                   vae_images)
    for name in ("figure_latent_scatter", "figure_decoded_grid_15x15", "figure_digit_rows"):
        assert run(name, arts).fraction == 0.0, name
    # a VAE scatter earns its points whatever its title says
    vae_scatter = scatter_figure(*latent_points(), title="Autoencoder-style plot of z")
    assert run("figure_latent_scatter", genuine([codes, vae_scatter])).fraction == 1.0


# --- the training curve ---------------------------------------------------------------------------------------------

def curve(y, xlabel="epoch", ylabel="negative ELBO", title="VAE training"):
    return figure(axes(xlabel=xlabel, ylabel=ylabel, title=title, lines=[line(y)]))


def test_a_curve_of_a_verified_history_earns_full_and_labels_count():
    result = run("figure_training_curve", genuine([curve(FALLING)]))
    assert result.fraction == 1.0 and result.details["plotted"] == "per epoch", result.message
    unlabelled = run("figure_training_curve", genuine([curve(FALLING, xlabel="", ylabel="", title="")]))
    assert unlabelled.fraction == pytest.approx(0.7) and "epoch" in unlabelled.message
    elbo = run("figure_training_curve", genuine([curve([-v for v in FALLING], ylabel="ELBO")]))
    assert elbo.fraction == 1.0                                       # the ELBO, i.e. minus the history
    gaussian = run("figure_training_curve", genuine([curve(GAUSSIAN_FALLING)]))
    assert gaussian.fraction == 1.0 and gaussian.details["history"] == "gaussian_vae_history"


def test_the_same_curve_earns_nothing_when_its_history_fails_verification():
    arts = genuine([curve(FALLING)], vae_model=vae_model(bce_train=90.0, kl_train=8.0, nelbo_train=98.0))
    result = run("figure_training_curve", arts)
    assert result.fraction == 0.0 and "Your training curve plots vae_history" in result.message
    assert "does not belong to the model" in result.message and "earns points only when" in result.message


def test_an_unrelated_falling_line_earns_nothing():
    result = run("figure_training_curve", genuine([curve([300.0, 250.0, 220.0, 200.0, 190.0])]))
    assert result.fraction == 0.0 and "none of them your vae_history" in result.message
    missing = run("figure_training_curve", genuine([]))
    assert missing.fraction == 0.0 and "No training curve" in missing.message


def test_a_per_batch_curve_whose_block_means_are_the_history_is_accepted():
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 3.0, (len(FALLING), 150))
    batches = np.concatenate([value + block - block.mean() for value, block in zip(FALLING, noise)])
    result = run("figure_training_curve", genuine([curve(batches, xlabel="batch")]))
    assert result.fraction == 1.0 and result.details["plotted"] == "per batch", result.message
    other = run("figure_training_curve", genuine([curve(batches + 40.0, xlabel="batch")]))
    assert other.fraction == 0.0


def test_a_rising_history_keeps_only_the_form():
    rising = list(reversed(FALLING))                      # ends at 180, which the model does give
    arts = genuine([curve(rising)], histories=histories(vae_history=rising),
                   vae_model=vae_model(bce_train=172.0, kl_train=8.0, nelbo_train=180.0))
    result = run("figure_training_curve", arts)
    assert result.fraction == pytest.approx(0.3) and "rises" in result.message


def test_autoencoder_and_sweep_lines_are_not_vae_training_curves():
    ae = run("figure_training_curve", genuine([curve(FALLING, title="Autoencoder training")]))
    assert ae.fraction == 0.0 and "titled as autoencoder/PCA figures" in ae.message
    sweep = figure(axes(xlabel="latent size", ylabel="MSE", lines=[line(grader_pca(), SWEEP_DIMS)]))
    assert run("figure_training_curve", genuine([sweep])).fraction == 0.0


# --- the reconstruction-error sweep ---------------------------------------------------------------------------------

def sweep_lines(autoencoder, pca, labels=("autoencoder", "PCA"), dims=SWEEP_DIMS, legend=True):
    return [line(autoencoder, dims, labels[0]), line(pca, dims, labels[1])], (list(labels) if legend else [])


def test_reconstruction_sweep_matching_the_graders_pca():
    errors = sweep_answer()["reconstruction_errors"]
    lines, legend = sweep_lines(errors["autoencoder"], errors["pca"])
    assert run("figure_reconstruction_sweep", genuine([figure(axes(lines=lines, legend=legend))])).fraction == 1.0
    lines, _ = sweep_lines(errors["autoencoder"], errors["pca"], labels=("_child0", "_child1"))
    unnamed = run("figure_reconstruction_sweep", genuine([figure(axes(lines=lines))]))
    assert unnamed.fraction == pytest.approx(0.9) and "legend" in unnamed.message
    one = figure(axes(lines=lines[:1]))
    assert run("figure_reconstruction_sweep", genuine([one])).fraction == 0.5
    separate = [figure(axes(lines=lines[:1])), figure(axes(lines=lines[1:]))]
    assert run("figure_reconstruction_sweep", genuine(separate)).fraction == 0.75


def test_a_pca_line_off_by_30_percent_earns_nothing():
    wrong_pca = [1.3 * e for e in grader_pca()]
    sweep = sweep_answer(pca=wrong_pca)
    lines, legend = sweep_lines(sweep["reconstruction_errors"]["autoencoder"], wrong_pca)
    result = run("figure_reconstruction_sweep", genuine([figure(axes(lines=lines, legend=legend))], sweep=sweep))
    assert result.fraction == 0.0 and "is not PCA's held-out error" in result.message
    assert "The figure counts only with the errors your models really have" in result.message


def test_implausible_autoencoder_errors_earn_nothing():
    sweep = sweep_answer(autoencoder=[1.0] * len(SWEEP_DIMS))           # worse than predicting the mean image
    lines, legend = sweep_lines([1.0] * len(SWEEP_DIMS), grader_pca())
    result = run("figure_reconstruction_sweep", genuine([figure(axes(lines=lines, legend=legend))], sweep=sweep))
    assert result.fraction == 0.0 and "reconstruction_errors['autoencoder'] is not a list" in result.message


def test_reconstruction_sweep_uses_the_notebooks_sweep_dims():
    dims = [2, 4]
    sweep = sweep_answer(dims=dims)
    errors = sweep["reconstruction_errors"]
    lines, legend = sweep_lines(errors["autoencoder"], errors["pca"], dims=dims)
    arts = artefacts([figure(axes(lines=lines, legend=legend))],
                     **verified(sweep=sweep, pca_sweep=pca_sweep_answer(dims)))
    assert run("figure_reconstruction_sweep", arts).fraction == 1.0
    undefined = artefacts([figure(axes(lines=lines, legend=legend))],
                          **verified(sweep=Failed("NameError: SWEEP_DIMS is not defined by the notebook")))
    result = run("figure_reconstruction_sweep", undefined)
    assert result.fraction == 0.0 and "SWEEP_DIMS is not defined" in result.message


def test_the_separation_ramp_sits_below_the_reference_and_above_collapsed_vaes():
    """Measured at GRADING by `make grade` (README): the reference's scatter separates at 0.542, the demo's collapsed
    VAEs at 0.297 and 0.096. Full credit needs a margin below the reference; a collapsed VAE earns none of "shows"."""
    from autograder.checks.figures import SEPARATION_FULL_AT, SEPARATION_ZERO_AT
    reference, collapsed = 0.542, (0.297, 0.096)
    assert SEPARATION_FULL_AT <= reference - 0.05
    assert all(value <= SEPARATION_ZERO_AT for value in collapsed)
